//! The daemon's own overhead on a download: the same mp3 extraction of a 3-second clip from a loopback media site,
//! once by running yt-dlp directly and once through `doradurctl download` (queue, worker, gRPC, file streaming),
//! alternating, in one run. Reported as medians and their ratio.
//!
//! Run: `cargo build --release --workspace && cargo bench -p doradurad --bench download_overhead`
//! (needs ffmpeg and yt-dlp in `.venv`, as `.ci/run` installs them).

use std::process::Command;
use std::time::{Duration, Instant};

use doradura_testkit::media::{MediaSite, ytdlp};
use doradura_testkit::{Daemon, bin};

const RUNS: usize = 15;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let b = Daemon::builder()
        .env("WORKERS", "1")
        .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
        .env("YTDLP_PATH", ytdlp());
    let site = MediaSite::start(&b.dir().join("site"));
    let d = b.start();
    d.wait_idle(Duration::from_secs(30));
    let url = site.url("clip.mp4");
    let work = d.dir.path().join("bench");

    let (mut direct, mut daemon) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let dir = work.join(format!("direct-{i}"));
        let t = Instant::now();
        let out = Command::new(ytdlp())
            .args([
                "--ignore-config",
                "--no-playlist",
                "--newline",
                "--no-cache-dir",
                "--format",
                "bestaudio/best",
            ])
            .args([
                "--extract-audio",
                "--audio-format",
                "mp3",
                "--audio-quality",
                "320K",
                "--paths",
            ])
            .arg(&dir)
            .args(["--output", "media.%(ext)s", "--", &url])
            .output()
            .unwrap();
        direct.push(t.elapsed().as_secs_f64());
        assert!(out.status.success() && dir.join("media.mp3").exists());

        let dir = work.join(format!("daemon-{i}"));
        let t = Instant::now();
        let out = Command::new(bin("doradurctl"))
            .arg("--socket")
            .arg(&d.socket)
            .args(["download", &url, "--format", "mp3", "--quality", "320k", "--out"])
            .arg(&dir)
            .output()
            .unwrap();
        daemon.push(t.elapsed().as_secs_f64());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (direct, daemon) = (median(&mut direct), median(&mut daemon));
    println!("| runs | yt-dlp direct p50 (ms) | doradurctl download p50 (ms) | ratio | overhead (ms) |");
    println!("|---|---|---|---|---|");
    println!(
        "| {RUNS} | {:.0} | {:.0} | {:.3} | {:.0} |",
        direct * 1000.0,
        daemon * 1000.0,
        daemon / direct,
        (daemon - direct) * 1000.0
    );
}
