//! Hourly and daily roll-ups into `metric_aggregates`, so long windows (and `/export`) read a few rows per period
//! instead of the task history, and the figures outlive any pruning of it.
//!
//! Every figure is keyed by the time its event happened (a task's finish, a payment, a user's first update), so
//! only the periods from the previous roll-up onwards can change: those are deleted and written again in one
//! transaction. The first roll-up of a process starts from the newest period already stored.

use rusqlite::{Connection, Transaction, params};

pub const HOUR_S: i64 = 3_600;
pub const DAY_S: i64 = 86_400;

/// One grouped query: `(period start, label value or NULL, value)` rows for events at or after `?1` (seconds),
/// with `?2` the period length in seconds.
struct Source {
    metric: &'static str,
    /// The label's name, when the query groups by one.
    label: Option<&'static str>,
    sql: &'static str,
    /// Daily only: sources whose data has no time within the day (`user_activity`).
    daily_only: bool,
}

const SOURCES: &[Source] = &[
    Source {
        metric: "downloads_done",
        label: Some("format"),
        sql: "SELECT finished_at_ms / 1000 / ?2 * ?2 AS t, format, COUNT(*) FROM download_tasks
               WHERE state = 'done' AND finished_at_ms >= ?1 * 1000 GROUP BY t, format",
        daily_only: false,
    },
    Source {
        metric: "downloads_failed",
        label: Some("error_type"),
        sql: "SELECT finished_at_ms / 1000 / ?2 * ?2 AS t, COALESCE(error_type, 'unknown'), COUNT(*)
                FROM download_tasks WHERE state = 'failed' AND finished_at_ms >= ?1 * 1000
               GROUP BY t, 2",
        daily_only: false,
    },
    Source {
        metric: "download_seconds_sum",
        label: None,
        sql: "SELECT finished_at_ms / 1000 / ?2 * ?2 AS t, NULL, SUM(total_ms) / 1000.0 FROM download_tasks
               WHERE state = 'done' AND finished_at_ms >= ?1 * 1000 GROUP BY t",
        daily_only: false,
    },
    Source {
        metric: "download_bytes",
        label: None,
        sql: "SELECT finished_at_ms / 1000 / ?2 * ?2 AS t, NULL, COALESCE(SUM(bytes), 0) FROM download_tasks
               WHERE state = 'done' AND finished_at_ms >= ?1 * 1000 GROUP BY t",
        daily_only: false,
    },
    Source {
        metric: "revenue_stars",
        label: Some("plan"),
        sql: "SELECT paid_at / ?2 * ?2 AS t, plan, SUM(amount_stars) FROM payments WHERE paid_at >= ?1
               GROUP BY t, plan",
        daily_only: false,
    },
    Source {
        metric: "payments",
        label: Some("plan"),
        sql: "SELECT paid_at / ?2 * ?2 AS t, plan, COUNT(*) FROM payments WHERE paid_at >= ?1 GROUP BY t, plan",
        daily_only: false,
    },
    Source {
        metric: "refunds",
        label: None,
        sql: "SELECT refunded_at / ?2 * ?2 AS t, NULL, COUNT(*) FROM payments WHERE refunded_at >= ?1 GROUP BY t",
        daily_only: false,
    },
    Source {
        metric: "checkouts",
        label: Some("plan"),
        sql: "SELECT created_at_ms / 1000 / ?2 * ?2 AS t, plan, COUNT(*) FROM checkouts
               WHERE created_at_ms >= ?1 * 1000 GROUP BY t, plan",
        daily_only: false,
    },
    Source {
        metric: "new_users",
        label: None,
        sql: "SELECT created_at / ?2 * ?2 AS t, NULL, COUNT(*) FROM users WHERE created_at >= ?1 GROUP BY t",
        daily_only: false,
    },
    Source {
        metric: "active_users",
        label: None,
        sql: "SELECT CAST(strftime('%s', activity_date) AS INTEGER) AS t, NULL, COUNT(*) FROM user_activity
               WHERE activity_date >= date(?1, 'unixepoch') AND ?2 > 0 GROUP BY activity_date",
        daily_only: true,
    },
    Source {
        metric: "commands",
        label: None,
        sql: "SELECT CAST(strftime('%s', activity_date) AS INTEGER) AS t, NULL, SUM(command_count)
                FROM user_activity WHERE activity_date >= date(?1, 'unixepoch') AND ?2 > 0 GROUP BY activity_date",
        daily_only: true,
    },
];

/// The metric names written, for readers that pivot them.
pub fn metric_names() -> impl Iterator<Item = &'static str> {
    SOURCES.iter().map(|s| s.metric)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hour,
    Day,
}

