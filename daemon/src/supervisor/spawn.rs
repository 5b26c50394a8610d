//! Starting and killing worker processes. Each worker is exec'd (never forked from this threaded process without
//! exec) into a process group of its own, so that killing the group takes its yt-dlp and ffmpeg children along.

use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tracing::warn;

use super::state::Exit;
use crate::config::Config;

/// A spawned worker process.
pub struct WorkerChild {
    pub pid: u32,
    child: tokio::process::Child,
}

impl WorkerChild {
    /// Waits for the process to end and says how.
    pub async fn wait(mut self) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match self.child.wait().await {
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => Exit::Code(code),
                (None, Some(sig)) => Exit::Signal(sig),
                (None, None) => Exit::Code(-1),
            },
            Err(e) => {
                warn!(pid = self.pid, error = %e, "waiting for a worker failed");
                Exit::Code(-1)
            }
        }
    }
}

/// Starts worker `id`: its own process group, SIGTERM when the supervisor dies, a minimal environment.
pub fn spawn_worker(config: &Config, socket: &Path, id: u32) -> std::io::Result<WorkerChild> {
    let mut cmd = tokio::process::Command::new(&config.supervision.worker_path);
    cmd.arg("--id")
        .arg(id.to_string())
        .arg("--socket")
        .arg(socket)
        .arg("--supervisor-pid")
        .arg(std::process::id().to_string())
        .arg("--ytdlp-path")
        .arg(&config.ytdlp_path)
        // Workers run untrusted programs: they get none of the daemon's environment (the bot token, systemd's
        // notify socket) beyond what finds those programs, and the log filter.
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| k == "PATH" || k == "TMPDIR"))
        .env("RUST_LOG", &config.log_filter)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(false);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from));
    }
    let child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("worker exited before its pid was read"))?;
    Ok(WorkerChild { pid, child })
}

/// SIGKILLs the process group led by `pid` (a worker and everything it started).
pub fn kill_group(pid: u32) {
    let Ok(raw) = i32::try_from(pid) else { return };
    if let Err(e) = killpg(Pid::from_raw(raw), Signal::SIGKILL)
        && e != nix::errno::Errno::ESRCH
    {
        warn!(pid, error = %e, "could not kill worker process group");
    }
}
