//! `Control.Download`: a request enters the queue; the caller follows it and receives the file's bytes.

use std::pin::Pin;
use std::sync::Arc;

use doradura_proto::types::{ErrorType, Format, Priority};
use doradura_proto::{DownloadEvent, DownloadRequest, Failed, FileReady, Queued, download_event};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status};
use tracing::{info, warn};

use super::Phase;
use super::service::{ControlService, db_status};
use crate::downloads::RequestError;
use crate::hub::{Outcome, SpoolFile, Watch};
use crate::queue::{self, NewTask};

pub type DownloadStream = Pin<Box<dyn Stream<Item = Result<DownloadEvent, Status>> + Send>>;

/// Bytes per `chunk` event (gRPC's default message limit is 4 MiB).
const CHUNK: usize = 256 * 1024;

fn event(kind: download_event::Kind) -> Result<DownloadEvent, Status> {
    Ok(DownloadEvent { kind: Some(kind) })
}

pub async fn start(svc: &ControlService, req: DownloadRequest) -> Result<Response<DownloadStream>, Status> {
    if *svc.phase.borrow() == Phase::Stopping {
        return Err(Status::unavailable(
            "doradurad is shutting down; try again once it is back",
        ));
    }
    let format: Format = req
        .format
        .parse()
        .map_err(|e: doradura_proto::types::UnknownValue| Status::invalid_argument(e.to_string()))?;
    let quality = format
        .quality(&req.quality)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let priority = if req.priority.is_empty() {
        Priority::High
    } else {
        req.priority
            .parse()
            .map_err(|e: doradura_proto::types::UnknownValue| Status::invalid_argument(e.to_string()))?
    };
    let url = svc
        .downloads
        .check_url(&req.url)
        .await
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let new = NewTask {
        url,
        format,
        quality,
        priority,
        user_id: None,
        chat_id: None,
    };
    let (enqueued, watch) = svc.downloads.enqueue(new).await.map_err(|e| match e {
        RequestError::Full(m) => Status::resource_exhausted(m),
        other => db_status(other),
    })?;
    info!(
        task = enqueued.id,
        joined = enqueued.joined,
        position = enqueued.position,
        "download requested"
    );

    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(follow(enqueued, format, watch, tx));
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

/// Streams the task's life to the caller; returns early when the caller goes away.
async fn follow(
    enqueued: queue::Enqueued,
    format: Format,
    mut watch: Watch,
    tx: mpsc::Sender<Result<DownloadEvent, Status>>,
) {
    let queued = Queued {
        task_id: enqueued.id,
        position: enqueued.position,
        joined: enqueued.joined,
    };
    if tx.send(event(download_event::Kind::Queued(queued))).await.is_err() {
        return;
    }
    let outcome = loop {
        tokio::select! {
            changed = watch.progress.changed() => {
                if changed.is_err() {
                    continue;
                }
                let p = *watch.progress.borrow_and_update();
                if let Some(p) = p
                    && tx.send(event(download_event::Kind::Progress(p))).await.is_err()
                {
                    return;
                }
            }
            outcome = &mut watch.done => break outcome,
            _ = tx.closed() => return,
        }
    };
    match outcome {
        Ok(Outcome::Done(file)) => {
            if let Err(e) = send_file(&file, enqueued.id, format, &tx).await {
                warn!(task = enqueued.id, error = %e, "sending the file to doradurctl failed");
            }
        }
        Ok(Outcome::Failed { error, message }) => {
            let failed = Failed {
                error_type: error.as_str().to_string(),
                message,
            };
            let _ = tx.send(event(download_event::Kind::Failed(failed))).await;
        }
        Err(_) => {
            // The hub dropped us without an outcome: the daemon is stopping.
            let failed = Failed {
                error_type: ErrorType::Cancelled.as_str().to_string(),
                message: "doradurad stopped before the download finished; it resumes when the daemon is back".into(),
            };
            let _ = tx.send(event(download_event::Kind::Failed(failed))).await;
        }
    }
}

/// A file name for the caller: the title made safe, else `task-<id>`.
pub fn file_name(title: &str, id: u64, format: Format) -> String {
    let clean: String = title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || " -_.()[]".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean
        .trim()
        .trim_start_matches('.')
        .chars()
        .take(100)
        .collect::<String>();
    let stem = if clean.trim().is_empty() {
        format!("task-{id}")
    } else {
        clean
    };
    format!("{stem}.{}", format.extension())
}

async fn send_file(
    file: &Arc<SpoolFile>,
    id: u64,
    format: Format,
    tx: &mpsc::Sender<Result<DownloadEvent, Status>>,
) -> std::io::Result<()> {
    let mut f = tokio::fs::File::open(&file.path).await?;
    let size = f.metadata().await?.len();
    let ready = FileReady {
        file_name: file_name(&file.title, id, format),
        size,
        title: file.title.clone(),
        duration_seconds: file.media_duration_s,
    };
    if tx.send(event(download_event::Kind::File(ready))).await.is_err() {
        return Ok(());
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if tx
            .send(event(download_event::Kind::Chunk(buf[..n].to_vec())))
            .await
            .is_err()
        {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("My Song (Live)", 3, Format::Mp3), "My Song (Live).mp3");
        assert_eq!(file_name("../../etc/passwd", 3, Format::Mp3), "_.._etc_passwd.mp3");
        assert_eq!(file_name("", 3, Format::Srt), "task-3.srt");
        assert_eq!(file_name("a/b\\c\0d", 3, Format::Mp4), "a_b_c_d.mp4");
        assert_eq!(file_name("...", 4, Format::Mp4), "task-4.mp4");
    }
}
