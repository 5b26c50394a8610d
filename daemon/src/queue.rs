//! The durable download queue in SQLite. Plain functions over a connection, each one transaction, with the clock
//! passed in: the supervisor runs them on the database thread, and the tests run them on an in-memory database.

use doradura_proto::types::{ErrorType, Format, Priority, TaskState};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// How the queue retries and bounds work.
#[derive(Debug, Clone, Copy)]
pub struct QueuePolicy {
    /// Queued plus running tasks; a request past it is refused.
    pub max_size: u32,
    /// Attempts per task, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per attempt.
    pub retry_backoff_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub url: String,
    pub format: Format,
    /// One of `format.qualities()`.
    pub quality: &'static str,
    pub priority: Priority,
    pub user_id: Option<i64>,
    pub chat_id: Option<i64>,
}

/// A task as a worker receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: u64,
    pub url: String,
    pub format: Format,
    /// One of `format.qualities()`.
    pub quality: &'static str,
    pub priority: Priority,
    pub attempts: u32,
    /// Set on the first lease only: how long the task waited in the queue.
    pub queue_wait_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: u64,
    /// An identical task was already queued or running; this request shares it.
    pub joined: bool,
    pub position: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is full ({max} tasks waiting or running); try again in a few minutes")]
    Full { max: u32 },
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

/// What became of a task after a failed attempt or a lost worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Back in the queue, not before this time.
    Retry { at_ms: i64 },
    /// Final.
    Failed(ErrorType),
    /// A cancel was requested meanwhile.
    Cancelled,
    /// The task was no longer running (already finished or requeued): nothing changed.
    Stale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was waiting; now it is cancelled.
    Cancelled,
    /// A worker runs it; the worker must be told.
    Cancelling {
        worker: u32,
    },
    NotFound,
    AlreadyFinished,
}

impl CancelOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelOutcome::Cancelled => "cancelled",
            CancelOutcome::Cancelling { .. } => "cancelling",
            CancelOutcome::NotFound => "not_found",
            CancelOutcome::AlreadyFinished => "already_finished",
        }
    }
}

/// What a finished download left.
#[derive(Debug, Clone, PartialEq)]
pub struct Success {
    pub bytes: u64,
    pub title: String,
    pub media_duration_s: f64,
    pub ytdlp_ms: u64,
}

/// One line of `doradurctl queue`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub id: u64,
    pub state: TaskState,
    pub priority: Priority,
    pub format: Format,
    pub quality: &'static str,
    pub url: String,
    pub worker: Option<u32>,
    pub attempts: u32,
    pub created_at_ms: i64,
    pub error_type: Option<String>,
    pub position: Option<u32>,
}

/// A bounded column read back with its type's `FromStr`: a value outside the set is a conversion error, never a
/// silent default.
pub(crate) fn parse_col<T: std::str::FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    text.parse()
        .map_err(|_| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, text.into()))
}

/// The quality column of a row whose format is `format`. The column has no CHECK: a value this build does not know
/// (a row written by another version, or edited by hand) is read as the format's default, with a warning, so that
/// one such row can neither stall the queue nor hide the requests around it.
pub(crate) fn quality_col(row: &Row<'_>, idx: usize, format: Format) -> rusqlite::Result<&'static str> {
    let text: String = row.get(idx)?;
    Ok(format.qualities().iter().copied().find(|q| *q == text).unwrap_or_else(|| {
        let default = format.qualities()[0];
        tracing::warn!(stored = %text, format = %format, default, "an unknown stored quality is read as the default");
        default
    }))
}

const TASK_COLUMNS: &str = "id, url, format, quality, priority, attempts";

fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    let format = parse_col(row, 2)?;
    Ok(Task {
        id: row.get(0)?,
        url: row.get(1)?,
        format,
        quality: quality_col(row, 3, format)?,
        priority: parse_col(row, 4)?,
        attempts: row.get(5)?,
        queue_wait_ms: None,
    })
}

/// Tasks that will be leased before task `id` (0: it is next). `None` if it is not waiting.
pub fn position(conn: &Connection, id: u64) -> rusqlite::Result<Option<u32>> {
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM download_tasks o
                  WHERE o.state = 'queued' AND (o.priority_rank < t.priority_rank
                        OR (o.priority_rank = t.priority_rank AND o.id < t.id)))
           FROM download_tasks t WHERE t.id = ?1 AND t.state = 'queued'",
        [id],
        |r| r.get(0),
    )
    .optional()
}

