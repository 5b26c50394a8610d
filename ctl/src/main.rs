//! doradurctl: the command-line client of doradurad's control socket.

mod commands;
mod manpage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// Shell completions for bash, zsh, fish, elvish or powershell, on stdout.
    Completions { shell: clap_complete::Shell },
    /// This program's manual page (roff), on stdout.
    Man,
    /// Alerts firing now and silences; with --history, the last 20 alerts.
    Alerts {
        /// Also the last 20 alerts, resolved or not.
        #[arg(long)]
        history: bool,
        #[command(subcommand)]
        action: Option<AlertsAction>,
    },
    /// The private yt-dlp kept current by doradura-ytdlp-update.timer: its releases, and a rollback (works on the
    /// files in /var/lib/doradura/yt-dlp, without the daemon).
    Ytdlp {
        #[command(subcommand)]
        action: YtdlpAction,
    },
}

#[derive(Debug, Subcommand)]
enum YtdlpAction {
    /// The current and previous releases: versions, release dates and ages, and the versions rolled back.
    Status {
        /// The updater's base directory.
        #[arg(long, value_name = "DIR", default_value = commands::ytdlp::DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Make the previous release current again (atomically; the one left becomes previous, and the updater does
    /// not install its version again). The next download uses it; no restart is needed.
    Rollback {
        /// The updater's base directory.
        #[arg(long, value_name = "DIR", default_value = commands::ytdlp::DEFAULT_DIR)]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AlertsAction {
    /// Stop sending messages of one alert type for a while (90s, 30m, 4h, 2d); firings are still recorded.
    Silence { alert_type: String, duration: String },
    /// Send a test alert of one type to the admins, marked as a test.
    Test { alert_type: String },
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
    // Answered without the daemon. Written in one piece, so a closed pipe (`| head`) is an exit code, not a panic.
    let local = match &cli.command {
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "doradurctl", &mut out);
            Some(Ok(out))
        }
        Command::Man => Some(manpage::render(Cli::command())),
        _ => None,
    };
    // Files on this machine, not the daemon: a rollback must work while the daemon is down.
    if let Command::Ytdlp { action } = &cli.command {
        let done = match action {
            YtdlpAction::Status { dir } => commands::ytdlp::status_command(dir, cli.json),
            YtdlpAction::Rollback { dir } => commands::ytdlp::rollback_command(dir, cli.json),
        };
        return match done {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("doradurctl: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(page) = local {
        use std::io::Write;
        return match page.and_then(|p| std::io::stdout().write_all(&p)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
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
            Command::Alerts { history, action } => match action {
                None => commands::alerts::list(channel, history, cli.json).await,
                Some(AlertsAction::Silence { alert_type, duration }) => {
                    commands::alerts::silence(channel, alert_type, duration, cli.json).await
                }
                Some(AlertsAction::Test { alert_type }) => commands::alerts::test(channel, alert_type, cli.json).await,
            },
            Command::Completions { .. } | Command::Man | Command::Ytdlp { .. } => {
                unreachable!("answered without the daemon")
            }
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
