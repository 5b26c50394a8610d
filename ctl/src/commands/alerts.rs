//! `doradurctl alerts [--history]`, `alerts silence TYPE DURATION`, `alerts test TYPE`.

use anyhow::bail;
use comfy_table::Table;
use comfy_table::presets::UTF8_BORDERS_ONLY;
use doradura_proto::control_client::ControlClient;
use doradura_proto::time::utc_time as utc;
use doradura_proto::{AlertsRequest, SilenceAlertRequest, TestAlertRequest};
use serde_json::json;
use tonic::transport::Channel;

use super::{human_duration, rpc};

/// `90`, `90s`, `30m`, `4h` or `2d`, from 1 second to 30 days.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (1..=30 * 86_400).contains(&secs).then_some(secs)
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub async fn list(channel: Channel, history: bool, json: bool) -> anyhow::Result<()> {
    let reply = ControlClient::new(channel)
        .alerts(AlertsRequest {
            history: if history { 20 } else { 0 },
        })
        .await
        .map_err(rpc)?
        .into_inner();
    if json {
        let firing: Vec<_> = reply
            .firing
            .iter()
            .map(|f| {
                json!({"alert_type": f.alert_type, "severity": f.severity, "since": f.since,
                       "acknowledged": f.acknowledged, "current": f.current, "threshold": f.threshold,
                       "history_id": (f.history_id > 0).then_some(f.history_id)})
            })
            .collect();
        let silences: Vec<_> = reply
            .silences
            .iter()
            .map(|s| json!({"alert_type": s.alert_type, "until": s.until}))
            .collect();
        let rows: Vec<_> = reply
            .history
            .iter()
            .map(|r| {
                json!({"id": r.id, "alert_type": r.alert_type, "severity": r.severity,
                       "triggered_at": r.triggered_at, "resolved_at": (r.resolved_at > 0).then_some(r.resolved_at),
                       "acknowledged": r.acknowledged, "test": r.test, "summary": r.summary})
            })
            .collect();
        let mut out = json!({"firing": firing, "silences": silences});
        if history {
            out["history"] = json!(rows);
        }
        println!("{out}");
        return Ok(());
    }
    let now = now_s();
    if reply.firing.is_empty() {
        println!("No alert is firing.");
    } else {
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY)
            .set_header(["ALERT", "SEVERITY", "FOR", "CURRENT", "THRESHOLD", "ACK"]);
        for f in &reply.firing {
            t.add_row([
                f.alert_type.clone(),
                f.severity.clone(),
                human_duration((now - f.since).max(0) as u64),
                f.current.clone(),
                f.threshold.clone(),
                if f.acknowledged { "yes" } else { "no" }.to_string(),
            ]);
        }
        println!("{t}");
    }
    for s in &reply.silences {
        println!(
            "{} is silenced for {} more",
            s.alert_type,
            human_duration((s.until - now).max(0) as u64)
        );
    }
    if history {
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY).set_header([
            "ID",
            "ALERT",
            "SEVERITY",
            "TRIGGERED",
            "RESOLVED",
            "ACK",
            "SUMMARY",
        ]);
        for r in &reply.history {
            t.add_row([
                r.id.to_string(),
                r.alert_type.clone(),
                r.severity.clone(),
                utc(r.triggered_at),
                match (r.resolved_at, r.test) {
                    (_, true) => "test".to_string(),
                    (0, _) => "open".to_string(),
                    (at, _) => utc(at),
                },
                if r.acknowledged { "yes" } else { "no" }.to_string(),
                r.summary.clone(),
            ]);
        }
        println!("{t}");
    }
    Ok(())
}

pub async fn silence(channel: Channel, alert_type: String, duration: String, json: bool) -> anyhow::Result<()> {
    let Some(seconds) = parse_duration(&duration) else {
        bail!("{duration:?} is not a duration: write 90s, 30m, 4h or 2d (from 1 second to 30 days)");
    };
    let reply = ControlClient::new(channel)
        .silence_alert(SilenceAlertRequest { alert_type, seconds })
        .await
        .map_err(rpc)?
        .into_inner();
    if json {
        println!("{}", json!({"alert_type": reply.alert_type, "until": reply.until}));
    } else {
        println!("{} silenced until {}", reply.alert_type, utc(reply.until));
    }
    Ok(())
}

pub async fn test(channel: Channel, alert_type: String, json: bool) -> anyhow::Result<()> {
    let reply = ControlClient::new(channel)
        .test_alert(TestAlertRequest { alert_type })
        .await
        .map_err(rpc)?
        .into_inner();
    if json {
        println!(
            "{}",
            json!({"alert_type": reply.alert_type, "history_id": reply.history_id})
        );
    } else {
        println!(
            "test {} alert #{} sent to the admins (marked as a test)",
            reply.alert_type, reply.history_id
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally_and_are_bounded() {
        assert_eq!(parse_duration("1h"), Some(3600));
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration("2d"), Some(172_800));
        for junk in ["", "0", "h", "1w", "-1h", "31d", "1.5h", "99999999999999999999d"] {
            assert_eq!(parse_duration(junk), None, "{junk}");
        }
    }
}
