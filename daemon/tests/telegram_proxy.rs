//! Telegram through a proxy, as docs/operations.md ("Telegram through a proxy") and doradurad(8) describe it: the
//! bot's HTTP client takes HTTP_PROXY / HTTPS_PROXY / ALL_PROXY from the daemon's environment; SOCKS is not built
//! in; downloads never use these variables.

use std::time::Duration;

use doradura_testkit::proxy::UpstreamProxy;
use doradura_testkit::telegram::{FakeTelegram, TgUser};
use doradura_testkit::{Daemon, wait_for};

const T: Duration = Duration::from_secs(60);
const TOKEN: &str = "123456:PROXY-TEST-TOKEN";

#[test]
fn the_bot_talks_to_the_bot_api_through_http_proxy() {
    let tg = FakeTelegram::start();
    let proxy = UpstreamProxy::http();
    let d = Daemon::builder()
        .env("TELOXIDE_TOKEN", TOKEN)
        .env("TELOXIDE_API_URL", tg.url())
        .env("HTTP_PROXY", proxy.url("http"))
        .start();
    tg.send_text(&TgUser::new(42, "Ann"), "/start");
    tg.wait_call(T, "the greeting", |c| c.method == "sendmessage");
    let seen = proxy.seen();
    let api = tg.url().trim_start_matches("http://").to_string();
    assert!(
        seen.iter()
            .any(|s| s.contains(&format!("{api}/bot{TOKEN}/")) && s.to_ascii_lowercase().ends_with("/getme")),
        "the proxy carried {seen:?}\n{}",
        d.log()
    );
}

#[test]
fn https_proxy_carries_the_default_telegram_url() {
    // No network is needed: the proxy records the tunnel it is asked for before it tries to open it.
    let proxy = UpstreamProxy::http();
    let d = Daemon::builder()
        .env("TELOXIDE_TOKEN", TOKEN)
        .env("HTTPS_PROXY", proxy.url("http"))
        .start();
    wait_for(T, "a CONNECT to api.telegram.org", || {
        proxy
            .seen()
            .contains(&"CONNECT api.telegram.org:443".to_string())
            .then_some(())
    });
    drop(d);
}

/// reqwest is built without its `socks` feature: a socks5:// proxy is not spoken to, and the bot cannot reach
/// Telegram at all while one is set (the documented limitation; this test fails when that changes).
#[test]
fn a_socks_proxy_leaves_the_bot_unable_to_reach_telegram() {
    let tg = FakeTelegram::start();
    let socks = UpstreamProxy::socks5();
    let d = Daemon::builder()
        .env("TELOXIDE_TOKEN", TOKEN)
        .env("TELOXIDE_API_URL", tg.url())
        .env("ALL_PROXY", socks.url("socks5"))
        .start();
    wait_for(T, "the bot to report Telegram unreachable", || {
        d.log().contains("Telegram is not reachable yet").then_some(())
    });
    assert_eq!(socks.seen(), Vec::<String>::new());
    assert!(
        tg.calls().is_empty(),
        "{:?}",
        tg.calls().iter().map(|c| &c.method).collect::<Vec<_>>()
    );
}
