//! Telegram `/metrics [category]`: the details behind the dashboard. Figures over windows come from the database;
//! the few that only exist as counters of this process (errors, rate-limit hits) say "since start".

use doradura_proto::types::MetricsCategory;
use rusqlite::{Connection, params};

use crate::metrics::Metrics;
use crate::supervisor::WorkerSnapshot;

const DAY_MS: i64 = 86_400_000;

/// The value at quantile `q` of sorted values (nearest rank).
fn quantile(sorted: &[i64], q: f64) -> i64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn secs(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

pub fn performance(conn: &Connection, now_ms: i64) -> rusqlite::Result<String> {
    let since = now_ms - DAY_MS;
    let mut out = String::from("⚙️ Performance, last 24 h\nDuration (request to file) by format:\n");
    let mut any = false;
    for format in ["mp3", "mp4", "srt"] {
        let mut v: Vec<i64> = conn
            .prepare("SELECT total_ms FROM download_tasks WHERE state = 'done' AND format = ?1 AND finished_at_ms >= ?2 AND total_ms IS NOT NULL")?
            .query_map(params![format, since], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if v.is_empty() {
            continue;
        }
        any = true;
        v.sort_unstable();
        let avg = v.iter().sum::<i64>() / v.len() as i64;
        out.push_str(&format!(
            " • {}: avg {}, p50 {}, p95 {} ({} files)\n",
            format.to_uppercase(),
            secs(avg),
            secs(quantile(&v, 0.5)),
            secs(quantile(&v, 0.95)),
            v.len()
        ));
    }
    if !any {
        out.push_str(" • no data yet\n");
    }
    out.push_str("Success by format and quality:\n");
    let rows: Vec<(String, String, u64, u64)> = conn
        .prepare(
            "SELECT format, quality, SUM(state = 'done'), COUNT(*) FROM download_tasks
              WHERE state IN ('done', 'failed') AND finished_at_ms >= ?1 GROUP BY format, quality ORDER BY format, quality",
        )?
        .query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        out.push_str(" • no data yet\n");
    }
    for (f, q, done, all) in rows {
        out.push_str(&format!(
            " • {} {q}: {done}/{all} ({:.0}%)\n",
            f.to_uppercase(),
            done as f64 * 100.0 / all as f64
        ));
    }
    out.push_str("Failures by cause:\n");
    let rows: Vec<(String, u64)> = conn
        .prepare(
            "SELECT error_type, COUNT(*) FROM download_tasks WHERE state = 'failed' AND finished_at_ms >= ?1
              GROUP BY error_type ORDER BY COUNT(*) DESC, error_type",
        )?
        .query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        out.push_str(" • none\n");
    }
    for (e, n) in rows {
        out.push_str(&format!(" • {e}: {n}\n"));
    }
    Ok(out.trim_end().to_string())
}

pub fn business(conn: &Connection, now_ms: i64) -> rusqlite::Result<String> {
    let r = crate::revenue::compute(conn, now_ms)?;
    let active = crate::payments::active_by_plan(conn, now_ms / 1000)?;
    let active: Vec<String> = active.iter().map(|(p, n)| format!("{} {n}", p.title())).collect();
    Ok(format!(
        "{}\nActive subscriptions: {}",
        crate::revenue::render(&r),
        active.join(" · ")
    ))
}

