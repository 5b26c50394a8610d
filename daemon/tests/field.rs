//! Downloads against hostile and gated sites, through the real daemon, workers and yt-dlp: an endless stream, a
//! cookie wall, an operator's upstream proxy, an rtmp-only page, and what yt-dlp's environment holds.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use doradura_testkit::media::{GATE_COOKIE, MediaSite, ytdlp};
use doradura_testkit::proxy::UpstreamProxy;
use doradura_testkit::{Daemon, DaemonBuilder, script};

fn builder() -> DaemonBuilder {
    Daemon::builder()
        .env("WORKERS", "1")
        .env("WORKER_HEARTBEAT_INTERVAL", "200ms")
        .env("WORKER_HEARTBEAT_TIMEOUT", "2s")
        .env("TASK_MAX_ATTEMPTS", "1")
        .env("DOWNLOAD_MIN_FREE_MB", "1")
        .env("YTDLP_PATH", ytdlp())
}

const T: Duration = Duration::from_secs(60);

fn start(b: DaemonBuilder) -> (MediaSite, Daemon) {
    let site = MediaSite::start(&b.dir().join("site"));
    let d = b.start();
    d.wait_idle(T);
    (site, d)
}

fn download(d: &Daemon, url: &str, format: &str) -> Output {
    let out = d.dir.path().join("out");
    d.ctl([
        "--json",
        "download",
        url,
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
    ])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn delivered(d: &Daemon) -> Vec<PathBuf> {
    std::fs::read_dir(d.dir.path().join("out"))
        .map(|it| it.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default()
}

/// Bytes under `dir`, counted file by file.
fn du(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => du(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

#[test]
fn an_endless_stream_stops_at_the_size_limit_and_leaves_nothing() {
    let (site, d) = start(
        builder()
            .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
            .env("MAX_FILE_SIZE_MB", "5"),
    );
    let spool = d.dir.path().join("downloads");
    // The spool is measured all through the download.
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, done, spool) = (peak.clone(), done.clone(), spool.clone());
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(du(&spool), Ordering::SeqCst);
                samples += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            samples
        })
    };
    let o = download(&d, &site.url("live.mp4"), "mp4");
    done.store(true, Ordering::SeqCst);
    let samples = watcher.join().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("failed (too_large)"), "{}", stderr(&o));
    let peak = peak.load(Ordering::SeqCst);
    eprintln!("spool peak: {peak} bytes in {samples} samples");
    let limit = 5 * 1024 * 1024;
    // One file may pass the limit by the worker's margin (1 MiB here), never more.
    assert!(
        peak <= limit + 1024 * 1024 + 64 * 1024,
        "the spool reached {peak} bytes"
    );
    assert!(
        peak > 1024 * 1024,
        "the stream was downloaded ({peak} bytes at peak, {samples} samples)"
    );
    assert!(site.hits("/live.mp4") >= 1);
    assert!(
        d.spool_entries().is_empty(),
        "partial files left: {:?}",
        d.spool_entries()
    );
    assert!(delivered(&d).is_empty());
}

#[test]
fn a_cookie_gated_link_works_with_the_operators_cookies_which_stay_unchanged() {
    let b = builder().env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true");
    let cookies = b.dir().join("operator-cookies.txt");
    std::fs::write(
        &cookies,
        format!("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\t{GATE_COOKIE}\n"),
    )
    .unwrap();
    let before = std::fs::read(&cookies).unwrap();
    let modified = std::fs::metadata(&cookies).unwrap().modified().unwrap();

    // Without the cookies the site refuses.
    let (site, d) = start(
        Daemon::builder()
            .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
            .env("YTDLP_PATH", ytdlp()),
    );
    let o = download(&d, &site.url("gated/clip.mp4"), "mp4");
    assert!(!o.status.success(), "the gate let a request without the cookie through");
    drop(d);

    let (site, d) = start(b.env("YTDLP_COOKIES_FILE", &cookies));
    let o = download(&d, &site.url("gated/clip.mp4"), "mp4");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(delivered(&d).len(), 1);
    assert_eq!(
        std::fs::read(&cookies).unwrap(),
        before,
        "the operator's cookies file changed"
    );
    assert_eq!(std::fs::metadata(&cookies).unwrap().modified().unwrap(), modified);
    assert!(
        d.spool_entries().is_empty(),
        "the private copy was left: {:?}",
        d.spool_entries()
    );
}

