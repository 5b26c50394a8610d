//! `doradurctl metrics [CATEGORY]`: the daemon's registry (what /metrics serves), grouped by category.

use std::collections::BTreeMap;

use anyhow::bail;
use doradura_proto::MetricsRequest;
use doradura_proto::control_client::ControlClient;
use doradura_proto::types::MetricsCategory;
use tonic::transport::Channel;

use super::rpc;

/// The category of a metric family, by its name (a `MetricsCategory` wire name).
pub fn category(name: &str) -> &'static str {
    family_category(name).as_str()
}

fn family_category(name: &str) -> MetricsCategory {
    let n = name.strip_prefix("doradura_").unwrap_or(name);
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| n.starts_with(p));
    if starts(&[
        "download",
        "queue_wait",
        "ytdlp_execution",
        "task_retries",
        "telegram_send",
    ]) {
        MetricsCategory::Performance
    } else if starts(&[
        "revenue",
        "new_subscriptions",
        "subscription",
        "payment",
        "active_subscriptions",
    ]) {
        MetricsCategory::Business
    } else if starts(&[
        "daily_active",
        "monthly_active",
        "total_users",
        "new_users",
        "command_usage",
        "format_requests",
        "rate_limit",
    ]) {
        MetricsCategory::Engagement
    } else {
        MetricsCategory::System
    }
}

/// Series of the text format grouped by category; histogram buckets are left out (sum and count stay).
pub fn group(text: &str) -> BTreeMap<&'static str, Vec<(String, String)>> {
    let mut out: BTreeMap<&'static str, Vec<(String, String)>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if name.ends_with("_bucket") {
            continue;
        }
        out.entry(category(name))
            .or_default()
            .push((series.to_string(), value.to_string()));
    }
    out
}

pub async fn run(channel: Channel, wanted: Option<String>, json: bool) -> anyhow::Result<()> {
    if let Some(c) = &wanted
        && c.parse::<MetricsCategory>().is_err()
    {
        let all: Vec<&str> = MetricsCategory::ALL.iter().map(|c| c.as_str()).collect();
        bail!("unknown category {c:?}; the categories are: {}", all.join(", "));
    }
    let text = ControlClient::new(channel)
        .metrics(MetricsRequest {})
        .await
        .map_err(rpc)?
        .into_inner()
        .text;
    let groups = group(&text);
    let shown: Vec<(&str, &Vec<(String, String)>)> = groups
        .iter()
        .filter(|(c, _)| wanted.as_deref().is_none_or(|w| w == **c))
        .map(|(c, s)| (*c, s))
        .collect();
    if json {
        let map: serde_json::Map<String, serde_json::Value> = shown
            .iter()
            .map(|(c, series)| {
                let inner: serde_json::Map<String, serde_json::Value> = series
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.parse::<f64>()
                                .map_or(serde_json::Value::Null, serde_json::Value::from),
                        )
                    })
                    .collect();
                (c.to_string(), serde_json::Value::Object(inner))
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&map)?);
        return Ok(());
    }
    for (c, series) in shown {
        println!("== {c}");
        for (k, v) in series {
            println!("{k} {v}");
        }
        println!();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_fall_into_their_categories() {
        assert_eq!(category("doradura_download_success_total"), "performance");
        assert_eq!(category("doradura_telegram_send_duration_seconds_sum"), "performance");
        assert_eq!(category("doradura_revenue_by_plan"), "business");
        assert_eq!(category("doradura_payment_failure_total"), "business");
        assert_eq!(category("doradura_daily_active_users"), "engagement");
        assert_eq!(category("doradura_rate_limit_hits_total"), "engagement");
        assert_eq!(category("doradura_workers"), "system");
        assert_eq!(category("process_resident_memory_bytes"), "system");
    }

    #[test]
    fn grouping_keeps_values_and_drops_buckets() {
        let text = "# HELP x\n# TYPE doradura_workers gauge\ndoradura_workers{state=\"idle\"} 2\n\
                    doradura_download_duration_seconds_bucket{le=\"1\"} 3\ndoradura_download_duration_seconds_count 3\n";
        let g = group(text);
        assert_eq!(
            g["system"],
            vec![("doradura_workers{state=\"idle\"}".to_string(), "2".to_string())]
        );
        assert_eq!(
            g["performance"],
            vec![("doradura_download_duration_seconds_count".to_string(), "3".to_string())]
        );
    }
}
