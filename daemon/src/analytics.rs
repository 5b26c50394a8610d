//! The admin dashboard's figures, computed from the database over real windows: the last 24 hours and the 24
//! before them. Nothing here reads a process-lifetime counter.

use rusqlite::{Connection, params};

const DAY_MS: i64 = 86_400_000;

/// Figures of one 24-hour window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Window {
    /// Tasks that finished (done or failed; cancellations are not downloads).
    pub downloads: u64,
    pub done: u64,
    pub failed: u64,
    /// Mean request-to-file time of the done tasks, in seconds.
    pub avg_duration_s: Option<f64>,
    /// Stars paid in the window.
    pub revenue: u64,
}

impl Window {
    /// Done / finished, in percent.
    pub fn success_rate(&self) -> Option<f64> {
        (self.downloads > 0).then(|| self.done as f64 * 100.0 / self.downloads as f64)
    }

    pub fn error_rate(&self) -> Option<f64> {
        (self.downloads > 0).then(|| self.failed as f64 * 100.0 / self.downloads as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dashboard {
    pub last: Window,
    pub previous: Window,
    pub active_subscriptions: u64,
    /// Payments since 00:00 UTC (new plans and renewals).
    pub new_today: u64,
    /// Tasks waiting or running now.
    pub queue: u64,
    /// Distinct active users today (UTC).
    pub dau: u64,
    /// Commands today (UTC).
    pub commands: u64,
    /// The most requested format in the last 24 hours, with its count.
    pub top_format: Option<(String, u64)>,
    /// When the figures were read, Unix seconds.
    pub at_s: i64,
}

fn window(conn: &Connection, from_ms: i64, to_ms: i64) -> rusqlite::Result<Window> {
    let (done, failed, avg): (u64, u64, Option<f64>) = conn.query_row(
        "SELECT COALESCE(SUM(state = 'done'), 0), COALESCE(SUM(state = 'failed'), 0),
                AVG(CASE WHEN state = 'done' THEN total_ms END) / 1000.0
           FROM download_tasks WHERE finished_at_ms >= ?1 AND finished_at_ms < ?2",
        params![from_ms, to_ms],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let revenue: u64 = conn.query_row(
        "SELECT COALESCE(SUM(amount_stars), 0) FROM payments WHERE paid_at >= ?1 AND paid_at < ?2",
        // Payments carry whole seconds: both ends round up, so the current second is in and no second is in two
        // windows.
        params![(from_ms + 999).div_euclid(1000), (to_ms + 999).div_euclid(1000)],
        |r| r.get(0),
    )?;
    Ok(Window {
        downloads: done + failed,
        done,
        failed,
        avg_duration_s: avg,
        revenue,
    })
}

pub fn dashboard(conn: &Connection, now_ms: i64) -> rusqlite::Result<Dashboard> {
    let today = crate::users::utc_date(now_ms / 1000);
    let day_start_s = crate::plans::day_start_ms(now_ms) / 1000;
    let active = crate::payments::active_by_plan(conn, now_ms / 1000)?
        .iter()
        .map(|(_, n)| *n as u64)
        .sum();
    let (new_today, queue, dau, commands): (u64, u64, u64, u64) = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM payments WHERE paid_at >= ?1),
                (SELECT COUNT(*) FROM download_tasks WHERE state IN ('queued', 'running')),
                (SELECT COUNT(DISTINCT user_id) FROM user_activity WHERE activity_date = ?2),
                (SELECT COALESCE(SUM(command_count), 0) FROM user_activity WHERE activity_date = ?2)",
        params![day_start_s, today],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let top_format = conn
        .query_row(
            "SELECT format, COUNT(*) AS n FROM download_tasks WHERE created_at_ms >= ?1
              GROUP BY format ORDER BY n DESC, format LIMIT 1",
            [now_ms - DAY_MS],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)),
        )
        .ok();
    Ok(Dashboard {
        last: window(conn, now_ms - DAY_MS, now_ms + 1)?,
        previous: window(conn, now_ms - 2 * DAY_MS, now_ms - DAY_MS)?,
        active_subscriptions: active,
        new_today,
        queue,
        dau,
        commands,
        top_format,
        at_s: now_ms / 1000,
    })
}

/// `(+3 vs previous 24h)`; nothing when there is nothing to compare.
fn change(now: Option<f64>, before: Option<f64>, unit: &str, decimals: usize) -> String {
    match (now, before) {
        (Some(n), Some(b)) => {
            let d = n - b;
            let sign = if d >= 0.0 { "+" } else { "" };
            format!(" ({sign}{d:.decimals$}{unit} vs previous 24h)")
        }
        _ => String::new(),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("no data yet".into(), |v| format!("{v:.1}%"))
}

/// The `/analytics` text, with the contract's labels.
pub fn render(d: &Dashboard, ytdlp: &str) -> String {
    let (l, p) = (&d.last, &d.previous);
    let any = l.downloads > 0 || p.downloads > 0;
    let count = |w: &Window| any.then_some(w.downloads as f64);
    let top = d.top_format.as_ref().map_or("no data yet".to_string(), |(f, n)| {
        format!("{} ({n})", f.to_uppercase())
    });
    [
        "📊 Analytics — last 24 hours".to_string(),
        format!("Downloads: {}{}", l.downloads, change(count(l), count(p), "", 0)),
        format!(
            "Success rate: {}{}",
            pct(l.success_rate()),
            change(l.success_rate(), p.success_rate(), " pts", 1)
        ),
        format!(
            "Avg duration: {}{}",
            l.avg_duration_s.map_or("no data yet".into(), |s| format!("{s:.1} s")),
            change(l.avg_duration_s, p.avg_duration_s, " s", 1)
        ),
        format!(
            "Revenue: {} ⭐{}",
            l.revenue,
            change(Some(l.revenue as f64), Some(p.revenue as f64), "", 0)
        ),
        format!("Active subs: {}", d.active_subscriptions),
        format!("New today: {}", d.new_today),
        format!("Queue: {}", d.queue),
        format!(
            "Error rate: {}{}",
            pct(l.error_rate()),
            change(l.error_rate(), p.error_rate(), " pts", 1)
        ),
        format!("yt-dlp: {ytdlp}"),
        format!("DAU: {}", d.dau),
        format!("Commands: {}", d.commands),
        format!("Top format: {top}"),
        format!("Updated: {}", crate::users::utc_time(d.at_s)),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c).unwrap();
        c
    }

    fn task(c: &Connection, format: &str, state: &str, created: i64, finished: Option<i64>, total: Option<i64>) {
        c.execute(
            "INSERT INTO download_tasks (url, format, quality, priority, priority_rank, state, created_at_ms,
                                         finished_at_ms, total_ms)
             VALUES ('https://a/b', ?1, 'x', 'low', 2, ?2, ?3, ?4, ?5)",
            params![format, state, created, finished, total],
        )
        .unwrap();
    }

