-- Every admin command attempt: who, what, when, and whether it was allowed. Times are Unix milliseconds.
CREATE TABLE admin_actions (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL,
    command   TEXT NOT NULL,
    args      TEXT NOT NULL DEFAULT '',
    allowed   INTEGER NOT NULL,
    at_ms     INTEGER NOT NULL
);
CREATE INDEX admin_actions_time ON admin_actions(at_ms);
