//! The alert messages, in the contract's shape.

use super::kinds::{AlertType, Severity};
use super::rules::Finding;
use crate::users::utc_time;

fn duration(s: i64) -> String {
    let s = s.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s / 60 % 60),
    }
}

/// `CRITICAL ALERT`, the title, current value against threshold, the affected counts, details, trigger time.
pub fn firing(kind: AlertType, f: &Finding, since_s: i64, now_s: i64, test: bool) -> String {
    let severity = match kind.severity() {
        Severity::Critical => "CRITICAL ALERT",
        Severity::Warning => "WARNING ALERT",
    };
    let mut text = String::new();
    if test {
        text.push_str("🧪 TEST — sent by doradurctl alerts test; nothing is wrong.\n\n");
    }
    text.push_str(&format!(
        "{severity}\n\n{}\n\nCurrent: {} (threshold: {})\nAffected: {}\n{}\n\nTriggered: {}",
        kind.title(),
        f.current,
        f.threshold,
        f.affected,
        f.details,
        utc_time(since_s)
    ));
    if now_s - since_s >= 60 {
        text.push_str(&format!("\nStill firing after {}", duration(now_s - since_s)));
    }
    text
}

pub fn resolved(kind: AlertType, last: Option<&Finding>, since_s: i64, now_s: i64) -> String {
    let mut text = format!("RESOLVED\n\n{}\n\n", kind.title());
    if let Some(f) = last {
        text.push_str(&format!("Now: {} (threshold: {})\n", f.current, f.threshold));
    }
    text.push_str(&format!(
        "Fired for {}\n\nTriggered: {}\nResolved: {}",
        duration(now_s - since_s),
        utc_time(since_s),
        utc_time(now_s)
    ));
    text
}

/// A payment problem as a finding: the issue's kind, the user and plan, and what happened.
pub fn payment_finding(
    issue: &str,
    user: Option<i64>,
    plan: Option<&str>,
    charge: Option<&str>,
    details: &str,
) -> Finding {
    Finding {
        kind: AlertType::PaymentFailure,
        firing: true,
        current: issue.to_string(),
        threshold: "none expected".into(),
        affected: format!(
            "user {}, plan {}, charge {}",
            user.map_or("unknown".into(), |u| u.to_string()),
            plan.unwrap_or("none"),
            charge.unwrap_or("none")
        ),
        details: details.chars().take(500).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_has_the_contract_shape() {
        let f = Finding {
            kind: AlertType::HighErrorRate,
            firing: true,
            current: "12.5%".into(),
            threshold: "5.0%".into(),
            affected: "125/1000 downloads".into(),
            details: "Failed downloads in the last 15 min.".into(),
        };
        let t = 1_765_621_800; // 2025-12-13 10:30:00 UTC
        assert_eq!(
            firing(AlertType::HighErrorRate, &f, t, t, false),
            "CRITICAL ALERT\n\nHigh Error Rate Detected\n\nCurrent: 12.5% (threshold: 5.0%)\nAffected: 125/1000 \
             downloads\nFailed downloads in the last 15 min.\n\nTriggered: 2025-12-13 10:30:00 UTC"
        );
        assert!(firing(AlertType::QueueBackup, &f, t, t + 1900, true).starts_with("🧪 TEST"));
        assert!(firing(AlertType::QueueBackup, &f, t, t + 1900, false).ends_with("Still firing after 31m 40s"));
        assert_eq!(
            resolved(AlertType::HighErrorRate, Some(&f), t, t + 125),
            "RESOLVED\n\nHigh Error Rate Detected\n\nNow: 12.5% (threshold: 5.0%)\nFired for 2m 5s\n\nTriggered: \
             2025-12-13 10:30:00 UTC\nResolved: 2025-12-13 10:32:05 UTC"
        );
    }
}
