//! doradura-worker: started by doradurad, one per slot, in a process group of its own. It connects back over the
//! control socket, says hello, and keeps one bidirectional stream open for tasks and events.

mod classify;
mod link;
mod manpage;
mod probe;
mod progress;
mod proxy;
mod sandbox;
mod upstream;
mod validate;
mod ytdlp;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing::{error, info};

#[derive(Debug, Parser)]
#[command(
    name = "doradura-worker",
    version,
    about = "doradura download worker (started by doradurad; `doradura-worker --man` prints this page)"
)]
struct Args {
    /// Slot number given by the supervisor.
    #[arg(long)]
    id: u32,
    /// The supervisor's control socket.
    #[arg(long)]
    socket: PathBuf,
    /// The supervisor's pid: the worker exits at once if its parent is already someone else.
    #[arg(long)]
    supervisor_pid: u32,
    /// The yt-dlp executable.
    #[arg(long, default_value = "yt-dlp")]
    ytdlp_path: PathBuf,
}

fn main() -> ExitCode {
    // `doradura-worker --man` alone prints the manual page; the worker's own arguments are all required.
    if std::env::args().skip(1).eq(["--man"]) {
        use clap::CommandFactory;
        use std::io::Write;
        return match manpage::render(Args::command()).and_then(|page| std::io::stdout().write_all(&page)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    // PR_SET_PDEATHSIG was set before exec; if the supervisor died before that, our parent is already another
    // process and no signal will ever come.
    let parent = nix::unistd::getppid().as_raw();
    if u32::try_from(parent).ok() != Some(args.supervisor_pid) {
        error!(
            worker = args.id,
            parent,
            expected = args.supervisor_pid,
            "supervisor is gone; exiting"
        );
        return ExitCode::FAILURE;
    }

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let ytdlp = probe::ytdlp_version(&args.ytdlp_path).await;
        match link::serve(args.id, &args.socket, args.ytdlp_path.clone(), ytdlp).await {
            Ok(link::Ending::Shutdown) => {
                info!(worker = args.id, "stopped by the supervisor");
                ExitCode::SUCCESS
            }
            Ok(link::Ending::SupervisorGone) => {
                info!(worker = args.id, "the supervisor closed the link; exiting");
                ExitCode::SUCCESS
            }
            Ok(link::Ending::Signal) => ExitCode::SUCCESS,
            Err(e) => {
                error!(worker = args.id, error = %format!("{e:#}"), "worker failed");
                ExitCode::FAILURE
            }
        }
    })
}