/// Adds a request, or joins an identical one in flight (raising its priority if this one's is higher).
pub fn enqueue(
    conn: &mut Connection,
    new: &NewTask,
    now_ms: i64,
    policy: &QueuePolicy,
) -> Result<Enqueued, QueueError> {
    let tx = conn.transaction()?;
    let existing: Option<(u64, i64)> = tx
        .query_row(
            "SELECT id, priority_rank FROM download_tasks
              WHERE url = ?1 AND format = ?2 AND quality = ?3 AND state IN ('queued', 'running')
                AND cancel_requested = 0
              ORDER BY id LIMIT 1",
            params![new.url, new.format.as_str(), new.quality],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (id, joined) = match existing {
        Some((id, rank)) => {
            if new.priority.rank() < rank {
                tx.execute(
                    "UPDATE download_tasks SET priority = ?2, priority_rank = ?3 WHERE id = ?1",
                    params![id, new.priority.as_str(), new.priority.rank()],
                )?;
            }
            (id, true)
        }
        None => {
            let in_flight: u32 = tx.query_row(
                "SELECT COUNT(*) FROM download_tasks WHERE state IN ('queued', 'running')",
                [],
                |r| r.get(0),
            )?;
            if in_flight >= policy.max_size {
                return Err(QueueError::Full { max: policy.max_size });
            }
            tx.execute(
                "INSERT INTO download_tasks (user_id, chat_id, url, format, quality, priority, priority_rank, state,
                                             created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8)",
                params![
                    new.user_id,
                    new.chat_id,
                    new.url,
                    new.format.as_str(),
                    new.quality,
                    new.priority.as_str(),
                    new.priority.rank(),
                    now_ms
                ],
            )?;
            (tx.last_insert_rowid() as u64, false)
        }
    };
    let position = position(&tx, id)?.unwrap_or(0);
    tx.commit()?;
    Ok(Enqueued { id, joined, position })
}

/// Hands the next due task to `worker`: highest priority first, FIFO within a priority.
pub fn lease(conn: &mut Connection, worker: u32, now_ms: i64) -> rusqlite::Result<Option<Task>> {
    let tx = conn.transaction()?;
    let task = tx
        .query_row(
            &format!(
                "SELECT {TASK_COLUMNS} FROM download_tasks
                  WHERE state = 'queued' AND not_before_ms <= ?1
                  ORDER BY priority_rank, id LIMIT 1"
            ),
            [now_ms],
            task_from_row,
        )
        .optional()?;
    let Some(mut task) = task else { return Ok(None) };
    tx.execute(
        "UPDATE download_tasks
            SET state = 'running', lease_worker = ?2, attempts = attempts + 1,
                started_at_ms = COALESCE(started_at_ms, ?3),
                queue_wait_ms = COALESCE(queue_wait_ms, ?3 - created_at_ms)
          WHERE id = ?1",
        params![task.id, worker, now_ms],
    )?;
    if task.attempts == 0 {
        task.queue_wait_ms = tx
            .query_row(
                "SELECT queue_wait_ms FROM download_tasks WHERE id = ?1",
                [task.id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
    }
    tx.commit()?;
    task.attempts += 1;
    Ok(Some(task))
}

/// What the metrics need of a task: its format, quality and time from request to now (or to its end).
pub fn labels(conn: &Connection, id: u64) -> rusqlite::Result<Option<(Format, &'static str, i64)>> {
    conn.query_row(
        "SELECT format, quality, COALESCE(total_ms, 0) FROM download_tasks WHERE id = ?1",
        [id],
        |r| {
            let format = parse_col(r, 0)?;
            Ok((format, quality_col(r, 1, format)?, r.get(2)?))
        },
    )
    .optional()
}

/// Records a finished download. A task whose cancel was requested meanwhile ends cancelled; `false` then.
pub fn succeed(conn: &mut Connection, id: u64, s: &Success, now_ms: i64) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE download_tasks
            SET state = CASE cancel_requested WHEN 1 THEN 'cancelled' ELSE 'done' END,
                error_type = CASE cancel_requested WHEN 1 THEN 'cancelled' ELSE NULL END,
                bytes = ?2, title = ?3, media_duration_s = ?4, ytdlp_ms = ?5,
                finished_at_ms = ?6, total_ms = ?6 - created_at_ms, lease_worker = NULL
          WHERE id = ?1 AND state = 'running'",
        params![id, s.bytes, s.title, s.media_duration_s, s.ytdlp_ms, now_ms],
    )?;
    let state: Option<TaskState> = conn
        .query_row("SELECT state FROM download_tasks WHERE id = ?1", [id], |r| {
            parse_col(r, 0)
        })
        .optional()?;
    Ok(changed == 1 && state == Some(TaskState::Done))
}

