//! The worker's end of the `WorkerLink` stream.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use doradura_proto::worker_link_client::WorkerLinkClient;
use doradura_proto::{Hello, Pong, WorkerMessage, supervisor_message, worker_message};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info, warn};

/// How the link ended.
pub enum Ending {
    Shutdown,
    SupervisorGone,
    Signal,
}

/// Until the supervisor's welcome says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

pub async fn serve(id: u32, socket: &Path, ytdlp: Result<String, String>) -> anyhow::Result<Ending> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let channel = doradura_proto::connect_unix(socket)
        .await
        .context("connecting to the supervisor")?;
    let mut client = WorkerLinkClient::new(channel);

    let (tx, rx) = mpsc::channel::<WorkerMessage>(64);
    let (ytdlp_version, ytdlp_error) = match ytdlp {
        Ok(v) => (v, String::new()),
        Err(e) => (String::new(), e),
    };
    tx.send(WorkerMessage {
        kind: Some(worker_message::Kind::Hello(Hello {
            worker_id: id,
            pid: std::process::id(),
            worker_version: env!("CARGO_PKG_VERSION").to_string(),
            ytdlp_version,
            ytdlp_error,
        })),
    })
    .await
    .context("queueing the hello")?;
    let mut inbound = client
        .attach(ReceiverStream::new(rx))
        .await
        .context("the supervisor refused the hello")?
        .into_inner();

    let mut heartbeat = DEFAULT_HEARTBEAT;
    loop {
        let next = tokio::select! {
            m = tokio::time::timeout(heartbeat * 3, inbound.message()) => m,
            _ = term.recv() => {
                info!(worker = id, "SIGTERM received");
                return Ok(Ending::Signal);
            }
        };
        let msg = match next {
            Err(_) => {
                warn!(worker = id, "no word from the supervisor for {:?}", heartbeat * 3);
                return Ok(Ending::SupervisorGone);
            }
            Ok(Ok(Some(msg))) => msg,
            Ok(Ok(None)) => return Ok(Ending::SupervisorGone),
            Ok(Err(status)) => {
                debug!(worker = id, %status, "stream ended");
                return Ok(Ending::SupervisorGone);
            }
        };
        match msg.kind {
            Some(supervisor_message::Kind::Welcome(w)) => {
                heartbeat = Duration::from_millis(u64::from(w.heartbeat_interval_ms.max(10)));
                info!(worker = id, "connected to the supervisor");
            }
            Some(supervisor_message::Kind::Ping(p)) => {
                let pong = WorkerMessage {
                    kind: Some(worker_message::Kind::Pong(Pong { seq: p.seq })),
                };
                if tx.send(pong).await.is_err() {
                    return Ok(Ending::SupervisorGone);
                }
            }
            Some(supervisor_message::Kind::Shutdown(_)) => return Ok(Ending::Shutdown),
            None => debug!(worker = id, "ignored a message of a kind this worker does not know"),
        }
    }
}
