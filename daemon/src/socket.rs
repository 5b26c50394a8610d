//! The control socket: created 0660 in a directory that is created if missing, refusing to take over a socket a
//! live daemon still serves.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot create the control socket directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("another doradurad is already serving {path}")]
    InUse { path: PathBuf },
    #[error("cannot remove the stale control socket {path}: {source}")]
    RemoveStale { path: PathBuf, source: std::io::Error },
    #[error("cannot bind the control socket {path}: {source}")]
    Bind { path: PathBuf, source: std::io::Error },
    #[error("cannot set the mode of the control socket {path}: {source}")]
    Mode { path: PathBuf, source: std::io::Error },
}

pub struct Bound {
    /// Absolute path, so workers find it whatever their working directory.
    pub path: PathBuf,
    listener: UnixListener,
}

impl Bound {
    pub fn into_inner(self) -> UnixListener {
        self.listener
    }
}

pub async fn bind(path: &Path) -> Result<Bound, SocketError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| SocketError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let dir = std::fs::canonicalize(dir).map_err(|source| SocketError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(path.file_name().unwrap_or("control.sock".as_ref()));
    if path.exists() {
        if tokio::net::UnixStream::connect(&path).await.is_ok() {
            return Err(SocketError::InUse { path });
        }
        info!(path = %path.display(), "removing a stale control socket");
        std::fs::remove_file(&path).map_err(|source| SocketError::RemoveStale {
            path: path.clone(),
            source,
        })?;
    }
    let listener = UnixListener::bind(&path).map_err(|source| SocketError::Bind {
        path: path.clone(),
        source,
    })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).map_err(|source| SocketError::Mode {
        path: path.clone(),
        source,
    })?;
    Ok(Bound { path, listener })
}

pub fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        warn!(path = %path.display(), error = %e, "could not remove the control socket");
    }
}
