-- Indexes that let the admin figures and the roll-ups read a window of history from the index alone, without
-- visiting the table rows: with a million tasks a 24-hour window is a few tens of thousands of index entries.

DROP INDEX download_tasks_finished;
CREATE INDEX download_tasks_finished ON download_tasks(finished_at_ms, state, format, quality, error_type, total_ms, bytes);
CREATE INDEX download_tasks_created ON download_tasks(created_at_ms, format);

DROP INDEX user_activity_date;
CREATE INDEX user_activity_date ON user_activity(activity_date, user_id, command_count);

-- New users per period, by their first update.
CREATE INDEX users_created ON users(created_at);
