//! `doradurctl cancel TASK`.

use anyhow::bail;
use doradura_proto::CancelRequest;
use doradura_proto::control_client::ControlClient;
use tonic::transport::Channel;

use super::rpc;

pub async fn run(channel: Channel, task: u64, json: bool) -> anyhow::Result<()> {
    let reply = ControlClient::new(channel)
        .cancel(CancelRequest { task_id: task })
        .await
        .map_err(rpc)?
        .into_inner();
    if json {
        println!("{}", serde_json::json!({"task_id": task, "outcome": reply.outcome}));
    }
    match reply.outcome.as_str() {
        "cancelled" => {
            if !json {
                println!("task {task} cancelled");
            }
            Ok(())
        }
        "cancelling" => {
            if !json {
                println!("task {task} is being stopped by its worker");
            }
            Ok(())
        }
        "not_found" => bail!("there is no task {task}"),
        "already_finished" => bail!("task {task} has already finished"),
        other => bail!("unexpected answer from the daemon: {other}"),
    }
}
