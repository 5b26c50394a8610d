//! Who waits for which task: progress goes to every watcher of a task, the outcome to each exactly once.
//!
//! A finished file lives in a [`SpoolFile`] that deletes its directory when the last watcher is done with it, or
//! at once when nobody waits: nothing accumulates in `DOWNLOAD_DIR`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use doradura_proto::TaskProgress;
use doradura_proto::types::ErrorType;
use tokio::sync::{oneshot, watch};
use tracing::warn;

/// A finished download in its own spool directory, removed on drop.
#[derive(Debug)]
pub struct SpoolFile {
    pub path: PathBuf,
    dir: PathBuf,
    pub title: String,
    pub media_duration_s: f64,
}

impl SpoolFile {
    pub fn new(path: PathBuf, dir: PathBuf, title: String, media_duration_s: f64) -> SpoolFile {
        SpoolFile {
            path,
            dir,
            title,
            media_duration_s,
        }
    }

    #[cfg(test)]
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(dir = %self.dir.display(), error = %e, "could not remove a delivered download");
        }
    }
}

/// How a task ended, as its watchers learn it.
#[derive(Debug, Clone)]
pub enum Outcome {
    Done(Arc<SpoolFile>),
    Failed { error: ErrorType, message: String },
}

struct Watcher {
    progress: watch::Sender<Option<TaskProgress>>,
    done: oneshot::Sender<Outcome>,
}

/// What a watcher holds.
pub struct Watch {
    pub progress: watch::Receiver<Option<TaskProgress>>,
    pub done: oneshot::Receiver<Outcome>,
}

#[derive(Default, Clone)]
pub struct Hub {
    watchers: Arc<Mutex<HashMap<u64, Vec<Watcher>>>>,
}

impl Hub {
    pub fn watch(&self, task: u64) -> Watch {
        let (progress_tx, progress) = watch::channel(None);
        let (done_tx, done) = oneshot::channel();
        self.watchers.lock().unwrap().entry(task).or_default().push(Watcher {
            progress: progress_tx,
            done: done_tx,
        });
        Watch { progress, done }
    }

    pub fn progress(&self, p: &TaskProgress) {
        let mut map = self.watchers.lock().unwrap();
        if let Some(list) = map.get_mut(&p.task_id) {
            // Watchers that went away are forgotten here.
            list.retain(|w| w.progress.send(Some(*p)).is_ok());
        }
    }

    /// Delivers the outcome to every watcher of `task` and forgets them. A `Done` file nobody receives is
    /// deleted when this returns.
    pub fn finish(&self, task: u64, outcome: Outcome) {
        let watchers = self.watchers.lock().unwrap().remove(&task).unwrap_or_default();
        for w in watchers {
            let _ = w.done.send(outcome.clone());
        }
    }

    /// Forgets every watcher without an outcome: the daemon is stopping and their tasks resume after a restart.
    pub fn close(&self) {
        self.watchers.lock().unwrap().clear();
    }

    /// How many watchers wait for `task`.
    #[cfg(test)]
    pub fn watching(&self, task: u64) -> usize {
        self.watchers.lock().unwrap().get(&task).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(dir: &std::path::Path) -> SpoolFile {
        let d = dir.join("task-1");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a.mp3"), b"x").unwrap();
        SpoolFile::new(d.join("a.mp3"), d, "a".into(), 1.0)
    }

    #[test]
    fn a_file_nobody_waits_for_is_deleted_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let hub = Hub::default();
        let file = spool(tmp.path());
        let dir = file.dir().to_path_buf();
        hub.finish(1, Outcome::Done(Arc::new(file)));
        assert!(!dir.exists());
    }

    #[test]
    fn the_file_outlives_the_last_watcher_only() {
        let tmp = tempfile::tempdir().unwrap();
        let hub = Hub::default();
        let mut a = hub.watch(1);
        let mut b = hub.watch(1);
        let file = spool(tmp.path());
        let dir = file.dir().to_path_buf();
        hub.progress(&TaskProgress {
            task_id: 1,
            percent: 50.0,
            ..Default::default()
        });
        assert_eq!(a.progress.borrow_and_update().unwrap().percent, 50.0);
        hub.finish(1, Outcome::Done(Arc::new(file)));
        assert_eq!(hub.watching(1), 0);
        let got_a = a.done.try_recv().unwrap();
        assert!(dir.exists());
        drop(got_a);
        assert!(dir.exists(), "b has not taken it yet");
        drop(b.done.try_recv().unwrap());
        assert!(!dir.exists());
        assert_eq!(b.progress.borrow().unwrap().percent, 50.0);
    }

    #[test]
    fn a_watcher_that_left_does_not_keep_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let hub = Hub::default();
        drop(hub.watch(1));
        let file = spool(tmp.path());
        let dir = file.dir().to_path_buf();
        hub.finish(1, Outcome::Done(Arc::new(file)));
        assert!(!dir.exists());
    }
}
