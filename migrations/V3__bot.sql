-- The Telegram side of downloads. Times are Unix milliseconds.

-- A link a user sent, waiting for the format choice on the keyboard message `message_id`.
CREATE TABLE link_prompts (
    chat_id        INTEGER NOT NULL,
    message_id     INTEGER NOT NULL,
    user_id        INTEGER NOT NULL,
    url            TEXT NOT NULL,
    reply_to       INTEGER NOT NULL,               -- the user's message holding the link
    created_at_ms  INTEGER NOT NULL,
    used           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, message_id)
);

-- One user's request for a task (several requests may share one task). Quota and cooldown count these.
CREATE TABLE task_requests (
    id                 INTEGER PRIMARY KEY,
    task_id            INTEGER NOT NULL REFERENCES download_tasks(id),
    user_id            INTEGER NOT NULL,
    chat_id            INTEGER NOT NULL,
    status_message_id  INTEGER,
    reply_to           INTEGER,
    format             TEXT NOT NULL,
    quality            TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('waiting', 'delivered', 'failed', 'cancelled')),
    error_type         TEXT,
    created_at_ms      INTEGER NOT NULL,
    finished_at_ms     INTEGER
);
CREATE INDEX task_requests_user ON task_requests(user_id, created_at_ms);
CREATE INDEX task_requests_task ON task_requests(task_id, state);
