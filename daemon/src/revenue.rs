//! `/revenue`: Stars all-time and over 30 days, by plan, the funnel (plan views → checkouts → payments) and the
//! payment statistics, all from the database.

use rusqlite::{Connection, params};

use crate::plans::Plan;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Revenue {
    pub all_time: u64,
    pub last_30: u64,
    /// (plan, all-time Stars, Stars in 30 days, payments in 30 days).
    pub by_plan: Vec<(Plan, u64, u64, u64)>,
    pub views_30: u64,
    pub checkouts_30: u64,
    pub payments_30: u64,
    /// Pre-checkout refusals in 30 days, by reason.
    pub refusals_30: Vec<(String, u64)>,
    pub refunds_30: u64,
    /// Stars per UTC day, the last 30 days, oldest first (today last).
    pub daily: Vec<u64>,
}

/// A step of the payment funnel that leaves no payment row (`funnel_events.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunnelEvent {
    /// `/plan` was opened.
    PlanView,
    /// A pre-checkout was refused; the detail is the `PaymentFailureReason`.
    CheckoutRefused,
}

impl FunnelEvent {
    pub const ALL: [FunnelEvent; 2] = [FunnelEvent::PlanView, FunnelEvent::CheckoutRefused];

    pub fn as_str(self) -> &'static str {
        match self {
            FunnelEvent::PlanView => "plan_view",
            FunnelEvent::CheckoutRefused => "checkout_refused",
        }
    }
}

pub fn record_event(
    conn: &Connection,
    kind: FunnelEvent,
    user_id: i64,
    plan: Option<Plan>,
    detail: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO funnel_events (kind, user_id, plan, detail, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![kind.as_str(), user_id, plan.map(Plan::as_str), detail, now_ms],
    )?;
    Ok(())
}

pub fn compute(conn: &Connection, now_ms: i64) -> rusqlite::Result<Revenue> {
    let since_ms = now_ms - 30 * DAY_MS;
    let since_s = since_ms / 1000;
    let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| conn.query_row(sql, p, |r| r.get::<_, u64>(0));
    let mut by_plan = Vec::new();
    for plan in [Plan::Premium, Plan::Vip] {
        let all = one(
            "SELECT COALESCE(SUM(amount_stars), 0) FROM payments WHERE plan = ?1",
            &[&plan.as_str()],
        )?;
        let (recent, n): (u64, u64) = conn.query_row(
            "SELECT COALESCE(SUM(amount_stars), 0), COUNT(*) FROM payments WHERE plan = ?1 AND paid_at >= ?2",
            params![plan.as_str(), since_s],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        by_plan.push((plan, all, recent, n));
    }
    let refusals_30 = conn
        .prepare(
            "SELECT detail, COUNT(*) FROM funnel_events WHERE kind = 'checkout_refused' AND at_ms >= ?1
              GROUP BY detail ORDER BY detail",
        )?
        .query_map([since_ms], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?
        .collect::<Result<_, _>>()?;
    let today = crate::plans::day_start_ms(now_ms) / 1000;
    let mut daily = vec![0u64; 30];
    let mut st =
        conn.prepare("SELECT (paid_at - ?1) / 86400, SUM(amount_stars) FROM payments WHERE paid_at >= ?1 GROUP BY 1")?;
    let first_day = today - 29 * 86_400;
    for row in st.query_map([first_day], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?)))? {
        let (d, stars) = row?;
        if let Some(slot) = usize::try_from(d).ok().and_then(|d| daily.get_mut(d)) {
            *slot = stars;
        }
    }
    Ok(Revenue {
        all_time: by_plan.iter().map(|p| p.1).sum(),
        last_30: by_plan.iter().map(|p| p.2).sum(),
        payments_30: by_plan.iter().map(|p| p.3).sum(),
        by_plan,
        views_30: one(
            "SELECT COUNT(*) FROM funnel_events WHERE kind = 'plan_view' AND at_ms >= ?1",
            &[&since_ms],
        )?,
        checkouts_30: one("SELECT COUNT(*) FROM checkouts WHERE created_at_ms >= ?1", &[&since_ms])?,
        refusals_30,
        refunds_30: one("SELECT COUNT(*) FROM payments WHERE refunded_at >= ?1", &[&since_s])?,
        daily,
    })
}

fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

pub fn render(r: &Revenue) -> String {
    let mut out = format!(
        "💰 Revenue\nAll time: {} ⭐\nLast 30 days: {} ⭐\n",
        r.all_time, r.last_30
    );
    for (plan, all, recent, n) in &r.by_plan {
        out.push_str(&format!(
            " • {}: {all} ⭐ all time, {recent} ⭐ in 30 days ({n} payments)\n",
            plan.title()
        ));
    }
    out.push_str(&format!(
        "Funnel (30 days): Plan views: {} → Checkouts: {} ({}) → Payments: {} ({})\n",
        r.views_30,
        r.checkouts_30,
        share(r.checkouts_30, r.views_30),
        r.payments_30,
        share(r.payments_30, r.checkouts_30)
    ));
    let refusals: Vec<String> = r.refusals_30.iter().map(|(k, n)| format!("{k} {n}")).collect();
    out.push_str(&format!(
        "Payments (30 days): {} succeeded, {} refused at checkout{}, {} refunded",
        r.payments_30,
        r.refusals_30.iter().map(|x| x.1).sum::<u64>(),
        if refusals.is_empty() {
            String::new()
        } else {
            format!(" ({})", refusals.join(", "))
        },
        r.refunds_30
    ));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn funnel_events_are_what_the_migration_allows() {
        let sql = include_str!("../../migrations/V6__funnel.sql");
        let kinds: Vec<String> = super::FunnelEvent::ALL
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect();
        assert!(
            sql.contains(&format!("CHECK (kind IN ({}))", kinds.join(", "))),
            "{sql}"
        );
    }

    use super::*;

    #[test]
    fn figures_come_from_payments_checkouts_and_the_funnel() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c).unwrap();
        let now = 100 * DAY_MS + 3_600_000;
        c.execute(
            "INSERT INTO users (user_id, first_name, created_at, last_seen_at) VALUES (1, 'a', 0, 0)",
            [],
        )
        .unwrap();
        for (charge, plan, stars, at_ms, refunded) in [
            ("a", "vip", 250, now - 1000, None),
            ("b", "premium", 100, now - 2 * DAY_MS, Some(now / 1000)),
            ("c", "premium", 100, now - 40 * DAY_MS, None),
        ] {
            c.execute(
                "INSERT INTO payments (telegram_payment_charge_id, user_id, plan, amount_stars, paid_at, refunded_at)
                 VALUES (?1, 1, ?2, ?3, ?4, ?5)",
                params![charge, plan, stars, at_ms / 1000, refunded],
            )
            .unwrap();
        }
        for _ in 0..4 {
            record_event(&c, FunnelEvent::PlanView, 1, None, None, now - 10).unwrap();
        }
        record_event(
            &c,
            FunnelEvent::CheckoutRefused,
            1,
            Some(Plan::Vip),
            Some("wrong_amount"),
            now - 10,
        )
        .unwrap();
        for _ in 0..2 {
            crate::payments::record_checkout(&c, 1, Plan::Vip, 250, now - 10).unwrap();
        }
        let r = compute(&c, now).unwrap();
        assert_eq!((r.all_time, r.last_30, r.payments_30, r.refunds_30), (450, 350, 2, 1));
        assert_eq!(r.by_plan, vec![(Plan::Premium, 200, 100, 1), (Plan::Vip, 250, 250, 1)]);
        assert_eq!((r.views_30, r.checkouts_30), (4, 2));
        assert_eq!(r.daily[29], 250);
        assert_eq!(r.daily[27], 100);
        assert_eq!(r.daily.iter().sum::<u64>(), 350);
        let text = render(&r);
        assert!(
            text.contains("Funnel (30 days): Plan views: 4 → Checkouts: 2 (50%) → Payments: 2 (100%)"),
            "{text}"
        );
        assert!(
            text.contains("2 succeeded, 1 refused at checkout (wrong_amount 1), 1 refunded"),
            "{text}"
        );
    }
}
