//! `/health` for admins: figures read now from the supervisor and the database.

use std::time::Duration;

use doradura_proto::types::ErrorCategory;

use crate::supervisor::{WorkerPhase, WorkerSnapshot};

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
        .filter(|w| w.pid.is_some() && w.state != WorkerPhase::Starting)
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
    /// How long the oldest waiting task has waited.
    pub oldest_wait: Option<Duration>,
    /// Errors per category over the last hour.
    pub errors_last_hour: &'a [(ErrorCategory, u64)],
    pub database: Result<u32, String>,
    /// Database file plus its write-ahead log, in bytes.
    pub database_bytes: u64,
}

pub fn render(h: &Health<'_>) -> String {
    let up = crate::supervisor::workers_up(h.workers);
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
    if let Some(wait) = h.oldest_wait {
        out.push_str(&format!("Oldest wait: {}\n", uptime(wait)));
    }
    let errors: Vec<String> = h
        .errors_last_hour
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    out.push_str(&format!(
        "Errors (last hour): {}\n",
        if errors.is_empty() {
            "none".to_string()
        } else {
            errors.join(" · ")
        }
    ));
    out.push_str(&format!("yt-dlp: {}\n", ytdlp_status(h.workers)));
    out.push_str(&match &h.database {
        Ok(v) => format!("Database: ✅ ok (schema v{v}, {:.1} MB)", h.database_bytes as f64 / 1e6),
        Err(e) => format!("Database: ❌ {e}"),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use doradura_proto::types::Priority;

    fn worker(id: u32, state: WorkerPhase, ytdlp: &str) -> WorkerSnapshot {
        WorkerSnapshot {
            id,
            pid: Some(100 + id),
            state,
            restarts: id,
            consecutive_failures: 0,
            ytdlp_version: ytdlp.into(),
            last_exit: None,
            connected_for: None,
            next_start_in: None,
            task: (state == WorkerPhase::Busy).then_some(7),
            progress: None,
        }
    }

    #[test]
    fn the_report_shows_what_it_was_given() {
        let workers = [
            worker(0, WorkerPhase::Busy, "2026.10.26"),
            worker(1, WorkerPhase::Idle, ""),
        ];
        let text = render(&Health {
            uptime: Duration::from_secs(3725),
            workers: &workers,
            queue: &[(Priority::High, 1), (Priority::Medium, 0), (Priority::Low, 4)],
            oldest_wait: Some(Duration::from_secs(90)),
            errors_last_hour: &[
                (ErrorCategory::Database, 0),
                (ErrorCategory::Download, 3),
                (ErrorCategory::TelegramApi, 1),
            ],
            database: Ok(6),
            database_bytes: 2_500_000,
        });
        for line in [
            "Uptime: 1h 2m",
            "Workers: 2/2 up",
            " • #0 pid 100 busy, task 7, 0 restarts",
            " • #1 pid 101 idle, 1 restart",
            "Queue: high 1 · medium 0 · low 4",
            "Oldest wait: 1m 30s",
            "Errors (last hour): download 3 · telegram_api 1",
            "yt-dlp: ⚠️ 2026.10.26 on 1/2 workers",
            "Database: ✅ ok (schema v6, 2.5 MB)",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