fn finalize(tx: &Connection, id: u64, error: ErrorType, message: &str, now_ms: i64) -> rusqlite::Result<()> {
    let state = if error == ErrorType::Cancelled {
        TaskState::Cancelled
    } else {
        TaskState::Failed
    };
    tx.execute(
        "UPDATE download_tasks
            SET state = ?2, error_type = ?3, error_message = ?4, finished_at_ms = ?5,
                total_ms = ?5 - created_at_ms, lease_worker = NULL
          WHERE id = ?1",
        params![id, state.as_str(), error.as_str(), message, now_ms],
    )?;
    Ok(())
}

/// Records a failed attempt: retried with backoff when the error is transient and attempts remain, else final.
pub fn fail(
    conn: &mut Connection,
    id: u64,
    error: ErrorType,
    message: &str,
    ytdlp_ms: Option<u64>,
    now_ms: i64,
    policy: &QueuePolicy,
) -> rusqlite::Result<AfterFailure> {
    let tx = conn.transaction()?;
    let Some((attempts, cancel)) = running(&tx, id)? else {
        return Ok(AfterFailure::Stale);
    };
    tx.execute(
        "UPDATE download_tasks SET ytdlp_ms = ?2 WHERE id = ?1",
        params![id, ytdlp_ms],
    )?;
    let outcome = if cancel || error == ErrorType::Cancelled {
        finalize(&tx, id, ErrorType::Cancelled, "cancelled", now_ms)?;
        AfterFailure::Cancelled
    } else if error.is_transient() && attempts < policy.max_attempts {
        let at_ms = now_ms + retry_delay_ms(policy, attempts);
        requeue(&tx, id, at_ms, Some((error, message)))?;
        AfterFailure::Retry { at_ms }
    } else {
        finalize(&tx, id, error, message, now_ms)?;
        AfterFailure::Failed(error)
    };
    tx.commit()?;
    Ok(outcome)
}

/// Attempts so far and whether a cancel was requested, for a task that is running.
fn running(tx: &Connection, id: u64) -> rusqlite::Result<Option<(u32, bool)>> {
    tx.query_row(
        "SELECT attempts, cancel_requested FROM download_tasks WHERE id = ?1 AND state = 'running'",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

fn retry_delay_ms(policy: &QueuePolicy, attempts: u32) -> i64 {
    policy
        .retry_backoff_ms
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
}

fn requeue(
    tx: &Connection,
    id: u64,
    not_before_ms: i64,
    last_error: Option<(ErrorType, &str)>,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE download_tasks
            SET state = 'queued', lease_worker = NULL, not_before_ms = ?2,
                error_type = COALESCE(?3, error_type), error_message = COALESCE(?4, error_message)
          WHERE id = ?1",
        params![
            id,
            not_before_ms,
            last_error.map(|(e, _)| e.as_str()),
            last_error.map(|(_, m)| m)
        ],
    )?;
    Ok(())
}

/// Puts back a task whose worker died or was stopped. `counts` says whether the attempt counts (a crash) or not
/// (a shutdown); a task that keeps killing its workers fails once its attempts are spent.
pub fn release(
    conn: &mut Connection,
    id: u64,
    counts: bool,
    now_ms: i64,
    policy: &QueuePolicy,
) -> rusqlite::Result<AfterFailure> {
    let tx = conn.transaction()?;
    let Some((attempts, cancel)) = running(&tx, id)? else {
        return Ok(AfterFailure::Stale);
    };
    let outcome = if cancel {
        finalize(&tx, id, ErrorType::Cancelled, "cancelled", now_ms)?;
        AfterFailure::Cancelled
    } else if !counts {
        tx.execute("UPDATE download_tasks SET attempts = attempts - 1 WHERE id = ?1", [id])?;
        requeue(&tx, id, now_ms, None)?;
        AfterFailure::Retry { at_ms: now_ms }
    } else if attempts < policy.max_attempts {
        let at_ms = now_ms + retry_delay_ms(policy, attempts);
        requeue(&tx, id, at_ms, Some((ErrorType::Unknown, "the worker running it died")))?;
        AfterFailure::Retry { at_ms }
    } else {
        let msg = format!("the worker running it died on each of {attempts} attempts");
        finalize(&tx, id, ErrorType::Unknown, &msg, now_ms)?;
        AfterFailure::Failed(ErrorType::Unknown)
    };
    tx.commit()?;
    Ok(outcome)
}

/// At start-up: every task left running by a previous daemon goes back to the queue, its attempt not counted.
pub fn recover(conn: &mut Connection, now_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE download_tasks
            SET state = CASE cancel_requested WHEN 1 THEN 'cancelled' ELSE 'queued' END,
                error_type = CASE cancel_requested WHEN 1 THEN 'cancelled' ELSE error_type END,
                finished_at_ms = CASE cancel_requested WHEN 1 THEN ?1 ELSE NULL END,
                attempts = MAX(attempts - 1, 0), lease_worker = NULL, not_before_ms = 0
          WHERE state = 'running'",
        [now_ms],
    )
}

