//! The gRPC services on the control socket: `WorkerLink` for workers, `Control` for doradurctl.

mod alerts;
mod download;
mod peer;
mod service;
mod worker_link;

pub use service::ControlService;
pub use worker_link::WorkerLinkService;

/// The daemon's phase, shown in status; downloads are accepted only when ready.
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
