//! The admin commands against what the test itself did: known downloads (real yt-dlp, several formats, one
//! failure), a payment and an abandoned checkout, and commands from three users, through the real daemon and a
//! fake Bot API server. Every figure shown is compared with the test's own count, before and after a restart.

use std::time::Duration;

use doradura_testkit::media::{MediaSite, ytdlp};
use doradura_testkit::telegram::{Call, FakeTelegram, TgUser};
use doradura_testkit::{Daemon, DaemonBuilder, wait_for};
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(60);
const ADMIN: i64 = 900;

fn ann() -> TgUser {
    TgUser::new(42, "Ann")
}

fn bob() -> TgUser {
    TgUser::new(43, "Bob")
}

fn admin() -> TgUser {
    TgUser::new(ADMIN, "Root")
}

fn builder(tg: &FakeTelegram) -> DaemonBuilder {
    Daemon::builder()
        .env("TELOXIDE_TOKEN", "123456:TEST-TOKEN")
        .env("TELOXIDE_API_URL", tg.url())
        .env("ADMIN_IDS", ADMIN.to_string())
        .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
        .env("YTDLP_PATH", ytdlp())
        .env("FREE_COOLDOWN", "0s")
        .env("SHUTDOWN_GRACE_PERIOD", "500ms")
}

/// Waits until the bot polls more often than `polls_before`: it is (again) reading updates.
fn wait_polling(tg: &FakeTelegram, polls_before: usize) {
    wait_for(T, "the bot to poll", || {
        (tg.calls_of("getupdates").len() > polls_before).then_some(())
    });
}

fn text_of(c: &Call) -> String {
    c.str("text").unwrap_or_default()
}

