//! The control socket's alert calls: the overview, silences and test alerts, through the alert manager.

use tonic::Status;

use crate::alerts::{AlertType, Alerts, AlertsError};
use doradura_proto::{AlertRecord, AlertSilence, AlertsReply, FiringAlert};

fn kind(name: &str) -> Result<AlertType, Status> {
    AlertType::parse(name).ok_or_else(|| {
        let known: Vec<&str> = AlertType::ALL.iter().map(|t| t.as_str()).collect();
        Status::invalid_argument(format!(
            "unknown alert type {:?}; the types are {}",
            name.chars().take(40).collect::<String>(),
            known.join(", ")
        ))
    })
}

fn unavailable(e: AlertsError) -> Status {
    Status::failed_precondition(e.to_string())
}

pub async fn overview(alerts: &Alerts, history: u32) -> Result<AlertsReply, Status> {
    let o = alerts.overview(history.min(1000)).await.map_err(unavailable)?;
    let mut firing: Vec<FiringAlert> = o
        .firing
        .into_iter()
        .map(|(kind, since, acknowledged, finding)| FiringAlert {
            alert_type: kind.as_str().into(),
            severity: kind.severity().as_str().into(),
            since,
            acknowledged,
            current: finding.as_ref().map(|f| f.current.clone()).unwrap_or_default(),
            threshold: finding.map(|f| f.threshold).unwrap_or_default(),
            history_id: 0,
        })
        .collect();
    firing.extend(o.payment_open.into_iter().map(|r| FiringAlert {
        alert_type: r.kind.to_string(),
        severity: r.severity.to_string(),
        since: r.triggered_at,
        acknowledged: r.acknowledged,
        current: r.summary,
        threshold: String::new(),
        history_id: r.id,
    }));
    Ok(AlertsReply {
        firing,
        silences: o
            .silences
            .into_iter()
            .map(|(k, until)| AlertSilence {
                alert_type: k.as_str().into(),
                until,
            })
            .collect(),
        history: o
            .history
            .into_iter()
            .map(|r| AlertRecord {
                id: r.id,
                alert_type: r.kind.to_string(),
                severity: r.severity.to_string(),
                triggered_at: r.triggered_at,
                resolved_at: r.resolved_at.unwrap_or(0),
                acknowledged: r.acknowledged,
                test: r.test,
                summary: r.summary,
            })
            .collect(),
    })
}

pub async fn silence(alerts: &Alerts, name: &str, seconds: u64, by: String) -> Result<(AlertType, i64), Status> {
    let kind = kind(name)?;
    if !(1..=30 * 86_400).contains(&seconds) {
        return Err(Status::invalid_argument("a silence lasts from 1 second to 30 days"));
    }
    let until = alerts
        .silence(kind, std::time::Duration::from_secs(seconds), by)
        .await
        .map_err(unavailable)?;
    Ok((kind, until))
}

pub async fn test(alerts: &Alerts, name: &str) -> Result<(AlertType, i64), Status> {
    let kind = kind(name)?;
    Ok((kind, alerts.test(kind).await.map_err(unavailable)?))
}
