//! Plans bought with Telegram Stars, end to end through the real daemon and a fake Bot API server.

use std::time::Duration;

use doradura_testkit::media::hanging_ytdlp;
use doradura_testkit::telegram::{Call, FakeTelegram, TgUser};
use doradura_testkit::{Daemon, DaemonBuilder, http_get, wait_for};
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(60);
const ADMIN: i64 = 900;

fn ann() -> TgUser {
    TgUser::new(42, "Ann")
}

fn builder(tg: &FakeTelegram) -> DaemonBuilder {
    let b = Daemon::builder()
        .metrics_on()
        .env("TELOXIDE_TOKEN", "123456:TEST-TOKEN")
        .env("TELOXIDE_API_URL", tg.url())
        .env("ADMIN_IDS", ADMIN.to_string())
        .env("WORKERS", "1")
        .env("FREE_COOLDOWN", "0s")
        .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
        .env("PLAN_EXPIRY_CHECK_INTERVAL", "200ms")
        .env("SHUTDOWN_GRACE_PERIOD", "200ms");
    // Downloads hang: these tests look at the queue, not at files.
    let fake = hanging_ytdlp(b.dir());
    b.env("YTDLP_PATH", &fake)
}

fn start(tg: &FakeTelegram, b: DaemonBuilder) -> Daemon {
    let d = b.start();
    d.wait_idle(T);
    tg.wait_call(T, "the bot to poll", |c| c.method == "getupdates");
    d
}

fn text_of(c: &Call) -> String {
    c.str("text").unwrap_or_default()
}

fn scrape(d: &Daemon) -> String {
    http_get(&d.metrics_address(), "/metrics", &[]).unwrap().1
}

