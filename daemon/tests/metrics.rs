//! The metrics layer through the real daemon: families move with their code paths, survive restarts, pass
//! promtool, are scraped by a real Prometheus, and /health tells the truth.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use doradura_testkit::media::{MediaSite, ytdlp};
use doradura_testkit::{Daemon, DaemonBuilder, free_port, http_get, signal, wait_for};
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(60);

fn builder() -> DaemonBuilder {
    Daemon::builder()
        .metrics_on()
        .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
        .env("YTDLP_PATH", ytdlp())
        .env("WORKER_HEARTBEAT_INTERVAL", "200ms")
        .env("WORKER_BACKOFF_INITIAL", "100ms")
}

fn scrape(d: &Daemon) -> String {
    let (status, body) = http_get(&d.metrics_address(), "/metrics", &[]).unwrap();
    assert_eq!(status, 200);
    body
}

fn has(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

fn download(d: &Daemon, url: &str) -> bool {
    let out = d.dir.path().join("out");
    d.ctl(["download", url, "--format", "mp3", "--out", out.to_str().unwrap()])
        .status
        .success()
}

fn db_count(d: &Daemon, sql: &str) -> i64 {
    rusqlite::Connection::open(d.db_path())
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn families_move_with_downloads_and_restarts_and_survive_a_daemon_restart() {
    let b = builder();
    let site = MediaSite::start(&b.dir().join("site"));
    let mut d = b.start();
    let workers = d.wait_idle(T);
    let before = scrape(&d);
    assert!(
        has(
            &before,
            "doradura_download_success_total{format=\"mp3\",quality=\"320k\"} 0"
        ),
        "{before}"
    );
    assert!(has(&before, "doradura_workers{state=\"idle\"} 2"));
    assert!(has(&before, "doradura_ytdlp_up 1"));
    assert!(has(
        &before,
        &format!("doradura_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))
    ));

    assert!(download(&d, &site.url("clip.mp4")));
    assert!(!download(&d, &site.url("missing.mp4")));
    signal(workers[0].pid.unwrap(), Signal::SIGKILL);
    wait_for(T, "the worker to be back", || {
        d.workers()
            .filter(|w| w.iter().all(|w| w.state == "idle") && w[0].restarts == 1)
    });

    let bytes = db_count(&d, "SELECT bytes FROM download_tasks WHERE state = 'done'");
    let text = wait_for(T, "the restart to be counted", || {
        let t = scrape(&d);
        has(&t, "doradura_worker_restarts_total{reason=\"signal\"} 1").then_some(t)
    });
    for line in [
        "doradura_download_success_total{format=\"mp3\",quality=\"320k\"} 1".to_string(),
        "doradura_download_failure_total{error_type=\"unavailable\",format=\"mp3\"} 1".to_string(),
        format!("doradura_download_bytes_total{{format=\"mp3\"}} {bytes}"),
        "doradura_download_duration_seconds_count{format=\"mp3\",quality=\"320k\"} 1".to_string(),
        "doradura_ytdlp_execution_duration_seconds_count{format=\"mp3\"} 2".to_string(),
        "doradura_queue_wait_time_seconds_count{priority=\"high\"} 2".to_string(),
        "doradura_format_requests_total{format=\"mp3\"} 2".to_string(),
        "doradura_errors_total{category=\"download\"} 1".to_string(),
        "doradura_queue_depth{priority=\"high\"} 0".to_string(),
        "doradura_downloads_in_progress 0".to_string(),
        "doradura_workers{state=\"idle\"} 2".to_string(),
    ] {
        assert!(has(&text, &line), "missing {line:?} in\n{text}");
    }

    // The same figures through doradurctl.
    let out = String::from_utf8(d.ctl(["metrics", "performance"]).stdout).unwrap();
    assert!(out.starts_with("== performance\n"));
    assert!(
        out.contains("doradura_download_success_total{format=\"mp3\",quality=\"320k\"} 1"),
        "{out}"
    );
    assert!(!out.contains("doradura_workers"));
    let bad = d.ctl(["metrics", "vanity"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("the categories are: performance, business, engagement, system")
    );

    // A restart restores the counters from the database: totals never go backwards.
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(T).success());
    d.restart();
    d.wait_idle(T);
    let after = scrape(&d);
    assert!(
        has(
            &after,
            "doradura_download_success_total{format=\"mp3\",quality=\"320k\"} 1"
        ),
        "{after}"
    );
    assert!(has(
        &after,
        "doradura_download_failure_total{error_type=\"unavailable\",format=\"mp3\"} 1"
    ));
    assert!(has(
        &after,
        &format!("doradura_download_bytes_total{{format=\"mp3\"}} {bytes}")
    ));
}

#[test]
fn promtool_accepts_the_live_output_but_for_the_three_kept_names() {
    let d = builder().start();
    d.wait_idle(T);
    let text = scrape(&d);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (.ci/run installs Debian's prometheus)");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let problems: Vec<&str> = report.lines().filter(|l| !l.trim().is_empty()).collect();
    let kept = [
        "doradura_revenue_total_stars",
        "doradura_revenue_by_plan",
        "doradura_bot_uptime_seconds",
    ];
    // The name for yt-dlp's age counts days, not the base unit promtool wants: days are what an operator
    // and ALERT_YTDLP_MAX_AGE_DAYS speak.
    let days = "doradura_ytdlp_release_age_days use base unit \"seconds\" instead of \"days\"";
    assert!(problems.contains(&days), "the documented unit exception\n{report}");
    for p in problems.iter().filter(|p| **p != days) {
        assert!(kept.iter().any(|k| p.starts_with(k)), "unexpected lint: {p}\n{report}");
    }
    for k in kept {
        assert!(
            problems.iter().any(|p| p.starts_with(k)),
            "{k} should be the documented exception\n{report}"
        );
    }
}

#[test]
fn a_real_prometheus_scrapes_the_daemon_and_counts_the_downloads() {
    let b = builder();
    let site = MediaSite::start(&b.dir().join("site"));
    let d = b.start();
    d.wait_idle(T);
    assert!(download(&d, &site.url("clip.mp4")));
    let done = db_count(&d, "SELECT COUNT(*) FROM download_tasks WHERE state = 'done'");

    let dir = d.dir.path().join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: doradura\n    static_configs:\n      - targets: ['{}']\n",
            d.metrics_address()
        ),
    )
    .unwrap();
    let port = free_port();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is installed (.ci/run installs it)");
    let addr = format!("127.0.0.1:{port}");
    let value = wait_for(T, "Prometheus to report the download count", || {
        let (status, body) = http_get(&addr, "/api/v1/query?query=sum(doradura_download_success_total)", &[]).ok()?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse::<f64>().ok()
    });
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert_eq!(value, done as f64);
}

#[test]
fn health_is_503_while_every_worker_is_dead_and_200_once_they_are_back() {
    let d = builder()
        .env("WORKER_BACKOFF_INITIAL", "3s")
        .env("WORKER_BACKOFF_MAX", "3s")
        .start();
    let workers = d.wait_idle(T);
    let addr = d.metrics_address();
    let (status, body) = http_get(&addr, "/health", &[]).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["workers"]["up"], 2);
    assert_eq!(v["bot"]["state"], "disabled");
    for w in &workers {
        signal(w.pid.unwrap(), Signal::SIGKILL);
    }
    let down = wait_for(T, "/health to turn 503", || {
        let (status, body) = http_get(&addr, "/health", &[]).ok()?;
        (status == 503).then_some(body)
    });
    let v: serde_json::Value = serde_json::from_str(&down).unwrap();
    assert_eq!(v["failing"], serde_json::json!(["workers"]));
    assert_eq!(v["workers"]["up"], 0);
    wait_for(T, "/health to be 200 again", || {
        let (status, _) = http_get(&addr, "/health", &[]).ok()?;
        (status == 200).then_some(())
    });
}

#[test]
fn the_metrics_token_guards_metrics_and_the_index_links_both() {
    let d = builder().env("METRICS_AUTH_TOKEN", "s3cret").start();
    d.wait_idle(T);
    let addr = d.metrics_address();
    assert!(addr.starts_with("127.0.0.1:"), "loopback by default: {addr}");
    assert_eq!(http_get(&addr, "/metrics", &[]).unwrap().0, 401);
    assert_eq!(
        http_get(&addr, "/metrics", &[("Authorization", "Bearer wrong")])
            .unwrap()
            .0,
        401
    );
    let (status, body) = http_get(&addr, "/metrics", &[("Authorization", "Bearer s3cret")]).unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("doradura_workers{state=\"idle\"} 2"));
    let (status, page) = http_get(&addr, "/", &[]).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/metrics\"") && page.contains("href=\"/health\""));
}

