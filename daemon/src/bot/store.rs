//! The bot's tables: link prompts waiting for a format choice, and users' requests for tasks.

use rusqlite::{Connection, OptionalExtension, params};

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
    pub format: String,
    pub quality: String,
    pub state: String,
}

#[allow(clippy::too_many_arguments)]
pub fn add_request(
    conn: &Connection,
    task_id: u64,
    user_id: i64,
    chat_id: i64,
    status_message_id: i32,
    reply_to: i32,
    format: &str,
    quality: &str,
    now_ms: i64,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO task_requests (task_id, user_id, chat_id, status_message_id, reply_to, format, quality, state,
                                    created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'waiting', ?8)",
        params![
            task_id,
            user_id,
            chat_id,
            status_message_id,
            reply_to,
            format,
            quality,
            now_ms
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

const REQUEST_COLUMNS: &str = "id, task_id, user_id, chat_id, status_message_id, reply_to, format, quality, state";

fn request_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Request> {
    Ok(Request {
        id: r.get(0)?,
        task_id: r.get(1)?,
        user_id: r.get(2)?,
        chat_id: r.get(3)?,
        status_message_id: r.get(4)?,
        reply_to: r.get(5)?,
        format: r.get(6)?,
        quality: r.get(7)?,
        state: r.get(8)?,
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
    .collect()
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
        finish_request(conn, r.id, "failed", Some("unknown"), now_ms)?;
    }
    Ok(orphans)
}

/// Ends a waiting request; `false` if it had already ended.
pub fn finish_request(
    conn: &Connection,
    id: i64,
    state: &str,
    error_type: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE task_requests SET state = ?2, error_type = ?3, finished_at_ms = ?4 WHERE id = ?1 AND state = 'waiting'",
        params![id, state, error_type, now_ms],
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

/// The user's last request time and how many requests they made since `since_ms` (cancelled and failed ones do
/// not count against the quota).
pub fn usage(conn: &Connection, user_id: i64, since_ms: i64) -> rusqlite::Result<(Option<i64>, u32)> {
    conn.query_row(
        "SELECT (SELECT MAX(created_at_ms) FROM task_requests WHERE user_id = ?1),
                (SELECT COUNT(*) FROM task_requests
                  WHERE user_id = ?1 AND created_at_ms >= ?2 AND state IN ('waiting', 'delivered'))",
        params![user_id, since_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
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
        let a = add_request(&c, running, 1, 1, 10, 9, "mp3", "320k", 0).unwrap();
        let b = add_request(&c, done, 2, 2, 11, 8, "mp3", "320k", 0).unwrap();
        assert_eq!(
            waiting_in_flight(&c).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![a]
        );
        let closed = close_orphans(&c, 5).unwrap();
        assert_eq!(closed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b]);
        assert_eq!(request(&c, b).unwrap().unwrap().state, "failed");
        assert_eq!(request(&c, a).unwrap().unwrap().state, "waiting");
    }

    #[test]
    fn usage_counts_today_and_not_failures() {
        let c = db();
        let t = task(&c, "queued");
        let ok = add_request(&c, t, 7, 7, 1, 1, "mp3", "320k", 1_000).unwrap();
        let failed = add_request(&c, t, 7, 7, 2, 2, "mp3", "320k", 2_000).unwrap();
        add_request(&c, t, 7, 7, 3, 3, "mp3", "320k", 50).unwrap();
        finish_request(&c, failed, "failed", Some("network"), 3_000).unwrap();
        assert!(
            !finish_request(&c, failed, "delivered", None, 3_001).unwrap(),
            "an ended request stays ended"
        );
        finish_request(&c, ok, "delivered", None, 3_000).unwrap();
        assert_eq!(usage(&c, 7, 100).unwrap(), (Some(2_000), 1));
        assert_eq!(usage(&c, 8, 0).unwrap(), (None, 0));
    }
}
