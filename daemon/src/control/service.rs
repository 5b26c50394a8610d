//! `Control`: what doradurctl asks of the daemon.

use std::collections::HashMap;
use std::time::Instant;

use doradura_proto::control_server::Control;
use doradura_proto::{
    AlertsReply, AlertsRequest, CancelReply, CancelRequest, DownloadRequest, ListQueueReply, ListQueueRequest,
    MetricsReply, MetricsRequest, QueueEntry, SilenceAlertReply, SilenceAlertRequest, SpoolRoom, StatusReply,
    StatusRequest, TestAlertReply, TestAlertRequest, WorkerStatus,
};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::Phase;
use super::download::{self, DownloadStream};
use crate::db::Database;
use crate::downloads::Downloads;
use crate::queue;
use crate::supervisor::Supervisor;
use doradura_proto::types::TaskState;

pub struct ControlService {
    pub supervisor: Supervisor,
    pub started: Instant,
    pub phase: watch::Receiver<Phase>,
    pub database: Database,
    pub downloads: Downloads,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    pub metrics_address: String,
    pub alerts: crate::alerts::Alerts,
}

/// A database failure as the client sees it.
pub(super) fn db_status(e: impl std::fmt::Display) -> Status {
    Status::internal(format!("database error: {e}"))
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
            metrics_address: self.metrics_address.clone(),
            spool: Some({
                let s = self.supervisor.spool();
                SpoolRoom {
                    has_room: s.has_room(),
                    free_bytes: s.free_bytes.unwrap_or(0),
                    required_bytes: s.required_bytes,
                    error: s.error.unwrap_or_default(),
                }
            }),
            workers: workers
                .into_iter()
                .map(|w| WorkerStatus {
                    id: w.id,
                    pid: w.pid.unwrap_or(0),
                    state: w.state.to_string(),
                    restarts: w.restarts,
                    ytdlp_release_date: doradura_proto::ytdlp_release::release_date(&w.ytdlp_version)
                        .unwrap_or_default(),
                    ytdlp_release_age_days: doradura_proto::ytdlp_release::age_days(
                        &w.ytdlp_version,
                        crate::now_ms() / 1000,
                    ),
                    ytdlp_version: w.ytdlp_version,
                    last_exit: w.last_exit.unwrap_or_default(),
                    connected_seconds: w.connected_for.map_or(0, |d| d.as_secs()),
                    next_start_in_seconds: w.next_start_in.map_or(0, |d| d.as_secs()),
                    consecutive_failures: w.consecutive_failures,
                    current_task: w.task.unwrap_or(0),
                    current_progress: w.progress.map_or(0.0, |p| p.percent),
                })
                .collect(),
        }))
    }

    type DownloadStream = DownloadStream;

    async fn download(&self, request: Request<DownloadRequest>) -> Result<Response<DownloadStream>, Status> {
        super::peer::authorize(&request, "download")?;
        download::start(self, request.into_inner()).await
    }

    async fn list_queue(&self, request: Request<ListQueueRequest>) -> Result<Response<ListQueueReply>, Status> {
        let req = request.into_inner();
        let limit = if req.limit == 0 { 20 } else { req.limit.min(1000) };
        let rows = self
            .database
            .call(move |c| queue::list(c, req.include_finished, limit))
            .await
            .map_err(db_status)?
            .map_err(db_status)?;
        let progress: HashMap<u64, f32> = self
            .supervisor
            .snapshot()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|w| Some((w.task?, w.progress.map_or(0.0, |p| p.percent))))
            .collect();
        let now = crate::now_ms();
        let entries = rows
            .into_iter()
            .map(|r| QueueEntry {
                percent: progress
                    .get(&r.id)
                    .copied()
                    .unwrap_or(if r.state == TaskState::Done { 100.0 } else { 0.0 }),
                id: r.id,
                state: r.state.to_string(),
                priority: r.priority.to_string(),
                position: r.position.unwrap_or(0),
                format: r.format.to_string(),
                quality: r.quality.to_string(),
                url: r.url,
                worker: r.worker.map_or(-1, |w| w as i32),
                attempts: r.attempts,
                age_seconds: ((now - r.created_at_ms).max(0) / 1000) as u64,
                error_type: r.error_type.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(ListQueueReply { entries }))
    }

    async fn metrics(&self, _request: Request<MetricsRequest>) -> Result<Response<MetricsReply>, Status> {
        Ok(Response::new(MetricsReply {
            text: self.metrics.encode(),
        }))
    }

    async fn alerts(&self, request: Request<AlertsRequest>) -> Result<Response<AlertsReply>, Status> {
        super::alerts::overview(&self.alerts, request.into_inner().history)
            .await
            .map(Response::new)
    }

    async fn silence_alert(
        &self,
        request: Request<SilenceAlertRequest>,
    ) -> Result<Response<SilenceAlertReply>, Status> {
        super::peer::authorize(&request, "silencing an alert")?;
        let by = super::peer::describe(&request);
        let r = request.into_inner();
        let (kind, until) = super::alerts::silence(&self.alerts, &r.alert_type, r.seconds, by).await?;
        Ok(Response::new(SilenceAlertReply {
            until,
            alert_type: kind.as_str().into(),
        }))
    }

    async fn test_alert(&self, request: Request<TestAlertRequest>) -> Result<Response<TestAlertReply>, Status> {
        super::peer::authorize(&request, "a test alert")?;
        let (kind, history_id) = super::alerts::test(&self.alerts, &request.into_inner().alert_type).await?;
        Ok(Response::new(TestAlertReply {
            history_id,
            alert_type: kind.as_str().into(),
        }))
    }

    async fn cancel(&self, request: Request<CancelRequest>) -> Result<Response<CancelReply>, Status> {
        super::peer::authorize(&request, "cancel")?;
        let id = request.into_inner().task_id;
        let outcome = self.downloads.cancel(id).await.map_err(db_status)?;
        Ok(Response::new(CancelReply {
            outcome: outcome.as_str().to_string(),
        }))
    }
}
