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
    assert!(run("promtool", &["check", "rules", "alerts.yml"], &dir).contains("SUCCESS: 9 rules found"));
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

/// Every `expr` of every panel of the Grafana dashboards, with Grafana's `$__rate_interval` made concrete.
fn dashboard_exprs() -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    for name in ["performance", "business", "system-health"] {
        let text = std::fs::read_to_string(deploy(&format!("grafana/dashboards/{name}.json"))).unwrap();
        let board: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(board["uid"].as_str().unwrap().starts_with("doradura-"));
        let panels = board["panels"].as_array().unwrap();
        assert!(panels.len() >= 4, "{name}");
        for panel in panels {
            assert_eq!(
                panel["datasource"]["uid"], "doradura-prometheus",
                "{name}: {}",
                panel["title"]
            );
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {}", panel["title"]);
            for t in targets {
                let expr = t["expr"].as_str().unwrap().replace("$__rate_interval", "5m");
                exprs.push((format!("{name}: {}", panel["title"]), expr));
            }
        }
    }
    exprs
}

#[test]
fn every_dashboard_query_parses_and_names_only_exported_metrics() {
    let exprs = dashboard_exprs();
    // promtool parses PromQL when it checks rules: each query becomes a recording rule.
    let rules: Vec<serde_json::Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, (_, e))| serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": e}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = serde_json::json!({"groups": [{"name": "dashboards", "rules": rules}]});
    std::fs::write(dir.path().join("queries.yml"), file.to_string()).unwrap();
    let out = run("promtool", &["check", "rules", "queries.yml"], dir.path());
    assert!(out.contains(&format!("SUCCESS: {} rules found", exprs.len())), "{out}");
    let exported = |name: &str| {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| NAMES.contains(b))
            .unwrap_or(name);
        NAMES.contains(&base)
    };
    for (panel, expr) in &exprs {
        for name in metric_names(expr) {
            assert!(exported(&name), "{panel}: {name} is not exported by doradurad");
        }
    }
    // The three dashboards cover what an operator looks for.
    let all: String = exprs.iter().map(|(_, e)| e.as_str()).collect();
    for needed in [
        "doradura_download_success_total",
        "doradura_download_duration_seconds_bucket",
        "doradura_queue_depth",
        "doradura_revenue_total_stars",
        "doradura_new_subscriptions_total",
        "doradura_active_subscriptions",
        "doradura_payment_checkout_started_total",
        "doradura_errors_total",
        "doradura_bot_uptime_seconds",
        "doradura_rate_limit_hits_total",
        "doradura_workers",
    ] {
        assert!(all.contains(needed), "no panel shows {needed}");
    }
}

#[test]
fn the_prometheus_example_scrapes_the_daemon_with_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(deploy("prometheus/prometheus.yml")).unwrap();
    assert!(config.contains("job_name: doradura"));
    // Checked as installed: the rules where the package puts them, here the repository's copy.
    let rules = deploy("prometheus/alerts.yml");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        config.replace(
            "/usr/share/doradura/deploy/prometheus/alerts.yml",
            rules.to_str().unwrap(),
        ),
    )
    .unwrap();
    let out = run("promtool", &["check", "config", "prometheus.yml"], dir.path());
    assert!(out.contains("SUCCESS: 9 rules found"), "{out}");
}
