//! Start-up and idle footprint of the real binaries: time from exec to `READY=1` (migrations run, socket bound,
//! every worker said hello) and the resident memory of the supervisor and of one worker once idle.
//!
//! Run: `cargo build --release --workspace && cargo bench -p doradurad --bench startup`

use std::time::{Duration, Instant};

use doradura_testkit::{Daemon, NotifySocket, rss_kib};
use nix::sys::signal::Signal;

const RUNS: usize = 10;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    for workers in [1, 2, 4] {
        let mut ready_ms = Vec::new();
        let mut daemon_rss = Vec::new();
        let mut worker_rss = Vec::new();
        for _ in 0..RUNS {
            let b = Daemon::builder().env("WORKERS", workers.to_string());
            let mut notify = NotifySocket::bind(b.dir());
            let started = Instant::now();
            let mut d = b.notify(&notify).start();
            notify.wait_line("READY=1", Duration::from_secs(30));
            ready_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            std::thread::sleep(Duration::from_secs(1));
            daemon_rss.push(rss_kib(d.pid()).unwrap() as f64);
            let ws = d.workers().unwrap();
            worker_rss.push(rss_kib(ws[0].pid.unwrap()).unwrap() as f64);
            d.signal(Signal::SIGTERM);
            assert!(d.wait_exit(Duration::from_secs(30)).success());
        }
        for v in [&mut ready_ms, &mut daemon_rss, &mut worker_rss] {
            v.sort_by(f64::total_cmp);
        }
        println!(
            "| {workers} | {:.0} | {:.0} | {:.1} | {:.1} |",
            percentile(&ready_ms, 0.5),
            percentile(&ready_ms, 0.9),
            percentile(&daemon_rss, 0.5) / 1024.0,
            percentile(&worker_rss, 0.5) / 1024.0,
        );
    }
}
