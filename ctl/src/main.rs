//! doradurctl: the command-line client of doradurad's control socket.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "doradurctl", version, about = "Control and inspect a running doradurad")]
struct Cli {
    /// The daemon's control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists,
    /// else ./data/control.sock].
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Version, uptime, workers (with their current task) and database of the running daemon.
    Status,
    /// Download a URL through the daemon's queue and workers, and write the file to --out.
    Download {
        url: String,
        /// mp3, mp4 or srt.
        #[arg(long, default_value = "mp3")]
        format: String,
        /// mp3: 128k/192k/256k/320k; mp4: 360p/480p/720p/1080p/best; srt: none [default: the format's best fit]
        #[arg(long)]
        quality: Option<String>,
        /// Queue priority: high, medium or low [default: high].
        #[arg(long)]
        priority: Option<String>,
        /// Directory for the file.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Waiting and running tasks, with their position and progress.
    Queue {
        /// Also the latest finished tasks.
        #[arg(long)]
        all: bool,
    },
    /// Cancel a task, waiting or running.
    Cancel { task: u64 },
    /// The daemon's metrics grouped by category: performance, business, engagement or system (all without one).
    Metrics { category: Option<String> },
}

/// The socket to use when `--socket` is not given.
fn default_socket() -> PathBuf {
    if let Some(p) = std::env::var_os("CONTROL_SOCKET").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let system = PathBuf::from("/run/doradura/control.sock");
    if system.exists() {
        system
    } else {
        PathBuf::from("./data/control.sock")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = cli.socket.unwrap_or_else(default_socket);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("doradurctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let channel = doradura_proto::connect_unix(&socket).await?;
        match cli.command {
            Command::Status => commands::status::run(channel, cli.json).await,
            Command::Download {
                url,
                format,
                quality,
                priority,
                out,
            } => {
                let args = commands::download::Args {
                    url,
                    format,
                    quality,
                    priority,
                    out,
                };
                commands::download::run(channel, args, cli.json).await
            }
            Command::Queue { all } => commands::queue::run(channel, all, cli.json).await,
            Command::Cancel { task } => commands::cancel::run(channel, task, cli.json).await,
            Command::Metrics { category } => commands::metrics::run(channel, category, cli.json).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("doradurctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
