//! `doradurctl queue`: waiting and running tasks (and, with `--all`, the latest finished ones).

use comfy_table::Table;
use comfy_table::presets::UTF8_BORDERS_ONLY;
use doradura_proto::ListQueueRequest;
use doradura_proto::control_client::ControlClient;
use doradura_proto::types::TaskState;
use serde_json::json;
use tonic::transport::Channel;

use super::{human_duration, rpc};

/// A task's state as the daemon named it; `None` for one this doradurctl does not know (a newer daemon), which
/// is shown as it came, without position or progress.
fn state(name: &str) -> Option<TaskState> {
    name.parse().ok()
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

pub async fn run(channel: Channel, all: bool, json: bool) -> anyhow::Result<()> {
    let reply = ControlClient::new(channel)
        .list_queue(ListQueueRequest {
            include_finished: all,
            limit: 20,
        })
        .await
        .map_err(rpc)?
        .into_inner();
    if json {
        let entries: Vec<_> = reply
            .entries
            .iter()
            .map(|e| {
                json!({
                    "id": e.id,
                    "state": e.state,
                    "priority": e.priority,
                    "position": (state(&e.state) == Some(TaskState::Queued)).then_some(e.position),
                    "format": e.format,
                    "quality": e.quality,
                    "url": e.url,
                    "progress_percent": e.percent,
                    "worker": (e.worker >= 0).then_some(e.worker),
                    "attempts": e.attempts,
                    "age_seconds": e.age_seconds,
                    "error_type": (!e.error_type.is_empty()).then_some(&e.error_type),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    if reply.entries.is_empty() {
        println!("the queue is empty");
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "TASK", "STATE", "PRIORITY", "POS", "FORMAT", "PROGRESS", "WORKER", "TRIES", "AGE", "URL", "ERROR",
    ]);
    for e in &reply.entries {
        table.add_row([
            e.id.to_string(),
            e.state.clone(),
            e.priority.clone(),
            if state(&e.state) == Some(TaskState::Queued) {
                e.position.to_string()
            } else {
                "-".into()
            },
            format!("{} {}", e.format, e.quality),
            if matches!(state(&e.state), Some(TaskState::Running | TaskState::Done)) {
                format!("{:.0}%", e.percent)
            } else {
                "-".into()
            },
            if e.worker >= 0 {
                e.worker.to_string()
            } else {
                "-".into()
            },
            e.attempts.to_string(),
            human_duration(e.age_seconds),
            shorten(&e.url, 60),
            if e.error_type.is_empty() {
                "-".into()
            } else {
                e.error_type.clone()
            },
        ]);
    }
    println!("{table}");
    Ok(())
}
