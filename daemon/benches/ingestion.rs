//! Worker→supervisor event ingestion over the Unix socket: the real daemon spawns this very binary as its one
//! worker; in that role it says hello and then streams messages as fast as the supervisor takes them. HTTP/2 flow
//! control bounds how far the sender can run ahead of the reader (one window, a few thousand messages), so the
//! send rate over half a million messages is the ingestion rate within about 2%.
//!
//! Run: `cargo build --release --workspace && cargo bench -p doradurad --bench ingestion`

use std::time::{Duration, Instant};

use doradura_proto::worker_link_client::WorkerLinkClient;
use doradura_proto::{Hello, Pong, TaskProgress, WorkerMessage, worker_message};
use doradura_testkit::Daemon;
use tokio_stream::StreamExt;

const MESSAGES: u64 = 500_000;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The worker role: hello, then `MESSAGES` messages, then the rate into `BENCH_RESULT`.
fn flood(socket: String, id: u32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let channel = doradura_proto::connect_unix(&socket).await.unwrap();
        let hello = WorkerMessage {
            kind: Some(worker_message::Kind::Hello(Hello {
                worker_id: id,
                pid: std::process::id(),
                worker_version: "bench".into(),
                ytdlp_version: "bench".into(),
                ytdlp_error: String::new(),
            })),
        };
        let kind = std::env::var("BENCH_KIND").unwrap_or_default();
        // (first message taken, last message taken) by the transport.
        let marks = std::sync::Arc::new(std::sync::Mutex::new((None::<Instant>, None::<Instant>)));
        let mark = marks.clone();
        let messages = tokio_stream::iter(0..=MESSAGES).map(move |i| {
            if i == 0 {
                return hello.clone();
            }
            if i == 1 {
                mark.lock().unwrap().0 = Some(Instant::now());
            }
            if i == MESSAGES {
                mark.lock().unwrap().1 = Some(Instant::now());
            }
            let kind = if kind == "progress" {
                // Progress for a task this worker does not hold: decoded, routed, and dropped by the supervisor.
                worker_message::Kind::Progress(TaskProgress {
                    task_id: 0,
                    percent: 50.0,
                    ..Default::default()
                })
            } else {
                worker_message::Kind::Pong(Pong { seq: i })
            };
            WorkerMessage { kind: Some(kind) }
        });
        let _inbound = WorkerLinkClient::new(channel)
            .attach(messages)
            .await
            .unwrap()
            .into_inner();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let (Some(first), Some(last)) = *marks.lock().unwrap() {
                let rate = MESSAGES as f64 / last.duration_since(first).as_secs_f64();
                std::fs::write(std::env::var("BENCH_RESULT").unwrap(), format!("{rate:.0}")).unwrap();
                return;
            }
            assert!(Instant::now() < deadline, "the flood did not finish");
        }
    });
}

fn main() {
    if let (Some(socket), Some(id)) = (arg("--socket"), arg("--id")) {
        return flood(socket, id.parse().unwrap());
    }
    let exe = std::env::current_exe().unwrap();
    println!("| message | messages | rate (messages/s) |");
    println!("|---|---|---|");
    for kind in ["pong", "progress"] {
        let b = Daemon::builder()
            .env("WORKERS", "1")
            .env("WORKER_PATH", &exe)
            .env("BENCH_KIND", kind)
            .env("RUST_LOG", "error");
        let result = b.dir().join("rate");
        let d = b.env("BENCH_RESULT", &result).start();
        let rate = doradura_testkit::wait_for(Duration::from_secs(180), "the flood to finish", || {
            std::fs::read_to_string(&result).ok().filter(|s| !s.is_empty())
        });
        println!("| {kind} | {MESSAGES} | {rate} |");
        drop(d);
    }
}
