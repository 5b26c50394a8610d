//! The operator's files in `deploy/`: the Prometheus alerting rules parse, fire and stay quiet as their tests say,
//! name only metrics the daemon exports, the Alertmanager example is valid and its inhibition really mutes, the
//! Prometheus example scrapes the port the packaged env file sets, and the Grafana dashboards import cleanly and
//! chart every family the daemon exports.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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

/// `SUCCESS: <n> rules found`, n being the rules in alerts.yml: promtool read every one of them.
fn all_rules_found() -> String {
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let n = rules.lines().filter(|l| l.trim_start().starts_with("- alert:")).count();
    assert!(n >= 13, "{n} rules");
    format!("SUCCESS: {n} rules found")
}

#[test]
fn the_alerting_rules_parse_and_their_unit_tests_pass() {
    let dir = deploy("prometheus");
    assert!(run("promtool", &["check", "rules", "alerts.yml"], &dir).contains(&all_rules_found()));
    assert!(run("promtool", &["test", "rules", "alerts_test.yml"], &dir).contains("SUCCESS"));
}

#[test]
fn every_rule_has_a_unit_test_where_it_fires_and_one_where_it_stays_quiet() {
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(deploy("prometheus/alerts_test.yml")).unwrap();
    // Each `- eval_time:` item of alert_rule_test: (alertname, whether it expects alerts).
    let cases: Vec<(String, bool)> = tests
        .split("- eval_time:")
        .skip(1)
        .filter_map(|case| {
            let name = case.lines().find_map(|l| l.trim().strip_prefix("alertname: "))?;
            Some((name.trim().to_string(), !case.contains("exp_alerts: []")))
        })
        .collect();
    let names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(names.len() >= 13, "{names:?}");
    for name in names {
        assert!(cases.contains(&(name.to_string(), true)), "no test makes {name} fire");
        assert!(cases.contains(&(name.to_string(), false)), "no test keeps {name} quiet");
    }
    // The alerts about a daemon carry its job and instance, which the inhibition rules match on.
    for line in tests.lines().filter(|l| l.contains("exp_labels:")) {
        assert!(line.contains("job: doradura"), "{line}");
    }
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

/// A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port, with the example config.
struct Alertmanager {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alertmanager() -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", doradura_testkit::free_port());
    let child = Command::new("prometheus-alertmanager")
        .arg(format!(
            "--config.file={}",
            deploy("alertmanager/alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.path().display()))
        .arg(format!("--web.listen-address={addr}"))
        // No cluster: no gossip port to collide with another test's.
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("alertmanager.log")).unwrap())
        .spawn()
        .expect("prometheus-alertmanager is installed (.ci/run installs Debian's prometheus-alertmanager)");
    let am = Alertmanager {
        child,
        url: format!("http://{addr}"),
        _dir: dir,
    };
    doradura_testkit::wait_for(Duration::from_secs(30), "Alertmanager to answer", || {
        doradura_testkit::http_get(&addr, "/-/ready", &[])
            .ok()
            .filter(|(code, _)| *code == 200)
    });
    am
}

#[test]
fn the_inhibition_mutes_the_rest_of_a_daemon_that_is_down_and_nothing_else() {
    let am = alertmanager();
    // Alerts as the rules in alerts.yml label them (their promtool tests check those labels).
    let alert = |name: &str, alert_type: &str, severity: &str, instance: Option<&str>| {
        let mut labels = vec![
            format!("alertname={name}"),
            format!("alert_type={alert_type}"),
            format!("severity={severity}"),
            "job=doradura".to_string(),
        ];
        labels.extend(instance.map(|i| format!("instance={i}")));
        let mut args = vec![format!("--alertmanager.url={}", am.url), "alert".into(), "add".into()];
        args.extend(labels);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("amtool", &args, Path::new("/"));
    };
    let (a, b) = (Some("a.example:9464"), Some("b.example:9464"));
    // Host a: the daemon is down; what its other rules still say is muted.
    alert("DoraduraDown", "DaemonDown", "critical", a);
    alert("DoraduraBotDisconnected", "BotDisconnected", "critical", a);
    alert("DoraduraHighErrorRate", "HighErrorRate", "critical", a);
    alert("DoraduraNoWorkerUp", "NoWorkerUp", "critical", a);
    // Host b: up, no worker up, the bot cut off: the queue and the crash loop are muted, the rest pages.
    alert("DoraduraNoWorkerUp", "NoWorkerUp", "critical", b);
    alert("DoraduraBotDisconnected", "BotDisconnected", "critical", b);
    alert("DoraduraQueueBackup", "QueueBackup", "warning", b);
    alert("DoraduraWorkerCrashLoop", "WorkerCrashLoop", "warning", b);
    // No doradura target at all (absent(up)): no instance, so it mutes no host's alerts.
    alert("DoraduraDown", "DaemonDown", "critical", None);

    let addr = am.url.trim_start_matches("http://").to_string();
    let expected = [
        ("DoraduraDown", a, "active"),
        ("DoraduraBotDisconnected", a, "suppressed"),
        ("DoraduraHighErrorRate", a, "suppressed"),
        ("DoraduraNoWorkerUp", a, "suppressed"),
        ("DoraduraNoWorkerUp", b, "active"),
        ("DoraduraBotDisconnected", b, "active"),
        ("DoraduraQueueBackup", b, "suppressed"),
        ("DoraduraWorkerCrashLoop", b, "suppressed"),
        ("DoraduraDown", None, "active"),
    ];
    let mut seen = Vec::new();
    // Alertmanager settles inhibitions as the alerts arrive; poll until every one has its state.
    doradura_testkit::wait_for(Duration::from_secs(30), "the alerts' states", || {
        let (code, body) = doradura_testkit::http_get(&addr, "/api/v2/alerts", &[]).ok()?;
        (code == 200).then_some(())?;
        let alerts: serde_json::Value = serde_json::from_str(&body).ok()?;
        seen = alerts
            .as_array()?
            .iter()
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                    a["labels"]["instance"].as_str().map(str::to_string),
                    a["status"]["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        expected
            .iter()
            .all(|(n, i, st)| seen.contains(&(n.to_string(), i.map(str::to_string), st.to_string())))
            .then_some(())
    });
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
}

/// `NAME=value` from `doradurad --check-config --env-file FILE`: the file as the daemon reads it.
fn as_the_daemon_reads(file: &Path) -> Vec<(String, String)> {
    let out = doradura_testkit::Daemon::builder().run_to_exit(
        &["--check-config", "--env-file", file.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

#[test]
fn the_prometheus_example_scrapes_exactly_what_the_packaged_env_file_sets() {
    // The file the package installs as /etc/doradura/doradura.env, from the package's asset list.
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let asset = manifest
        .lines()
        .find(|l| l.contains("\"etc/doradura/doradura.env\""))
        .expect("the package installs /etc/doradura/doradura.env");
    let source = asset.split('"').nth(1).unwrap();
    let env = as_the_daemon_reads(&Path::new(env!("CARGO_MANIFEST_DIR")).join(source));
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    let (bind, port) = (get("METRICS_BIND"), get("METRICS_PORT"));
    // Not Prometheus's own port: both run on one host.
    assert_ne!(port, "9090", "the packaged METRICS_PORT clashes with Prometheus");
    let config = std::fs::read_to_string(deploy("prometheus/prometheus.yml")).unwrap();
    let targets: Vec<&str> = config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- targets: "))
        .collect();
    // The Alertmanager target, then the daemon's.
    assert!(
        targets.contains(&format!("[\"{bind}:{port}\"]").as_str()),
        "prometheus.yml scrapes {targets:?}, the packaged env file sets {bind}:{port}"
    );
    // The Grafana data source points at Prometheus itself, not at the daemon.
    let datasource = std::fs::read_to_string(deploy("grafana/provisioning/datasources/prometheus.yml")).unwrap();
    assert!(!datasource.contains(&format!(":{port}")), "{datasource}");
}

const DASHBOARDS: [&str; 3] = ["performance", "business", "system-health"];

fn dashboard(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(deploy(&format!("grafana/dashboards/{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every `datasource` object anywhere in `v`, with where it is.
fn datasources<'a>(v: &'a serde_json::Value, at: &str, out: &mut Vec<(String, &'a serde_json::Value)>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                if k == "datasource" {
                    out.push((at.to_string(), child));
                }
                datasources(child, &format!("{at}.{k}"), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                datasources(child, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Every `expr` of every panel of the Grafana dashboards, as written (`$instance`, `$__rate_interval`).
fn dashboard_exprs() -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    for name in DASHBOARDS {
        let board = dashboard(name);
        assert!(board["uid"].as_str().unwrap().starts_with("doradura-"));
        let panels = board["panels"].as_array().unwrap();
        assert!(panels.len() >= 4, "{name}");
        for panel in panels {
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {}", panel["title"]);
            for t in targets {
                exprs.push((
                    format!("{name}: {}", panel["title"]),
                    t["expr"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    exprs
}

/// The families a real `/metrics` serves: the catalog's and the process collector's (`process_*`).
fn exported_families() -> Vec<String> {
    let metrics = doradurad::metrics::Metrics::new();
    let families: Vec<String> = metrics
        .registry()
        .gather()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    for name in NAMES {
        assert!(families.iter().any(|f| f == name), "{name}");
    }
    families
}

/// Metric names in a PromQL expression: identifiers followed by `{` (every dashboard selector has one).
fn selectors(expr: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(open) = rest.find('{') {
        let head = &rest[..open];
        let start = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |i| i + 1);
        let close = rest[open..].find('}').map(|i| open + i).unwrap_or(rest.len());
        let name = &head[start..];
        if !name.is_empty() {
            found.push((name.to_string(), rest[open + 1..close].to_string()));
        }
        rest = &rest[(close + 1).min(rest.len())..];
    }
    found
}

#[test]
fn the_dashboards_import_cleanly_with_a_datasource_and_an_instance_variable() {
    for name in DASHBOARDS {
        let board = dashboard(name);
        let text = board.to_string();
        // Nothing names a data source of one particular Grafana.
        assert!(
            !text.contains("doradura-prometheus"),
            "{name} hard-codes the provisioned uid"
        );
        // Import asks for the Prometheus data source.
        let inputs = board["__inputs"].as_array().expect("__inputs");
        assert!(
            inputs
                .iter()
                .any(|i| i["type"] == "datasource" && i["pluginId"] == "prometheus" && i["name"] == "DS_PROMETHEUS"),
            "{name}: {inputs:?}"
        );
        let vars = board["templating"]["list"].as_array().unwrap();
        let var = |n: &str| {
            vars.iter()
                .find(|v| v["name"] == n)
                .unwrap_or_else(|| panic!("{name}: no ${n}"))
        };
        let ds = var("datasource");
        assert_eq!(
            (&ds["type"], &ds["query"]),
            (&"datasource".into(), &"prometheus".into()),
            "{name}"
        );
        assert_eq!(
            ds["current"]["value"], "${DS_PROMETHEUS}",
            "{name}: import sets the variable"
        );
        let instance = var("instance");
        assert_eq!(instance["type"], "query", "{name}");
        assert!(
            instance["definition"].as_str().unwrap().contains("doradura_build_info"),
            "{name}"
        );
        assert_eq!(instance["includeAll"], true, "{name}");
        // Every panel, every target and the instance query use the variable, nothing else.
        let mut found = Vec::new();
        datasources(&board, name, &mut found);
        assert!(found.len() > board["panels"].as_array().unwrap().len(), "{name}");
        for (at, d) in found {
            assert_eq!(
                d,
                &serde_json::json!({"type": "prometheus", "uid": "${datasource}"}),
                "{at}"
            );
        }
    }
}

#[test]
fn every_exported_family_and_the_process_memory_and_cpu_have_a_panel() {
    let exprs = dashboard_exprs();
    let all: String = exprs.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>().join("\n");
    let charted = |family: &str| {
        selectors(&all).iter().any(|(n, _)| {
            n == family
                || ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| *n == format!("{family}{s}"))
        })
    };
    let missing: Vec<String> = exported_families()
        .into_iter()
        .filter(|f| {
            f.starts_with("doradura_") || f == "process_resident_memory_bytes" || f == "process_cpu_seconds_total"
        })
        .filter(|f| !charted(f))
        .collect();
    assert!(missing.is_empty(), "no panel charts {missing:?}");
    // And the scrape itself (up).
    assert!(selectors(&all).iter().any(|(n, _)| n == "up"));
}

#[test]
fn every_dashboard_query_parses_and_names_only_exported_metrics() {
    let exprs = dashboard_exprs();
    // Every selector is limited to the chosen instances.
    for (panel, expr) in &exprs {
        let found = selectors(expr);
        assert!(!found.is_empty(), "{panel}: {expr}");
        for (name, matchers) in found {
            assert!(
                matchers.split(',').any(|m| m.trim() == "instance=~\"$instance\""),
                "{panel}: {name} is not limited to $instance in {expr}"
            );
        }
    }
    // Grafana's variables made concrete for promtool.
    let exprs: Vec<(String, String)> = exprs
        .into_iter()
        .map(|(p, e)| (p, e.replace("$__rate_interval", "5m").replace("$instance", ".+")))
        .collect();
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
    let families = exported_families();
    let exported = |name: &str| {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| families.iter().any(|f| f == b))
            .unwrap_or(name);
        name == "up" || families.iter().any(|f| f == base)
    };
    for (panel, expr) in &exprs {
        for name in metric_names(expr)
            .into_iter()
            .chain(selectors(expr).into_iter().map(|(n, _)| n))
        {
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
    assert!(out.contains(&all_rules_found()), "{out}");
}
