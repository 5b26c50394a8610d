//! Alerting through the real daemon: each alert type fires from its real cause, reaches the admin chat in the
//! fake Bot API in the contract's shape, is throttled, resolves with a notice, and leaves its rows in
//! `alert_history`; silences, acknowledgements, test alerts and a restart keep their promises.

use std::path::Path;
use std::time::Duration;

use doradura_testkit::media::{MediaSite, hanging_ytdlp, ytdlp};
use doradura_testkit::telegram::{Call, Failure, FakeTelegram, TgUser};
use doradura_testkit::{Daemon, DaemonBuilder, http_get, wait_for};
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(60);
const ADMIN: i64 = 900;

fn builder(tg: &FakeTelegram) -> DaemonBuilder {
    Daemon::builder()
        .metrics_on()
        .env("TELOXIDE_TOKEN", "123456:TEST-TOKEN")
        .env("TELOXIDE_API_URL", tg.url())
        .env("ADMIN_IDS", ADMIN.to_string())
        .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
        .env("FREE_COOLDOWN", "0s")
        .env("ALERT_CHECK_INTERVAL", "1")
        .env("SHUTDOWN_GRACE_PERIOD", "300ms")
}

fn start(tg: &FakeTelegram, b: DaemonBuilder) -> Daemon {
    let d = b.start();
    wait_for(T, "the bot to poll", || {
        (!tg.calls_of("getupdates").is_empty()).then_some(())
    });
    d
}

fn text_of(c: &Call) -> String {
    c.str("text").unwrap_or_default()
}

/// Messages to the admin whose text starts with `start`.
fn admin_messages(tg: &FakeTelegram, start: &str) -> Vec<Call> {
    tg.calls_of("sendmessage")
        .into_iter()
        .filter(|c| c.i64("chat_id") == Some(ADMIN) && text_of(c).starts_with(start))
        .collect()
}

fn wait_message(tg: &FakeTelegram, start: &str) -> Call {
    tg.wait_call(T, start, |c| {
        c.method == "sendmessage" && c.i64("chat_id") == Some(ADMIN) && text_of(c).starts_with(start)
    })
}

fn scrape(d: &Daemon) -> String {
    http_get(&d.metrics_address(), "/metrics", &[]).unwrap().1
}

fn has_line(d: &Daemon, line: &str) -> bool {
    scrape(d).lines().any(|l| l == line)
}

fn db(d: &Daemon) -> rusqlite::Connection {
    rusqlite::Connection::open(d.db_path()).unwrap()
}

/// `(id, alert_type, severity, resolved, last_sent_at set, acknowledged, is_test)` of every history row.
type HistoryRow = (i64, String, String, bool, bool, bool, bool);

