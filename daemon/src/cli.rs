//! Command-line flags. Each flag overrides the environment variable of the same name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::config::Flags;

#[derive(Debug, Parser)]
#[command(name = "doradurad", version, about = "doradura supervisor daemon")]
pub struct Cli {
    /// TOML config file (default: /etc/doradura/doradura.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Resolve and validate the configuration, print it, and exit. Without --env-file it reads the packaged
    /// /etc/doradura/doradura.env when present, as the service does.
    #[arg(long)]
    pub check_config: bool,
    /// An environment file (NAME=value lines, as systemd's EnvironmentFile=), read over the process environment: a
    /// variable the file sets wins over the environment (as EnvironmentFile= wins over Environment=), and SIGHUP
    /// reads the file again. doradura.service names /etc/doradura/doradura.env here, so that a reload applies edits.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
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

/// The manual page, doradurad(8): the flags, and the sections of `crate::manpage` (ENVIRONMENT from `.env.example`).
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    crate::manpage::render(Cli::command())
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

/// The packaged service's environment file: the unit's `EnvironmentFile=`.
pub const PACKAGED_ENV_FILE: &str = "/etc/doradura/doradura.env";

/// What the unit gives the service besides its environment file (`StateDirectory=` and friends), assumed when
/// `--check-config` reads the packaged file, so that it prints the paths the service uses.
pub const UNIT_DIRECTORIES: [(&str, &str); 3] = [
    ("STATE_DIRECTORY", "/var/lib/doradura"),
    ("CACHE_DIRECTORY", "/var/cache/doradura"),
    ("RUNTIME_DIRECTORY", "/run/doradura"),
];

/// The environment file to read: `--env-file`, else for `--check-config` the packaged one when it exists. A
/// packaged file that exists but cannot be read is an error, not a reason to print defaults.
pub fn env_file(cli: &Cli, packaged: &Path) -> Result<Option<PathBuf>, String> {
    if let Some(f) = &cli.env_file {
        return Ok(Some(f.clone()));
    }
    if !cli.check_config {
        return Ok(None);
    }
    match std::fs::metadata(packaged) {
        Ok(_) => Ok(Some(packaged.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "cannot read {} ({e}); run as root or a member of the doradura group, or name a file with --env-file",
            packaged.display()
        )),
    }
}

/// Variables by name: an environment, or what an environment file holds.
pub type Vars = HashMap<String, String>;

/// The environment the configuration is resolved from, lowest first: `./.env` (development); the unit's
/// directories (when `--check-config` reads the packaged file, standing in for what systemd sets); the process
/// environment; and the environment file, which wins over the process environment as systemd's `EnvironmentFile=`
/// wins over `Environment=`. Returns it with what the file holds, for `at_start` of later calls.
///
/// `at_start` is what the file held when the daemon started (empty at start itself). On SIGHUP the process
/// environment is still the one the daemon was started with: under systemd it holds the file's start-up values
/// (`EnvironmentFile=` of the same file). The re-read file wins over it, so an edited line takes effect; and a
/// variable the process environment holds with exactly the value the file gave it at start is left out, so a line
/// since deleted from the file falls back to `./.env`, the config file or the default, as it would at a restart,
/// instead of keeping its old value.
pub fn environment(
    env_file: Option<&Path>,
    unit: bool,
    process: impl Iterator<Item = (String, String)>,
    at_start: &Vars,
) -> Result<(Vars, Vars), String> {
    let mut env: Vars = dotenvy::from_path_iter(".env")
        .map(|iter| iter.filter_map(Result::ok).collect())
        .unwrap_or_default();
    let file: Vars = match env_file {
        Some(path) => read_env_file(path)?.into_iter().collect(),
        None => Vars::new(),
    };
    if unit && env_file.is_some() {
        env.extend(UNIT_DIRECTORIES.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    }
    env.extend(process.filter(|(k, v)| at_start.get(k) != Some(v)));
    env.extend(file.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok((env, file))
}

/// `NAME=value` lines of an environment file (comments, blank lines and quotes as in `.env.example`).
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot read the environment file {}: {e}", path.display());
    dotenvy::from_path_iter(path)
        .map_err(|e| cannot(&e))?
        .map(|item| item.map_err(|e| cannot(&e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("doradurad").chain(args.iter().copied()))
    }

    #[test]
    fn the_packaged_file_is_the_default_only_for_check_config_and_only_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let packaged = dir.path().join("doradura.env");
        assert_eq!(env_file(&cli(&["--check-config"]), &packaged), Ok(None));
        std::fs::write(&packaged, "WORKERS=3\n").unwrap();
        assert_eq!(
            env_file(&cli(&["--check-config"]), &packaged),
            Ok(Some(packaged.clone()))
        );
        assert_eq!(env_file(&cli(&[]), &packaged), Ok(None));
        let other = dir.path().join("other.env");
        let given = cli(&["--check-config", "--env-file", other.to_str().unwrap()]);
        assert_eq!(env_file(&given, &packaged), Ok(Some(other.clone())));
        // Something that is there but cannot be examined is an error, not a reason to print defaults.
        let through_a_file = packaged.join("doradura.env");
        let err = env_file(&cli(&["--check-config"]), &through_a_file).unwrap_err();
        assert!(err.contains("--env-file"), "{err}");
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_file_wins_over_the_real_environment_which_wins_over_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("doradura.env");
        std::fs::write(
            &file,
            "# a comment\nWORKERS=3\nMETRICS_PORT=9464\nRUST_LOG=\"debug\"\nSTATE_DIRECTORY=/srv/doradura\n",
        )
        .unwrap();
        let process = vars(&[("WORKERS", "5"), ("ADMIN_IDS", "7")]);
        let (env, read) = environment(Some(&file), false, process.into_iter(), &HashMap::new()).unwrap();
        assert_eq!(env["WORKERS"], "3");
        assert_eq!(env["ADMIN_IDS"], "7");
        assert_eq!(env["METRICS_PORT"], "9464");
        assert_eq!(env["RUST_LOG"], "debug");
        assert_eq!(read.len(), 4);
        assert_eq!(read["RUST_LOG"], "debug");
        let (none, read) = environment(None, false, vars(&[("WORKERS", "5")]).into_iter(), &HashMap::new()).unwrap();
        assert_eq!((none["WORKERS"].as_str(), read.len()), ("5", 0));
        // The unit's directories stand for what systemd sets: under the shell's environment and the file.
        let process = vars(&[("CACHE_DIRECTORY", "/tmp/cache")]);
        let (unit, _) = environment(Some(&file), true, process.into_iter(), &HashMap::new()).unwrap();
        assert_eq!(unit["RUNTIME_DIRECTORY"], "/run/doradura");
        assert_eq!(unit["CACHE_DIRECTORY"], "/tmp/cache");
        assert_eq!(unit["STATE_DIRECTORY"], "/srv/doradura");
        let (plain, _) = environment(Some(&file), false, std::iter::empty(), &HashMap::new()).unwrap();
        assert!(!plain.contains_key("RUNTIME_DIRECTORY"));
        let missing = environment(
            Some(&dir.path().join("nope.env")),
            false,
            std::iter::empty(),
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(missing.contains("nope.env"), "{missing}");
    }

    /// SIGHUP under systemd: the process environment still holds what `EnvironmentFile=` read at start.
    #[test]
    fn on_reload_the_edited_file_wins_and_a_deleted_line_falls_back_as_at_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("doradura.env");
        std::fs::write(
            &file,
            "RUST_LOG=info\nALERT_QUEUE_DEPTH_THRESHOLD=100\nALERT_WINDOW=120\nWORKERS=3\n",
        )
        .unwrap();
        // The unit's EnvironmentFile= gave the process the file's values; a drop-in set ADMIN_IDS; WORKERS was set
        // by hand to something else.
        let process = vars(&[
            ("RUST_LOG", "info"),
            ("ALERT_QUEUE_DEPTH_THRESHOLD", "100"),
            ("ALERT_WINDOW", "120"),
            ("ADMIN_IDS", "7"),
            ("WORKERS", "5"),
        ]);
        let (_, at_start) = environment(Some(&file), false, process.clone().into_iter(), &HashMap::new()).unwrap();
        std::fs::write(&file, "RUST_LOG=debug\nALERT_QUEUE_DEPTH_THRESHOLD=2\n").unwrap();
        let (env, _) = environment(Some(&file), false, process.into_iter(), &at_start).unwrap();
        assert_eq!(env["RUST_LOG"], "debug");
        assert_eq!(env["ALERT_QUEUE_DEPTH_THRESHOLD"], "2");
        // Deleted from the file: gone, as after a restart, instead of the stale value from the start.
        assert!(!env.contains_key("ALERT_WINDOW"), "{env:?}");
        // Not the file's value at start, so not the file's doing: the environment's own value shows again.
        assert_eq!(env["WORKERS"], "5");
        assert_eq!(env["ADMIN_IDS"], "7");
    }

    #[test]
    fn the_unit_directories_are_those_of_the_shipped_unit() {
        let unit =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/doradura.service")).unwrap();
        for line in [
            "StateDirectory=doradura",
            "CacheDirectory=doradura",
            "RuntimeDirectory=doradura",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line}");
        }
        assert!(
            unit.lines()
                .any(|l| l == format!("EnvironmentFile=-{PACKAGED_ENV_FILE}"))
        );
        // The daemon reads the same file itself, over the environment, so that SIGHUP re-reads it.
        assert!(
            unit.lines()
                .any(|l| l == format!("ExecStart=/usr/bin/doradurad --env-file {PACKAGED_ENV_FILE}"))
        );
    }
}