pub fn engagement(conn: &Connection, now_ms: i64) -> rusqlite::Result<String> {
    let now_s = now_ms / 1000;
    let date = |days: i64| crate::users::utc_date(now_s - days * 86_400);
    let (dau, wau, mau, commands, new_users): (u64, u64, u64, u64, u64) = conn.query_row(
        "SELECT (SELECT COUNT(DISTINCT user_id) FROM user_activity WHERE activity_date = ?1),
                (SELECT COUNT(DISTINCT user_id) FROM user_activity WHERE activity_date >= ?2),
                (SELECT COUNT(DISTINCT user_id) FROM user_activity WHERE activity_date >= ?3),
                (SELECT COALESCE(SUM(command_count), 0) FROM user_activity WHERE activity_date = ?1),
                (SELECT COUNT(*) FROM users WHERE created_at >= ?4)",
        params![date(0), date(6), date(29), crate::plans::day_start_ms(now_ms) / 1000],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let formats: Vec<String> = conn
        .prepare(
            "SELECT format, COUNT(*) FROM download_tasks WHERE created_at_ms >= ?1 GROUP BY format ORDER BY format",
        )?
        .query_map([now_ms - DAY_MS], |r| {
            Ok(format!(
                "{} {}",
                r.get::<_, String>(0)?.to_uppercase(),
                r.get::<_, u64>(1)?
            ))
        })?
        .collect::<Result<_, _>>()?;
    Ok(format!(
        "👥 Engagement\nDAU: {dau} · WAU: {wau} · MAU: {mau}\nCommands today: {commands}\nNew users today: {new_users}\nFormats (24 h): {}",
        if formats.is_empty() {
            "no data yet".to_string()
        } else {
            formats.join(" · ")
        }
    ))
}

pub fn system(conn: &Connection, workers: &[WorkerSnapshot], m: &Metrics) -> rusqlite::Result<String> {
    let queue: Vec<String> = crate::queue::depth(conn)?
        .iter()
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    let up = crate::supervisor::workers_up(workers);
    let restarts: u32 = workers.iter().map(|w| w.restarts).sum();
    let errors: Vec<String> = m
        .errors_by_category()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(category, n)| format!("{category} {n}"))
        .collect();
    let limited: Vec<String> = m
        .rate_limit_hits()
        .into_iter()
        .map(|(p, n)| format!("{} {n}", p.title()))
        .collect();
    let refused: u64 = m.payment_failures();
    Ok(format!(
        "🖥 System\nWorkers: {up}/{} up, {restarts} restarts\nQueue: {}\nErrors since start: {}\nRate-limit hits since start: {}\nPayments refused since start: {refused}",
        workers.len(),
        queue.join(" · "),
        if errors.is_empty() {
            "none".to_string()
        } else {
            errors.join(" · ")
        },
        limited.join(" · ")
    ))
}

/// The answer to `/metrics` without a category, or with one it does not know.
pub fn menu(unknown: Option<&str>) -> String {
    let list: Vec<String> = MetricsCategory::ALL.iter().map(|c| format!("/metrics {c}")).collect();
    let list = list.join("\n");
    match unknown {
        Some(u) => format!(
            "Unknown category {:?}. The categories are:\n{list}",
            u.chars().take(40).collect::<String>()
        ),
        None => format!("📈 Metrics by category:\n{list}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(quantile(&v, 0.5), 10);
        assert_eq!(quantile(&v, 0.95), 19);
        assert_eq!(quantile(&[7], 0.95), 7);
    }

    #[test]
    fn performance_is_computed_from_finished_tasks() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c).unwrap();
        let now = 10 * DAY_MS;
        for (f, q, state, total, err) in [
            ("mp3", "320k", "done", Some(1000), None),
            ("mp3", "320k", "done", Some(3000), None),
            ("mp3", "320k", "failed", None, Some("network")),
            ("mp4", "720p", "failed", None, Some("too_large")),
        ] {
            c.execute(
                "INSERT INTO download_tasks (url, format, quality, priority, priority_rank, state, created_at_ms,
                                             finished_at_ms, total_ms, error_type)
                 VALUES ('u', ?1, ?2, 'low', 2, ?3, ?4, ?4, ?5, ?6)",
                params![f, q, state, now - 10, total, err],
            )
            .unwrap();
        }
        let text = performance(&c, now).unwrap();
        assert!(
            text.contains(" • MP3: avg 2.0 s, p50 1.0 s, p95 3.0 s (2 files)"),
            "{text}"
        );
        assert!(text.contains(" • MP3 320k: 2/3 (67%)"), "{text}");
        assert!(text.contains(" • MP4 720p: 0/1 (0%)"), "{text}");
        assert!(
            text.contains(" • network: 1") && text.contains(" • too_large: 1"),
            "{text}"
        );
        assert!(
            menu(Some("vanity")).starts_with("Unknown category \"vanity\". The categories are:\n/metrics performance")
        );
    }
}