impl Period {
    pub fn seconds(self) -> i64 {
        match self {
            Period::Hour => HOUR_S,
            Period::Day => DAY_S,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }
}

/// Rolls up both periods from `since_s` (or, when `None`, from the newest period already stored) to now.
/// Returns the rows written.
pub fn roll_up(conn: &mut Connection, since_s: Option<i64>) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let mut written = 0;
    for period in [Period::Hour, Period::Day] {
        let len = period.seconds();
        let from = match since_s {
            Some(s) => s,
            None => tx
                .query_row(
                    "SELECT COALESCE(MAX(timestamp), 0) FROM metric_aggregates WHERE period = ?1",
                    [period.as_str()],
                    |r| r.get(0),
                )
                .unwrap_or(0),
        };
        written += period_rows(&tx, period, from - from.rem_euclid(len))?;
    }
    tx.commit()?;
    Ok(written)
}

fn period_rows(tx: &Transaction<'_>, period: Period, from: i64) -> rusqlite::Result<usize> {
    tx.execute(
        "DELETE FROM metric_aggregates WHERE period = ?1 AND timestamp >= ?2",
        params![period.as_str(), from],
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO metric_aggregates (metric_name, metric_type, labels, value, timestamp, period)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut written = 0;
    for source in SOURCES.iter().filter(|s| period == Period::Day || !s.daily_only) {
        let mut query = tx.prepare_cached(source.sql)?;
        let rows = query.query_map(params![from, period.seconds()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, f64>(2)?))
        })?;
        for row in rows {
            let (t, label, value) = row?;
            let labels = match (source.label, label) {
                (Some(name), Some(v)) => serde_json::json!({ name: v }).to_string(),
                _ => "{}".to_string(),
            };
            let kind = if source.metric == "active_users" {
                "gauge"
            } else {
                "counter"
            };
            insert.execute(params![source.metric, kind, labels, value, t, period.as_str()])?;
            written += 1;
        }
    }
    Ok(written)
}

/// One day of the daily roll-up, summed over labels, with the per-format downloads kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Day {
    pub start_s: i64,
    pub done: u64,
    pub failed: u64,
    pub done_by_format: [u64; 3],
    pub seconds_sum: f64,
    pub bytes: u64,
    pub revenue: u64,
    pub payments: u64,
    pub refunds: u64,
    pub checkouts: u64,
    pub new_users: u64,
    pub active_users: u64,
    pub commands: u64,
}

/// The last `days` UTC days up to `now_s`, oldest first, one entry per day (zeros where nothing happened).
pub fn daily(conn: &Connection, now_s: i64, days: u32) -> rusqlite::Result<Vec<Day>> {
    let today = now_s - now_s.rem_euclid(DAY_S);
    let first = today - (i64::from(days) - 1) * DAY_S;
    let mut out: Vec<Day> = (0..i64::from(days))
        .map(|i| Day {
            start_s: first + i * DAY_S,
            ..Day::default()
        })
        .collect();
    let mut q = conn.prepare(
        "SELECT timestamp, metric_name, labels, value FROM metric_aggregates
          WHERE period = 'day' AND timestamp >= ?1 AND timestamp <= ?2",
    )?;
    let rows = q.query_map(params![first, today], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, f64>(3)?,
        ))
    })?;
    for row in rows {
        let (t, metric, labels, value) = row?;
        let Some(day) = out.get_mut(((t - first) / DAY_S) as usize) else {
            continue;
        };
        let n = value as u64;
        match metric.as_str() {
            "downloads_done" => {
                day.done += n;
                let format = serde_json::from_str::<serde_json::Value>(&labels)
                    .ok()
                    .and_then(|v| v["format"].as_str().and_then(|f| f.parse().ok()));
                if let Some(f) = format {
                    day.done_by_format[doradura_proto::types::Format::ALL
                        .iter()
                        .position(|x| *x == f)
                        .unwrap_or(0)] += n;
                }
            }
            "downloads_failed" => day.failed += n,
            "download_seconds_sum" => day.seconds_sum += value,
            "download_bytes" => day.bytes += n,
            "revenue_stars" => day.revenue += n,
            "payments" => day.payments += n,
            "refunds" => day.refunds += n,
            "checkouts" => day.checkouts += n,
            "new_users" => day.new_users += n,
            "active_users" => day.active_users += n,
            "commands" => day.commands += n,
            _ => {}
        }
    }
    Ok(out)
}