/// Cancels a waiting task at once, or marks a running one for its worker to stop.
pub fn cancel(conn: &mut Connection, id: u64, now_ms: i64) -> rusqlite::Result<CancelOutcome> {
    let tx = conn.transaction()?;
    let row: Option<(TaskState, Option<u32>)> = tx
        .query_row(
            "SELECT state, lease_worker FROM download_tasks WHERE id = ?1",
            [id],
            |r| Ok((parse_col(r, 0)?, r.get(1)?)),
        )
        .optional()?;
    let outcome = match row {
        None => CancelOutcome::NotFound,
        Some((TaskState::Queued, _)) => {
            finalize(&tx, id, ErrorType::Cancelled, "cancelled", now_ms)?;
            CancelOutcome::Cancelled
        }
        Some((TaskState::Running, Some(worker))) => {
            tx.execute("UPDATE download_tasks SET cancel_requested = 1 WHERE id = ?1", [id])?;
            CancelOutcome::Cancelling { worker }
        }
        Some(_) => CancelOutcome::AlreadyFinished,
    };
    tx.commit()?;
    Ok(outcome)
}

/// Queued tasks by priority, every priority present (zeros included).
pub fn depth(conn: &Connection) -> rusqlite::Result<Vec<(Priority, u32)>> {
    let mut counts: Vec<(Priority, u32)> = Priority::ALL.iter().map(|p| (*p, 0)).collect();
    let mut st =
        conn.prepare("SELECT priority, COUNT(*) FROM download_tasks WHERE state = 'queued' GROUP BY priority")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))?;
    for row in rows {
        let (priority, n) = row?;
        if let Some(slot) = counts.iter_mut().find(|(p, _)| p.as_str() == priority) {
            slot.1 = n;
        }
    }
    Ok(counts)
}

