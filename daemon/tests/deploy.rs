//! The operator's files in `deploy/`: the Prometheus alerting rules parse, fire and stay quiet as their tests say,
//! name only metrics the daemon exports, and the Alertmanager example is a valid configuration.

use std::path::{Path, PathBuf};
use std::process::Command;

use doradurad::metrics::catalog::NAMES;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(path)
}

fn run(tool: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is installed (.ci/run installs it): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

/// Every `doradura_<name>` in `text` (metric names; the job label's bare `doradura` does not match).
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("doradura_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_alerting_rules_parse_and_their_unit_tests_pass() {
    let dir = deploy("prometheus");
    assert!(run("promtool", &["check", "rules", "alerts.yml"], &dir).contains("SUCCESS: 8 rules found"));
    assert!(run("promtool", &["test", "rules", "alerts_test.yml"], &dir).contains("SUCCESS"));
}

#[test]
fn the_rules_name_only_metrics_the_daemon_exports() {
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let names = metric_names(&rules);
    assert!(names.len() >= 8, "{names:?}");
    for name in &names {
        assert!(NAMES.contains(&name.as_str()), "{name} is not exported by doradurad");
    }
    // Each of the daemon's alert types has its rule.
    for kind in doradurad::alerts::AlertType::ALL {
        assert!(rules.contains(&format!("alert_type: {kind}\n")), "no rule for {kind}");
    }
}

#[test]
fn the_alertmanager_example_is_valid() {
    let out = run("amtool", &["check-config", "alertmanager.yml"], &deploy("alertmanager"));
    assert!(out.contains("SUCCESS"), "{out}");
}
