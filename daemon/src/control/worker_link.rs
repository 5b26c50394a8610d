//! `WorkerLink`: a worker's stream. The first message must be a hello from the process the slot spawned.

use std::pin::Pin;
use std::time::Duration;

use doradura_proto::worker_link_server::WorkerLink;
use doradura_proto::{SupervisorMessage, Welcome, WorkerMessage, supervisor_message, worker_message};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status, Streaming};
use tracing::warn;

use crate::supervisor::{HelloInfo, Supervisor};

/// How long a freshly connected worker has to send its hello.
const HELLO_DEADLINE: Duration = Duration::from_secs(10);

pub struct WorkerLinkService {
    pub supervisor: Supervisor,
    pub heartbeat_interval: Duration,
}

type SupervisorStream = Pin<Box<dyn Stream<Item = Result<SupervisorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerLink for WorkerLinkService {
    type AttachStream = SupervisorStream;

    async fn attach(&self, request: Request<Streaming<WorkerMessage>>) -> Result<Response<Self::AttachStream>, Status> {
        let peer_pid = request
            .extensions()
            .get::<UdsConnectInfo>()
            .and_then(|info| info.peer_cred)
            .and_then(|cred| cred.pid());
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HELLO_DEADLINE, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello within 10s"))??;
        let hello = match first.and_then(|m| m.kind) {
            Some(worker_message::Kind::Hello(h)) => h,
            _ => return Err(Status::invalid_argument("the first message must be a hello")),
        };
        if let Some(peer) = peer_pid
            && u32::try_from(peer).ok() != Some(hello.pid)
        {
            warn!(
                claimed = hello.pid,
                peer, "hello names a pid other than the connecting process"
            );
            return Err(Status::permission_denied(
                "hello pid does not match the connecting process",
            ));
        }
        let (tx, rx) = mpsc::channel(64);
        let slot = hello.worker_id;
        let info = HelloInfo {
            worker_version: hello.worker_version,
            ytdlp_version: hello.ytdlp_version,
            ytdlp_error: hello.ytdlp_error,
        };
        let generation = self
            .supervisor
            .hello(slot, hello.pid, info, tx.clone())
            .await
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        let welcome = SupervisorMessage {
            kind: Some(supervisor_message::Kind::Welcome(Welcome {
                heartbeat_interval_ms: self.heartbeat_interval.as_millis() as u32,
            })),
        };
        tx.send(welcome)
            .await
            .map_err(|_| Status::unavailable("supervisor gone"))?;
        drop(tx);

        let supervisor = self.supervisor.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = inbound.message().await {
                supervisor.from_worker(slot, generation, msg).await;
            }
            supervisor.stream_closed(slot, generation).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
    }
}
