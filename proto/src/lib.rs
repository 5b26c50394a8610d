//! The one protocol crate every doradura binary shares: generated gRPC types and the Unix-socket client helper.

use std::io;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

/// Generated from `proto/doradura.proto` (package `doradura.v1`).
pub mod v1 {
    tonic::include_proto!("doradura.v1");
}

pub use v1::*;

pub mod manpage;
pub mod net;
pub mod proxy_url;
pub mod text;
pub mod time;
pub mod types;
pub mod ytdlp_options;
pub mod ytdlp_release;

/// Opens a gRPC channel to the daemon's control socket.
///
/// The URI is a placeholder required by tonic; every connection goes to `path`.
pub async fn connect_unix(path: impl AsRef<Path>) -> Result<Channel, ConnectError> {
    let path: PathBuf = path.as_ref().to_path_buf();
    // Probe once so that a missing socket or refused connection is reported as such, not as a transport error.
    UnixStream::connect(&path).await.map_err(|source| ConnectError {
        path: path.clone(),
        source,
    })?;
    let connector_path = path.clone();
    Endpoint::try_from("http://[::]:50051")
        .expect("static URI parses")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = connector_path.clone();
            async move { Ok::<_, io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .map_err(|e| ConnectError {
            path,
            source: io::Error::other(e),
        })
}

/// The control socket could not be reached.
#[derive(Debug)]
pub struct ConnectError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl ConnectError {
    /// A sentence for an operator: what is wrong and what to check.
    fn explain(&self) -> String {
        let p = self.path.display();
        match self.source.kind() {
            io::ErrorKind::NotFound => format!(
                "doradurad is not running: no control socket at {p} (start it, or pass --socket / set CONTROL_SOCKET)"
            ),
            io::ErrorKind::ConnectionRefused => {
                format!("doradurad is not running: {p} exists but nobody listens on it (a stale socket)")
            }
            io::ErrorKind::PermissionDenied => {
                format!("permission denied on {p}: run as root or as a member of the daemon's group")
            }
            _ => format!("cannot reach doradurad at {p}: {}", self.source),
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.explain())
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