/// Waiting and running tasks (in lease order), then, if asked, the latest finished ones.
pub fn list(conn: &Connection, include_finished: bool, limit: u32) -> rusqlite::Result<Vec<Listed>> {
    let map = |r: &Row<'_>| {
        let format = parse_col(r, 3)?;
        Ok(Listed {
            id: r.get(0)?,
            state: parse_col(r, 1)?,
            priority: parse_col(r, 2)?,
            format,
            quality: quality_col(r, 4, format)?,
            url: r.get(5)?,
            worker: r.get(6)?,
            attempts: r.get(7)?,
            created_at_ms: r.get(8)?,
            error_type: r.get(9)?,
            position: None,
        })
    };
    const COLS: &str = "id, state, priority, format, quality, url, lease_worker, attempts, created_at_ms, error_type";
    let mut out: Vec<Listed> = conn
        .prepare(&format!(
            "SELECT {COLS} FROM download_tasks WHERE state IN ('running', 'queued')
              ORDER BY state = 'queued', priority_rank, id"
        ))?
        .query_map([], map)?
        .collect::<Result<_, _>>()?;
    for (waiting, entry) in out.iter_mut().filter(|e| e.state == TaskState::Queued).enumerate() {
        entry.position = Some(waiting as u32);
    }
    if include_finished {
        let finished = conn
            .prepare(&format!(
                "SELECT {COLS} FROM download_tasks WHERE state IN ('done', 'failed', 'cancelled')
                  ORDER BY finished_at_ms DESC, id DESC LIMIT ?1"
            ))?
            .query_map([limit], map)?
            .collect::<Result<Vec<_>, _>>()?;
        out.extend(finished);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: QueuePolicy = QueuePolicy {
        max_size: 5,
        max_attempts: 3,
        retry_backoff_ms: 1000,
    };

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn).unwrap();
        conn
    }

    fn req(url: &str, priority: Priority) -> NewTask {
        NewTask {
            url: url.into(),
            format: Format::Mp3,
            quality: "320k",
            priority,
            user_id: None,
            chat_id: None,
        }
    }

    fn state(conn: &Connection, id: u64) -> (String, u32, Option<String>) {
        conn.query_row(
            "SELECT state, attempts, error_type FROM download_tasks WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    }

    #[test]
    fn an_unknown_stored_quality_is_read_as_the_default_and_stalls_nothing() {
        let mut c = db();
        let odd = enqueue(&mut c, &req("https://a/1", Priority::High), 1, &POLICY).unwrap();
        let next = enqueue(&mut c, &req("https://a/2", Priority::High), 2, &POLICY).unwrap();
        c.execute("UPDATE download_tasks SET quality = '999k' WHERE id = ?1", [odd.id])
            .unwrap();
        assert_eq!(list(&c, false, 10).unwrap().len(), 2);
        let first = lease(&mut c, 0, 10).unwrap().unwrap();
        assert_eq!((first.id, first.quality), (odd.id, "320k"));
        assert_eq!(lease(&mut c, 1, 10).unwrap().unwrap().id, next.id);
    }

    #[test]
    fn priority_first_then_fifo() {
        let mut c = db();
        let low = enqueue(&mut c, &req("https://a/1", Priority::Low), 1, &POLICY).unwrap();
        let med1 = enqueue(&mut c, &req("https://a/2", Priority::Medium), 2, &POLICY).unwrap();
        let high = enqueue(&mut c, &req("https://a/3", Priority::High), 3, &POLICY).unwrap();
        let med2 = enqueue(&mut c, &req("https://a/4", Priority::Medium), 4, &POLICY).unwrap();
        assert_eq!(high.position, 0);
        assert_eq!(med2.position, 2);
        assert_eq!(position(&c, low.id).unwrap(), Some(3));
        let order: Vec<u64> = (0..4).map(|_| lease(&mut c, 0, 10).unwrap().unwrap().id).collect();
        assert_eq!(order, vec![high.id, med1.id, med2.id, low.id]);
        assert_eq!(lease(&mut c, 0, 10).unwrap(), None);
    }

    #[test]
    fn a_full_queue_refuses_with_a_clear_message_and_stores_nothing() {
        let mut c = db();
        for i in 0..5 {
            enqueue(&mut c, &req(&format!("https://a/{i}"), Priority::Low), 1, &POLICY).unwrap();
        }
        let err = enqueue(&mut c, &req("https://a/x", Priority::High), 1, &POLICY).unwrap_err();
        assert!(matches!(err, QueueError::Full { max: 5 }));
        assert!(err.to_string().contains("the queue is full (5 tasks"));
        let n: u32 = c
            .query_row("SELECT COUNT(*) FROM download_tasks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 5);
        // Joining an identical task is not a new task: allowed even when full.
        assert!(
            enqueue(&mut c, &req("https://a/1", Priority::Low), 1, &POLICY)
                .unwrap()
                .joined
        );
    }

    #[test]
    fn identical_requests_in_flight_share_one_task_and_raise_its_priority() {
        let mut c = db();
        let a = enqueue(&mut c, &req("https://a/1", Priority::Low), 1, &POLICY).unwrap();
        let other = enqueue(&mut c, &req("https://a/2", Priority::Medium), 2, &POLICY).unwrap();
        let b = enqueue(&mut c, &req("https://a/1", Priority::High), 3, &POLICY).unwrap();
        assert_eq!((b.id, b.joined), (a.id, true));
        assert_eq!(lease(&mut c, 0, 5).unwrap().unwrap().id, a.id, "raised to high");
        // Another format is another task.
        let mut mp4 = req("https://a/1", Priority::Low);
        mp4.format = Format::Mp4;
        mp4.quality = "720p";
        assert!(!enqueue(&mut c, &mp4, 6, &POLICY).unwrap().joined);
        // Once finished, the same request is a new task.
        succeed(&mut c, a.id, &success(), 7).unwrap();
        assert!(
            !enqueue(&mut c, &req("https://a/1", Priority::Low), 8, &POLICY)
                .unwrap()
                .joined
        );
        assert_eq!(lease(&mut c, 0, 9).unwrap().unwrap().id, other.id);
    }

    fn success() -> Success {
        Success {
            bytes: 10,
            title: "t".into(),
            media_duration_s: 3.0,
            ytdlp_ms: 900,
        }
    }

    #[test]
    fn success_records_timings() {
        let mut c = db();
        let t = enqueue(&mut c, &req("https://a/1", Priority::Low), 1_000, &POLICY).unwrap();
        assert_eq!(lease(&mut c, 1, 1_250).unwrap().unwrap().queue_wait_ms, Some(250));
        assert!(succeed(&mut c, t.id, &success(), 2_500).unwrap());
        assert_eq!(labels(&c, t.id).unwrap(), Some((Format::Mp3, "320k", 1_500)));
        let (wait, total, ytdlp, bytes): (i64, i64, i64, i64) = c
            .query_row(
                "SELECT queue_wait_ms, total_ms, ytdlp_ms, bytes FROM download_tasks WHERE id = ?1",
                [t.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!((wait, total, ytdlp, bytes), (250, 1_500, 900, 10));
        assert_eq!(state(&c, t.id).0, "done");
        // A second report of the same task changes nothing.
        assert!(!succeed(&mut c, t.id, &success(), 3_000).unwrap());
    }

    #[test]
    fn transient_failures_retry_with_backoff_until_attempts_run_out() {
        let mut c = db();
        let t = enqueue(&mut c, &req("https://a/1", Priority::Low), 0, &POLICY).unwrap();
        lease(&mut c, 0, 0).unwrap().unwrap();
        assert_eq!(
            fail(&mut c, t.id, ErrorType::Network, "reset", Some(5), 100, &POLICY).unwrap(),
            AfterFailure::Retry { at_ms: 1_100 }
        );
        assert_eq!(lease(&mut c, 0, 1_099).unwrap(), None, "not before the backoff");
        assert_eq!(lease(&mut c, 0, 1_100).unwrap().unwrap().attempts, 2);
        assert_eq!(
            fail(&mut c, t.id, ErrorType::Network, "reset", None, 2_000, &POLICY).unwrap(),
            AfterFailure::Retry { at_ms: 4_000 }
        );
        lease(&mut c, 0, 4_000).unwrap().unwrap();
        assert_eq!(
            fail(&mut c, t.id, ErrorType::Network, "reset", None, 5_000, &POLICY).unwrap(),
            AfterFailure::Failed(ErrorType::Network)
        );
        assert_eq!(state(&c, t.id), ("failed".into(), 3, Some("network".into())));
    }

    #[test]
    fn permanent_failures_are_final_at_once() {
        let mut c = db();
        let t = enqueue(&mut c, &req("https://a/1", Priority::Low), 0, &POLICY).unwrap();
        lease(&mut c, 0, 0).unwrap().unwrap();
        assert_eq!(
            fail(&mut c, t.id, ErrorType::Unavailable, "404", None, 10, &POLICY).unwrap(),
            AfterFailure::Failed(ErrorType::Unavailable)
        );
        assert_eq!(state(&c, t.id), ("failed".into(), 1, Some("unavailable".into())));
    }

    #[test]
    fn a_lost_worker_requeues_its_task_and_a_poison_task_ends() {
        let mut c = db();
        let t = enqueue(&mut c, &req("https://a/1", Priority::Low), 0, &POLICY).unwrap();
        for attempt in 1..=3 {
            let now = attempt * 100_000;
            assert_eq!(lease(&mut c, 0, now).unwrap().unwrap().attempts as i64, attempt);
            let after = release(&mut c, t.id, true, now, &POLICY).unwrap();
            if attempt < 3 {
                assert!(matches!(after, AfterFailure::Retry { .. }));
            } else {
                assert_eq!(after, AfterFailure::Failed(ErrorType::Unknown));
            }
        }
        assert_eq!(state(&c, t.id).0, "failed");
    }

    #[test]
    fn shutdown_and_restart_do_not_count_as_attempts() {
        let mut c = db();
        let t = enqueue(&mut c, &req("https://a/1", Priority::Low), 0, &POLICY).unwrap();
        lease(&mut c, 0, 0).unwrap().unwrap();
        assert_eq!(
            release(&mut c, t.id, false, 5, &POLICY).unwrap(),
            AfterFailure::Retry { at_ms: 5 }
        );
        assert_eq!(state(&c, t.id), ("queued".into(), 0, None));
        lease(&mut c, 1, 6).unwrap().unwrap();
        // The daemon died with it running.
        assert_eq!(recover(&mut c, 7).unwrap(), 1);
        assert_eq!(state(&c, t.id), ("queued".into(), 0, None));
        assert_eq!(lease(&mut c, 0, 8).unwrap().unwrap().id, t.id);
    }

    #[test]
    fn cancel_waiting_running_finished_and_unknown() {
        let mut c = db();
        let a = enqueue(&mut c, &req("https://a/1", Priority::Low), 0, &POLICY).unwrap();
        let b = enqueue(&mut c, &req("https://a/2", Priority::Low), 0, &POLICY).unwrap();
        lease(&mut c, 4, 1).unwrap().unwrap();
        assert_eq!(cancel(&mut c, b.id, 2).unwrap(), CancelOutcome::Cancelled);
        assert_eq!(state(&c, b.id).0, "cancelled");
        assert_eq!(
            cancel(&mut c, a.id, 2).unwrap(),
            CancelOutcome::Cancelling { worker: 4 }
        );
        // The worker reports the kill.
        assert_eq!(
            fail(&mut c, a.id, ErrorType::Cancelled, "cancelled", None, 3, &POLICY).unwrap(),
            AfterFailure::Cancelled
        );
        assert_eq!(state(&c, a.id), ("cancelled".into(), 1, Some("cancelled".into())));
        assert_eq!(cancel(&mut c, a.id, 4).unwrap(), CancelOutcome::AlreadyFinished);
        assert_eq!(cancel(&mut c, 999, 4).unwrap(), CancelOutcome::NotFound);
        // A cancelled task is not joined by a new identical request.
        assert!(
            !enqueue(&mut c, &req("https://a/2", Priority::Low), 5, &POLICY)
                .unwrap()
                .joined
        );
    }

    #[test]
    fn a_cancel_racing_a_success_wins() {
        let mut c = db();
        let a = enqueue(&mut c, &req("https://a/1", Priority::Low), 0, &POLICY).unwrap();
        lease(&mut c, 0, 1).unwrap().unwrap();
        cancel(&mut c, a.id, 2).unwrap();
        assert!(!succeed(&mut c, a.id, &success(), 3).unwrap());
        assert_eq!(state(&c, a.id).0, "cancelled");
    }

    #[test]
    fn depth_counts_queued_tasks_by_priority() {
        let mut c = db();
        enqueue(&mut c, &req("https://a/1", Priority::Low), 0, &POLICY).unwrap();
        enqueue(&mut c, &req("https://a/2", Priority::Low), 0, &POLICY).unwrap();
        enqueue(&mut c, &req("https://a/3", Priority::High), 0, &POLICY).unwrap();
        lease(&mut c, 0, 1).unwrap().unwrap();
        assert_eq!(
            depth(&c).unwrap(),
            vec![(Priority::High, 0), (Priority::Medium, 0), (Priority::Low, 2)]
        );
    }

    #[test]
    fn list_shows_running_then_waiting_with_positions() {
        let mut c = db();
        let a = enqueue(&mut c, &req("https://a/1", Priority::Low), 0, &POLICY).unwrap();
        let b = enqueue(&mut c, &req("https://a/2", Priority::High), 0, &POLICY).unwrap();
        let d = enqueue(&mut c, &req("https://a/3", Priority::Low), 0, &POLICY).unwrap();
        lease(&mut c, 1, 1).unwrap().unwrap(); // b
        let rows = list(&c, false, 20).unwrap();
        let ids: Vec<(u64, &str, Option<u32>)> = rows.iter().map(|r| (r.id, r.state.as_str(), r.position)).collect();
        assert_eq!(
            ids,
            vec![
                (b.id, "running", None),
                (a.id, "queued", Some(0)),
                (d.id, "queued", Some(1))
            ]
        );
        assert_eq!(rows[0].worker, Some(1));
        cancel(&mut c, d.id, 2).unwrap();
        let all = list(&c, true, 20).unwrap();
        assert_eq!(all.last().unwrap().id, d.id);
        assert_eq!(all.last().unwrap().error_type.as_deref(), Some("cancelled"));
    }
}