    #[test]
    fn windows_count_what_finished_in_them() {
        let c = db();
        let now = 10 * DAY_MS;
        // Last 24 h: 3 done (2 s, 4 s, 6 s), 1 failed, 1 cancelled, 1 still queued.
        for (s, t) in [("done", 2_000), ("done", 4_000), ("done", 6_000)] {
            task(&c, "mp3", s, now - 1000, Some(now - 500), Some(t));
        }
        task(&c, "mp4", "failed", now - 1000, Some(now - 400), None);
        task(&c, "mp4", "cancelled", now - 1000, Some(now - 300), None);
        task(&c, "srt", "queued", now - 100, None, None);
        // The 24 h before: 1 done, 1 failed. Older: ignored.
        task(
            &c,
            "mp3",
            "done",
            now - DAY_MS - 5000,
            Some(now - DAY_MS - 10),
            Some(10_000),
        );
        task(&c, "mp3", "failed", now - DAY_MS - 5000, Some(now - DAY_MS - 20), None);
        task(&c, "mp3", "done", now - 3 * DAY_MS, Some(now - 3 * DAY_MS), Some(1));
        c.execute(
            "INSERT INTO users (user_id, first_name, created_at, last_seen_at) VALUES (1, 'a', 0, 0)",
            [],
        )
        .unwrap();
        c.execute(
            "INSERT INTO payments (telegram_payment_charge_id, user_id, plan, amount_stars, paid_at)
             VALUES ('x', 1, 'vip', 250, ?1), ('y', 1, 'vip', 100, ?2)",
            params![now / 1000 - 10, (now - DAY_MS) / 1000 - 10],
        )
        .unwrap();
        let d = dashboard(&c, now).unwrap();
        assert_eq!((d.last.downloads, d.last.done, d.last.failed), (4, 3, 1));
        assert_eq!(d.last.avg_duration_s, Some(4.0));
        assert_eq!(d.last.success_rate(), Some(75.0));
        assert_eq!((d.previous.downloads, d.previous.revenue), (2, 100));
        assert_eq!(d.last.revenue, 250);
        assert_eq!(d.queue, 1);
        assert_eq!(d.top_format, Some(("mp3".to_string(), 3)));
        let text = render(&d, "✅ 2026.10.26");
        for line in [
            "Downloads: 4 (+2 vs previous 24h)",
            "Success rate: 75.0% (+25.0 pts vs previous 24h)",
            "Avg duration: 4.0 s (-6.0 s vs previous 24h)",
            "Revenue: 250 ⭐ (+150 vs previous 24h)",
            "Queue: 1",
            "Error rate: 25.0% (-25.0 pts vs previous 24h)",
            "Top format: MP3 (3)",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn an_empty_database_says_so_instead_of_inventing_figures() {
        let d = dashboard(&db(), 10 * DAY_MS).unwrap();
        let text = render(&d, "❌ missing");
        for line in [
            "Downloads: 0",
            "Success rate: no data yet",
            "Avg duration: no data yet",
            "Error rate: no data yet",
            "Top format: no data yet",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
