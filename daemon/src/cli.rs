//! Command-line flags. Each flag overrides the environment variable of the same name.

use std::path::PathBuf;

use clap::Parser;

use crate::config::Flags;

#[derive(Debug, Parser)]
#[command(name = "doradurad", version, about = "doradura supervisor daemon")]
pub struct Cli {
    /// TOML config file (default: /etc/doradura/doradura.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Resolve and validate the configuration, print it, and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Print this manual page (roff) and exit.
    #[arg(long, exclusive = true)]
    pub man: bool,
    /// SQLite database file [env: DATABASE_PATH].
    #[arg(long, value_name = "PATH")]
    pub database_path: Option<String>,
    /// gRPC control socket [env: CONTROL_SOCKET].
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<String>,
    /// Number of worker processes [env: WORKERS].
    #[arg(long, value_name = "N")]
    pub workers: Option<String>,
    /// The yt-dlp executable [env: YTDLP_PATH].
    #[arg(long, value_name = "PATH")]
    pub ytdlp_path: Option<String>,
    /// The doradura-worker executable [env: WORKER_PATH].
    #[arg(long, value_name = "PATH")]
    pub worker_path: Option<String>,
    /// Spool directory for finished files [env: DOWNLOAD_DIR].
    #[arg(long, value_name = "DIR")]
    pub download_dir: Option<String>,
    /// Port of the metrics HTTP server [env: METRICS_PORT].
    #[arg(long, value_name = "PORT")]
    pub metrics_port: Option<String>,
    /// Address the metrics HTTP server binds [env: METRICS_BIND].
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind: Option<String>,
    /// Log filter [env: RUST_LOG].
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}

/// The manual page, doradurad(8).
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).section("8").render(&mut out)?;
    Ok(out)
}

impl Cli {
    /// The flags that were given, keyed by the variable they override.
    pub fn flag_values(&self) -> Flags {
        [
            ("DATABASE_PATH", &self.database_path),
            ("CONTROL_SOCKET", &self.control_socket),
            ("WORKERS", &self.workers),
            ("YTDLP_PATH", &self.ytdlp_path),
            ("WORKER_PATH", &self.worker_path),
            ("DOWNLOAD_DIR", &self.download_dir),
            ("METRICS_PORT", &self.metrics_port),
            ("METRICS_BIND", &self.metrics_bind),
            ("RUST_LOG", &self.log),
        ]
        .into_iter()
        .filter_map(|(var, value)| value.clone().map(|v| (var, v)))
        .collect()
    }
}
