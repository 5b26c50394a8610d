//! Alerting: conditions evaluated over sliding windows of real data, throttled messages to the admins in
//! Telegram, resolutions, silences and acknowledgements, all remembered in the database across restarts.

pub mod kinds;
mod manager;
pub mod messages;
mod notifier;
pub mod rules;
pub mod state;
pub mod store;

pub use kinds::{AlertType, Severity};
pub use manager::{Alerts, AlertsError, Deps, Overview, spawn};
pub use notifier::Notifier;

/// `/alerts` and `doradurctl alerts`: what is firing, what is silenced, and the history.
pub fn render(o: &Overview, now_s: i64) -> String {
    use crate::users::utc_time;
    let mut out = String::from("🚨 Alerts\n");
    if o.firing.is_empty() && o.payment_open.is_empty() {
        out.push_str("Firing: none\n");
    } else {
        out.push_str("Firing:\n");
        for (kind, since, acked, finding) in &o.firing {
            let figures = finding
                .as_ref()
                .map(|f| format!(": {} (threshold: {})", f.current, f.threshold))
                .unwrap_or_default();
            out.push_str(&format!(
                " • {kind} [{}]{figures}, since {}{}\n",
                kind.severity().as_str(),
                utc_time(*since),
                if *acked { ", acknowledged" } else { "" }
            ));
        }
        for r in &o.payment_open {
            out.push_str(&format!(
                " • PaymentFailure [critical] #{}: {}, at {}\n",
                r.id,
                r.summary,
                utc_time(r.triggered_at)
            ));
        }
    }
    if !o.silences.is_empty() {
        let s: Vec<String> = o
            .silences
            .iter()
            .map(|(k, u)| format!("{k} for {} more min", ((u - now_s).max(0) + 59) / 60))
            .collect();
        out.push_str(&format!("Silenced: {}\n", s.join(" · ")));
    }
    out.push_str(&format!("History (last {}):\n", o.history.len()));
    if o.history.is_empty() {
        out.push_str(" • none\n");
    }
    for r in &o.history {
        let end = match r.resolved_at {
            Some(t) if r.test => format!("test, {}", utc_time(t)),
            Some(t) => format!("resolved {}", utc_time(t)),
            None => "open".into(),
        };
        out.push_str(&format!(
            " • #{} {} [{}] {} → {}{}\n",
            r.id,
            r.kind,
            r.severity,
            utc_time(r.triggered_at),
            end,
            if r.acknowledged { ", acknowledged" } else { "" }
        ));
    }
    out.trim_end().to_string()
}
