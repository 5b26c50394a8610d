//! What happens around a task's run: its spool directory, and recording its outcome in the queue and telling its
//! watchers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use doradura_proto::TaskResult;
use doradura_proto::types::ErrorType;
use tracing::{error, info, warn};

use crate::db::Database;
use crate::hub::{Hub, Outcome, SpoolFile};
use crate::metrics::Metrics;
use crate::queue::{self, AfterFailure, QueuePolicy, Success};
use doradura_proto::types::ErrorCategory;

#[derive(Clone)]
pub struct Completion {
    pub database: Database,
    pub hub: Hub,
    pub spool: PathBuf,
    pub policy: QueuePolicy,
    pub metrics: Arc<Metrics>,
}

/// The spool directory of a task.
pub fn task_dir(spool: &Path, task: u64) -> PathBuf {
    spool.join(format!("task-{task}"))
}

/// Removes task directories left by an earlier run (their tasks were re-queued and start afresh). Only
/// `task-<n>` entries are touched: `DOWNLOAD_DIR` may be shared.
pub fn purge_spool(spool: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(spool)? {
        let entry = entry?;
        let name = entry.file_name();
        let ours = name
            .to_str()
            .and_then(|n| n.strip_prefix("task-"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if ours && entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The file a worker reported for a task whose directory is `dir`, if it may be handed on: a regular file below
/// `dir`, named without `..` components, with no symbolic link anywhere on its path (the directory itself
/// included), so that its canonical path is the path itself. `dir` is canonical (the spool is canonicalised at
/// start-up). Says why not otherwise.
pub fn result_file(dir: &Path, reported: &str) -> Result<PathBuf, &'static str> {
    use std::path::Component;
    let path = Path::new(reported);
    let rel = path.strip_prefix(dir).map_err(|_| "outside the task directory")?;
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err("not a plain path below the task directory");
    }
    let canonical = std::fs::canonicalize(path).map_err(|_| "missing")?;
    if canonical != path {
        // A symlink somewhere: the file, a directory below the task's, or the task directory itself.
        return Err("reached through a symbolic link");
    }
    match std::fs::symlink_metadata(&canonical) {
        Ok(m) if m.file_type().is_file() => Ok(canonical),
        Ok(_) => Err("not a regular file"),
        Err(_) => Err("missing"),
    }
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        warn!(dir = %dir.display(), error = %e, "could not remove a task directory");
    }
}

impl Completion {
    /// An empty directory for the task's next attempt.
    pub fn prepare_dir(&self, task: u64) -> std::io::Result<PathBuf> {
        let dir = task_dir(&self.spool, task);
        remove_dir(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Records a worker's result and tells the task's watchers.
    pub async fn finish(&self, worker: u32, r: TaskResult) {
        let id = r.task_id;
        let dir = task_dir(&self.spool, id);
        let now = crate::now_ms();
        if r.ok {
            // The worker may only hand over a regular file inside the directory it was given.
            let path = match result_file(&dir, &r.file_path) {
                Ok(path) => path,
                Err(why) => {
                    error!(
                        worker,
                        task = id,
                        path = %doradura_proto::text::clean(&r.file_path),
                        why,
                        "a worker reported a file that is not a regular file inside its task directory; refused"
                    );
                    return self
                        .failed(
                            id,
                            ErrorType::Unknown,
                            "the worker reported an invalid file".into(),
                            None,
                        )
                        .await;
                }
            };
            let success = Success {
                bytes: r.bytes,
                title: r.title.clone(),
                media_duration_s: r.duration_seconds,
                ytdlp_ms: r.ytdlp_ms,
            };
            let recorded = self
                .database
                .call(move |c| Ok::<_, rusqlite::Error>((queue::succeed(c, id, &success, now)?, queue::labels(c, id)?)))
                .await;
            match recorded {
                Ok(Ok((true, labels))) => {
                    info!(worker, task = id, bytes = r.bytes, ytdlp_ms = r.ytdlp_ms, "task done");
                    if let Some((format, quality, total_ms)) = labels {
                        self.metrics
                            .download_done(format, quality, total_ms as f64 / 1000.0, r.bytes);
                        self.metrics.ytdlp_ran(format, r.ytdlp_ms as f64 / 1000.0);
                    }
                    let file = SpoolFile::new(path, dir, r.title, r.duration_seconds);
                    self.hub.finish(id, Outcome::Done(Arc::new(file)));
                }
                Ok(Ok((false, labels))) => {
                    if let Some((format, _, _)) = labels {
                        self.metrics.download_failed(format, ErrorType::Cancelled);
                    }
                    info!(
                        worker,
                        task = id,
                        "task finished after it was cancelled; discarding the file"
                    );
                    remove_dir(&dir);
                    self.hub.finish(id, cancelled());
                }
                Ok(Err(e)) => self.database_failed(id, &dir, e.to_string()),
                Err(e) => self.database_failed(id, &dir, e.to_string()),
            }
        } else {
            // A worker of another version may name an error this daemon does not know: it counts as `unknown`,
            // and says so.
            let error = r
                .error_type
                .parse()
                .unwrap_or_else(|e: doradura_proto::types::UnknownValue| {
                    warn!(worker, task = id, error = %e, "a worker reported an error type this daemon does not know");
                    ErrorType::Unknown
                });
            warn!(worker, task = id, error = error.as_str(), message = %r.error_message, "task failed");
            if r.ytdlp_ms > 0
                && let Ok(Ok(Some((format, _, _)))) = self.database.call(move |c| queue::labels(c, id)).await
            {
                self.metrics.ytdlp_ran(format, r.ytdlp_ms as f64 / 1000.0);
            }
            self.failed(id, error, r.error_message, Some(r.ytdlp_ms)).await;
        }
    }

    async fn failed(&self, id: u64, error: ErrorType, message: String, ytdlp_ms: Option<u64>) {
        remove_dir(&task_dir(&self.spool, id));
        let policy = self.policy;
        let msg = message.clone();
        let after = self
            .database
            .call(move |c| queue::fail(c, id, error, &msg, ytdlp_ms, crate::now_ms(), &policy))
            .await;
        self.after_failure(id, after, message).await;
    }

    /// Puts back the task of a worker that died or could not take it.
    pub async fn release(&self, id: u64, counts: bool) {
        remove_dir(&task_dir(&self.spool, id));
        let policy = self.policy;
        let after = self
            .database
            .call(move |c| queue::release(c, id, counts, crate::now_ms(), &policy))
            .await;
        self.after_failure(id, after, "the worker running it died on every attempt".into())
            .await;
    }

    /// Queued tasks by priority, read again after the queue changed.
    pub async fn refresh_depth(&self) {
        crate::metrics::refresh_depth(&self.database, &self.metrics).await;
    }

    async fn after_failure(
        &self,
        id: u64,
        after: Result<rusqlite::Result<AfterFailure>, crate::db::DbError>,
        message: String,
    ) {
        let format = match self.database.call(move |c| queue::labels(c, id)).await {
            Ok(Ok(Some((format, _, _)))) => Some(format),
            _ => None,
        };
        match &after {
            Ok(Ok(AfterFailure::Retry { .. })) => format.iter().for_each(|f| self.metrics.retried(*f)),
            Ok(Ok(AfterFailure::Failed(error))) => {
                if let Some(f) = format {
                    self.metrics.download_failed(f, *error);
                }
                self.metrics.error(if *error == ErrorType::YtdlpMissing {
                    ErrorCategory::Ytdlp
                } else {
                    ErrorCategory::Download
                });
            }
            Ok(Ok(AfterFailure::Cancelled)) => {
                if let Some(f) = format {
                    self.metrics.download_failed(f, ErrorType::Cancelled);
                }
            }
            Ok(Ok(AfterFailure::Stale)) => {}
            Ok(Err(_)) | Err(_) => self.metrics.error(ErrorCategory::Database),
        }
        self.refresh_depth().await;
        match after {
            Ok(Ok(AfterFailure::Retry { at_ms })) => {
                info!(task = id, in_ms = at_ms - crate::now_ms(), "task will be retried");
            }
            Ok(Ok(AfterFailure::Failed(error))) => self.hub.finish(id, Outcome::Failed { error, message }),
            Ok(Ok(AfterFailure::Cancelled)) => self.hub.finish(id, cancelled()),
            Ok(Ok(AfterFailure::Stale)) => {}
            Ok(Err(e)) => error!(task = id, error = %e, "recording a failed task failed"),
            Err(e) => error!(task = id, error = %e, "recording a failed task failed"),
        }
    }

    fn database_failed(&self, id: u64, dir: &Path, why: String) {
        error!(task = id, error = %why, "recording a finished task failed");
        self.metrics.error(ErrorCategory::Database);
        remove_dir(dir);
        self.hub.finish(
            id,
            Outcome::Failed {
                error: ErrorType::Unknown,
                message: "the result could not be recorded; it will be retried after a restart".into(),
            },
        );
    }
}

fn cancelled() -> Outcome {
    Outcome::Failed {
        error: ErrorType::Cancelled,
        message: "cancelled".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A canonical spool with task 1's directory holding `media.mp3`, and a secret file outside it.
    fn spool() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let dir = task_dir(&root.join("spool"), 1);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("media.mp3"), b"audio").unwrap();
        std::fs::write(dir.join("sub/media.mp4"), b"video").unwrap();
        let secret = root.join("secret");
        std::fs::write(&secret, b"token").unwrap();
        (tmp, dir, secret)
    }

    fn at(dir: &Path, rel: &str) -> String {
        format!("{}/{rel}", dir.display())
    }

    #[test]
    fn a_plain_file_inside_the_task_directory_is_accepted() {
        let (_tmp, dir, _) = spool();
        assert_eq!(result_file(&dir, &at(&dir, "media.mp3")), Ok(dir.join("media.mp3")));
        assert_eq!(
            result_file(&dir, &at(&dir, "sub/media.mp4")),
            Ok(dir.join("sub/media.mp4"))
        );
    }

    #[test]
    fn dot_dot_components_are_refused_even_when_they_land_inside() {
        let (_tmp, dir, secret) = spool();
        // `starts_with` on the raw path let this one through: it names the secret outside the directory.
        let escape = at(&dir, "../../secret");
        assert!(Path::new(&escape).starts_with(&dir) && Path::new(&escape).is_file());
        assert_eq!(std::fs::canonicalize(&escape).unwrap(), secret);
        assert_eq!(
            result_file(&dir, &escape),
            Err("not a plain path below the task directory")
        );
        assert!(result_file(&dir, &at(&dir, "sub/../media.mp3")).is_err());
        // A `.` names the same place: it changes nothing.
        assert_eq!(result_file(&dir, &at(&dir, "./media.mp3")), Ok(dir.join("media.mp3")));
        assert_eq!(
            result_file(&dir, &secret.display().to_string()),
            Err("outside the task directory")
        );
        assert!(result_file(&dir, "media.mp3").is_err(), "relative");
    }

    #[test]
    fn symbolic_links_are_refused_wherever_they_are() {
        use std::os::unix::fs::symlink;
        let (_tmp, dir, secret) = spool();
        // The file itself a link to a file outside.
        symlink(&secret, dir.join("link.mp3")).unwrap();
        assert_eq!(
            result_file(&dir, &at(&dir, "link.mp3")),
            Err("reached through a symbolic link")
        );
        // Even a link to a file inside.
        symlink(dir.join("media.mp3"), dir.join("inner.mp3")).unwrap();
        assert!(result_file(&dir, &at(&dir, "inner.mp3")).is_err());
        // A directory below the task's that links outside.
        symlink(secret.parent().unwrap(), dir.join("out")).unwrap();
        assert!(result_file(&dir, &at(&dir, "out/secret")).is_err());
        // The task directory itself replaced by a link.
        let moved = dir.with_file_name("elsewhere");
        std::fs::rename(&dir, &moved).unwrap();
        symlink(&moved, &dir).unwrap();
        assert!(result_file(&dir, &at(&dir, "media.mp3")).is_err());
    }

    #[test]
    fn the_directory_itself_missing_files_and_non_files_are_refused() {
        let (_tmp, dir, _) = spool();
        assert!(result_file(&dir, &dir.display().to_string()).is_err());
        assert_eq!(result_file(&dir, &at(&dir, "sub")), Err("not a regular file"));
        assert_eq!(result_file(&dir, &at(&dir, "nothing.mp3")), Err("missing"));
        nix::unistd::mkfifo(&dir.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(result_file(&dir, &at(&dir, "fifo")), Err("not a regular file"));
    }

    #[test]
    fn purge_touches_only_task_directories() {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["task-1", "task-22", "task-x", "keep", "task-"] {
            std::fs::create_dir(tmp.path().join(d)).unwrap();
        }
        std::fs::write(tmp.path().join("task-3"), b"a file").unwrap();
        assert_eq!(purge_spool(tmp.path()).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["keep", "task-", "task-3", "task-x"]);
    }
}
