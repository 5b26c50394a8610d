//! The SQLite database: one connection owned by a dedicated thread, so database work never blocks the async
//! runtime. Migrations in `migrations/` run at open.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

mod embedded {
    refinery::embed_migrations!("../migrations");
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open the database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("cannot configure the database {path}: {source}")]
    Pragmas { path: PathBuf, source: rusqlite::Error },
    #[error("database migration failed on {path}: {source}")]
    Migrate { path: PathBuf, source: refinery::Error },
    #[error("the database thread has stopped")]
    Closed,
    #[error("database error: {0}")]
    Query(#[from] rusqlite::Error),
}

/// A handle to the database thread; cheap to clone.
#[derive(Clone)]
pub struct Database {
    jobs: std_mpsc::Sender<Job>,
    path: PathBuf,
}

impl Database {
    /// Opens (creating if needed) the database at `path`, switches it to WAL, and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Database, DbError> {
        let path = path.to_path_buf();
        let (jobs, rx) = std_mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("doradura-db".into())
            .spawn(move || match open_and_migrate(&thread_path) {
                Ok(mut conn) => {
                    let _ = ready_tx.send(Ok(()));
                    while let Ok(job) = rx.recv() {
                        job(&mut conn);
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|source| DbError::CreateDir {
                path: path.clone(),
                source,
            })?;
        ready_rx.await.map_err(|_| DbError::Closed)??;
        Ok(Database { jobs, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the database thread.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Result<T, DbError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| DbError::Closed)?;
        rx.await.map_err(|_| DbError::Closed)
    }

    /// Runs a query on the database thread; its error and the thread's are one error.
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, DbError> {
        Ok(self.call(f).await??)
    }

    /// Folds the write-ahead log into the database file, so a stopped daemon leaves one self-contained file.
    pub async fn checkpoint(&self) {
        match self.call(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "WAL checkpoint failed"),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }

    /// The highest applied migration, or why the database did not answer.
    pub async fn schema_version(&self) -> Result<u32, String> {
        self.call(|conn| {
            conn.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM refinery_schema_history",
                [],
                |r| r.get::<_, u32>(0),
            )
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }
}

fn open_and_migrate(path: &Path) -> Result<Connection, DbError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(|source| DbError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;",
    )
    .map_err(|source| DbError::Pragmas {
        path: path.to_path_buf(),
        source,
    })?;
    migrate(&mut conn).map_err(|source| DbError::Migrate {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(conn)
}

/// Applies the migrations in `migrations/` that this database has not seen.
pub fn migrate(conn: &mut Connection) -> Result<(), refinery::Error> {
    embedded::migrations::runner().run(conn).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quoted values in `text` after each `marker` up to the closing parenthesis (or the one value after
    /// `marker` when it ends in a quote).
    fn quoted_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices(marker) {
            let rest = &text[at + marker.len()..];
            let list = if marker.ends_with('\'') {
                &rest[..rest.find('\'').unwrap_or(0)]
            } else {
                &rest[..rest.find(')').unwrap_or(0)]
            };
            if marker.ends_with('\'') {
                out.push(list);
            } else {
                out.extend(list.split(',').map(|v| v.trim().trim_matches('\'')));
            }
        }
        out
    }

    /// The stored states are the enums' wire names: the migrations' CHECKs allow exactly those, and every state
    /// written literally in the daemon's SQL is one of them (a misspelt one would match no row, silently).
    #[test]
    fn stored_states_are_the_typed_sets() {
        use doradura_proto::types::{RequestState, TaskState};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
        let core = std::fs::read_to_string(format!("{dir}/V1__core.sql")).unwrap();
        let bot = std::fs::read_to_string(format!("{dir}/V3__bot.sql")).unwrap();
        let tasks: Vec<&str> = TaskState::ALL.iter().map(|s| s.as_str()).collect();
        let requests: Vec<&str> = RequestState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(quoted_after(&core, "CHECK (state IN ("), tasks);
        assert_eq!(quoted_after(&bot, "CHECK (state IN ("), requests);

        let mut files = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
        let mut seen = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            // This file holds the markers themselves.
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("src/db.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for marker in ["state = '", "state IN ("] {
                for value in quoted_after(&text, marker) {
                    if value.starts_with('?') {
                        continue;
                    }
                    seen += 1;
                    assert!(
                        value.parse::<TaskState>().is_ok() || value.parse::<RequestState>().is_ok(),
                        "{}: state {value:?} is neither a TaskState nor a RequestState",
                        path.display()
                    );
                }
            }
        }
        assert!(seen > 30, "the scan found the daemon's SQL ({seen} literals)");
    }

    #[tokio::test]
    async fn open_migrates_and_reopen_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/doradura.db");
        let db = Database::open(&path).await.unwrap();
        let latest = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_prefix('V')?.split("__").next()?.parse::<u32>().ok()
            })
            .max()
            .unwrap();
        assert_eq!(db.schema_version().await.unwrap(), latest);
        let mode: String = db
            .call(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(mode, "wal");
        let tables: Vec<String> = db
            .call(|c| {
                let mut st = c.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
                st.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()
            })
            .await
            .unwrap()
            .unwrap();
        for t in [
            "users",
            "subscriptions",
            "payments",
            "download_tasks",
            "metric_aggregates",
            "alert_history",
            "user_activity",
        ] {
            assert!(tables.iter().any(|n| n == t), "missing table {t}: {tables:?}");
        }
        drop(db);
        let again = Database::open(&path).await.unwrap();
        assert_eq!(again.schema_version().await.unwrap(), latest);
    }

    #[tokio::test]
    async fn an_unwritable_location_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        let err = Database::open(&file.join("doradura.db")).await.err().unwrap();
        assert!(matches!(err, DbError::CreateDir { .. }), "{err}");
        assert!(err.to_string().contains("plain-file"));
    }
}