/// The `/export` document: one row per day.
pub fn csv(days: &[Day]) -> String {
    let mut out = String::from(
        "date,downloads,succeeded,failed,success_rate_pct,avg_duration_s,succeeded_mp3,succeeded_mp4,succeeded_srt,\
         bytes,revenue_stars,payments,refunds,checkouts,new_users,active_users,commands\n",
    );
    for d in days {
        let downloads = d.done + d.failed;
        let rate = if downloads > 0 {
            format!("{:.1}", d.done as f64 * 100.0 / downloads as f64)
        } else {
            String::new()
        };
        let avg = if d.done > 0 {
            format!("{:.1}", d.seconds_sum / d.done as f64)
        } else {
            String::new()
        };
        let [mp3, mp4, srt] = d.done_by_format;
        out.push_str(&format!(
            "{},{downloads},{},{},{rate},{avg},{mp3},{mp4},{srt},{},{},{},{},{},{},{},{}\n",
            crate::users::utc_date(d.start_s),
            d.done,
            d.failed,
            d.bytes,
            d.revenue,
            d.payments,
            d.refunds,
            d.checkouts,
            d.new_users,
            d.active_users,
            d.commands
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c).unwrap();
        c
    }

    fn task(c: &Connection, format: &str, state: &str, finished_s: i64, bytes: i64, total_ms: i64) {
        c.execute(
            "INSERT INTO download_tasks (url, format, quality, priority, priority_rank, state, created_at_ms,
                                         finished_at_ms, total_ms, bytes, error_type)
             VALUES ('https://a/b', ?1, 'x', 'low', 2, ?2, 0, ?3, ?4, ?5,
                     CASE WHEN ?2 = 'failed' THEN 'unavailable' END)",
            params![format, state, finished_s * 1000, total_ms, bytes],
        )
        .unwrap();
    }

    fn value(c: &Connection, metric: &str, labels: &str, period: &str, t: i64) -> Option<f64> {
        c.query_row(
            "SELECT value FROM metric_aggregates WHERE metric_name = ?1 AND labels = ?2 AND period = ?3
               AND timestamp = ?4",
            params![metric, labels, period, t],
            |r| r.get(0),
        )
        .ok()
    }

    #[test]
    fn periods_hold_what_happened_in_them_and_a_second_roll_up_changes_nothing() {
        let mut c = db();
        let day = 20_000 * DAY_S;
        task(&c, "mp3", "done", day + 10, 100, 2_000);
        task(&c, "mp3", "done", day + HOUR_S + 10, 300, 4_000);
        task(&c, "mp4", "failed", day + HOUR_S + 20, 0, 0);
        task(&c, "srt", "cancelled", day + 30, 0, 0);
        c.execute(
            "INSERT INTO users (user_id, first_name, created_at, last_seen_at) VALUES (1, 'a', ?1, ?1)",
            [day + 5],
        )
        .unwrap();
        c.execute(
            "INSERT INTO payments (telegram_payment_charge_id, user_id, plan, amount_stars, paid_at)
             VALUES ('x', 1, 'vip', 250, ?1)",
            [day + 50],
        )
        .unwrap();
        c.execute(
            "INSERT INTO user_activity (user_id, activity_date, command_count, last_activity_at)
             VALUES (1, ?1, 3, ?2), (2, ?1, 1, ?2)",
            params![crate::users::utc_date(day), day],
        )
        .unwrap();

        roll_up(&mut c, None).unwrap();
        let rows = |c: &Connection| -> i64 {
            c.query_row("SELECT COUNT(*) FROM metric_aggregates", [], |r| r.get(0))
                .unwrap()
        };
        let first = rows(&c);
        assert_eq!(
            value(&c, "downloads_done", r#"{"format":"mp3"}"#, "hour", day),
            Some(1.0)
        );
        assert_eq!(
            value(&c, "downloads_done", r#"{"format":"mp3"}"#, "hour", day + HOUR_S),
            Some(1.0)
        );
        assert_eq!(
            value(&c, "downloads_done", r#"{"format":"mp3"}"#, "day", day),
            Some(2.0)
        );
        assert_eq!(
            value(&c, "downloads_failed", r#"{"error_type":"unavailable"}"#, "day", day),
            Some(1.0)
        );
        assert_eq!(value(&c, "download_seconds_sum", "{}", "day", day), Some(6.0));
        assert_eq!(value(&c, "revenue_stars", r#"{"plan":"vip"}"#, "day", day), Some(250.0));
        assert_eq!(value(&c, "active_users", "{}", "day", day), Some(2.0));
        assert_eq!(value(&c, "commands", "{}", "day", day), Some(4.0));
        assert_eq!(value(&c, "active_users", "{}", "hour", day), None, "no hourly DAU");

        // Again, from the newest period stored: the same rows, not doubled.
        roll_up(&mut c, None).unwrap();
        assert_eq!(rows(&c), first);
        assert_eq!(
            value(&c, "downloads_done", r#"{"format":"mp3"}"#, "day", day),
            Some(2.0)
        );

        // A later event lands in its own period; the export sums the day.
        task(&c, "mp4", "done", day + 2 * HOUR_S, 50, 1_000);
        roll_up(&mut c, Some(day + 2 * HOUR_S)).unwrap();
        let days = daily(&c, day + 3 * HOUR_S, 2).unwrap();
        assert_eq!(
            days[0],
            Day {
                start_s: day - DAY_S,
                ..Day::default()
            }
        );
        let d = &days[1];
        assert_eq!(
            (d.done, d.failed, d.done_by_format, d.bytes, d.revenue, d.new_users),
            (3, 1, [2, 1, 0], 450, 250, 1)
        );
        let text = csv(&days);
        let date = crate::users::utc_date(day);
        assert!(
            text.lines()
                .any(|l| l == format!("{date},4,3,1,75.0,2.3,2,1,0,450,250,1,0,0,1,2,4")),
            "{text}"
        );
    }
}