fn has(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

fn db(d: &Daemon) -> rusqlite::Connection {
    rusqlite::Connection::open(d.db_path()).unwrap()
}

fn user_plan(d: &Daemon, user: i64) -> (String, Option<i64>) {
    db(d)
        .query_row(
            "SELECT plan, plan_expires_at FROM users WHERE user_id = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// A payment delivered again changed nothing: one thanks, one row, Ann's plan as it was after the first.
fn assert_counted_once(tg: &FakeTelegram, d: &Daemon, plan: &(String, Option<i64>)) {
    assert_eq!(tg.calls().iter().filter(|c| text_of(c).starts_with("🎉")).count(), 1);
    assert_eq!(&user_plan(d, 42), plan, "the plan was not extended twice");
    let n: i64 = db(d)
        .query_row("SELECT COUNT(*) FROM payments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

/// /plan, the VIP button, and the invoice it sends.
fn invoice(tg: &FakeTelegram, user: &TgUser) -> Call {
    tg.send_text(user, "/plan");
    let menu = tg.wait_call(T, "the plans", |c| {
        c.method == "sendmessage" && text_of(c).starts_with("Your plan: Free")
    });
    let text = text_of(&menu);
    assert!(
        text.contains("⭐ Premium — 100 Stars for 30 days") && text.contains("⭐ VIP — 250 Stars for 30 days"),
        "{text}"
    );
    assert!(menu.buttons().iter().any(|(_, d)| d == "buy:vip"));
    tg.press(user, menu.message_id.unwrap(), "buy:vip");
    tg.wait_call(T, "the invoice", |c| c.method == "sendinvoice")
}

fn pay(tg: &FakeTelegram, user: &TgUser, payload: &str, amount: u32, charge: &str) {
    let q = tg.pre_checkout(user, payload, "XTR", amount);
    let a = tg.wait_call(T, "the pre-checkout answer", |c| {
        c.method == "answerprecheckoutquery" && c.str("pre_checkout_query_id").as_deref() == Some(q.as_str())
    });
    assert_eq!(a.str("ok").as_deref(), Some("true"), "{:?}", a.params);
    tg.successful_payment(user, payload, amount, charge);
}

#[test]
fn the_full_purchase_activates_vip_raises_priority_and_moves_the_metrics_by_the_price() {
    let tg = FakeTelegram::start();
    let mut d = start(&tg, builder(&tg));
    let inv = invoice(&tg, &ann());
    assert_eq!(inv.str("currency").as_deref(), Some("XTR"));
    assert_eq!(inv.str("payload").as_deref(), Some("plan:vip:42"));
    assert_eq!(inv.json("prices").unwrap()[0]["amount"], 250);
    assert!(inv.str("provider_token").is_none_or(|t| t.is_empty()));
    wait_for(T, "the checkout to be counted", || {
        has(&scrape(&d), "doradura_payment_checkout_started_total{plan=\"vip\"} 1").then_some(())
    });

    pay(&tg, &ann(), "plan:vip:42", 250, "charge-1");
    let thanks = tg.wait_call(T, "the thanks", |c| {
        text_of(c).starts_with("🎉 Thank you! Your VIP plan is active until")
    });
    assert_eq!(thanks.i64("chat_id"), Some(42));
    let (plan, expires) = user_plan(&d, 42);
    assert_eq!(plan, "vip");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((expires.unwrap() - (now + 30 * 86_400)).abs() < 60);

    let m = scrape(&d);
    for line in [
        "doradura_revenue_total_stars 250",
        "doradura_revenue_by_plan{plan=\"vip\"} 250",
        "doradura_revenue_by_plan{plan=\"premium\"} 0",
        "doradura_payment_success_total{plan=\"vip\"} 1",
        "doradura_new_subscriptions_total{plan=\"vip\"} 1",
        "doradura_active_subscriptions{plan=\"vip\"} 1",
    ] {
        assert!(has(&m, line), "missing {line:?}\n{m}");
    }

    // The admin sees the same figures, from the database.
    tg.send_text(&TgUser::new(ADMIN, "Root"), "/revenue");
    let report = tg.wait_call(T, "the revenue report", |c| {
        c.i64("chat_id") == Some(ADMIN) && text_of(c).starts_with("💰")
    });
    let text = text_of(&report);
    assert!(text.contains("All time: 250 ⭐\nLast 30 days: 250 ⭐"), "{text}");
    assert!(
        text.contains(" • VIP: 250 ⭐ all time, 250 ⭐ in 30 days (1 payments)"),
        "{text}"
    );
    assert!(
        text.contains("Plan views: 1 → Checkouts: 1 (100%) → Payments: 1 (100%)"),
        "{text}"
    );
    let chart = tg.wait_call(T, "the revenue chart", |c| {
        c.method == "sendphoto" && c.i64("chat_id") == Some(ADMIN)
    });
    assert!(chart.upload("photo").unwrap().bytes.starts_with(b"\x89PNG"));

    // The plan decides the queue priority.
    let link = tg.send_text(&ann(), "http://media.invalid/a.mp4");
    let prompt = tg.wait_call(T, "the keyboard", |c| {
        c.json("reply_parameters").is_some_and(|r| r["message_id"] == link)
    });
    tg.press(&ann(), prompt.message_id.unwrap(), "dl:mp3:320k");
    let priority: String = wait_for(T, "the task", || {
        db(&d)
            .query_row("SELECT priority FROM download_tasks WHERE user_id = 42", [], |r| {
                r.get(0)
            })
            .ok()
    });
    assert_eq!(priority, "high");

    // Totals survive a restart.
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(T).success());
    d.restart();
    // The recovered download keeps the worker busy; the daemon answering is what counts here.
    let m = scrape(&d);
    assert!(has(&m, "doradura_revenue_total_stars 250"), "{m}");
    assert!(has(&m, "doradura_payment_success_total{plan=\"vip\"} 1"));
}

#[test]
fn wrong_amounts_foreign_payloads_and_junk_are_refused_at_pre_checkout() {
    let tg = FakeTelegram::start();
    let d = start(&tg, builder(&tg));
    for (payload, amount, want) in [
        (
            "plan:vip:42",
            100,
            "The price has changed to 250 Stars. Open /plan for a new invoice.",
        ),
        (
            "plan:vip:43",
            250,
            "This invoice was made for another user. Open /plan to get your own.",
        ),
        (
            "{\"junk\":true}",
            250,
            "This invoice is not valid any more. Open /plan and try again.",
        ),
    ] {
        let q = tg.pre_checkout(&ann(), payload, "XTR", amount);
        let a = tg.wait_call(T, "the answer", |c| {
            c.method == "answerprecheckoutquery" && c.str("pre_checkout_query_id").as_deref() == Some(q.as_str())
        });
        assert_eq!(a.str("ok").as_deref(), Some("false"));
        assert_eq!(a.str("error_message").as_deref(), Some(want));
    }
    let m = scrape(&d);
    for line in [
        "doradura_payment_failure_total{plan=\"vip\",reason=\"wrong_amount\"} 1",
        "doradura_payment_failure_total{plan=\"vip\",reason=\"wrong_user\"} 1",
        "doradura_payment_failure_total{plan=\"free\",reason=\"invalid_payload\"} 1",
        "doradura_revenue_total_stars 0",
    ] {
        assert!(has(&m, line), "missing {line:?}\n{m}");
    }
    let (plan, _) = db(&d)
        .query_row("SELECT plan, plan_expires_at FROM users WHERE user_id = 42", [], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })
        .unwrap_or(("free".into(), None));
    assert_eq!(plan, "free");
}

#[test]
fn a_payment_delivered_twice_is_counted_once() {
    let tg = FakeTelegram::start();
    let d = start(&tg, builder(&tg));
    pay(&tg, &ann(), "plan:premium:42", 100, "charge-dup");
    tg.wait_call(T, "the thanks", |c| text_of(c).starts_with("🎉"));
    let first = user_plan(&d, 42);
    tg.successful_payment(&ann(), "plan:premium:42", 100, "charge-dup");
    tg.send_text(&ann(), "/help");
    tg.wait_call(T, "a later answer", |c| text_of(c).contains("/settings"));
    assert_counted_once(&tg, &d, &first);
    let m = scrape(&d);
    assert!(
        has(&m, "doradura_revenue_total_stars 100") && has(&m, "doradura_payment_success_total{plan=\"premium\"} 1"),
        "{m}"
    );
    assert!(
        !m.lines()
            .any(|l| l.starts_with("doradura_payment_failure_total") && !l.ends_with(" 0")),
        "{m}"
    );
}

#[test]
fn cancellation_refund_and_expiry_each_end_the_plan() {
    let tg = FakeTelegram::start();
    let d = start(&tg, builder(&tg));
    let bob = TgUser::new(43, "Bob");
    let admin = TgUser::new(ADMIN, "Root");

    // Cancellation: the plan runs to its expiry, then the hourly job ends it.
    pay(&tg, &ann(), "plan:vip:42", 250, "charge-ann");
    tg.wait_call(T, "Ann's thanks", |c| {
        c.i64("chat_id") == Some(42) && text_of(c).starts_with("🎉")
    });
    tg.send_text(&ann(), "/plan");
    let menu = tg.wait_call(T, "Ann's plan", |c| text_of(c).starts_with("Your plan: VIP, until"));
    tg.press(&ann(), menu.message_id.unwrap(), "plan:cancel");
    tg.wait_call(T, "the cancellation", |c| {
        text_of(c).starts_with("Your VIP plan is cancelled; it stays active until")
    });
    assert_eq!(user_plan(&d, 42).0, "vip");
    db(&d)
        .execute("UPDATE users SET plan_expires_at = 1 WHERE user_id = 42", [])
        .unwrap();
    tg.wait_call(T, "the expiry notice", |c| {
        c.i64("chat_id") == Some(42) && text_of(c).starts_with("Your VIP plan has ended")
    });
    assert_eq!(user_plan(&d, 42).0, "free");

    // Refund by the admin: Telegram is asked, the plan ends at once.
    pay(&tg, &bob, "plan:premium:43", 100, "charge-bob");
    tg.wait_call(T, "Bob's thanks", |c| {
        c.i64("chat_id") == Some(43) && text_of(c).starts_with("🎉")
    });
    tg.send_text(&bob, "/refund charge-bob");
    tg.wait_call(T, "the refusal", |c| {
        c.i64("chat_id") == Some(43) && text_of(c).starts_with("⛔")
    });
    tg.send_text(&admin, "/refund charge-bob");
    let call = tg.wait_call(T, "refundStarPayment", |c| c.method == "refundstarpayment");
    assert_eq!(call.i64("user_id"), Some(43));
    assert_eq!(call.str("telegram_payment_charge_id").as_deref(), Some("charge-bob"));
    tg.wait_call(T, "the admin's confirmation", |c| {
        text_of(c) == "✅ Refunded charge-bob: user 43 lost Premium."
    });
    tg.wait_call(T, "Bob's notice", |c| {
        c.i64("chat_id") == Some(43) && text_of(c).starts_with("Your payment for Premium was refunded")
    });
    assert_eq!(user_plan(&d, 43).0, "free");
    tg.send_text(&admin, "/refund charge-bob");
    tg.wait_call(T, "a second refund refused", |c| {
        text_of(c).starts_with("No refundable payment with charge id \"charge-bob\"")
    });

    let m = scrape(&d);
    for line in [
        "doradura_subscription_cancellations_total{plan=\"vip\"} 1",
        "doradura_subscription_cancellations_total{plan=\"premium\"} 1",
        "doradura_active_subscriptions{plan=\"vip\"} 0",
        "doradura_active_subscriptions{plan=\"premium\"} 0",
        "doradura_revenue_total_stars 350",
    ] {
        assert!(has(&m, line), "missing {line:?}\n{m}");
    }
}

#[test]
fn a_payment_that_does_not_match_the_price_is_granted_and_kept_for_the_admin_once() {
    let tg = FakeTelegram::start();
    let d = start(&tg, builder(&tg));
    // As if the price changed between the pre-checkout and the payment.
    tg.successful_payment(&ann(), "plan:premium:42", 90, "charge-odd");
    tg.wait_call(T, "the thanks", |c| {
        text_of(c).starts_with("🎉 Thank you! Your Premium plan")
    });
    tg.successful_payment(&ann(), "plan:premium:42", 90, "charge-odd");
    tg.send_text(&ann(), "/help");
    tg.wait_call(T, "a later answer", |c| text_of(c).contains("/settings"));
    assert_eq!(user_plan(&d, 42).0, "premium");
    let issues: Vec<(String, String)> = db(&d)
        .prepare("SELECT kind, details FROM payment_issues")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        issues,
        vec![("amount_mismatch".to_string(), "paid 90 XTR, price 100 XTR".to_string())]
    );
    let m = scrape(&d);
    assert!(has(&m, "doradura_errors_total{category=\"payment\"} 1"), "{m}");
    assert!(
        has(&m, "doradura_revenue_total_stars 90"),
        "the Stars received are counted: {m}"
    );
}

#[test]
fn a_payment_survives_a_sigkill_and_its_redelivery_is_counted_once() {
    let tg = FakeTelegram::start();
    let mut d = start(&tg, builder(&tg));
    pay(&tg, &ann(), "plan:vip:42", 250, "charge-kill");
    tg.wait_call(T, "the thanks", |c| text_of(c).starts_with("🎉"));
    let plan = user_plan(&d, 42);
    d.signal(Signal::SIGKILL);
    assert!(!d.wait_exit(T).success());
    let polls = tg.calls_of("getupdates").len();
    d.restart();
    wait_for(T, "the bot back", || {
        (tg.calls_of("getupdates").len() > polls).then_some(())
    });
    // Telegram sends the update again (as it does when its receipt was not confirmed before the crash).
    tg.successful_payment(&ann(), "plan:vip:42", 250, "charge-kill");
    tg.send_text(&ann(), "/help");
    tg.wait_call(T, "a later answer", |c| {
        text_of(c).contains("/settings") && c.at > tg.calls_of("getupdates")[polls].at
    });
    assert_counted_once(&tg, &d, &plan);
    let m = scrape(&d);
    assert!(
        has(&m, "doradura_revenue_total_stars 250"),
        "restored, not doubled:\n{m}"
    );
}
