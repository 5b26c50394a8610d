//! The gRPC services on the control socket: `WorkerLink` for workers, `Control` for doradurctl.

use std::pin::Pin;
use std::time::{Duration, Instant};

use doradura_proto::control_server::Control;
use doradura_proto::worker_link_server::WorkerLink;
use doradura_proto::{
    StatusReply, StatusRequest, SupervisorMessage, Welcome, WorkerMessage, WorkerStatus, supervisor_message,
    worker_message,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::db::Database;
use crate::supervisor::{HelloInfo, Supervisor};

/// How long a freshly connected worker has to send its hello.
const HELLO_DEADLINE: Duration = Duration::from_secs(10);

/// The daemon's phase, shown in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Ready,
    Stopping,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Ready => "ready",
            Phase::Stopping => "stopping",
        }
    }
}

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
                debug!(worker = slot, ?msg, "from worker");
                supervisor.heard(slot, generation).await;
            }
            supervisor.stream_closed(slot, generation).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
    }
}

pub struct ControlService {
    pub supervisor: Supervisor,
    pub started: Instant,
    pub phase: watch::Receiver<Phase>,
    pub database: Database,
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        let workers = self
            .supervisor
            .snapshot()
            .await
            .ok_or_else(|| Status::unavailable("the supervisor has stopped"))?;
        let schema_version = self.database.schema_version().await;
        Ok(Response::new(StatusReply {
            version: crate::VERSION.to_string(),
            uptime_seconds: self.started.elapsed().as_secs(),
            pid: std::process::id(),
            daemon_state: self.phase.borrow().as_str().to_string(),
            database_path: self.database.path().display().to_string(),
            schema_version: schema_version.as_ref().map_or(0, |v| *v),
            database_error: schema_version.err().unwrap_or_default(),
            workers: workers
                .into_iter()
                .map(|w| WorkerStatus {
                    id: w.id,
                    pid: w.pid.unwrap_or(0),
                    state: w.state.to_string(),
                    restarts: w.restarts,
                    ytdlp_version: w.ytdlp_version,
                    last_exit: w.last_exit.unwrap_or_default(),
                    connected_seconds: w.connected_for.map_or(0, |d| d.as_secs()),
                    next_start_in_seconds: w.next_start_in.map_or(0, |d| d.as_secs()),
                    consecutive_failures: w.consecutive_failures,
                })
                .collect(),
        }))
    }
}
