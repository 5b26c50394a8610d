//! Plans bought with Telegram Stars: invoice payloads, pre-checkout validation, recording a payment once per
//! charge id, cancellation, refunds and expiry. Plain functions over a connection, the clock passed in.

use doradura_proto::types::PaymentFailureReason;
use rusqlite::{Connection, OptionalExtension, params};

use crate::plans::Plan;

/// A paid plan lasts this long; a new payment for the same plan extends it.
pub const PERIOD_S: i64 = 30 * 86_400;

/// The invoice payload: `plan:<plan>:<user id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    pub plan: Plan,
    pub user_id: i64,
}

impl Payload {
    pub fn encode(&self) -> String {
        format!("plan:{}:{}", self.plan.as_str(), self.user_id)
    }

    pub fn parse(s: &str) -> Option<Payload> {
        let mut parts = s.split(':');
        let (Some("plan"), Some(plan), Some(user), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let plan = Plan::parse(plan).filter(|p| *p != Plan::Free)?;
        let user_id: i64 = user.parse().ok().filter(|u| *u > 0)?;
        (user == user_id.to_string()).then_some(Payload { plan, user_id })
    }
}

/// Prices in Stars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    pub premium: u32,
    pub vip: u32,
}

impl Prices {
    pub fn of(&self, plan: Plan) -> Option<u32> {
        match plan {
            Plan::Free => None,
            Plan::Premium => Some(self.premium),
            Plan::Vip => Some(self.vip),
        }
    }
}

/// Why a checkout is refused; the reason labels `doradura_payment_failure_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    InvalidPayload,
    WrongUser,
    WrongAmount { expected: u32 },
}

impl Refusal {
    /// The `reason` label of `doradura_payment_failure_total` and of the stored refusal.
    pub fn reason(self) -> PaymentFailureReason {
        match self {
            Refusal::InvalidPayload => PaymentFailureReason::InvalidPayload,
            Refusal::WrongUser => PaymentFailureReason::WrongUser,
            Refusal::WrongAmount { .. } => PaymentFailureReason::WrongAmount,
        }
    }

    /// What the user reads in Telegram's payment sheet.
    pub fn message(self) -> String {
        match self {
            Refusal::InvalidPayload => "This invoice is not valid any more. Open /plan and try again.".into(),
            Refusal::WrongUser => "This invoice was made for another user. Open /plan to get your own.".into(),
            Refusal::WrongAmount { expected } => {
                format!("The price has changed to {expected} Stars. Open /plan for a new invoice.")
            }
        }
    }
}

/// The pre-checkout decision: the payload names this user and a paid plan, and the amount and currency are the
/// current price.
pub fn check(
    payload: &str,
    from: i64,
    currency: &str,
    amount: u32,
    prices: &Prices,
) -> Result<Plan, (Option<Plan>, Refusal)> {
    let p = Payload::parse(payload).ok_or((None, Refusal::InvalidPayload))?;
    if p.user_id != from {
        return Err((Some(p.plan), Refusal::WrongUser));
    }
    let expected = prices.of(p.plan).ok_or((Some(p.plan), Refusal::InvalidPayload))?;
    if currency != "XTR" || amount != expected {
        return Err((Some(p.plan), Refusal::WrongAmount { expected }));
    }
    Ok(p.plan)
}

pub fn record_checkout(conn: &Connection, user_id: i64, plan: Plan, amount: u32, now_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO checkouts (user_id, plan, amount_stars, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![user_id, plan.as_str(), amount, now_ms],
    )?;
    Ok(())
}

/// What recording a payment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new payment; the plan now runs until `expires_at` (Unix seconds).
    New { expires_at: i64 },
    /// This charge id was recorded before: nothing changed.
    Duplicate,
}