#[test]
fn a_taken_metrics_port_stops_startup_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Daemon::builder()
        .env("METRICS_ENABLED", "true")
        .env("METRICS_PORT", port.to_string())
        .run_to_exit(&[], T);
    // 78 (EX_CONFIG): the unit's RestartPreventExitStatus=78 keeps it from restart-looping on a taken port.
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    // The address, the variables with their values, the cause, and what to do.
    for said in [
        format!("cannot bind the metrics server on 127.0.0.1:{port} (METRICS_BIND=127.0.0.1, METRICS_PORT={port})"),
        "Address already in use".to_string(),
        format!("Another program listens on port {port}: set METRICS_PORT to a free port"),
        "METRICS_ENABLED=false".to_string(),
        format!("ss -ltnp 'sport = :{port}'"),
    ] {
        assert!(err.contains(&said), "{said:?} not in:\n{err}");
    }

    // The same through the file the service reads: a port set in an --env-file is named as such.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doradura.env");
    std::fs::write(&file, format!("METRICS_ENABLED=true\nMETRICS_PORT={port}\n")).unwrap();
    let out = Daemon::builder()
        .env("METRICS_ENABLED", "true")
        .run_to_exit(&["--env-file", file.to_str().unwrap()], T);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("METRICS_PORT={port})")), "{err}");
    drop(taken);
}

#[test]
fn a_metrics_address_not_on_this_host_is_named_with_its_variable() {
    // 192.0.2.1 (TEST-NET-1) is no address of this host.
    let out = Daemon::builder()
        .env("METRICS_ENABLED", "true")
        .env("METRICS_BIND", "192.0.2.1")
        .env("METRICS_PORT", "0")
        .run_to_exit(&[], T);
    // Not 78: at boot the address may just not be up yet, and the unit's restarts bring the daemon up once it is.
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("192.0.2.1 is not an address of this host: set METRICS_BIND"),
        "{err}"
    );
}
