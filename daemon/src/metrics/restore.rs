//! Figures that come from the database: counters restored at start-up so totals never go backwards across
//! restarts, and user gauges computed from `user_activity`.

use doradura_proto::types::{ErrorCategory, ErrorType, Format, UnknownValue};
use rusqlite::Connection;
use tracing::warn;

use super::Metrics;
use super::catalog::plan_index;

/// A stored value this version does not know (a row written by a newer one): logged, and its rows left out of
/// the restored counters.
fn known<T: std::str::FromStr<Err = UnknownValue>>(text: &str) -> Option<T> {
    match text.parse() {
        Ok(v) => Some(v),
        Err(e) => {
            warn!(error = %e, "stored rows left out of the restored counters");
            None
        }
    }
}

/// Adds the download history to the fresh counters (histograms start empty: their buckets are not stored).
pub fn restore(conn: &Connection, m: &Metrics) -> rusqlite::Result<()> {
    let mut st = conn.prepare(
        "SELECT format, quality, COUNT(*), COALESCE(SUM(bytes), 0) FROM download_tasks
          WHERE state = 'done' GROUP BY format, quality",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, u64>(2)?,
            r.get::<_, u64>(3)?,
        ))
    })?;
    for row in rows {
        let (format, quality, n, bytes) = row?;
        let Some(format) = known::<Format>(&format) else {
            continue;
        };
        // As the queue reads it: an unknown stored quality counts under the format's default, so that a restart
        // never counts fewer downloads than were made.
        let quality = format.quality(&quality).unwrap_or_else(|e| {
            warn!(error = %e, "stored rows counted under the format's default quality");
            format.qualities()[0]
        });
        let i = m.success_index(format, quality);
        m.download_success[i].inc_by(n);
        m.download_bytes[format.index()].inc_by(bytes);
    }
    let mut st = conn.prepare(
        "SELECT format, COALESCE(error_type, 'unknown'), COUNT(*) FROM download_tasks
          WHERE state IN ('failed', 'cancelled') GROUP BY format, error_type",
    )?;
    let rows = st.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, u64>(2)?))
    })?;
    for row in rows {
        let (format, error, n) = row?;
        let (Some(format), Some(error)) = (known::<Format>(&format), known::<ErrorType>(&error)) else {
            continue;
        };
        m.download_failure[format.index()][error.index()].inc_by(n);
    }
    let mut st =
        conn.prepare("SELECT format, COALESCE(SUM(MAX(attempts - 1, 0)), 0) FROM download_tasks GROUP BY format")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
    for row in rows {
        let (format, n) = row?;
        if let Some(format) = known::<Format>(&format) {
            m.task_retries[format.index()].inc_by(n);
        }
    }
    for (plan, stars) in crate::payments::revenue_by_plan(conn)? {
        let i = plan_index(plan);
        m.revenue_total.inc_by(stars);
        m.revenue_by_plan[i].inc_by(stars);
    }
    let mut st = conn.prepare("SELECT plan, COUNT(*) FROM payments GROUP BY plan")?;
    for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))? {
        let (plan, n) = row?;
        if let Some(plan) = known::<crate::plans::Plan>(&plan) {
            m.payment_success[plan_index(plan)].inc_by(n);
            m.new_subscriptions[plan_index(plan)].inc_by(n);
        }
    }
    m.set_active(&crate::payments::active_by_plan(conn, crate::now_ms() / 1000)?);
    let new_users: u64 = conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
    m.new_users.inc_by(new_users);
    m.set_queue_depth(&crate::queue::depth(conn)?);
    refresh_users(conn, m, crate::now_ms() / 1000)
}

/// DAU (today, UTC), MAU (the last 30 days) and total users, from the database.
pub fn refresh_users(conn: &Connection, m: &Metrics, now_s: i64) -> rusqlite::Result<()> {
    let today = crate::users::utc_date(now_s);
    let month_ago = crate::users::utc_date(now_s - 29 * 86_400);
    let (dau, mau, total): (i64, i64, i64) = conn.query_row(
        "SELECT (SELECT COUNT(DISTINCT user_id) FROM user_activity WHERE activity_date = ?1),
                (SELECT COUNT(DISTINCT user_id) FROM user_activity WHERE activity_date >= ?2),
                (SELECT COUNT(*) FROM users)",
        [&today, &month_ago],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    m.dau.set(dau);
    m.mau.set(mau);
    m.total_users.set(total);
    Ok(())
}

/// Queued tasks by priority, read again after the queue changed.
pub async fn refresh_depth(db: &crate::db::Database, m: &Metrics) {
    match db.call(|c| crate::queue::depth(c)).await {
        Ok(Ok(depth)) => m.set_queue_depth(&depth),
        _ => m.error(ErrorCategory::Database),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{self, NewTask, QueuePolicy, Success};
    use doradura_proto::types::Priority;

    #[test]
    fn a_download_of_an_unknown_stored_quality_is_still_counted_after_a_restart() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c).unwrap();
        let policy = QueuePolicy {
            max_size: 10,
            max_attempts: 3,
            retry_backoff_ms: 1000,
        };
        for (i, quality) in ["320k", "999k"].into_iter().enumerate() {
            let new = NewTask {
                url: format!("https://example.com/{i}"),
                format: Format::Mp3,
                quality: "320k",
                priority: Priority::High,
                user_id: None,
                chat_id: None,
            };
            let id = queue::enqueue(&mut c, &new, 1, &policy).unwrap().id;
            queue::lease(&mut c, 0, 2).unwrap().unwrap();
            let done = Success {
                bytes: 100,
                title: String::new(),
                media_duration_s: 1.0,
                ytdlp_ms: 1,
            };
            assert!(queue::succeed(&mut c, id, &done, 3).unwrap());
            c.execute(
                "UPDATE download_tasks SET quality = ?1 WHERE id = ?2",
                rusqlite::params![quality, id],
            )
            .unwrap();
        }
        let m = Metrics::new();
        restore(&c, &m).unwrap();
        let text = m.encode();
        assert!(
            text.contains("doradura_download_success_total{format=\"mp3\",quality=\"320k\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("doradura_download_bytes_total{format=\"mp3\"} 200"),
            "{text}"
        );
    }
}
