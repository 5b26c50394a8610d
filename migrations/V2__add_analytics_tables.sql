-- Analytics: roll-ups, alert history, and per-user daily activity (DAU/MAU).

CREATE TABLE metric_aggregates (
    id           INTEGER PRIMARY KEY,
    metric_name  TEXT NOT NULL,
    metric_type  TEXT NOT NULL,
    labels       TEXT NOT NULL DEFAULT '{}',       -- JSON object
    value        REAL NOT NULL,
    timestamp    INTEGER NOT NULL,                 -- start of the period, Unix seconds
    period       TEXT NOT NULL CHECK (period IN ('hour', 'day'))
);
CREATE UNIQUE INDEX metric_aggregates_key ON metric_aggregates(metric_name, labels, period, timestamp);

CREATE TABLE alert_history (
    id               INTEGER PRIMARY KEY,
    alert_type       TEXT NOT NULL,
    severity         TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
    message          TEXT NOT NULL,
    metadata         TEXT NOT NULL DEFAULT '{}',   -- JSON object
    triggered_at     INTEGER NOT NULL,
    resolved_at      INTEGER,
    acknowledged     INTEGER NOT NULL DEFAULT 0,
    acknowledged_at  INTEGER
);
CREATE INDEX alert_history_open ON alert_history(alert_type, resolved_at);

CREATE TABLE user_activity (
    user_id           INTEGER NOT NULL,
    activity_date     TEXT NOT NULL,               -- YYYY-MM-DD, UTC
    command_count     INTEGER NOT NULL DEFAULT 0,
    download_count    INTEGER NOT NULL DEFAULT 0,
    last_activity_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, activity_date)
);
CREATE INDEX user_activity_date ON user_activity(activity_date);
