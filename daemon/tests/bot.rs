//! The user's whole journey through the real doradurad, its workers and real yt-dlp, with teloxide talking to a
//! fake Bot API server over Telegram's HTTP wire protocol.

use std::path::Path;
use std::time::Duration;

use doradura_testkit::media::{MediaSite, hanging_ytdlp, ytdlp};
use doradura_testkit::telegram::{Call, Failure, FakeTelegram, TgUser};
use doradura_testkit::{Daemon, DaemonBuilder, http_get, wait_for};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);
const TOKEN: &str = "123456:TEST-SECRET-TOKEN-VALUE";
const ADMIN: i64 = 900;

fn ann() -> TgUser {
    TgUser::new(42, "Ann")
}

fn builder(tg: &FakeTelegram) -> DaemonBuilder {
    Daemon::builder()
        .env("TELOXIDE_TOKEN", TOKEN)
        .env("TELOXIDE_API_URL", tg.url())
        .env("ADMIN_IDS", ADMIN.to_string())
        .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
        .env("YTDLP_PATH", ytdlp())
        .env("FREE_COOLDOWN", "0s")
        .env("WORKER_HEARTBEAT_INTERVAL", "200ms")
}

/// A daemon whose bot is polling the fake.
fn start(tg: &FakeTelegram, b: DaemonBuilder) -> Daemon {
    let d = b.start();
    d.wait_idle(T);
    let deadline = std::time::Instant::now() + T;
    while !tg.calls().iter().any(|c| c.method == "getupdates") {
        assert!(
            std::time::Instant::now() < deadline,
            "the bot never polled; calls: {:?}\n{}",
            tg.calls().iter().map(|c| c.method.clone()).collect::<Vec<_>>(),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    d
}

fn with_site(tg: &FakeTelegram, b: DaemonBuilder) -> (MediaSite, Daemon) {
    let site = MediaSite::start(&b.dir().join("site"));
    (site, start(tg, b))
}

fn text_of(c: &Call) -> String {
    c.str("text").unwrap_or_default()
}

/// The bot's keyboard message answering a link sent by `user`.
fn send_link(tg: &FakeTelegram, user: &TgUser, url: &str) -> Call {
    let sent = tg.send_text(user, url);
    tg.wait_call(T, "the format keyboard", |c| {
        c.method == "sendmessage"
            && text_of(c) == "What should I make of this link?"
            && c.json("reply_parameters").is_some_and(|r| r["message_id"] == sent)
    })
}

fn db(d: &Daemon) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(d.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn count(d: &Daemon, sql: &str) -> u32 {
    db(d).query_row(sql, [], |r| r.get(0)).unwrap()
}

fn probe(bytes: &[u8], dir: &Path) -> Value {
    let path = dir.join("upload.bin");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=format_name:stream=codec_name",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_whole_journey_ends_with_the_audio_file_intact() {
    let tg = FakeTelegram::start();
    let (site, d) = with_site(&tg, builder(&tg));

    tg.send_text(&ann(), "/start");
    let hi = tg.wait_call(T, "the greeting", |c| {
        c.method == "sendmessage" && text_of(c).starts_with("👋 Hi, Ann!")
    });
    assert_eq!(hi.i64("chat_id"), Some(42));
    assert_eq!(hi.token, TOKEN);

    let prompt = send_link(&tg, &ann(), &site.url("clip.mp4"));
    let data: Vec<String> = prompt.buttons().into_iter().map(|(_, d)| d).collect();
    assert_eq!(
        data,
        [
            "dl:mp3:320k",
            "dl:mp3:320k",
            "dl:mp3:192k",
            "dl:mp3:128k",
            "dl:mp4:360p",
            "dl:mp4:720p",
            "dl:mp4:1080p",
            "dl:srt"
        ]
    );
    let prompt_id = prompt.message_id.unwrap();
    tg.press(&ann(), prompt_id, "dl:mp3:192k");

    let queued = tg.wait_call(T, "the queued status", |c| {
        c.method == "editmessagetext" && c.i64("message_id") == Some(prompt_id) && text_of(c).starts_with("⏳ Queued")
    });
    let cancel = queued.buttons();
    assert_eq!(cancel.len(), 1);
    assert!(cancel[0].1.starts_with("cancel:"), "{cancel:?}");
    let audio = tg.wait_call(T, "the audio", |c| c.method == "sendaudio");
    let upload = audio.upload("audio").expect("the audio's bytes");
    let p = probe(&upload.bytes, d.dir.path());
    assert_eq!(p["format"]["format_name"], "mp3");
    let stored: i64 = db(&d)
        .query_row("SELECT bytes FROM download_tasks WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        upload.bytes.len() as i64,
        stored,
        "the bytes sent are the bytes downloaded"
    );
    let caption = audio.str("caption").unwrap();
    assert!(caption.starts_with("clip\n⏱ 0:03 · 💾 "), "{caption}");
    assert_eq!(audio.i64("duration"), Some(3));
    assert_eq!(audio.i64("chat_id"), Some(42));
    // The status message goes away once the file is there.
    tg.wait_call(T, "the status removal", |c| {
        c.method == "deletemessage" && c.i64("message_id") == Some(prompt_id)
    });

    wait_for(T, "the request to be delivered", || {
        (count(&d, "SELECT COUNT(*) FROM task_requests WHERE state = 'delivered'") == 1).then_some(())
    });
    let activity: (u32, u32) = wait_for(T, "the activity", || {
        db(&d)
            .query_row(
                "SELECT command_count, download_count FROM user_activity WHERE user_id = 42",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok()
            .filter(|a: &(u32, u32)| a.1 == 1)
    });
    assert_eq!(activity, (1, 1));
    assert_eq!(count(&d, "SELECT COUNT(*) FROM users WHERE user_id = 42"), 1);
    assert!(d.spool_entries().is_empty());

    // Commands were registered for everyone and, with the admin commands, for the admin.
    let registered = tg.calls_of("setmycommands");
    let everyone = registered
        .iter()
        .find(|c| c.json("scope").is_none())
        .expect("default scope");
    let names: Vec<String> = everyone
        .json("commands")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["start", "help", "settings", "cancel", "plan"],
        "names without the slash, as Telegram requires"
    );
    let admin = registered
        .iter()
        .find(|c| c.json("scope").is_some())
        .expect("admin scope");
    assert_eq!(admin.json("scope").unwrap()["chat_id"], ADMIN);
    assert!(admin.json("commands").unwrap().to_string().contains("\"health\""));
}

#[test]
fn video_and_subtitles_arrive_as_video_and_document() {
    let tg = FakeTelegram::start();
    let (site, d) = with_site(&tg, builder(&tg));
    let prompt = send_link(&tg, &ann(), &site.url("clip.mp4"));
    tg.press(&ann(), prompt.message_id.unwrap(), "dl:mp4:360p");
    let video = tg.wait_call(T, "the video", |c| c.method == "sendvideo");
    let p = probe(&video.upload("video").unwrap().bytes, d.dir.path());
    assert!(p["format"]["format_name"].as_str().unwrap().contains("mp4"));
    assert_eq!(video.str("supports_streaming").as_deref(), Some("true"));

    let prompt = send_link(&tg, &ann(), &site.url("page.html"));
    tg.press(&ann(), prompt.message_id.unwrap(), "dl:srt");
    let doc = tg.wait_call(T, "the subtitles", |c| c.method == "senddocument");
    let upload = doc.upload("document").unwrap();
    assert!(upload.file_name.as_deref().unwrap().ends_with(".srt"));
    assert!(String::from_utf8_lossy(&upload.bytes).contains("00:00:00,000 --> 00:00:01,500\nHello from doradura"));
}

#[test]
fn a_failing_link_is_explained_in_plain_words() {
    let tg = FakeTelegram::start();
    let (site, d) = with_site(&tg, builder(&tg));
    let prompt = send_link(&tg, &ann(), &site.url("missing.mp4"));
    let id = prompt.message_id.unwrap();
    tg.press(&ann(), id, "dl:mp3:320k");
    let failed = tg.wait_call(T, "the failure", |c| {
        c.method == "editmessagetext" && c.i64("message_id") == Some(id) && text_of(c).starts_with("😕")
    });
    assert_eq!(
        text_of(&failed),
        "😕 This video is unavailable: it may have been removed or made private, or the link is wrong."
    );
    assert!(
        !text_of(&failed).contains("ERROR"),
        "no raw yt-dlp output reaches the user"
    );
    assert!(tg.calls_of("sendaudio").is_empty());
    assert_eq!(
        count(
            &d,
            "SELECT COUNT(*) FROM task_requests WHERE state = 'failed' AND error_type = 'unavailable'"
        ),
        1
    );

    // Links that are refused before anything is queued.
    tg.send_text(&ann(), "hello there");
    tg.wait_call(T, "the hint", |c| {
        text_of(c).starts_with("Send me a link (http:// or https://)")
    });
    tg.send_text(&ann(), "file:///etc/passwd and https://user:pw@example.com/x");
    tg.wait_call(T, "the refusal", |c| {
        text_of(c) == "🚫 links with a user name or password are not accepted"
    });
    assert_eq!(count(&d, "SELECT COUNT(*) FROM download_tasks"), 1);
}

#[test]
fn the_free_plan_cooldown_refuses_and_says_when() {
    let tg = FakeTelegram::start();
    let (site, d) = with_site(&tg, builder(&tg).env("FREE_COOLDOWN", "1h"));
    let prompt = send_link(&tg, &ann(), &site.url("clip.mp4"));
    tg.press(&ann(), prompt.message_id.unwrap(), "dl:mp3:128k");
    tg.wait_call(T, "the audio", |c| c.method == "sendaudio");
    tg.send_text(&ann(), &site.url("clip.mp4"));
    let refusal = tg.wait_call(T, "the cooldown refusal", |c| text_of(c).starts_with("⏳ Please wait"));
    let text = text_of(&refusal);
    assert!(text.contains("(Free plan: one every 1 h 0 min)"), "{text}");
    assert!(text.contains("Premium and VIP plans have shorter waits"), "{text}");
    assert_eq!(count(&d, "SELECT COUNT(*) FROM task_requests"), 1);
}

#[test]
fn the_free_plan_quota_refuses_until_midnight() {
    let tg = FakeTelegram::start();
    let (site, d) = with_site(&tg, builder(&tg).env("FREE_DAILY_QUOTA", "1"));
    let first = send_link(&tg, &ann(), &site.url("clip.mp4"));
    // A second prompt, made before the quota is used, is refused when pressed afterwards.
    let second = send_link(&tg, &ann(), &site.url("page.html"));
    tg.press(&ann(), first.message_id.unwrap(), "dl:mp3:128k");
    tg.wait_call(T, "the audio", |c| c.method == "sendaudio");
    tg.press(&ann(), second.message_id.unwrap(), "dl:srt");
    let refusal = tg.wait_call(T, "the quota refusal", |c| {
        c.method == "answercallbackquery" && c.str("text").is_some_and(|t| t.starts_with("📅"))
    });
    let text = refusal.str("text").unwrap();
    assert!(
        text.contains("your 1 downloads for today (Free plan)") && text.contains("resets at 00:00 UTC"),
        "{text}"
    );
    assert_eq!(refusal.str("show_alert").as_deref(), Some("true"));
    tg.send_text(&ann(), &site.url("clip.mp4"));
    tg.wait_call(T, "the refusal of a new link", |c| {
        c.method == "sendmessage" && text_of(c).starts_with("📅")
    });
    assert_eq!(count(&d, "SELECT COUNT(*) FROM task_requests"), 1);
}

#[test]
fn forged_stale_and_foreign_callbacks_change_nothing() {
    let tg = FakeTelegram::start();
    let (site, d) = with_site(&tg, builder(&tg));
    let prompt = send_link(&tg, &ann(), &site.url("clip.mp4"));
    let id = prompt.message_id.unwrap();
    let bob = TgUser::new(43, "Bob");
    let answers = [
        (
            tg.press(&bob, id, "dl:mp3:320k"),
            "This button belongs to someone else's message.",
        ),
        (tg.press(&ann(), id, "dl:flac:9000k"), "This button is not valid."),
        (tg.press(&ann(), id, "rm -rf /"), "This button is not valid."),
        (
            tg.press(&ann(), 99_999, "dl:mp3:320k"),
            "This link has expired. Send it again.",
        ),
        (tg.press(&ann(), id, "cancel:12345"), "This download no longer exists."),
    ];
    for (query, want) in answers {
        let a = tg.wait_call(T, "the answer", |c| {
            c.method == "answercallbackquery" && c.str("callback_query_id").as_deref() == Some(query.as_str())
        });
        assert_eq!(a.str("text").as_deref(), Some(want));
    }
    assert_eq!(count(&d, "SELECT COUNT(*) FROM download_tasks"), 0);
    assert_eq!(count(&d, "SELECT COUNT(*) FROM task_requests"), 0);
    assert!(tg.calls_of("editmessagetext").is_empty());
    // Bob cannot cancel Ann's download either.
    tg.press(&ann(), id, "dl:mp3:320k");
    let status = tg.wait_call(T, "the status", |c| {
        c.method == "editmessagetext" && c.i64("message_id") == Some(id)
    });
    let cancel = status.buttons()[0].1.clone();
    let q = tg.press(&bob, id, &cancel);
    let a = tg.wait_call(T, "the refusal", |c| {
        c.method == "answercallbackquery" && c.str("callback_query_id").as_deref() == Some(q.as_str())
    });
    assert_eq!(
        a.str("text").as_deref(),
        Some("This button belongs to someone else's message.")
    );
    tg.wait_call(T, "Ann's audio", |c| c.method == "sendaudio");
    // A second press on a used prompt does not request it twice.
    let q = tg.press(&ann(), id, "dl:mp3:128k");
    let a = tg.wait_call(T, "the answer", |c| {
        c.method == "answercallbackquery" && c.str("callback_query_id").as_deref() == Some(q.as_str())
    });
    assert_eq!(a.str("text").as_deref(), Some("Already on its way."));
    assert_eq!(count(&d, "SELECT COUNT(*) FROM task_requests"), 1);
}

#[test]
fn a_429_storm_delays_the_file_but_does_not_lose_it() {
    let tg = FakeTelegram::start();
    let (site, _d) = with_site(&tg, builder(&tg));
    tg.fail("sendaudio", 3, Failure::RetryAfter(1));
    let prompt = send_link(&tg, &ann(), &site.url("clip.mp4"));
    tg.press(&ann(), prompt.message_id.unwrap(), "dl:mp3:128k");
    tg.wait_call(T, "the delivered audio", |c| {
        c.method == "sendaudio" && c.message_id.is_some()
    });
    let tries = tg.calls_of("sendaudio");
    assert_eq!(tries.len(), 4, "three refused, one accepted");
    let waited = tries[3].at.duration_since(tries[0].at);
    assert!(
        waited >= Duration::from_millis(2900),
        "retry_after was honoured: {waited:?}"
    );
    for t in &tries {
        assert!(
            !t.upload("audio").unwrap().bytes.is_empty(),
            "each attempt carries the file"
        );
    }
}

#[test]
fn the_admin_gate_refuses_everyone_else_and_tells_admins_the_truth() {
    let tg = FakeTelegram::start();
    let d = start(&tg, builder(&tg));
    tg.send_text(&ann(), "/health");
    let refused = tg.wait_call(T, "the refusal", |c| {
        c.method == "sendmessage" && c.i64("chat_id") == Some(42)
    });
    assert_eq!(text_of(&refused), "⛔ This command is for the bot's administrators.");

    let admin = TgUser::new(ADMIN, "Root");
    tg.send_text(&admin, "/health");
    let health = tg.wait_call(T, "the health report", |c| {
        c.method == "sendmessage" && c.i64("chat_id") == Some(ADMIN)
    });
    let text = text_of(&health);
    let workers = d.workers().unwrap();
    assert!(
        text.contains(&format!("Workers: {}/{} up", workers.len(), workers.len())),
        "{text}"
    );
    for w in &workers {
        assert!(
            text.contains(&format!("#{} pid {} idle", w.id, w.pid.unwrap())),
            "{text}"
        );
    }
    assert!(text.contains("Queue: high 0 · medium 0 · low 0"), "{text}");
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .unwrap()
        .count();
    assert!(
        text.contains(&format!("Database: ✅ ok (schema v{migrations}, ")),
        "{text}"
    );
    // /help shows the admin commands to admins only.
    tg.send_text(&admin, "/help");
    tg.wait_call(T, "admin help", |c| {
        c.i64("chat_id") == Some(ADMIN) && text_of(c).contains("/health")
    });
    tg.send_text(&ann(), "/help");
    let help = tg.wait_call(T, "user help", |c| {
        c.i64("chat_id") == Some(42) && text_of(c).contains("/settings")
    });
    assert!(!text_of(&help).contains("/health"));
}

#[test]
fn settings_change_the_first_choice_offered() {
    let tg = FakeTelegram::start();
    let (site, _d) = with_site(&tg, builder(&tg));
    tg.send_text(&ann(), "/settings");
    let menu = tg.wait_call(T, "the settings", |c| {
        text_of(c).starts_with("⚙️ Your default: 🎵 MP3 320k")
    });
    assert!(menu.buttons().iter().any(|(_, d)| d == "set:mp4:480p"));
    tg.press(&ann(), menu.message_id.unwrap(), "set:mp4:480p");
    tg.wait_call(T, "the confirmation", |c| {
        text_of(c) == "✅ Your default is now 🎬 MP4 480p."
    });
    let prompt = send_link(&tg, &ann(), &site.url("clip.mp4"));
    assert_eq!(
        prompt.buttons()[0],
        ("⭐ 🎬 MP4 480p".to_string(), "dl:mp4:480p".to_string())
    );
}

#[test]
fn the_cancel_button_stops_a_running_download() {
    let tg = FakeTelegram::start();
    let b = builder(&tg);
    let fake = hanging_ytdlp(b.dir());
    let d = start(&tg, b.env("YTDLP_PATH", &fake));
    let prompt = send_link(&tg, &ann(), "http://media.invalid/v.mp4");
    let id = prompt.message_id.unwrap();
    tg.press(&ann(), id, "dl:mp3:320k");
    let status = tg.wait_call(T, "the status", |c| {
        c.method == "editmessagetext" && c.i64("message_id") == Some(id)
    });
    wait_for(T, "the download to run", || {
        (d.workers()?.iter().any(|w| w.state == "busy")).then_some(())
    });
    let q = tg.press(&ann(), id, &status.buttons()[0].1);
    let a = tg.wait_call(T, "the answer", |c| {
        c.method == "answercallbackquery" && c.str("callback_query_id").as_deref() == Some(q.as_str())
    });
    assert_eq!(a.str("text").as_deref(), Some("Cancelling…"));
    tg.wait_call(T, "the cancelled status", |c| {
        c.method == "editmessagetext" && text_of(c) == "✖️ Download cancelled."
    });
    wait_for(T, "the task to be cancelled", || {
        (count(&d, "SELECT COUNT(*) FROM download_tasks WHERE state = 'cancelled'") == 1).then_some(())
    });
    d.wait_idle(T);
}

#[test]
fn telegram_outages_never_stop_the_daemon_and_never_leak_the_token() {
    let tg = FakeTelegram::start();
    tg.set_down(true);
    let d = builder(&tg).start();
    d.wait_idle(T);
    wait_for(T, "the bot to try and fail", || {
        d.log().contains("Telegram is not reachable yet").then_some(())
    });
    // Meanwhile the queue, the workers and the control socket work.
    assert!(d.status().is_some());
    tg.set_down(false);
    // teloxide itself waits 10s after a 5xx before it reports it, so one is enough to prove recovery.
    tg.fail("getupdates", 1, Failure::Status(502));
    tg.wait_call(T, "the bot to connect", |c| c.method == "getme");
    tg.send_text(&ann(), "/start");
    tg.wait_call(T, "the greeting after the outage", |c| {
        text_of(c).starts_with("👋 Hi, Ann!")
    });
    let log = d.log();
    assert!(
        !log.contains("TEST-SECRET-TOKEN-VALUE"),
        "the token leaked into the log:\n{log}"
    );
}

/// The value of the unlabelled `doradura_bot_connected` in a scrape, if it is exported.
fn bot_connected(d: &Daemon) -> Option<String> {
    let (status, body) = http_get(&d.metrics_address(), "/metrics", &[]).ok()?;
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix("doradura_bot_connected "))
        .map(str::to_string)
}

#[test]
fn the_bot_connected_gauge_follows_get_updates_down_and_back_up() {
    let tg = FakeTelegram::start();
    let d = start(&tg, builder(&tg).metrics_on());
    let addr = d.metrics_address();
    wait_for(T, "doradura_bot_connected 1 while polling", || {
        (bot_connected(&d).as_deref() == Some("1")).then_some(())
    });
    // Telegram starts failing every getUpdates (502): the gauge drops and /health names the bot.
    let calls_before = tg.calls_of("getupdates").len();
    tg.fail("getupdates", usize::MAX, Failure::Status(502));
    wait_for(T, "doradura_bot_connected 0 after a failed getUpdates", || {
        (bot_connected(&d).as_deref() == Some("0")).then_some(())
    });
    let (code, health) = http_get(&addr, "/health", &[]).unwrap();
    assert_eq!(code, 503, "{health}");
    let health: Value = serde_json::from_str(&health).unwrap();
    assert!(
        health["failing"].as_array().unwrap().contains(&Value::from("bot")),
        "{health}"
    );
    assert_eq!(health["bot"]["state"], "disconnected", "{health}");
    assert!(
        d.log()
            .contains("getUpdates failed: the bot is disconnected from Telegram")
    );
    // It stays 0 while the calls keep failing (the poller backs off but keeps calling).
    wait_for(T, "another failed getUpdates", || {
        (tg.calls_of("getupdates").len() >= calls_before + 2).then_some(())
    });
    assert_eq!(bot_connected(&d).as_deref(), Some("0"));
    // Telegram answers again: back to 1 without a restart, and the bot works.
    tg.clear_failures();
    wait_for(T, "doradura_bot_connected 1 once getUpdates succeeds again", || {
        (bot_connected(&d).as_deref() == Some("1")).then_some(())
    });
    let (code, health) = http_get(&addr, "/health", &[]).unwrap();
    assert_eq!(code, 200, "{health}");
    assert!(health.contains(r#""state":"connected""#), "{health}");
    assert!(
        d.log()
            .contains("getUpdates succeeds again: the bot is connected to Telegram")
    );
    tg.send_text(&ann(), "/start");
    tg.wait_call(T, "the greeting after the outage", |c| {
        text_of(c).starts_with("👋 Hi, Ann!")
    });
}

#[test]
fn without_a_token_the_bot_connected_gauge_is_not_exported() {
    let d = Daemon::builder().metrics_on().start();
    d.wait_idle(T);
    let (_, body) = http_get(&d.metrics_address(), "/metrics", &[]).unwrap();
    assert!(body.contains("doradura_bot_uptime_seconds"), "{body}");
    assert!(!body.contains("doradura_bot_connected"), "{body}");
}

#[test]
fn without_a_token_the_daemon_runs_without_the_bot_and_says_so_once() {
    let d = Daemon::builder().start();
    d.wait_idle(T);
    wait_for(T, "the notice", || {
        d.log().contains("running without the Telegram bot").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.log().matches("running without the Telegram bot").count(), 1);
    assert!(d.status().is_some());
}

#[test]
fn a_minute_long_outage_then_429s_loses_no_file_and_sends_it_once() {
    let tg = FakeTelegram::start();
    let (site, d) = with_site(&tg, builder(&tg));
    let prompt = send_link(&tg, &ann(), &site.url("clip.mp4"));
    let q = tg.press(&ann(), prompt.message_id.unwrap(), "dl:mp3:128k");
    tg.wait_call(T, "the press answered", |c| {
        c.str("callback_query_id").as_deref() == Some(q.as_str())
    });
    // Telegram goes away for a minute while the file is made: every call is a 502.
    let down_at = std::time::Instant::now();
    tg.set_down(true);
    wait_for(T, "the file made during the outage", || {
        (count(&d, "SELECT COUNT(*) FROM download_tasks WHERE state = 'done'") == 1).then_some(())
    });
    std::thread::sleep(Duration::from_secs(60).saturating_sub(down_at.elapsed()));
    // Back, but rate-limiting the first two uploads.
    tg.fail("sendaudio", 2, Failure::RetryAfter(1));
    tg.set_down(false);
    let delivered = tg.wait_call(Duration::from_secs(180), "the audio after the outage", |c| {
        c.method == "sendaudio" && c.message_id.is_some()
    });
    assert_eq!(delivered.i64("chat_id"), Some(42));
    let accepted = tg
        .calls_of("sendaudio")
        .iter()
        .filter(|c| c.message_id.is_some())
        .count();
    assert_eq!(accepted, 1, "sent once");
    assert_eq!(
        count(&d, "SELECT COUNT(*) FROM task_requests WHERE state = 'delivered'"),
        1
    );
    assert!(d.status().is_some(), "the daemon never stopped");
}

#[test]
fn a_worker_killed_while_the_bot_uploads_changes_nothing() {
    let tg = FakeTelegram::start();
    let (site, d) = with_site(&tg, builder(&tg).env("WORKERS", "1"));
    // The first upload hangs for 4 s: the worker is killed meanwhile.
    tg.fail("sendaudio", 1, Failure::Delay(Duration::from_secs(4)));
    let prompt = send_link(&tg, &ann(), &site.url("clip.mp4"));
    tg.press(&ann(), prompt.message_id.unwrap(), "dl:mp3:128k");
    // The task is done as soon as the worker hands the file over; the upload (4 s) follows at once.
    wait_for(T, "the file handed over", || {
        (count(&d, "SELECT COUNT(*) FROM download_tasks WHERE state = 'done'") == 1).then_some(())
    });
    let worker = d.workers().unwrap()[0].pid.unwrap();
    doradura_testkit::signal(worker, nix::sys::signal::Signal::SIGKILL);
    tg.wait_call(T, "the audio", |c| c.method == "sendaudio" && c.message_id.is_some());
    wait_for(T, "a new worker", || {
        let w = &d.workers()?[0];
        (w.restarts == 1 && w.state == "idle").then_some(())
    });
    // The upload is the daemon's: the finished task was not run again, and the file went out once.
    assert_eq!(
        count(
            &d,
            "SELECT COUNT(*) FROM download_tasks WHERE state = 'done' AND attempts = 1"
        ),
        1
    );
    assert_eq!(
        tg.calls_of("sendaudio")
            .iter()
            .filter(|c| c.message_id.is_some())
            .count(),
        1
    );
}

#[test]
fn an_upload_that_takes_longer_than_teloxides_default_timeout_is_sent_once() {
    // A local Bot API server answers only once it has passed the file on: here, after 20 s (teloxide's own client
    // gives up on any request after 17 s and the upload would be sent again).
    let tg = FakeTelegram::start();
    let (site, _d) = with_site(&tg, builder(&tg).env("WORKERS", "1"));
    tg.fail("sendaudio", 1, Failure::Delay(Duration::from_secs(20)));
    let prompt = send_link(&tg, &ann(), &site.url("clip.mp4"));
    tg.press(&ann(), prompt.message_id.unwrap(), "dl:mp3:128k");
    tg.wait_call(Duration::from_secs(90), "the audio", |c| {
        c.method == "sendaudio" && c.message_id.is_some()
    });
    assert_eq!(tg.received("sendaudio"), 1, "the upload was sent again");
}

/// The answer to the callback query `query`.
fn answer_to(tg: &FakeTelegram, query: &str) -> Call {
    tg.wait_call(T, "the button's answer", |c| {
        c.method == "answercallbackquery" && c.str("callback_query_id").as_deref() == Some(query)
    })
}

#[test]
fn a_second_press_while_a_free_download_runs_is_refused_in_plain_words_and_queues_nothing() {
    let tg = FakeTelegram::start();
    let b = builder(&tg).metrics_on();
    let fake = hanging_ytdlp(b.dir());
    let d = start(&tg, b.env("YTDLP_PATH", &fake));
    let first = send_link(&tg, &ann(), "http://media.invalid/a.mp4");
    // A link sent while nothing runs yet, and one sent while the first download runs: both get their keyboard.
    let second = send_link(&tg, &ann(), "http://media.invalid/b.mp4");
    let first_id = first.message_id.unwrap();
    tg.press(&ann(), first_id, "dl:mp3:320k");
    wait_for(T, "the first download to run", || {
        (d.workers()?.iter().any(|w| w.state == "busy")).then_some(())
    });
    let third = send_link(&tg, &ann(), "http://media.invalid/c.mp4");

    for (prompt, data) in [(&second, "dl:mp4:720p"), (&third, "dl:mp3:128k")] {
        let q = tg.press(&ann(), prompt.message_id.unwrap(), data);
        let a = answer_to(&tg, &q);
        assert_eq!(
            a.str("text").as_deref(),
            Some(
                "🚧 You already have a download on its way, and the Free plan runs one at a time. Press again once \
                 one has arrived, or stop one with /cancel.\nPremium and VIP run several at once: /plan"
            )
        );
        assert_eq!(a.str("show_alert").as_deref(), Some("true"));
    }
    // Nothing queued, no request stored, the prompts still usable, both refusals counted.
    assert_eq!(count(&d, "SELECT COUNT(*) FROM download_tasks"), 1);
    assert_eq!(count(&d, "SELECT COUNT(*) FROM task_requests"), 1);
    assert_eq!(count(&d, "SELECT COUNT(*) FROM link_prompts WHERE used = 1"), 1);
    let metrics = http_get(&d.metrics_address(), "/metrics", &[]).unwrap().1;
    assert!(
        metrics
            .lines()
            .any(|l| l == "doradura_rate_limit_hits_total{plan=\"free\"} 2"),
        "{metrics}"
    );
    // Another free user is not held up by Ann's download.
    let bob = TgUser::new(43, "Bob");
    let bobs = send_link(&tg, &bob, "http://media.invalid/a.mp4");
    let q = tg.press(&bob, bobs.message_id.unwrap(), "dl:mp3:320k");
    assert_eq!(answer_to(&tg, &q).str("text").as_deref(), Some("🎵 MP3 320k"));

    // Once Ann's download has ended, the same button works.
    tg.send_text(&ann(), "/cancel");
    wait_for(T, "Ann's request to be cancelled", || {
        (count(
            &d,
            "SELECT COUNT(*) FROM task_requests WHERE user_id = 42 AND state = 'cancelled'",
        ) == 1)
            .then_some(())
    });
    let q = tg.press(&ann(), second.message_id.unwrap(), "dl:mp4:720p");
    assert_eq!(answer_to(&tg, &q).str("text").as_deref(), Some("🎬 MP4 720p"));
    assert_eq!(
        count(
            &d,
            "SELECT COUNT(*) FROM task_requests WHERE user_id = 42 AND state = 'waiting'"
        ),
        1
    );
}

#[test]
fn a_timed_out_download_counts_toward_the_daily_quota() {
    let tg = FakeTelegram::start();
    let b = builder(&tg).env("FREE_DAILY_QUOTA", "1").env("DOWNLOAD_TIMEOUT", "1");
    let fake = hanging_ytdlp(b.dir());
    let d = start(&tg, b.env("YTDLP_PATH", &fake));
    let first = send_link(&tg, &ann(), "http://media.invalid/a.mp4");
    let second = send_link(&tg, &ann(), "http://media.invalid/b.mp4");
    let id = first.message_id.unwrap();
    tg.press(&ann(), id, "dl:mp3:320k");
    tg.wait_call(T, "the timeout, in plain words", |c| {
        c.method == "editmessagetext"
            && c.i64("message_id") == Some(id)
            && text_of(c) == "⏱ The download took too long and was stopped. Try a lower quality."
    });
    wait_for(T, "the request to end as a timeout", || {
        (count(
            &d,
            "SELECT COUNT(*) FROM task_requests WHERE state = 'failed' AND error_type = 'timeout'",
        ) == 1)
            .then_some(())
    });
    // The attempt ran, so it used the day's one download.
    let q = tg.press(&ann(), second.message_id.unwrap(), "dl:mp3:320k");
    let refusal = answer_to(&tg, &q);
    let text = refusal.str("text").unwrap();
    assert!(
        text.starts_with("📅 You have used your 1 downloads for today (Free plan)."),
        "{text}"
    );
    assert_eq!(count(&d, "SELECT COUNT(*) FROM download_tasks"), 1);
    assert_eq!(count(&d, "SELECT COUNT(*) FROM task_requests"), 1);
}

#[test]
fn expired_link_prompts_are_pruned_and_the_count_is_logged() {
    let tg = FakeTelegram::start();
    let d = start(&tg, builder(&tg).env("PLAN_EXPIRY_CHECK_INTERVAL", "200ms"));
    let fresh = send_link(&tg, &ann(), "http://media.invalid/a.mp4");
    {
        let rw = rusqlite::Connection::open(d.db_path()).unwrap();
        rw.busy_timeout(Duration::from_secs(10)).unwrap();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let day_ago = now_ms - 86_400_000 - 1000;
        for (message, used) in [(7001, 0), (7002, 1)] {
            rw.execute(
                "INSERT INTO link_prompts (chat_id, message_id, user_id, url, reply_to, created_at_ms, used)
                 VALUES (42, ?1, 42, 'http://media.invalid/old.mp4', 1, ?2, ?3)",
                rusqlite::params![message, day_ago, used],
            )
            .unwrap();
        }
    }
    wait_for(T, "the old prompts to be pruned", || {
        (count(&d, "SELECT COUNT(*) FROM link_prompts WHERE message_id IN (7001, 7002)") == 0).then_some(())
    });
    wait_for(T, "the count in the log", || {
        let log = d.log();
        (log.contains("pruned expired link prompts") && log.contains("pruned=2")).then_some(())
    });
    // The fresh prompt is kept, and its buttons work.
    let q = tg.press(&ann(), fresh.message_id.unwrap(), "dl:mp3:320k");
    assert_eq!(answer_to(&tg, &q).str("text").as_deref(), Some("🎵 MP3 320k"));
}
