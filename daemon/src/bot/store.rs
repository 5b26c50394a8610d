//! The bot's tables: link prompts waiting for a format choice, and users' requests for tasks.

use doradura_proto::types::{Format, RequestState};
use rusqlite::{Connection, OptionalExtension, params};

use crate::queue::{parse_col, quality_col};

/// A link waiting for the user's format choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub user_id: i64,
    pub url: String,
    pub reply_to: i32,
    pub used: bool,
    pub created_at_ms: i64,
}

/// How long a prompt's buttons stay valid.
pub const PROMPT_TTL_MS: i64 = 24 * 3600 * 1000;

pub fn save_prompt(
    conn: &Connection,
    chat_id: i64,
    message_id: i32,
    user_id: i64,
    url: &str,
    reply_to: i32,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO link_prompts (chat_id, message_id, user_id, url, reply_to, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![chat_id, message_id, user_id, url, reply_to, now_ms],
    )?;
    Ok(())
}

pub fn prompt(conn: &Connection, chat_id: i64, message_id: i32) -> rusqlite::Result<Option<Prompt>> {
    conn.query_row(
        "SELECT user_id, url, reply_to, used, created_at_ms FROM link_prompts WHERE chat_id = ?1 AND message_id = ?2",
        params![chat_id, message_id],
        |r| {
            Ok(Prompt {
                user_id: r.get(0)?,
                url: r.get(1)?,
                reply_to: r.get(2)?,
                used: r.get(3)?,
                created_at_ms: r.get(4)?,
            })
        },
    )
    .optional()
}

/// Deletes the prompts that have expired (`PROMPT_TTL_MS` old: their buttons answer "expired" anyway, used or
/// not); returns how many.
pub fn prune_prompts(conn: &Connection, now_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM link_prompts WHERE created_at_ms <= ?1",
        [now_ms.saturating_sub(PROMPT_TTL_MS)],
    )
}

/// Marks a prompt used; `false` if it already was (a double press).
pub fn use_prompt(conn: &Connection, chat_id: i64, message_id: i32) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE link_prompts SET used = 1 WHERE chat_id = ?1 AND message_id = ?2 AND used = 0",
        params![chat_id, message_id],
    )? == 1)
}

/// One user's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: i64,
    pub task_id: u64,
    pub user_id: i64,
    pub chat_id: i64,
    pub status_message_id: Option<i32>,
    pub reply_to: Option<i32>,
    pub format: Format,
    /// One of `format.qualities()`.
    pub quality: &'static str,
    pub state: RequestState,
}

