-- Telegram Stars payments: invoices sent (the checkout funnel) and payment problems kept for the admin.
-- Times are Unix milliseconds.

CREATE TABLE checkouts (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL,
    plan           TEXT NOT NULL CHECK (plan IN ('premium', 'vip')),
    amount_stars   INTEGER NOT NULL,
    created_at_ms  INTEGER NOT NULL
);
CREATE INDEX checkouts_time ON checkouts(created_at_ms);

-- Anything about a payment that needs a person: an amount that does not match, a refund Telegram refused,
-- a payment that could not be recorded. Raised as PaymentFailure.
CREATE TABLE payment_issues (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL,
    user_id        INTEGER,
    plan           TEXT,
    charge_id      TEXT,
    details        TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    resolved       INTEGER NOT NULL DEFAULT 0
);
