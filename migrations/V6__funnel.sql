-- Steps of the payment funnel that leave no other trace: a /plan view, a checkout refused at pre-checkout.
-- Times are Unix milliseconds.
CREATE TABLE funnel_events (
    id       INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL CHECK (kind IN ('plan_view', 'checkout_refused')),
    user_id  INTEGER,
    plan     TEXT,
    detail   TEXT,
    at_ms    INTEGER NOT NULL
);
CREATE INDEX funnel_events_time ON funnel_events(kind, at_ms);