/// Records a successful payment once per charge id and activates or extends the plan, in one transaction.
pub fn record_payment(
    conn: &mut Connection,
    user_id: i64,
    plan: Plan,
    amount: u32,
    charge_id: &str,
    provider_charge_id: &str,
    now_s: i64,
) -> rusqlite::Result<Recorded> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO users (user_id, first_name, created_at, last_seen_at) VALUES (?1, '', ?2, ?2)
         ON CONFLICT (user_id) DO NOTHING",
        params![user_id, now_s],
    )?;
    let inserted = tx.execute(
        "INSERT INTO payments (telegram_payment_charge_id, provider_payment_charge_id, user_id, plan, amount_stars,
                               paid_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (telegram_payment_charge_id) DO NOTHING",
        params![charge_id, provider_charge_id, user_id, plan.as_str(), amount, now_s],
    )?;
    if inserted == 0 {
        return Ok(Recorded::Duplicate);
    }
    let (current, expires): (String, Option<i64>) = tx.query_row(
        "SELECT plan, plan_expires_at FROM users WHERE user_id = ?1",
        [user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let from = match expires {
        Some(e) if current == plan.as_str() && e > now_s => e,
        _ => now_s,
    };
    let expires_at = from + PERIOD_S;
    tx.execute(
        "UPDATE users SET plan = ?2, plan_expires_at = ?3 WHERE user_id = ?1",
        params![user_id, plan.as_str(), expires_at],
    )?;
    tx.execute(
        "UPDATE subscriptions SET status = 'expired' WHERE user_id = ?1 AND status IN ('active', 'cancelled')
            AND plan != ?2",
        params![user_id, plan.as_str()],
    )?;
    let extended = tx.execute(
        "UPDATE subscriptions SET expires_at = ?3, status = 'active', cancelled_at = NULL,
                telegram_payment_charge_id = ?4
          WHERE user_id = ?1 AND plan = ?2 AND status IN ('active', 'cancelled')",
        params![user_id, plan.as_str(), expires_at, charge_id],
    )?;
    if extended == 0 {
        tx.execute(
            "INSERT INTO subscriptions (user_id, plan, status, started_at, expires_at, telegram_payment_charge_id)
             VALUES (?1, ?2, 'active', ?3, ?4, ?5)",
            params![user_id, plan.as_str(), now_s, expires_at, charge_id],
        )?;
    }
    tx.commit()?;
    Ok(Recorded::New { expires_at })
}

/// Cancels the user's running plan: it ends at its expiry. `None` when there is nothing to cancel.
pub fn cancel(conn: &Connection, user_id: i64, now_s: i64) -> rusqlite::Result<Option<(Plan, i64)>> {
    let row: Option<(String, i64)> = conn
        .query_row(
            "SELECT plan, expires_at FROM subscriptions WHERE user_id = ?1 AND status = 'active' AND expires_at > ?2",
            params![user_id, now_s],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((plan, expires)) = row else { return Ok(None) };
    conn.execute(
        "UPDATE subscriptions SET status = 'cancelled', cancelled_at = ?2 WHERE user_id = ?1 AND status = 'active'",
        params![user_id, now_s],
    )?;
    Ok(Plan::parse(&plan).map(|p| (p, expires)))
}

/// A payment's user and plan, if it exists and was not refunded.
pub fn refundable(conn: &Connection, charge_id: &str) -> rusqlite::Result<Option<(i64, Plan)>> {
    Ok(conn
        .query_row(
            "SELECT user_id, plan FROM payments WHERE telegram_payment_charge_id = ?1 AND refunded_at IS NULL",
            [charge_id],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?
        .and_then(|(u, p)| Some((u, Plan::parse(&p)?))))
}

/// Marks a payment refunded and revokes the plan it paid for; `false` if it was refunded already.
pub fn refund(conn: &mut Connection, charge_id: &str, now_s: i64) -> rusqlite::Result<bool> {
    let tx = conn.transaction()?;
    let Some((user_id, plan)): Option<(i64, String)> = tx
        .query_row(
            "SELECT user_id, plan FROM payments WHERE telegram_payment_charge_id = ?1 AND refunded_at IS NULL",
            [charge_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
    else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE payments SET refunded_at = ?2 WHERE telegram_payment_charge_id = ?1",
        params![charge_id, now_s],
    )?;
    tx.execute(
        "UPDATE users SET plan = 'free', plan_expires_at = NULL WHERE user_id = ?1 AND plan = ?2",
        params![user_id, plan],
    )?;
    tx.execute(
        "UPDATE subscriptions SET status = 'refunded', cancelled_at = ?3
          WHERE user_id = ?1 AND plan = ?2 AND status IN ('active', 'cancelled')",
        params![user_id, plan, now_s],
    )?;
    tx.commit()?;
    Ok(true)
}

/// Ends the plans whose time is up; returns who lost which plan.
pub fn expire(conn: &mut Connection, now_s: i64) -> rusqlite::Result<Vec<(i64, Plan)>> {
    let tx = conn.transaction()?;
    let lapsed: Vec<(i64, String)> = tx
        .prepare("SELECT user_id, plan FROM users WHERE plan != 'free' AND plan_expires_at IS NOT NULL AND plan_expires_at <= ?1")?
        .query_map([now_s], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (user, _) in &lapsed {
        tx.execute(
            "UPDATE users SET plan = 'free', plan_expires_at = NULL WHERE user_id = ?1",
            [user],
        )?;
        tx.execute(
            "UPDATE subscriptions SET status = 'expired' WHERE user_id = ?1 AND status IN ('active', 'cancelled')",
            [user],
        )?;
    }
    tx.commit()?;
    Ok(lapsed
        .into_iter()
        .filter_map(|(u, p)| Some((u, Plan::parse(&p)?)))
        .collect())
}

/// Users on each paid plan now.
pub fn active_by_plan(conn: &Connection, now_s: i64) -> rusqlite::Result<Vec<(Plan, i64)>> {
    [Plan::Premium, Plan::Vip]
        .into_iter()
        .map(|p| {
            conn.query_row(
                "SELECT COUNT(*) FROM users WHERE plan = ?1 AND (plan_expires_at IS NULL OR plan_expires_at > ?2)",
                params![p.as_str(), now_s],
                |r| r.get(0),
            )
            .map(|n| (p, n))
        })
        .collect()
}

/// Stars received by plan (refunded payments included: the counter never goes back).
pub fn revenue_by_plan(conn: &Connection) -> rusqlite::Result<Vec<(Plan, u64)>> {
    [Plan::Premium, Plan::Vip]
        .into_iter()
        .map(|p| {
            conn.query_row(
                "SELECT COALESCE(SUM(amount_stars), 0) FROM payments WHERE plan = ?1",
                [p.as_str()],
                |r| r.get::<_, u64>(0),
            )
            .map(|n| (p, n))
        })
        .collect()
}

/// Keeps a payment problem for the admin (the PaymentFailure alert reads these).
pub fn raise_issue(
    conn: &Connection,
    kind: &str,
    user_id: Option<i64>,
    plan: Option<Plan>,
    charge_id: Option<&str>,
    details: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO payment_issues (kind, user_id, plan, charge_id, details, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![kind, user_id, plan.map(Plan::as_str), charge_id, details, now_ms],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICES: Prices = Prices { premium: 100, vip: 250 };

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c).unwrap();
        c
    }

    #[test]
    fn payloads_round_trip_and_junk_is_refused() {
        let p = Payload {
            plan: Plan::Vip,
            user_id: 42,
        };
        assert_eq!(p.encode(), "plan:vip:42");
        assert_eq!(Payload::parse("plan:vip:42"), Some(p));
        for junk in [
            "",
            "plan:free:42",
            "plan:gold:42",
            "plan:vip:-1",
            "plan:vip:042",
            "plan:vip:42:x",
            "x:vip:42",
        ] {
            assert_eq!(Payload::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn pre_checkout_checks_user_plan_currency_and_amount() {
        assert_eq!(check("plan:vip:42", 42, "XTR", 250, &PRICES), Ok(Plan::Vip));
        assert_eq!(
            check("plan:vip:42", 43, "XTR", 250, &PRICES),
            Err((Some(Plan::Vip), Refusal::WrongUser))
        );
        assert_eq!(
            check("plan:vip:42", 42, "XTR", 100, &PRICES),
            Err((Some(Plan::Vip), Refusal::WrongAmount { expected: 250 }))
        );
        assert_eq!(
            check("plan:vip:42", 42, "USD", 250, &PRICES),
            Err((Some(Plan::Vip), Refusal::WrongAmount { expected: 250 }))
        );
        assert_eq!(
            check("junk", 42, "XTR", 250, &PRICES),
            Err((None, Refusal::InvalidPayload))
        );
    }

    #[test]
    fn a_payment_is_recorded_once_and_extends_the_plan() {
        let mut c = db();
        let now = 1_000_000;
        assert_eq!(
            record_payment(&mut c, 42, Plan::Premium, 100, "ch1", "", now).unwrap(),
            Recorded::New {
                expires_at: now + PERIOD_S
            }
        );
        assert_eq!(
            record_payment(&mut c, 42, Plan::Premium, 100, "ch1", "", now + 5).unwrap(),
            Recorded::Duplicate
        );
        assert_eq!(
            record_payment(&mut c, 42, Plan::Premium, 100, "ch2", "", now + 10).unwrap(),
            Recorded::New {
                expires_at: now + 2 * PERIOD_S
            }
        );
        assert_eq!(crate::users::plan(&c, 42, now + 11).unwrap(), Plan::Premium);
        assert_eq!(
            active_by_plan(&c, now + 11).unwrap(),
            vec![(Plan::Premium, 1), (Plan::Vip, 0)]
        );
        assert_eq!(revenue_by_plan(&c).unwrap(), vec![(Plan::Premium, 200), (Plan::Vip, 0)]);
        let subs: u32 = c
            .query_row("SELECT COUNT(*) FROM subscriptions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(subs, 1, "an extension updates the subscription");
    }

    #[test]
    fn cancel_refund_and_expiry_each_end_the_plan() {
        let mut c = db();
        record_payment(&mut c, 1, Plan::Vip, 250, "a", "", 0).unwrap();
        assert_eq!(cancel(&c, 1, 10).unwrap(), Some((Plan::Vip, PERIOD_S)));
        assert_eq!(
            crate::users::plan(&c, 1, 11).unwrap(),
            Plan::Vip,
            "a cancelled plan runs to its expiry"
        );
        assert_eq!(cancel(&c, 1, 12).unwrap(), None);
        assert_eq!(expire(&mut c, PERIOD_S).unwrap(), vec![(1, Plan::Vip)]);
        assert_eq!(crate::users::plan(&c, 1, PERIOD_S).unwrap(), Plan::Free);

        record_payment(&mut c, 2, Plan::Premium, 100, "b", "", 0).unwrap();
        assert_eq!(refundable(&c, "b").unwrap(), Some((2, Plan::Premium)));
        assert!(refund(&mut c, "b", 5).unwrap());
        assert!(!refund(&mut c, "b", 6).unwrap());
        assert_eq!(refundable(&c, "b").unwrap(), None);
        assert_eq!(crate::users::plan(&c, 2, 6).unwrap(), Plan::Free);
        assert_eq!(
            revenue_by_plan(&c).unwrap(),
            vec![(Plan::Premium, 100), (Plan::Vip, 250)]
        );
    }
}
