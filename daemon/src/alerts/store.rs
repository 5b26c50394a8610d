//! `alert_history` and `alert_silences`: one row per firing, resolved with its time; silences by type.

use rusqlite::{Connection, OptionalExtension, params};

use super::kinds::{AlertType, Severity};
use super::rules::Finding;
use super::state::{AlertState, Open};
use crate::queue::parse_col;

/// A new firing; returns its row id.
pub fn insert(
    c: &Connection,
    kind: AlertType,
    message: &str,
    f: &Finding,
    at_s: i64,
    sent: bool,
    test: bool,
) -> rusqlite::Result<i64> {
    let metadata = serde_json::json!({
        "current": f.current, "threshold": f.threshold, "affected": f.affected, "details": f.details,
    });
    c.execute(
        "INSERT INTO alert_history (alert_type, severity, message, metadata, triggered_at, last_sent_at, is_test,
                                    resolved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN ?7 THEN ?5 END)",
        params![
            kind.as_str(),
            kind.severity().as_str(),
            message,
            metadata.to_string(),
            at_s,
            sent.then_some(at_s),
            test
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn sent(c: &Connection, id: i64, at_s: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE alert_history SET last_sent_at = ?2 WHERE id = ?1",
        params![id, at_s],
    )?;
    Ok(())
}

pub fn resolve(c: &Connection, id: i64, at_s: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE alert_history SET resolved_at = ?2 WHERE id = ?1 AND resolved_at IS NULL",
        params![id, at_s],
    )?;
    Ok(())
}

/// Marks a row acknowledged; a payment failure (an event, not a condition) is resolved by it. Returns the row's
/// type, or `None` when there is no such row.
pub fn acknowledge(c: &Connection, id: i64, by: i64, at_s: i64) -> rusqlite::Result<Option<AlertType>> {
    let kind: Option<String> = c
        .query_row("SELECT alert_type FROM alert_history WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let Some(kind) = kind.as_deref().and_then(known) else {
        return Ok(None);
    };
    c.execute(
        "UPDATE alert_history SET acknowledged = 1, acknowledged_at = COALESCE(acknowledged_at, ?2),
                acknowledged_by = COALESCE(acknowledged_by, ?3),
                resolved_at = CASE WHEN alert_type = 'PaymentFailure' THEN COALESCE(resolved_at, ?2) ELSE resolved_at END
          WHERE id = ?1",
        params![id, at_s, by],
    )?;
    Ok(Some(kind))
}

pub fn silence(c: &Connection, kind: AlertType, until_s: i64, by: &str, at_s: i64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO alert_silences (alert_type, until_at, set_by, set_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(alert_type) DO UPDATE SET until_at = excluded.until_at, set_by = excluded.set_by,
                                               set_at = excluded.set_at",
        params![kind.as_str(), until_s, by, at_s],
    )?;
    Ok(())
}

/// The state as the database remembers it: open firings of the evaluated types, each type's last message, and
/// silences still in force.
pub fn restore(c: &Connection, now_s: i64) -> rusqlite::Result<AlertState> {
    let mut state = AlertState::default();
    let mut q = c.prepare(
        "SELECT id, alert_type, triggered_at, acknowledged, last_sent_at IS NOT NULL FROM alert_history
          WHERE resolved_at IS NULL AND is_test = 0 AND alert_type != 'PaymentFailure' ORDER BY id",
    )?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, bool>(4)?,
        ))
    })?;
    for row in rows {
        let (id, kind, since_s, acknowledged, announced) = row?;
        let Some(kind) = known(&kind) else { continue };
        // Two open rows of one type (a crash between insert and resolve): the newer one stands, the older is
        // closed now.
        if let Some(old) = state.open.get(&kind).and_then(|o| o.history_id) {
            resolve(c, old, now_s)?;
        }
        state.open.insert(
            kind,
            Open {
                history_id: Some(id),
                since_s,
                finding: None,
                acknowledged,
                announced,
            },
        );
    }
    let mut q = c.prepare(
        "SELECT alert_type, MAX(last_sent_at) FROM alert_history
          WHERE is_test = 0 AND last_sent_at IS NOT NULL GROUP BY alert_type",
    )?;
    for row in q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (kind, at) = row?;
        if let Some(kind) = known(&kind) {
            state.last_sent.insert(kind, at);
        }
    }
    let mut q = c.prepare("SELECT alert_type, until_at FROM alert_silences WHERE until_at > ?1")?;
    for row in q.query_map([now_s], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (kind, until) = row?;
        if let Some(kind) = known(&kind) {
            state.silenced_until.insert(kind, until);
        }
    }
    Ok(state)
}

/// A stored alert type this daemon knows; another (a row from a newer version) is logged and left out of the
/// restored state.
fn known(kind: &str) -> Option<AlertType> {
    match kind.parse() {
        Ok(kind) => Some(kind),
        Err(e) => {
            tracing::warn!(error = %e, "a stored alert of an unknown type was left out");
            None
        }
    }
}

/// One history row, for `/alerts` and `doradurctl alerts`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: i64,
    pub kind: AlertType,
    pub severity: Severity,
    pub triggered_at: i64,
    pub resolved_at: Option<i64>,
    pub acknowledged: bool,
    pub test: bool,
    pub summary: String,
}

/// The newest `limit` rows; with `open_only`, the unresolved ones.
pub fn history(c: &Connection, limit: u32, open_only: bool) -> rusqlite::Result<Vec<Row>> {
    let mut q = c.prepare(
        "SELECT id, alert_type, severity, triggered_at, resolved_at, acknowledged, is_test,
                json_extract(metadata, '$.current') || ' (threshold: ' || json_extract(metadata, '$.threshold') || ')'
           FROM alert_history WHERE (?2 = 0 OR resolved_at IS NULL) ORDER BY id DESC LIMIT ?1",
    )?;
    // A row of a type this build does not know (written by a newer version before a rollback) is left out, as
    // `restore` leaves it out, rather than failing the whole list.
    let rows = q.query_map(params![limit, open_only], |r| {
        let Some(kind) = known(&r.get::<_, String>(1)?) else {
            return Ok(None);
        };
        Ok(Some(Row {
            id: r.get(0)?,
            kind,
            severity: parse_col(r, 2)?,
            triggered_at: r.get(3)?,
            resolved_at: r.get(4)?,
            acknowledged: r.get(5)?,
            test: r.get(6)?,
            summary: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
        }))
    })?;
    rows.filter_map(Result::transpose).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_of_a_type_this_build_does_not_know_is_left_out_not_fatal() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c).unwrap();
        for kind in ["QueueBackup", "FromANewerVersion"] {
            c.execute(
                "INSERT INTO alert_history (alert_type, severity, message, metadata, triggered_at)
                 VALUES (?1, 'warning', 'm', '{}', 1)",
                [kind],
            )
            .unwrap();
        }
        let rows = history(&c, 10, false).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].kind, AlertType::QueueBackup);
        assert_eq!(acknowledge(&c, 2, 7, 5).unwrap(), None);
        assert_eq!(acknowledge(&c, 1, 7, 5).unwrap(), Some(AlertType::QueueBackup));
    }
}
