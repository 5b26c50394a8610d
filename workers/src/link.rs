//! The worker's end of the `WorkerLink` stream: hello, heartbeats, and one task at a time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use doradura_proto::types::ErrorType;
use doradura_proto::worker_link_client::WorkerLinkClient;
use doradura_proto::{
    Hello, Pong, TaskAssignment, TaskResult, TaskStarted, WorkerMessage, YtdlpProbe, supervisor_message, worker_message,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info, warn};

use crate::ytdlp::{self, Report};

/// How the link ended.
pub enum Ending {
    Shutdown,
    SupervisorGone,
    Signal,
}

/// Until the supervisor's welcome says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

struct Running {
    task_id: u64,
    cancel: Option<oneshot::Sender<()>>,
}

fn message(kind: worker_message::Kind) -> WorkerMessage {
    WorkerMessage { kind: Some(kind) }
}

pub async fn serve(
    id: u32,
    socket: &Path,
    ytdlp_path: PathBuf,
    ytdlp: Result<String, String>,
) -> anyhow::Result<Ending> {
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
    tx.send(message(worker_message::Kind::Hello(Hello {
        worker_id: id,
        pid: std::process::id(),
        worker_version: env!("CARGO_PKG_VERSION").to_string(),
        ytdlp_version,
        ytdlp_error,
    })))
    .await
    .context("queueing the hello")?;
    let mut inbound = client
        .attach(ReceiverStream::new(rx))
        .await
        .context("the supervisor refused the hello")?
        .into_inner();

    let (report_tx, mut reports) = mpsc::channel::<Report>(64);
    let (done_tx, mut done) = mpsc::channel::<TaskResult>(1);
    let mut current: Option<Running> = None;
    let mut stopping = false;
    let mut heartbeat = DEFAULT_HEARTBEAT;
    let mut last_heard = Instant::now();
    // The file behind the yt-dlp path, looked at again on every ping: when an update switched it, the new one is
    // asked for its version (off this loop, which must keep answering pings) and the supervisor is told.
    let mut ytdlp_seen = crate::probe::identity(&ytdlp_path);
    let (probe_tx, mut probes) = mpsc::channel::<Result<String, String>>(1);
    let mut probing = false;

    loop {
        tokio::select! {
            msg = inbound.message() => {
                let msg = match msg {
                    Ok(Some(m)) => m,
                    Ok(None) => return Ok(Ending::SupervisorGone),
                    Err(status) => {
                        debug!(worker = id, %status, "stream ended");
                        return Ok(Ending::SupervisorGone);
                    }
                };
                last_heard = Instant::now();
                match msg.kind {
                    Some(supervisor_message::Kind::Welcome(w)) => {
                        heartbeat = Duration::from_millis(u64::from(w.heartbeat_interval_ms.max(10)));
                        info!(worker = id, "connected to the supervisor");
                    }
                    Some(supervisor_message::Kind::Ping(p)) => {
                        if tx.send(message(worker_message::Kind::Pong(Pong { seq: p.seq }))).await.is_err() {
                            return Ok(Ending::SupervisorGone);
                        }
                        if !probing {
                            let now = crate::probe::identity(&ytdlp_path);
                            if now != ytdlp_seen {
                                ytdlp_seen = now;
                                probing = true;
                                let (path, probe_tx) = (ytdlp_path.clone(), probe_tx.clone());
                                tokio::spawn(async move {
                                    let _ = probe_tx.send(crate::probe::ytdlp_version(&path).await).await;
                                });
                            }
                        }
                    }
                    Some(supervisor_message::Kind::Task(task)) => {
                        if let Some(busy) = &current {
                            warn!(worker = id, task = task.task_id, running = busy.task_id, "refusing a second task");
                            let refused = refuse(&task, "the worker is busy with another task");
                            let _ = tx.send(message(worker_message::Kind::Result(refused))).await;
                        } else {
                            current = Some(start(task, &ytdlp_path, report_tx.clone(), done_tx.clone()));
                        }
                    }
                    Some(supervisor_message::Kind::Cancel(c)) => {
                        if let Some(run) = current.as_mut().filter(|r| r.task_id == c.task_id) {
                            info!(worker = id, task = c.task_id, "cancelling");
                            if let Some(cancel) = run.cancel.take() {
                                let _ = cancel.send(());
                            }
                        }
                    }
                    Some(supervisor_message::Kind::Shutdown(_)) => {
                        if current.is_none() {
                            return Ok(Ending::Shutdown);
                        }
                        info!(worker = id, "finishing the running task before stopping");
                        stopping = true;
                    }
                    None => debug!(worker = id, "ignored a message of a kind this worker does not know"),
                }
            }
            Some(report) = reports.recv() => {
                let Some(run) = &current else { continue };
                let kind = match report {
                    Report::Started { ytdlp_pgid } => worker_message::Kind::Started(TaskStarted {
                        task_id: run.task_id,
                        ytdlp_pgid,
                    }),
                    Report::Progress(p) => worker_message::Kind::Progress(p),
                };
                if tx.send(message(kind)).await.is_err() {
                    return Ok(Ending::SupervisorGone);
                }
            }
            Some(probed) = probes.recv() => {
                probing = false;
                let (ytdlp_version, ytdlp_error) = match probed {
                    Ok(v) => (v, String::new()),
                    Err(e) => (String::new(), e),
                };
                info!(worker = id, ytdlp = %ytdlp_version, error = %ytdlp_error, "yt-dlp changed; probed again");
                let probe = YtdlpProbe { ytdlp_version, ytdlp_error };
                if tx.send(message(worker_message::Kind::Ytdlp(probe))).await.is_err() {
                    return Ok(Ending::SupervisorGone);
                }
            }
            Some(result) = done.recv() => {
                current = None;
                info!(worker = id, task = result.task_id, ok = result.ok, error = %result.error_type, "task finished");
                if tx.send(message(worker_message::Kind::Result(result))).await.is_err() {
                    return Ok(Ending::SupervisorGone);
                }
                if stopping {
                    return Ok(Ending::Shutdown);
                }
            }
            _ = tokio::time::sleep_until(last_heard + heartbeat * 3) => {
                warn!(worker = id, "no word from the supervisor for {:?}", heartbeat * 3);
                return Ok(Ending::SupervisorGone);
            }
            _ = term.recv() => {
                info!(worker = id, "SIGTERM received");
                return Ok(Ending::Signal);
            }
        }
    }
}

fn refuse(task: &TaskAssignment, why: &str) -> TaskResult {
    TaskResult {
        task_id: task.task_id,
        ok: false,
        error_type: ErrorType::Unknown.as_str().to_string(),
        error_message: why.to_string(),
        ..Default::default()
    }
}

fn start(
    task: TaskAssignment,
    ytdlp_path: &Path,
    reports: mpsc::Sender<Report>,
    done: mpsc::Sender<TaskResult>,
) -> Running {
    let (cancel_tx, cancel_rx) = oneshot::channel();
    let task_id = task.task_id;
    let ytdlp_path = ytdlp_path.to_path_buf();
    tokio::spawn(async move {
        let result = ytdlp::run(&ytdlp_path, task, reports, cancel_rx).await;
        let _ = done.send(result).await;
    });
    Running {
        task_id,
        cancel: Some(cancel_tx),
    }
}