fn history(d: &Daemon) -> Vec<HistoryRow> {
    db(d)
        .prepare(
            "SELECT id, alert_type, severity, resolved_at IS NOT NULL, last_sent_at IS NOT NULL, acknowledged, is_test
               FROM alert_history ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn ctl_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.ctl(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Sends test QueueBackup alerts until one carries `figures` from the latest evaluation.
fn wait_queue_backup_figures(d: &Daemon, tg: &FakeTelegram, figures: &str) {
    wait_for(T, figures, || {
        ctl_ok(d, &["alerts", "test", "QueueBackup"]);
        admin_messages(tg, "🧪 TEST")
            .iter()
            .any(|c| text_of(c).contains(figures))
            .then_some(())
    });
}

fn download_fails(d: &Daemon, url: &str, out: &Path) {
    let o = d.ctl(["download", url, "--out", out.to_str().unwrap()]);
    assert!(!o.status.success(), "{url} should fail");
}

/// `n` downloads that a hanging yt-dlp never finishes: with one worker, `n - 1` of them wait in the queue.
fn flood(d: &Daemon, n: usize) -> Vec<std::process::Child> {
    let out = d.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    (0..n)
        .map(|i| {
            d.ctl_spawn([
                "download",
                &format!("http://127.0.0.1:9/{i}.mp4"),
                "--out",
                out.to_str().unwrap(),
            ])
        })
        .collect()
}

#[test]
fn high_error_rate_fires_once_survives_a_restart_and_resolves_with_a_notice() {
    let tg = FakeTelegram::start();
    let b = builder(&tg)
        .env("YTDLP_PATH", ytdlp())
        .env("ALERT_MIN_SAMPLES", "2")
        .env("ALERT_WINDOW", "8");
    let site = MediaSite::start(&b.dir().join("site"));
    let mut d = start(&tg, b);
    d.wait_idle(T);
    let out = d.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    download_fails(&d, &site.url("missing-1.mp4"), &out);
    download_fails(&d, &site.url("missing-2.mp4"), &out);

    let alert = wait_message(&tg, "CRITICAL ALERT\n\nHigh Error Rate Detected");
    let text = text_of(&alert);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[4], "Current: 100.0% (threshold: 5.0%)", "{text}");
    assert_eq!(lines[5], "Affected: 2/2 downloads", "{text}");
    assert!(
        lines.last().unwrap().starts_with("Triggered: 20") && text.ends_with(" UTC"),
        "{text}"
    );
    let rows = history(&d);
    assert_eq!(rows.len(), 1);
    let id = rows[0].0;
    let buttons: Vec<String> = alert.buttons().into_iter().map(|(_, data)| data).collect();
    assert_eq!(buttons, ["al:s:0:1", "al:s:0:4", "al:s:0:24", &format!("al:ack:{id}")]);
    wait_for(T, "the firing gauge", || {
        has_line(
            &d,
            r#"doradura_alerts_firing{alert_type="HighErrorRate",severity="critical"} 1"#,
        )
        .then_some(())
    });
    wait_for(T, "the sent counter", || {
        has_line(
            &d,
            r#"doradura_alerts_sent_total{alert_type="HighErrorRate",severity="critical"} 1"#,
        )
        .then_some(())
    });
    let listed = ctl_ok(&d, &["--json", "alerts"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["firing"][0]["alert_type"], "HighErrorRate");
    assert_eq!(listed["firing"][0]["current"], "100.0%");

    // A restart while it fires: restored as firing, not sent again, and resolved once the window slides past.
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(T).success());
    d.restart();
    wait_for(T, "the restored firing gauge", || {
        has_line(
            &d,
            r#"doradura_alerts_firing{alert_type="HighErrorRate",severity="critical"} 1"#,
        )
        .then_some(())
    });
    let resolved = wait_message(&tg, "RESOLVED\n\nHigh Error Rate Detected");
    assert!(text_of(&resolved).contains("Fired for "), "{}", text_of(&resolved));
    assert_eq!(
        admin_messages(&tg, "CRITICAL ALERT").len(),
        1,
        "every evaluation while it fired, before and after the restart, stayed inside the throttle window"
    );
    let rows = history(&d);
    assert_eq!(rows.len(), 1, "one row per firing: {rows:?}");
    assert_eq!(
        rows[0],
        (id, "HighErrorRate".into(), "critical".into(), true, true, false, false)
    );
    wait_for(T, "the gauge back at 0", || {
        has_line(
            &d,
            r#"doradura_alerts_firing{alert_type="HighErrorRate",severity="critical"} 0"#,
        )
        .then_some(())
    });
}

#[test]
fn a_backed_up_queue_waits_out_a_silence_then_a_silence_button_keeps_its_end_quiet() {
    let tg = FakeTelegram::start();
    let b = builder(&tg).env("WORKERS", "1").env("ALERT_QUEUE_DEPTH_THRESHOLD", "2");
    let fake = hanging_ytdlp(b.dir());
    let mut d = start(&tg, b.env("YTDLP_PATH", &fake));
    d.wait_idle(T);
    // Silenced before anything happens: the firing is recorded, not sent.
    let out = ctl_ok(&d, &["alerts", "silence", "QueueBackup", "4s"]);
    assert!(out.starts_with("QueueBackup silenced until 20"), "{out}");
    let mut clients = flood(&d, 4);
    wait_for(T, "the firing, recorded while silenced", || {
        history(&d)
            .iter()
            .any(|r| r.1 == "QueueBackup" && !r.3 && !r.4)
            .then_some(())
    });
    assert!(
        admin_messages(&tg, "WARNING ALERT").is_empty(),
        "nothing sent while silenced"
    );
    // The silence ends: the firing is announced at once.
    let alert = wait_message(&tg, "WARNING ALERT\n\nDownload Queue Backing Up");
    assert!(
        text_of(&alert).contains("Current: 3 queued (threshold: 2 queued)"),
        "{}",
        text_of(&alert)
    );

    // The admin silences it from the message for an hour; then the queue drains: resolved without a notice.
    let q = tg.press(&TgUser::new(ADMIN, "Root"), alert.message_id.unwrap(), "al:s:1:1");
    let answer = tg.wait_call(T, "the silence answer", |c| {
        c.method == "answercallbackquery" && c.str("callback_query_id").as_deref() == Some(q.as_str())
    });
    assert_eq!(answer.str("text").as_deref(), Some("🔕 QueueBackup silenced for 1h"));
    let (by, until): (String, i64) = db(&d)
        .query_row(
            "SELECT set_by, until_at - set_at FROM alert_silences WHERE alert_type = 'QueueBackup'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((by.as_str(), until), ("telegram:900", 3600));
    // Someone else pressing it changes nothing.
    let q = tg.press(&TgUser::new(42, "Ann"), alert.message_id.unwrap(), "al:s:1:24");
    let refused = tg.wait_call(T, "the refusal", |c| {
        c.str("callback_query_id").as_deref() == Some(q.as_str())
    });
    assert_eq!(
        refused.str("text").as_deref(),
        Some("⛔ This command is for the bot's administrators.")
    );
    let queue = ctl_ok(&d, &["--json", "queue"]);
    let queue: serde_json::Value = serde_json::from_str(&queue).unwrap();
    for task in queue.as_array().unwrap() {
        ctl_ok(&d, &["cancel", &task["id"].to_string()]);
    }
    wait_for(T, "the resolution", || {
        history(&d).iter().any(|r| r.1 == "QueueBackup" && r.3).then_some(())
    });
    assert!(
        admin_messages(&tg, "RESOLVED").is_empty(),
        "a silenced type resolves quietly"
    );
    assert_eq!(admin_messages(&tg, "WARNING ALERT").len(), 1);
    assert!(has_line(
        &d,
        r#"doradura_alerts_sent_total{alert_type="QueueBackup",severity="warning"} 1"#
    ));
    for c in &mut clients {
        let _ = c.wait();
    }
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(T).success());
}

#[test]
fn a_missing_ytdlp_fires_a_test_alert_is_marked_and_an_acknowledgement_is_stored() {
    let tg = FakeTelegram::start();
    let b = builder(&tg).env("YTDLP_PATH", "/nonexistent/yt-dlp");
    let d = start(&tg, b);
    let alert = wait_message(&tg, "CRITICAL ALERT\n\nyt-dlp Is Not Working");
    assert!(
        text_of(&alert).contains("Current: 2/2 workers without yt-dlp (threshold: 0 workers)"),
        "{}",
        text_of(&alert)
    );
    let id = history(&d)[0].0;

    // A test alert of another type goes the real way, marked, and is not counted as an alert sent.
    let out = ctl_ok(&d, &["alerts", "test", "queue_backup"]);
    assert!(out.starts_with("test QueueBackup alert #"), "{out}");
    let test = wait_message(&tg, "🧪 TEST");
    assert!(text_of(&test).contains("WARNING ALERT\n\nDownload Queue Backing Up"));
    let rows = history(&d);
    assert!(rows.iter().any(|r| r.1 == "QueueBackup" && r.6 && r.3), "{rows:?}");
    assert!(has_line(
        &d,
        r#"doradura_alerts_sent_total{alert_type="QueueBackup",severity="warning"} 0"#
    ));
    let err = d.ctl(["alerts", "test", "Everything"]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("unknown alert type \"Everything\""));

    // The admin acknowledges the real one: stored with who and when.
    let q = tg.press(
        &TgUser::new(ADMIN, "Root"),
        alert.message_id.unwrap(),
        &format!("al:ack:{id}"),
    );
    let answer = tg.wait_call(T, "the ack", |c| {
        c.str("callback_query_id").as_deref() == Some(q.as_str())
    });
    assert_eq!(answer.str("text"), Some(format!("✅ YtdlpDown #{id} acknowledged")));
    let (acked, by): (bool, i64) = db(&d)
        .query_row(
            "SELECT acknowledged, acknowledged_by FROM alert_history WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((acked, by), (true, ADMIN));
    // /alerts shows it firing, acknowledged, and the history.
    tg.send_text(&TgUser::new(ADMIN, "Root"), "/alerts");
    let overview = wait_message(&tg, "🚨 Alerts");
    let text = text_of(&overview);
    assert!(
        text.contains(" • YtdlpDown [critical]: 2/2 workers without yt-dlp"),
        "{text}"
    );
    assert!(text.contains(", acknowledged"), "{text}");
    assert!(text.contains(&format!(" • #{id} YtdlpDown [critical]")), "{text}");
}

#[test]
fn a_locked_database_fires_database_issues_and_the_end_of_the_lock_resolves_it() {
    let tg = FakeTelegram::start();
    let b = builder(&tg).env("YTDLP_PATH", ytdlp()).env("ALERT_WINDOW", "2");
    let d = start(&tg, b);
    d.wait_idle(T);
    let lock = db(&d);
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let alert = wait_message(&tg, "CRITICAL ALERT\n\nDatabase Problems");
    assert!(
        text_of(&alert).contains("write check failed: database is locked"),
        "{}",
        text_of(&alert)
    );
    lock.execute_batch("COMMIT").unwrap();
    wait_message(&tg, "RESOLVED\n\nDatabase Problems");
    // The row could not be written while the database was locked; it was written after.
    let rows = history(&d);
    assert!(
        rows.iter()
            .any(|r| r.1 == "DatabaseIssues" && r.2 == "critical" && r.3 && r.4),
        "{rows:?}"
    );
}

#[test]
fn checkouts_without_payments_and_a_wrong_payment_raise_their_alerts() {
    let tg = FakeTelegram::start();
    let b = builder(&tg)
        .env("YTDLP_PATH", ytdlp())
        .env("ALERT_CONVERSION_MIN_CHECKOUTS", "2");
    let d = start(&tg, b);
    let ann = TgUser::new(42, "Ann");
    tg.send_text(&ann, "/plan");
    let menu = tg.wait_call(T, "the plans", |c| text_of(c).starts_with("Your plan:"));
    for _ in 0..2 {
        let before = tg.calls_of("sendinvoice").len();
        tg.press(&ann, menu.message_id.unwrap(), "buy:premium");
        wait_for(T, "the invoice", || {
            (tg.calls_of("sendinvoice").len() > before).then_some(())
        });
    }
    let alert = wait_message(&tg, "WARNING ALERT\n\nLow Payment Conversion");
    assert!(text_of(&alert).contains("Current: 0.0% (threshold: 5.0%)\nAffected: 0/2 checkouts paid"));

    // Paid, but 1 Star instead of 100: the plan is granted and a person is told at once.
    tg.successful_payment(&ann, "plan:premium:42", 1, "charge-odd");
    let payment = wait_message(&tg, "CRITICAL ALERT\n\nPayment Needs Attention");
    let text = text_of(&payment);
    assert!(text.contains("Current: amount_mismatch"), "{text}");
    assert!(text.contains("user 42, plan premium, charge charge-odd"), "{text}");
    assert!(text.contains("paid 1 XTR, price 100 XTR"), "{text}");
    // The payment lifts conversion to 50%: LowConversion resolves with a notice.
    wait_message(&tg, "RESOLVED\n\nLow Payment Conversion");
    let rows = history(&d);
    let kinds: Vec<(&str, bool)> = rows.iter().map(|r| (r.1.as_str(), r.3)).collect();
    assert!(kinds.contains(&("LowConversion", true)), "{rows:?}");
    assert!(
        kinds.contains(&("PaymentFailure", false)),
        "open until acknowledged: {rows:?}"
    );
    wait_for(T, "the payment gauge", || {
        has_line(
            &d,
            r#"doradura_alerts_firing{alert_type="PaymentFailure",severity="critical"} 1"#,
        )
        .then_some(())
    });
}

#[test]
fn retries_from_a_flaky_media_url_raise_high_retry_rate() {
    let tg = FakeTelegram::start();
    let b = builder(&tg)
        .env("YTDLP_PATH", ytdlp())
        .env("ALERT_MIN_SAMPLES", "4")
        .env("TASK_RETRY_BACKOFF", "100ms")
        .env("ALERT_WINDOW", "600");
    let site = MediaSite::start(&b.dir().join("site"));
    let d = start(&tg, b);
    d.wait_idle(T);
    // Telegram refuses the first alert message once: it is retried and arrives.
    tg.fail("sendmessage", 1, Failure::RetryAfter(1));
    let out = d.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    for name in ["a.mp4", "b.mp4"] {
        let o = d.ctl([
            "download",
            &site.url(&format!("flaky/{name}")),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let alert = wait_message(&tg, "WARNING ALERT\n\nHigh Retry Rate");
    assert!(
        text_of(&alert).contains("Current: 50.0% (threshold: 30.0%)\nAffected: 2/4 attempts were retries"),
        "{}",
        text_of(&alert)
    );
    assert!(
        admin_messages(&tg, "CRITICAL ALERT\n\nHigh Error Rate").is_empty(),
        "both downloads succeeded"
    );
}

#[test]
fn sighup_applies_new_thresholds_without_a_restart() {
    let tg = FakeTelegram::start();
    let b = builder(&tg).env("WORKERS", "1");
    let fake = hanging_ytdlp(b.dir());
    // The daemon runs in its dir and reads `.env` there; the process environment does not set this one.
    std::fs::write(b.dir().join(".env"), "ALERT_QUEUE_DEPTH_THRESHOLD=100\n").unwrap();
    let mut d = start(&tg, b.env("YTDLP_PATH", &fake));
    d.wait_idle(T);
    let mut clients = flood(&d, 4);
    // A test alert carries the latest evaluation's figures: 3 queued, under the threshold of 100, not firing.
    wait_queue_backup_figures(&d, &tg, "Current: 3 queued (threshold: 100 queued)");
    assert!(admin_messages(&tg, "WARNING ALERT").is_empty());
    std::fs::write(d.dir.path().join(".env"), "ALERT_QUEUE_DEPTH_THRESHOLD=2\n").unwrap();
    d.signal(Signal::SIGHUP);
    let alert = wait_message(&tg, "WARNING ALERT\n\nDownload Queue Backing Up");
    assert!(text_of(&alert).contains("Current: 3 queued (threshold: 2 queued)"));
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(T).success());
    for c in &mut clients {
        let _ = c.wait();
    }
}

/// `systemctl reload` on a packaged install: the unit's `EnvironmentFile=` gave the process the file's values at
/// start, and `--env-file` names the same file. SIGHUP re-reads the file, whose edits win over the stale
/// environment; a line deleted from it falls back to the default, as at a restart.
#[test]
fn sighup_applies_edits_to_the_env_file_over_the_environment_the_daemon_started_with() {
    let tg = FakeTelegram::start();
    let b = builder(&tg).env("WORKERS", "1");
    let fake = hanging_ytdlp(b.dir());
    let file = b.dir().join("doradura.env");
    let packaged = "# as /etc/doradura/doradura.env\nALERT_QUEUE_DEPTH_THRESHOLD=100\n";
    std::fs::write(&file, packaged).unwrap();
    // What systemd's EnvironmentFile= puts in the process environment from that file.
    let b = b
        .env("ALERT_QUEUE_DEPTH_THRESHOLD", "100")
        .env("YTDLP_PATH", &fake)
        .args(["--env-file".as_ref(), file.as_os_str()]);
    let mut d = start(&tg, b);
    d.wait_idle(T);
    let mut clients = flood(&d, 4);
    wait_queue_backup_figures(&d, &tg, "Current: 3 queued (threshold: 100 queued)");
    assert!(admin_messages(&tg, "WARNING ALERT").is_empty());

    // The operator edits the file and reloads; the environment still says 100.
    std::fs::write(&file, packaged.replace("=100", "=2")).unwrap();
    d.signal(Signal::SIGHUP);
    let alert = wait_message(&tg, "WARNING ALERT\n\nDownload Queue Backing Up");
    assert!(
        text_of(&alert).contains("Current: 3 queued (threshold: 2 queued)"),
        "{}",
        text_of(&alert)
    );

    // Then deletes the line and reloads: the default of 50, not the environment's 100 from the start.
    std::fs::write(&file, "# as /etc/doradura/doradura.env\n").unwrap();
    d.signal(Signal::SIGHUP);
    wait_message(&tg, "RESOLVED\n\nDownload Queue Backing Up");
    wait_queue_backup_figures(&d, &tg, "Current: 3 queued (threshold: 50 queued)");
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(T).success());
    for c in &mut clients {
        let _ = c.wait();
    }
}
