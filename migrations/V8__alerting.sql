-- Alerting: when a firing last sent a message (the throttle outlives a restart), test alerts kept apart, who
-- acknowledged, and silences by type.

ALTER TABLE alert_history ADD COLUMN last_sent_at INTEGER;
ALTER TABLE alert_history ADD COLUMN is_test INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alert_history ADD COLUMN acknowledged_by INTEGER;
CREATE INDEX alert_history_time ON alert_history(triggered_at);

CREATE TABLE alert_silences (
    alert_type  TEXT PRIMARY KEY,
    until_at    INTEGER NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      INTEGER NOT NULL
);
