//! Load: N simulated users (1,000 by default) each send a link through the fake Bot API at once, then all press
//! MP3 at once; a fast fake yt-dlp copies a one-second mp3. Every user must end with the file or a refusal in
//! words; the bench reports how many of each, the enqueue latency (button press to the bot's answer to it, which
//! it sends once the task is queued and the request stored) and the peak RSS of the daemon and of its workers,
//! sampled every 50 ms.
//!
//! Run: `cargo build --release --workspace && cargo bench -p doradurad --bench load [-- --users N]`

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use doradura_testkit::telegram::{FakeTelegram, TgUser};
use doradura_testkit::{Daemon, children, rss_kib, script, wait_for};

const DEADLINE: Duration = Duration::from_secs(600);
const WORKERS: &str = "4";

fn users() -> i64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--users")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(1000)
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let n = users();
    let tg = FakeTelegram::start();
    let b = Daemon::builder();
    let dir = b.dir().to_path_buf();
    let mp3 = dir.join("tiny.mp3");
    let ok = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-q:a",
            "9",
        ])
        .arg(&mp3)
        .status()
        .expect("ffmpeg");
    assert!(ok.success());
    let fake = dir.join("fast-yt-dlp");
    script(
        &fake,
        &format!(
            "[ \"$1\" = --version ] && {{ echo 2099.01.01; exit 0; }}\n\
             while [ $# -gt 0 ]; do\n\
               case \"$1\" in --paths) dir=\"$2\"; shift ;; --print-to-file) info=\"$3\"; shift 2 ;; esac\n\
               shift\n\
             done\n\
             cp {} \"$dir/media.mp3\"\n\
             echo '{{\"title\": \"tone\", \"duration\": 1}}' > \"$info\"",
            mp3.display()
        ),
    );
    let d = b
        .env("TELOXIDE_TOKEN", "123456:LOAD-TOKEN")
        .env("TELOXIDE_API_URL", tg.url())
        .env("YTDLP_PATH", &fake)
        .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
        .env("FREE_COOLDOWN", "0s")
        .env("WORKERS", WORKERS)
        .env("RUST_LOG", "warn")
        .start();
    d.wait_idle(DEADLINE);
    wait_for(DEADLINE, "the bot to poll", || {
        (!tg.calls_of("getupdates").is_empty()).then_some(())
    });

    // Peak RSS of the daemon and of each worker, sampled until the run ends.
    let stop = Arc::new(AtomicBool::new(false));
    let (daemon_peak, worker_peak) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sampler = {
        let (stop, dp, wp, pid) = (stop.clone(), daemon_peak.clone(), worker_peak.clone(), d.pid());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                dp.fetch_max(rss_kib(pid).unwrap_or(0), Ordering::Relaxed);
                for w in children(pid) {
                    wp.fetch_max(rss_kib(w).unwrap_or(0), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let people: Vec<TgUser> = (0..n).map(|i| TgUser::new(10_000 + i, "Load")).collect();
    let started = Instant::now();
    for (i, u) in people.iter().enumerate() {
        tg.send_text(u, &format!("http://127.0.0.1:9/tone-{i}.mp3"));
    }
    let prompts: HashMap<i64, i64> = wait_for(DEADLINE, "every keyboard", || {
        let prompts: HashMap<i64, i64> = tg
            .calls_of("sendmessage")
            .iter()
            .filter(|c| c.str("text").as_deref() == Some("What should I make of this link?"))
            .filter_map(|c| Some((c.i64("chat_id")?, c.message_id?)))
            .collect();
        (prompts.len() as i64 == n).then_some(prompts)
    });
    let keyboards = started.elapsed();
    let pressed_at = Instant::now();
    let presses: HashMap<String, Instant> = people
        .iter()
        .map(|u| (tg.press(u, prompts[&u.id], "dl:mp3:128k"), Instant::now()))
        .collect();
    // Each user's outcome: the file, or the last thing the bot told them.
    let outcome = |tg: &FakeTelegram| -> HashMap<i64, String> {
        let mut out = HashMap::new();
        for c in tg.calls() {
            let Some(chat) = c.i64("chat_id").or_else(|| c.i64("user_id")) else {
                continue;
            };
            if c.method == "sendaudio" {
                out.insert(chat, "file".to_string());
            } else if let Some(text) = c.str("text")
                && out.get(&chat).is_none_or(|o| o != "file")
                && c.at >= pressed_at
                && (text.contains("full") || text.contains("refused") || text.contains("try again"))
            {
                out.insert(chat, text);
            }
        }
        out
    };
    let outcomes = wait_for(DEADLINE, "an outcome for every user", || {
        let o = outcome(&tg);
        (o.len() as i64 == n).then_some(o)
    });
    let total = pressed_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    // Enqueue latency: each press to the bot's answer to that press.
    let mut latency: Vec<f64> = tg
        .calls_of("answercallbackquery")
        .iter()
        .filter_map(|c| {
            let pressed = presses.get(&c.str("callback_query_id")?)?;
            Some(c.at.duration_since(*pressed).as_secs_f64() * 1000.0)
        })
        .collect();
    latency.sort_by(f64::total_cmp);
    let files = outcomes.values().filter(|o| *o == "file").count();
    let mut refusals: HashMap<&str, usize> = HashMap::new();
    for o in outcomes.values().filter(|o| *o != "file") {
        *refusals.entry(o.as_str()).or_default() += 1;
    }
    let db = rusqlite::Connection::open(d.db_path()).unwrap();
    let done: i64 = db
        .query_row("SELECT COUNT(*) FROM download_tasks WHERE state = 'done'", [], |r| {
            r.get(0)
        })
        .unwrap();
    println!("users: {n}, workers: {WORKERS}");
    println!("keyboards for every link: {:.1} s", keyboards.as_secs_f64());
    println!("files delivered: {files} (tasks done: {done}); refused: {refusals:?}");
    println!(
        "enqueue latency over {} answered presses: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (all {n} pressed at \
         once)",
        latency.len(),
        pct(&latency, 0.5),
        pct(&latency, 0.99),
        latency.last().copied().unwrap_or(0.0)
    );
    println!("press to the last outcome: {:.1} s", total.as_secs_f64());
    println!(
        "peak RSS: daemon {:.1} MiB, a worker {:.1} MiB",
        daemon_peak.load(Ordering::Relaxed) as f64 / 1024.0,
        worker_peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
    assert_eq!(outcomes.len() as i64, n, "no user left without an answer");
}