#[test]
fn an_upstream_proxy_carries_the_downloads_with_and_without_the_address_check() {
    let upstream = UpstreamProxy::http();
    // The address check on, the media site listed as an allowed private host.
    let b = builder().env("DOWNLOAD_PROXY", upstream.url("http"));
    let site = MediaSite::start(&b.dir().join("site"));
    let d = b
        .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "false")
        .env("DOWNLOAD_ALLOWED_HOSTS", site.addr.to_string())
        .start();
    d.wait_idle(T);
    let o = download(&d, &site.url("clip.mp4"), "mp3");
    assert!(o.status.success(), "{}", stderr(&o));
    // Plain http too goes as a tunnel to the checked address: the upstream never resolves a name again.
    let seen = upstream.seen();
    assert!(seen.iter().any(|s| s == &format!("CONNECT {}", site.addr)), "{seen:?}");
    assert!(site.hits("/clip.mp4") >= 1);
    assert!(
        !d.ctl(["--json", "status"]).stdout.is_empty(),
        "the daemon answers after the proxied download"
    );
    drop(d);

    // The check off: yt-dlp still reaches the site only through the upstream proxy.
    let before = upstream.seen().len();
    let (site, d) = start(
        builder()
            .env("DOWNLOAD_PROXY", upstream.url("http"))
            .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true"),
    );
    let o = download(&d, &site.url("page.html"), "srt");
    assert!(o.status.success(), "{}", stderr(&o));
    let tunnels = upstream.seen()[before..]
        .iter()
        .filter(|s| **s == format!("CONNECT {}", site.addr))
        .count();
    // One tunnel per request (each proxied http request closes its connection): the page and its subtitles.
    let requests = site.hits("/page.html") + site.hits("/clip.vtt");
    assert!(
        requests >= 2 && tunnels >= requests,
        "{tunnels} tunnels for {requests} requests"
    );
}

