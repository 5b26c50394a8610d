//! Requesting and cancelling downloads: what doradurctl and the bot share.

use std::sync::Arc;

use doradura_proto::types::ErrorType;

use crate::db::Database;
use crate::hub::{Hub, Outcome, Watch};
use crate::metrics::Metrics;
use crate::queue::{self, CancelOutcome, Enqueued, NewTask, QueueError, QueuePolicy};
use crate::supervisor::Supervisor;
use crate::urlcheck::{self, UrlError};
use doradura_proto::types::ErrorCategory;

#[derive(Clone)]
pub struct Downloads {
    pub database: Database,
    pub hub: Hub,
    pub supervisor: Supervisor,
    pub queue: QueuePolicy,
    pub allow_private_hosts: bool,
    pub allowed_hosts: Vec<String>,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("{0}")]
    Full(String),
    #[error("database error: {0}")]
    Database(String),
}

impl Downloads {
    pub async fn check_url(&self, raw: &str) -> Result<String, UrlError> {
        let checked = urlcheck::check(raw, self.allow_private_hosts, &self.allowed_hosts).await;
        if checked.is_err() {
            self.metrics.error(ErrorCategory::Validation);
        }
        checked
    }

    /// Queues `new` (or joins an identical task in flight), starts watching it, and wakes the workers.
    pub async fn enqueue(&self, new: NewTask) -> Result<(Enqueued, Watch), RequestError> {
        let policy = self.queue;
        let format = new.format;
        let enqueued = self
            .database
            .call(move |c| queue::enqueue(c, &new, crate::now_ms(), &policy))
            .await
            .map_err(|e| RequestError::Database(e.to_string()))?
            .map_err(|e| match e {
                QueueError::Full { .. } => {
                    self.metrics.error(ErrorCategory::Queue);
                    RequestError::Full(e.to_string())
                }
                QueueError::Db(e) => {
                    self.metrics.error(ErrorCategory::Database);
                    RequestError::Database(e.to_string())
                }
            })?;
        self.metrics.format_requested(format);
        let watch = self.hub.watch(enqueued.id);
        self.supervisor.kick().await;
        crate::metrics::refresh_depth(&self.database, &self.metrics).await;
        Ok((enqueued, watch))
    }

    /// Cancels a task for everyone waiting for it.
    pub async fn cancel(&self, task: u64) -> Result<CancelOutcome, RequestError> {
        let outcome = self
            .database
            .call(move |c| queue::cancel(c, task, crate::now_ms()))
            .await
            .map_err(|e| RequestError::Database(e.to_string()))?
            .map_err(|e| RequestError::Database(e.to_string()))?;
        match outcome {
            CancelOutcome::Cancelled => self.hub.finish(
                task,
                Outcome::Failed {
                    error: ErrorType::Cancelled,
                    message: "cancelled".into(),
                },
            ),
            CancelOutcome::Cancelling { worker } => self.supervisor.cancel_running(worker, task).await,
            CancelOutcome::NotFound | CancelOutcome::AlreadyFinished => {}
        }
        crate::metrics::refresh_depth(&self.database, &self.metrics).await;
        Ok(outcome)
    }
}
