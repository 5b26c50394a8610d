-- Core tables: users, their plans, Stars payments, and the download queue with its history.
-- Times are Unix seconds (UTC).

CREATE TABLE users (
    user_id          INTEGER PRIMARY KEY,           -- Telegram user id
    username         TEXT,
    first_name       TEXT,
    language_code    TEXT,
    plan             TEXT NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'premium', 'vip')),
    plan_expires_at  INTEGER,
    default_format   TEXT NOT NULL DEFAULT 'mp3' CHECK (default_format IN ('mp3', 'mp4', 'srt')),
    default_quality  TEXT NOT NULL DEFAULT '320k',
    created_at       INTEGER NOT NULL,
    last_seen_at     INTEGER NOT NULL
);

CREATE TABLE subscriptions (
    id                          INTEGER PRIMARY KEY,
    user_id                     INTEGER NOT NULL REFERENCES users(user_id),
    plan                        TEXT NOT NULL CHECK (plan IN ('premium', 'vip')),
    status                      TEXT NOT NULL CHECK (status IN ('active', 'cancelled', 'expired', 'refunded')),
    started_at                  INTEGER NOT NULL,
    expires_at                  INTEGER NOT NULL,
    cancelled_at                INTEGER,
    telegram_payment_charge_id  TEXT
);
CREATE INDEX subscriptions_user ON subscriptions(user_id, status);
CREATE INDEX subscriptions_expiry ON subscriptions(status, expires_at);

CREATE TABLE payments (
    id                          INTEGER PRIMARY KEY,
    telegram_payment_charge_id  TEXT NOT NULL UNIQUE,
    provider_payment_charge_id  TEXT,
    user_id                     INTEGER NOT NULL REFERENCES users(user_id),
    plan                        TEXT NOT NULL CHECK (plan IN ('premium', 'vip')),
    amount_stars                INTEGER NOT NULL CHECK (amount_stars > 0),
    currency                    TEXT NOT NULL DEFAULT 'XTR',
    is_recurring                INTEGER NOT NULL DEFAULT 0,
    paid_at                     INTEGER NOT NULL,
    refunded_at                 INTEGER
);
CREATE INDEX payments_paid_at ON payments(paid_at);

-- One row per download job. Identical requests in flight share a row. Times here are Unix milliseconds, for
-- sub-second queue waits and durations.
CREATE TABLE download_tasks (
    id                   INTEGER PRIMARY KEY,
    user_id              INTEGER,                   -- NULL for tasks from doradurctl
    chat_id              INTEGER,
    url                  TEXT NOT NULL,
    format               TEXT NOT NULL CHECK (format IN ('mp3', 'mp4', 'srt')),
    quality              TEXT NOT NULL,
    priority             TEXT NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    priority_rank        INTEGER NOT NULL,          -- 0 high, 1 medium, 2 low: the lease order
    state                TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts             INTEGER NOT NULL DEFAULT 0,
    not_before_ms        INTEGER NOT NULL DEFAULT 0, -- retry backoff: not leased before this time
    lease_worker         INTEGER,                   -- worker slot running it
    cancel_requested     INTEGER NOT NULL DEFAULT 0,
    error_type           TEXT,
    error_message        TEXT,
    bytes                INTEGER,
    title                TEXT,
    media_duration_s     REAL,
    created_at_ms        INTEGER NOT NULL,
    started_at_ms        INTEGER,                   -- first lease
    finished_at_ms       INTEGER,
    queue_wait_ms        INTEGER,                   -- created to first lease
    ytdlp_ms             INTEGER,                   -- yt-dlp run time of the final attempt
    total_ms             INTEGER                    -- created to finished
);
CREATE INDEX download_tasks_lease ON download_tasks(state, priority_rank, id);
CREATE INDEX download_tasks_inflight ON download_tasks(url, format, quality, state);
CREATE INDEX download_tasks_finished ON download_tasks(finished_at_ms);