#[test]
fn an_rtmp_only_page_is_refused_without_connecting() {
    // rtmpdump would connect straight to the rtmp server, past the worker's proxy (.ci/run installs it).
    assert!(
        Path::new("/usr/bin/rtmpdump").exists(),
        "rtmpdump is needed for this test to mean anything"
    );
    let rtmp = TcpListener::bind("127.0.0.1:0").unwrap();
    rtmp.set_nonblocking(true).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = {
        let (connections, stop, rtmp) = (connections.clone(), stop.clone(), rtmp.try_clone().unwrap());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if rtmp.accept().is_ok() {
                    connections.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let (site, d) = start(builder().env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true"));
    std::fs::write(
        site.dir.join("live.html"),
        format!(
            "<!DOCTYPE html><html><head><title>Live</title></head><body>\
             <video src=\"rtmp://{}/live/stream.mp4\"></video></body></html>",
            rtmp.local_addr().unwrap()
        ),
    )
    .unwrap();
    let o = download(&d, &site.url("live.html"), "mp4");
    stop.store(true, Ordering::SeqCst);
    counter.join().unwrap();
    assert!(!o.status.success());
    // Refused by the format filter, not for want of formats.
    assert!(stderr(&o).contains("failed (unavailable)"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Requested format is not available"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "something connected to the rtmp server"
    );
}

#[test]
fn ytdlp_gets_a_minimal_environment_without_secrets() {
    let b = builder()
        .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
        .env("TELOXIDE_TOKEN", "123456:the-bot-token")
        .env("TELOXIDE_API_URL", "http://127.0.0.1:9")
        .env("METRICS_AUTH_TOKEN", "the-metrics-token");
    let dir = b.dir().to_path_buf();
    let fake = dir.join("env-yt-dlp");
    script(
        &fake,
        &format!(
            "[ \"$1\" = --version ] && {{ echo 2099.01.01; exit 0; }}\n\
             env > {d}/ytdlp.env\n\
             printf '%s\\n' \"$@\" > {d}/ytdlp.args\n\
             echo 'ERROR: Unsupported URL: test' >&2\n\
             exit 1",
            d = dir.display()
        ),
    );
    let d = b.env("YTDLP_PATH", &fake).start();
    d.wait_idle(T);
    let o = download(&d, "http://127.0.0.1:9/clip.mp4", "mp3");
    assert!(stderr(&o).contains("failed (unsupported_url)"), "{}", stderr(&o));
    let env = std::fs::read_to_string(dir.join("ytdlp.env")).unwrap();
    assert!(!env.contains("the-bot-token") && !env.contains("TELOXIDE"), "{env}");
    assert!(
        !env.contains("the-metrics-token") && !env.contains("DATABASE_PATH"),
        "{env}"
    );
    // The worker's own environment does not pass either.
    assert!(!env.contains("RUST_LOG="), "{env}");
    let home = env.lines().find_map(|l| l.strip_prefix("HOME=")).expect("HOME is set");
    assert!(
        home.starts_with(&d.dir.path().join("downloads").display().to_string()) && home.ends_with("/.home"),
        "{home}"
    );
    let args = std::fs::read_to_string(dir.join("ytdlp.args")).unwrap();
    assert!(args.lines().any(|l| l == "--no-plugin-dirs"), "{args}");
    // The worker itself has none of the daemon's secrets either.
    let worker = d.workers().unwrap()[0].pid.unwrap();
    let environ = std::fs::read(format!("/proc/{worker}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains("the-bot-token"));
}

#[test]
fn a_child_stopped_by_the_size_cap_ends_the_task_as_too_large() {
    // What ffmpeg does on a live stream: it writes until the kernel stops it with SIGXFSZ, and says nothing.
    let b = builder()
        .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
        .env("MAX_FILE_SIZE_MB", "2");
    let fake = b.dir().join("ffmpeg-like-yt-dlp");
    script(
        &fake,
        "[ \"$1\" = --version ] && { echo 2099.01.01; exit 0; }\n\
         dd if=/dev/zero of=media.mp4.part bs=1M count=100 2>/dev/null\n\
         echo 'ERROR: ffmpeg exited with code -25' >&2\n\
         exit 1",
    );
    let d = b.env("YTDLP_PATH", &fake).start();
    d.wait_idle(T);
    let o = download(&d, "http://127.0.0.1:9/live.m3u8", "mp4");
    assert!(stderr(&o).contains("failed (too_large)"), "{}", stderr(&o));
    assert!(stderr(&o).contains("grew past the 2 MB limit"), "{}", stderr(&o));
    assert!(d.spool_entries().is_empty(), "{:?}", d.spool_entries());
}

#[test]
fn a_bad_access_setting_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_runtime = dir.path().join("python3");
    script(&not_a_runtime, "exit 0");
    for (var, value, says) in [
        (
            "YTDLP_EXTRA_ARGS",
            "--impersonate chrome --exec 'touch /tmp/x'".to_string(),
            "--exec is not an allowed yt-dlp option",
        ),
        (
            "YTDLP_EXTRA_ARGS",
            "--impersonate".to_string(),
            "--impersonate needs a value",
        ),
        ("DOWNLOAD_PROXY", "ftp://proxy:21".to_string(), "expected a proxy URL"),
        (
            "YTDLP_COOKIES_FILE",
            dir.path().join("missing.txt").display().to_string(),
            "cannot read",
        ),
        (
            "YTDLP_JS_RUNTIME",
            not_a_runtime.display().to_string(),
            "not a JavaScript runtime",
        ),
    ] {
        let out = Daemon::builder().env(var, &value).run_to_exit(&[], T);
        assert_eq!(out.status.code(), Some(78), "{var}={value}");
        let err = stderr(&out);
        assert!(err.contains(var) && err.contains(says), "{var}={value}: {err}");
    }
}
