//! `/health` for admins: figures read now from the supervisor and the database.

use std::time::Duration;

use crate::supervisor::WorkerSnapshot;

fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3600 % 24),
    }
}

/// `✅ <version>`, `⚠️ <version> on k/n workers`, or `❌ missing on every worker`.
pub fn ytdlp_status(workers: &[WorkerSnapshot]) -> String {
    let mut versions: Vec<&str> = workers
        .iter()
        .map(|w| w.ytdlp_version.as_str())
        .filter(|v| !v.is_empty())
        .collect();
    versions.sort();
    versions.dedup();
    let connected = workers
        .iter()
        .filter(|w| w.pid.is_some() && w.state != "starting")
        .count();
    let with_ytdlp = workers.iter().filter(|w| !w.ytdlp_version.is_empty()).count();
    match versions.as_slice() {
        [] => "❌ missing on every worker".to_string(),
        vs if with_ytdlp < connected => format!("⚠️ {} on {with_ytdlp}/{connected} workers", vs.join(", ")),
        vs => format!("✅ {}", vs.join(", ")),
    }
}

pub struct Health<'a> {
    pub uptime: Duration,
    pub workers: &'a [WorkerSnapshot],
    pub queue: &'a [(doradura_proto::types::Priority, u32)],
    pub database: Result<u32, String>,
}

pub fn render(h: &Health<'_>) -> String {
    let up = h.workers.iter().filter(|w| matches!(w.state, "idle" | "busy")).count();
    let mut out = format!(
        "🩺 doradura health\nUptime: {}\nWorkers: {up}/{} up\n",
        uptime(h.uptime),
        h.workers.len()
    );
    for w in h.workers {
        let pid = w.pid.map_or("-".to_string(), |p| p.to_string());
        let task = w.task.map(|t| format!(", task {t}")).unwrap_or_default();
        let restarts = if w.restarts == 1 {
            "1 restart".to_string()
        } else {
            format!("{} restarts", w.restarts)
        };
        out.push_str(&format!(" • #{} pid {pid} {}{task}, {restarts}\n", w.id, w.state));
    }
    let queue: Vec<String> = h.queue.iter().map(|(p, n)| format!("{p} {n}")).collect();
    out.push_str(&format!("Queue: {}\n", queue.join(" · ")));
    out.push_str(&format!("yt-dlp: {}\n", ytdlp_status(h.workers)));
    out.push_str(&match &h.database {
        Ok(v) => format!("Database: ✅ ok (schema v{v})"),
        Err(e) => format!("Database: ❌ {e}"),
    });
    out
}