#[allow(clippy::too_many_arguments)]
pub fn add_request(
    conn: &Connection,
    task_id: u64,
    user_id: i64,
    chat_id: i64,
    status_message_id: i32,
    reply_to: i32,
    format: Format,
    quality: &str,
    now_ms: i64,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO task_requests (task_id, user_id, chat_id, status_message_id, reply_to, format, quality, state,
                                    created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            task_id,
            user_id,
            chat_id,
            status_message_id,
            reply_to,
            format.as_str(),
            quality,
            RequestState::Waiting.as_str(),
            now_ms
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

const REQUEST_COLUMNS: &str = "id, task_id, user_id, chat_id, status_message_id, reply_to, format, quality, state";

fn request_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Request> {
    let format = parse_col(r, 6)?;
    Ok(Request {
        id: r.get(0)?,
        task_id: r.get(1)?,
        user_id: r.get(2)?,
        chat_id: r.get(3)?,
        status_message_id: r.get(4)?,
        reply_to: r.get(5)?,
        format,
        quality: quality_col(r, 7, format)?,
        state: parse_col(r, 8)?,
    })
}

pub fn request(conn: &Connection, id: i64) -> rusqlite::Result<Option<Request>> {
    conn.query_row(
        &format!("SELECT {REQUEST_COLUMNS} FROM task_requests WHERE id = ?1"),
        [id],
        request_from_row,
    )
    .optional()
}

/// The user's requests still waiting, newest first.
pub fn waiting_for_user(conn: &Connection, user_id: i64) -> rusqlite::Result<Vec<Request>> {
    conn.prepare(&format!(
        "SELECT {REQUEST_COLUMNS} FROM task_requests WHERE user_id = ?1 AND state = 'waiting' ORDER BY id DESC"
    ))?
    .query_map([user_id], request_from_row)?
    .filter_map(readable)
    .collect()
}

/// Leaves out, with a warning, a request row this build cannot read (a format written by another version: the
/// column has no CHECK), so that one such row does not hide every other request; other errors pass.
fn readable(row: rusqlite::Result<Request>) -> Option<rusqlite::Result<Request>> {
    match row {
        Err(rusqlite::Error::FromSqlConversionFailure(column, _, e)) => {
            tracing::warn!(column, error = %e, "a request row that cannot be read was left out");
            None
        }
        other => Some(other),
    }
}

/// Waiting requests whose task is (`in_flight`) or is not (`!in_flight`) still queued or running.
fn waiting(conn: &Connection, in_flight: bool) -> rusqlite::Result<Vec<Request>> {
    conn.prepare(&format!(
        "SELECT {} FROM task_requests r JOIN download_tasks t ON t.id = r.task_id
          WHERE r.state = 'waiting' AND (t.state IN ('queued', 'running')) = ?1 ORDER BY r.id",
        REQUEST_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?
    .query_map([in_flight], request_from_row)?
    .filter_map(readable)
    .collect()
}

/// Requests whose tasks are still queued or running: to follow again after a restart.
pub fn waiting_in_flight(conn: &Connection) -> rusqlite::Result<Vec<Request>> {
    waiting(conn, true)
}

/// Ends every waiting request whose task finished while nobody followed it (the daemon was down): its file is
/// gone. Returns them, so their users can be told.
pub fn close_orphans(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<Request>> {
    let orphans = waiting(conn, false)?;
    for r in &orphans {
        finish_request(conn, r.id, RequestState::Failed, Some("unknown"), now_ms)?;
    }
    Ok(orphans)
}

/// Ends a waiting request; `false` if it had already ended.
pub fn finish_request(
    conn: &Connection,
    id: i64,
    state: RequestState,
    error_type: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE task_requests SET state = ?2, error_type = ?3, finished_at_ms = ?4 WHERE id = ?1 AND state = ?5",
        params![id, state.as_str(), error_type, now_ms, RequestState::Waiting.as_str()],
    )? == 1)
}

/// Other requests still waiting for the same task.
pub fn others_waiting(conn: &Connection, task_id: u64, except: i64) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT COUNT(*) FROM task_requests WHERE task_id = ?1 AND state = 'waiting' AND id != ?2",
        params![task_id, except],
        |r| r.get(0),
    )
}

/// The user's last request time and how many of their requests since `since_ms` count toward the quota.
///
/// Every attempt that ran counts: a request counts while it waits (its task queued or running) and once
/// delivered; a failed or cancelled one counts when its task had started (leased to a worker, so yt-dlp ran)
/// by the time the request ended, whatever the error (`timeout`, `too_large`, `network`, ...). A request the
/// task of which had not started when it ended (cancelled while queued, or its task cancelled from
/// `doradurctl`) does not count; requests refused before anything was queued (a bad link, a full queue, the
/// cap) never became rows. A request counts once, however many times the queue retried its task.
pub fn usage(conn: &Connection, user_id: i64, since_ms: i64) -> rusqlite::Result<(Option<i64>, u32)> {
    conn.query_row(
        "SELECT (SELECT MAX(created_at_ms) FROM task_requests WHERE user_id = ?1),
                (SELECT COUNT(*) FROM task_requests r JOIN download_tasks t ON t.id = r.task_id
                  WHERE r.user_id = ?1 AND r.created_at_ms >= ?2
                    AND (r.state IN ('waiting', 'delivered')
                         OR (r.state IN ('failed', 'cancelled')
                             AND t.started_at_ms IS NOT NULL AND t.started_at_ms <= r.finished_at_ms)))",
        params![user_id, since_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// The user's requests in flight: still waiting, their task queued or running. A request that shares a task
/// with someone else's identical request counts for its own user like any other.
pub fn in_flight(conn: &Connection, user_id: i64) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT COUNT(*) FROM task_requests r JOIN download_tasks t ON t.id = r.task_id
          WHERE r.user_id = ?1 AND r.state = 'waiting' AND t.state IN ('queued', 'running')",
        [user_id],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c).unwrap();
        c
    }

    fn task(c: &Connection, state: &str) -> u64 {
        c.execute(
            "INSERT INTO download_tasks (url, format, quality, priority, priority_rank, state, created_at_ms)
             VALUES ('https://a/b', 'mp3', '320k', 'low', 2, ?1, 0)",
            [state],
        )
        .unwrap();
        c.last_insert_rowid() as u64
    }

    #[test]
    fn requests_of_tasks_that_ended_unfollowed_are_closed_and_others_resumed() {
        let c = db();
        let running = task(&c, "running");
        let done = task(&c, "done");
        let a = add_request(&c, running, 1, 1, 10, 9, Format::Mp3, "320k", 0).unwrap();
        let b = add_request(&c, done, 2, 2, 11, 8, Format::Mp3, "320k", 0).unwrap();
        assert_eq!(
            waiting_in_flight(&c).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![a]
        );
        let closed = close_orphans(&c, 5).unwrap();
        assert_eq!(closed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b]);
        assert_eq!(request(&c, b).unwrap().unwrap().state, RequestState::Failed);
        assert_eq!(request(&c, a).unwrap().unwrap().state, RequestState::Waiting);
    }

    #[test]
    fn a_request_row_that_cannot_be_read_hides_no_other() {
        let c = db();
        let running = task(&c, "running");
        let odd = add_request(&c, running, 1, 1, 10, 9, Format::Mp3, "320k", 0).unwrap();
        let fine = add_request(&c, running, 1, 1, 11, 8, Format::Mp3, "320k", 0).unwrap();
        c.execute("UPDATE task_requests SET format = 'flac' WHERE id = ?1", [odd])
            .unwrap();
        let ids = |v: Vec<Request>| v.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(waiting_in_flight(&c).unwrap()), vec![fine]);
        assert_eq!(ids(waiting_for_user(&c, 1).unwrap()), vec![fine]);
    }

    #[test]
    fn usage_counts_today_and_not_failures() {
        let c = db();
        let t = task(&c, "queued");
        let ok = add_request(&c, t, 7, 7, 1, 1, Format::Mp3, "320k", 1_000).unwrap();
        let failed = add_request(&c, t, 7, 7, 2, 2, Format::Mp3, "320k", 2_000).unwrap();
        add_request(&c, t, 7, 7, 3, 3, Format::Mp3, "320k", 50).unwrap();
        finish_request(&c, failed, RequestState::Failed, Some("network"), 3_000).unwrap();
        assert!(
            !finish_request(&c, failed, RequestState::Delivered, None, 3_001).unwrap(),
            "an ended request stays ended"
        );
        finish_request(&c, ok, RequestState::Delivered, None, 3_000).unwrap();
        assert_eq!(usage(&c, 7, 100).unwrap(), (Some(2_000), 1));
        assert_eq!(usage(&c, 8, 0).unwrap(), (None, 0));
    }

    fn start(c: &Connection, task: u64, at_ms: i64) {
        c.execute(
            "UPDATE download_tasks SET started_at_ms = ?2 WHERE id = ?1",
            params![task, at_ms],
        )
        .unwrap();
    }

    #[test]
    fn every_attempt_that_ran_counts_toward_the_quota() {
        let c = db();
        let user = 7;
        let req = |task: u64, at: i64| add_request(&c, task, user, 7, at as i32, 1, Format::Mp3, "320k", at).unwrap();
        // Failed after yt-dlp ran: a timeout, a file too large, a network error once retries were spent.
        for error in ["timeout", "too_large", "network"] {
            let t = task(&c, "failed");
            start(&c, t, 1_100);
            let r = req(t, 1_000);
            finish_request(&c, r, RequestState::Failed, Some(error), 2_000).unwrap();
        }
        assert_eq!(usage(&c, user, 0).unwrap().1, 3);
        // Cancelled while downloading: it ran.
        let t = task(&c, "cancelled");
        start(&c, t, 1_100);
        let r = req(t, 1_000);
        finish_request(&c, r, RequestState::Cancelled, Some("cancelled"), 1_500).unwrap();
        assert_eq!(usage(&c, user, 0).unwrap().1, 4);
        // Cancelled before it started: the task never ran, or ran only later for someone else.
        let never = task(&c, "cancelled");
        let r = req(never, 1_000);
        finish_request(&c, r, RequestState::Cancelled, Some("cancelled"), 1_500).unwrap();
        let later = task(&c, "running");
        start(&c, later, 1_600);
        let r = req(later, 1_000);
        finish_request(&c, r, RequestState::Cancelled, Some("cancelled"), 1_500).unwrap();
        // A request whose task was cancelled while queued (from doradurctl) and closed as failed.
        let dropped = task(&c, "cancelled");
        let r = req(dropped, 1_000);
        finish_request(&c, r, RequestState::Failed, Some("unknown"), 1_500).unwrap();
        assert_eq!(usage(&c, user, 0).unwrap().1, 4);
        // Waiting (queued or running) and delivered count, as before.
        req(task(&c, "queued"), 1_000);
        let done = task(&c, "done");
        start(&c, done, 1_100);
        let r = req(done, 1_000);
        finish_request(&c, r, RequestState::Delivered, None, 2_000).unwrap();
        assert_eq!(usage(&c, user, 0).unwrap(), (Some(1_000), 6));
        // Only since the day began, and only this user's.
        assert_eq!(usage(&c, user, 1_001).unwrap().1, 0);
        assert_eq!(usage(&c, user + 1, 0).unwrap().1, 0);
    }

    #[test]
    fn in_flight_counts_the_users_waiting_requests_of_unfinished_tasks() {
        let c = db();
        let (queued, running, done) = (task(&c, "queued"), task(&c, "running"), task(&c, "done"));
        assert_eq!(in_flight(&c, 7).unwrap(), 0);
        add_request(&c, queued, 7, 7, 1, 1, Format::Mp3, "320k", 0).unwrap();
        add_request(&c, running, 7, 7, 2, 2, Format::Mp3, "320k", 0).unwrap();
        // Another user's request sharing the running task counts for that user only.
        add_request(&c, running, 8, 8, 3, 3, Format::Mp3, "320k", 0).unwrap();
        assert_eq!((in_flight(&c, 7).unwrap(), in_flight(&c, 8).unwrap()), (2, 1));
        // A file being sent (task done, request waiting) is no longer in flight; nor is a cancelled request
        // whose task is still stopping.
        add_request(&c, done, 7, 7, 4, 4, Format::Mp3, "320k", 0).unwrap();
        let r = add_request(&c, running, 7, 7, 5, 5, Format::Mp3, "320k", 0).unwrap();
        assert_eq!(in_flight(&c, 7).unwrap(), 3);
        finish_request(&c, r, RequestState::Cancelled, Some("cancelled"), 1).unwrap();
        assert_eq!(in_flight(&c, 7).unwrap(), 2);
        c.execute("UPDATE download_tasks SET state = 'failed' WHERE id = ?1", [queued])
            .unwrap();
        assert_eq!(in_flight(&c, 7).unwrap(), 1);
    }

    #[test]
    fn prompts_older_than_their_ttl_are_pruned() {
        let c = db();
        let now = 10 * PROMPT_TTL_MS;
        save_prompt(&c, 1, 1, 7, "https://a/old", 1, now - PROMPT_TTL_MS - 1).unwrap();
        save_prompt(&c, 1, 2, 7, "https://a/edge", 1, now - PROMPT_TTL_MS).unwrap();
        save_prompt(&c, 1, 3, 7, "https://a/new", 1, now - 1).unwrap();
        use_prompt(&c, 1, 1).unwrap();
        // Exactly as old as the TTL is expired already (see `handlers::choose`).
        assert_eq!(prune_prompts(&c, now).unwrap(), 2);
        assert!(prompt(&c, 1, 1).unwrap().is_none() && prompt(&c, 1, 2).unwrap().is_none());
        assert!(prompt(&c, 1, 3).unwrap().is_some());
        assert_eq!(prune_prompts(&c, now).unwrap(), 0, "nothing twice");
        assert_eq!(prune_prompts(&c, now + PROMPT_TTL_MS).unwrap(), 1);
    }
}