fn db(d: &Daemon) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(d.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn count(d: &Daemon, sql: &str) -> i64 {
    db(d).query_row(sql, [], |r| r.get(0)).unwrap()
}

fn assert_lines(text: &str, lines: &[String]) {
    for line in lines {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}

/// What the test did, counted by the test.
#[derive(Default)]
struct Tally {
    /// Slash commands sent today, by anyone.
    commands: u32,
}

impl Tally {
    fn command(&mut self, tg: &FakeTelegram, user: &TgUser, text: &str) -> i64 {
        self.commands += 1;
        tg.send_text(user, text)
    }

    /// An admin command, and the first message it answers with (its text starting with `starts`).
    fn admin(&mut self, tg: &FakeTelegram, text: &str, starts: &str) -> Call {
        let sent = self.command(tg, &admin(), text);
        tg.wait_call(T, text, |c| {
            c.i64("chat_id") == Some(ADMIN)
                && text_of(c).starts_with(starts)
                && c.json("reply_parameters").is_some_and(|r| r["message_id"] == sent)
        })
    }

    /// A link, the keyboard, the chosen button.
    fn download(&mut self, tg: &FakeTelegram, user: &TgUser, url: &str, data: &str) {
        let sent = tg.send_text(user, url);
        let prompt = tg.wait_call(T, "the format keyboard", |c| {
            c.method == "sendmessage" && c.json("reply_parameters").is_some_and(|r| r["message_id"] == sent)
        });
        tg.press(user, prompt.message_id.unwrap(), data);
    }
}

/// A downloaded file as Telegram received it.
fn upload_len(tg: &FakeTelegram, method: &str, field: &str) -> u64 {
    let call = tg.wait_call(T, method, |c| c.method == method);
    call.upload(field).unwrap().bytes.len() as u64
}

/// Today's date (UTC), from SQLite rather than the daemon's own code.
fn today() -> String {
    rusqlite::Connection::open_in_memory()
        .unwrap()
        .query_row("SELECT date('now')", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn every_admin_figure_equals_what_the_test_did_and_survives_a_restart() {
    let tg = FakeTelegram::start();
    let b = builder(&tg);
    let site = MediaSite::start(&b.dir().join("site"));
    let mut d = b.start();
    d.wait_idle(T);
    wait_polling(&tg, 0);
    let mut did = Tally::default();

    // Downloads: three formats delivered, one link that fails. Their sizes as Telegram received them.
    did.command(&tg, &ann(), "/start");
    did.download(&tg, &ann(), &site.url("clip.mp4"), "dl:mp3:128k");
    let mut bytes = upload_len(&tg, "sendaudio", "audio");
    did.download(&tg, &bob(), &site.url("clip.mp4"), "dl:mp4:360p");
    bytes += upload_len(&tg, "sendvideo", "video");
    did.download(&tg, &ann(), &site.url("page.html"), "dl:srt");
    bytes += upload_len(&tg, "senddocument", "document");
    did.download(&tg, &bob(), &site.url("missing.mp4"), "dl:mp3:128k");
    tg.wait_call(T, "the failure", |c| {
        c.method == "editmessagetext"
            && c.i64("chat_id") == Some(43)
            && text_of(c).starts_with("😕 This video is unavailable")
    });

    // Bob buys Premium; Ann opens VIP's invoice and walks away.
    for (user, plan) in [(bob(), "premium"), (ann(), "vip")] {
        did.command(&tg, &user, "/plan");
        let menu = tg.wait_call(T, "the plans", |c| {
            c.i64("chat_id") == Some(user.id) && text_of(c).starts_with("Your plan:")
        });
        tg.press(&user, menu.message_id.unwrap(), &format!("buy:{plan}"));
        tg.wait_call(T, "the invoice", |c| {
            c.method == "sendinvoice" && c.i64("chat_id") == Some(user.id)
        });
    }
    let q = tg.pre_checkout(&bob(), "plan:premium:43", "XTR", 100);
    tg.wait_call(T, "the pre-checkout answer", |c| {
        c.str("pre_checkout_query_id").as_deref() == Some(q.as_str())
    });
    tg.successful_payment(&bob(), "plan:premium:43", 100, "charge-bob");
    tg.wait_call(T, "the thanks", |c| text_of(c).starts_with("🎉 Thank you!"));

    // The average the dashboard should show, from the task rows the test reads itself.
    let avg_s: f64 = db(&d)
        .query_row(
            "SELECT AVG(total_ms) / 1000.0 FROM download_tasks WHERE state = 'done'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let avg = format!("{avg_s:.1}");
    let dashboard = |did: &Tally| -> Vec<String> {
        vec![
            "Downloads: 4 (+4 vs previous 24h)".into(),
            "Success rate: 75.0%".into(),
            format!("Avg duration: {avg} s"),
            "Revenue: 100 ⭐ (+100 vs previous 24h)".into(),
            "Active subs: 1".into(),
            "New today: 1".into(),
            "Queue: 0".into(),
            "Error rate: 25.0%".into(),
            "DAU: 3".into(),
            format!("Commands: {}", did.commands),
            "Top format: MP3 (2)".into(),
        ]
    };

    let board = did.admin(&tg, "/analytics", "📊");
    assert_lines(&text_of(&board), &dashboard(&did));
    let buttons: Vec<String> = board.buttons().into_iter().map(|(_, data)| data).collect();
    assert_eq!(
        buttons,
        [
            "an:refresh",
            "an:m:performance",
            "an:m:business",
            "an:m:engagement",
            "an:m:system"
        ]
    );
    let chart = tg.wait_call(T, "the chart", |c| c.method == "sendphoto");
    assert!(chart.upload("photo").unwrap().bytes.starts_with(b"\x89PNG\r\n\x1a\n"));

    let perf = did.admin(&tg, "/metrics performance", "⚙️ Performance");
    let perf = text_of(&perf);
    assert_lines(
        &perf,
        &[
            " • MP3 128k: 1/2 (50%)".into(),
            " • MP4 360p: 1/1 (100%)".into(),
            " • SRT none: 1/1 (100%)".into(),
            " • unavailable: 1".into(),
        ],
    );
    for format in ["MP3", "MP4", "SRT"] {
        assert!(
            perf.lines()
                .any(|l| l.starts_with(&format!(" • {format}: avg ")) && l.ends_with("(1 files)")),
            "{perf}"
        );
    }
    let business = did.admin(&tg, "/metrics business", "💰 Revenue");
    assert_lines(
        &text_of(&business),
        &[
            "All time: 100 ⭐".into(),
            "Active subscriptions: Premium 1 · VIP 0".into(),
        ],
    );
    let engagement = did.admin(&tg, "/metrics engagement", "👥 Engagement");
    assert_lines(
        &text_of(&engagement),
        &[
            "DAU: 3 · WAU: 3 · MAU: 3".into(),
            format!("Commands today: {}", did.commands),
            "New users today: 3".into(),
            "Formats (24 h): MP3 2 · MP4 1 · SRT 1".into(),
        ],
    );
    let system = did.admin(&tg, "/metrics system", "🖥 System");
    assert_lines(
        &text_of(&system),
        &[
            "Workers: 2/2 up, 0 restarts".into(),
            "Queue: high 0 · medium 0 · low 0".into(),
        ],
    );
    let revenue_lines = [
        "All time: 100 ⭐".to_string(),
        "Last 30 days: 100 ⭐".into(),
        " • Premium: 100 ⭐ all time, 100 ⭐ in 30 days (1 payments)".into(),
        "Funnel (30 days): Plan views: 2 → Checkouts: 2 (100%) → Payments: 1 (50%)".into(),
        "Payments (30 days): 1 succeeded, 0 refused at checkout, 0 refunded".into(),
    ];
    let revenue = did.admin(&tg, "/revenue", "💰 Revenue");
    assert_lines(&text_of(&revenue), &revenue_lines);

    // /export: today's row holds the same counts; the two days before are empty.
    let export_row = |did: &Tally| {
        format!(
            "{},4,3,1,75.0,{avg},1,1,1,{bytes},100,1,0,2,3,3,{}",
            today(),
            did.commands
        )
    };
    did.command(&tg, &admin(), "/export 3");
    let doc = tg.wait_call(T, "the export", |c| {
        c.method == "senddocument" && c.i64("chat_id") == Some(ADMIN)
    });
    let csv = String::from_utf8(doc.upload("document").unwrap().bytes.clone()).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "a header and 3 days:\n{csv}");
    assert!(rows[0].starts_with("date,downloads,succeeded,failed,"));
    assert!(rows[1].ends_with(",0,0,0,,,0,0,0,0,0,0,0,0,0,0,0"), "{csv}");
    assert_eq!(rows[3], export_row(&did));

    // A restart changes none of it.
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(T).success());
    let polls = tg.calls_of("getupdates").len();
    d.restart();
    d.wait_idle(T);
    wait_polling(&tg, polls);
    let board = did.admin(&tg, "/analytics", "📊");
    assert_lines(&text_of(&board), &dashboard(&did));
    let revenue = did.admin(&tg, "/revenue", "💰 Revenue");
    assert_lines(&text_of(&revenue), &revenue_lines);
    let exports = tg.calls_of("senddocument").len();
    did.command(&tg, &admin(), "/export 3");
    let doc = wait_for(T, "the second export", || {
        tg.calls_of("senddocument").get(exports).cloned()
    });
    let csv = String::from_utf8(doc.upload("document").unwrap().bytes.clone()).unwrap();
    assert_eq!(csv.lines().nth(3), Some(export_row(&did).as_str()));
    assert_eq!(
        count(
            &d,
            "SELECT CAST(SUM(value) AS INTEGER) FROM metric_aggregates WHERE metric_name = 'downloads_done' AND period = 'hour'"
        ),
        3,
        "the hourly roll-up holds the three files too"
    );
}

#[test]
fn the_buttons_refresh_in_place_show_a_category_and_refuse_everyone_else() {
    let tg = FakeTelegram::start();
    let mut d = builder(&tg).start();
    d.wait_idle(T);
    wait_polling(&tg, 0);
    let mut did = Tally::default();

    // A non-admin gets one line for each admin command, and no figure.
    for command in ["/analytics", "/health", "/metrics business", "/revenue", "/export 7"] {
        let sent = did.command(&tg, &ann(), command);
        let answer = tg.wait_call(T, command, |c| {
            c.i64("chat_id") == Some(42) && c.json("reply_parameters").is_some_and(|r| r["message_id"] == sent)
        });
        assert_eq!(text_of(&answer), "⛔ This command is for the bot's administrators.");
    }
    assert!(tg.calls_of("sendphoto").is_empty() && tg.calls_of("senddocument").is_empty());

    let board = did.admin(&tg, "/analytics", "📊");
    let id = board.message_id.unwrap();
    assert_lines(&text_of(&board), &["Commands: 6".into()]);
    // Refresh: the same message, edited with figures read again (this command and the refresh included).
    did.command(&tg, &admin(), "/help");
    tg.wait_call(T, "help", |c| text_of(c).starts_with("Send me a link"));
    tg.press(&admin(), id, "an:refresh");
    let edit = tg.wait_call(T, "the refresh", |c| {
        c.method == "editmessagetext" && c.i64("message_id") == Some(id)
    });
    assert_lines(&text_of(&edit), &["Commands: 7".into()]);
    assert!(text_of(&edit).starts_with("📊"));
    tg.press(&admin(), id, "an:m:engagement");
    tg.wait_call(T, "the category", |c| {
        c.i64("chat_id") == Some(ADMIN) && text_of(c).starts_with("👥 Engagement")
    });

    // Ann presses the dashboard's buttons: a refusal as an alert, no edit, no figures.
    let edits = tg.calls_of("editmessagetext").len();
    for data in ["an:refresh", "an:m:business"] {
        let q = tg.press(&ann(), id, data);
        let answer = tg.wait_call(T, "the refusal", |c| {
            c.method == "answercallbackquery" && c.str("callback_query_id").as_deref() == Some(q.as_str())
        });
        assert_eq!(
            answer.str("text").as_deref(),
            Some("⛔ This command is for the bot's administrators.")
        );
        assert_eq!(answer.str("show_alert").as_deref(), Some("true"));
    }
    let q = tg.press(&admin(), id, "an:m:vanity");
    let answer = tg.wait_call(T, "the forged category", |c| {
        c.method == "answercallbackquery" && c.str("callback_query_id").as_deref() == Some(q.as_str())
    });
    assert_eq!(answer.str("text").as_deref(), Some("This button is not valid."));
    assert_eq!(tg.calls_of("editmessagetext").len(), edits);
    assert!(
        tg.calls()
            .iter()
            .filter(|c| c.i64("chat_id") == Some(42))
            .all(|c| !text_of(c).contains("Engagement") && !text_of(c).contains("Revenue")),
        "nothing reached Ann"
    );

    // /export with junk is explained; every attempt, buttons included, is in the audit table.
    did.command(&tg, &admin(), "/export forever");
    tg.wait_call(T, "the usage", |c| text_of(c).starts_with("Usage: /export [days]"));
    let audit: Vec<(i64, String, String, bool)> = db(&d)
        .prepare("SELECT user_id, command, args, allowed FROM admin_actions ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<(i64, &str, &str, bool)> = vec![
        (42, "analytics", "", false),
        (42, "health", "", false),
        (42, "metrics", "business", false),
        (42, "revenue", "", false),
        (42, "export", "7", false),
        (ADMIN, "analytics", "", true),
        (ADMIN, "analytics", "refresh", true),
        (ADMIN, "metrics", "engagement", true),
        (42, "analytics", "refresh", false),
        (42, "metrics", "business", false),
        (ADMIN, "export", "forever", true),
    ];
    assert_eq!(
        audit,
        expected
            .into_iter()
            .map(|(u, c, a, ok)| (u, c.to_string(), a.to_string(), ok))
            .collect::<Vec<_>>()
    );
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(T).success());
}
