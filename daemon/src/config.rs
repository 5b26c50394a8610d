//! Configuration: command-line flag > environment > config file > default.
//!
//! Every setting is named by its environment variable; the config file uses the same names in lower case
//! (`workers = 4`). Resolution never reads or writes the process environment itself: the caller passes the
//! environment in, so tests resolve configurations side by side.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plans::{Limits, PlanLimits};
use crate::queue::QueuePolicy;

/// Where a value came from, named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File,
    Default,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::Flag => "command line",
            Source::Env => "environment",
            Source::File => "config file",
            Source::Default => "default",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {var}={value:?} (from {source_name}): expected {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        source_name: &'static str,
        expected: &'static str,
    },
    /// A value that parsed but cannot be used, with the reason in full (an option not allowed, a file missing).
    #[error("invalid {var} (from {source_name}): {reason}")]
    Refused {
        var: &'static str,
        source_name: &'static str,
        reason: String,
    },
    #[error("cannot read config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(
        "unknown setting {key:?} in config file {path} (settings are the environment variable names in lower case)"
    )]
    UnknownFileKey { path: PathBuf, key: String },
}

impl ConfigError {
    /// The variable at fault, when there is one.
    pub fn variable(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { var, .. } | ConfigError::Refused { var, .. } => Some(var),
            _ => None,
        }
    }
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Values given on the command line, by variable name (see `cli::Cli::flag_values`).
pub type Flags = HashMap<&'static str, String>;

/// The resolved configuration of one daemon.
#[derive(Debug, Clone)]
pub struct Config {
    pub bot_token: Option<Secret>,
    pub api_url: String,
    pub admin_ids: Vec<i64>,
    pub database_path: PathBuf,
    pub control_socket: PathBuf,
    pub workers: u32,
    pub ytdlp_path: PathBuf,
    pub download_dir: PathBuf,
    pub download_timeout: Duration,
    pub max_file_size_mb: u64,
    /// `DOWNLOAD_MIN_FREE_MB`: space the spool's filesystem keeps free beyond `MAX_FILE_SIZE_MB` per running task;
    /// tasks wait in the queue while it is not there.
    pub download_min_free_mb: u64,
    pub allow_private_hosts: bool,
    /// `DOWNLOAD_ALLOWED_HOSTS`: private hosts downloads may reach anyway (`host` or `host:port`).
    pub allowed_hosts: Vec<String>,
    /// `YTDLP_COOKIES_FILE`: the operator's Netscape cookies file; each task gets a private copy.
    pub ytdlp_cookies_file: Option<PathBuf>,
    /// `DOWNLOAD_PROXY`: the upstream proxy every download connection goes through (it may hold credentials).
    pub download_proxy: Option<Secret>,
    /// `YTDLP_JS_RUNTIME`: a deno, node, bun or quickjs executable yt-dlp may use.
    pub ytdlp_js_runtime: Option<PathBuf>,
    /// `YTDLP_EXTRA_ARGS`, split into words and checked against the allow-list.
    pub ytdlp_extra_args: Vec<String>,
    pub metrics_enabled: bool,
    pub metrics_port: u16,
    pub metrics_bind: IpAddr,
    pub metrics_auth_token: Option<Secret>,
    pub alerts_enabled: bool,
    pub alert_check_interval: Duration,
    pub alert_error_rate_threshold: f64,
    pub alert_queue_depth_threshold: u64,
    pub alert_retry_rate_threshold: f64,
    pub alerts: AlertSettings,
    pub analytics_cache_update_interval: Duration,
    pub premium_price_stars: u32,
    pub vip_price_stars: u32,
    pub log_filter: String,
    pub supervision: Supervision,
    pub queue: QueuePolicy,
    pub limits: Limits,
    /// How often lapsed paid plans are ended.
    pub plan_expiry_interval: Duration,
}

/// The alert conditions' other thresholds, windows and throttles (see `alerts::rules`).
#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub window: Duration,
    pub min_samples: u64,
    pub conversion_threshold: f64,
    pub conversion_min_checkouts: u64,
    pub ytdlp_failures: u32,
    /// `ALERT_YTDLP_MAX_AGE_DAYS`: YtdlpOutdated fires when the oldest worker's yt-dlp release is older.
    pub ytdlp_max_age_days: u32,
    pub throttle_error_rate: Duration,
    pub throttle_queue: Duration,
    pub throttle_other: Duration,
}

/// How workers are started, watched and restarted.
#[derive(Debug, Clone)]
pub struct Supervision {
    /// The `doradura-worker` executable.
    pub worker_path: PathBuf,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    /// How long a spawned worker may take to say hello before it is killed.
    pub hello_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Consecutive failures after which a slot is parked in `crash_loop`.
    pub crash_loop_threshold: u32,
    /// How long a parked slot waits before one more attempt.
    pub crash_loop_cooldown: Duration,
    /// A worker that ran this long before dying starts its failure count afresh.
    pub stable_after: Duration,
    /// Time running work gets to finish on shutdown before workers are killed.
    pub shutdown_grace: Duration,
    /// READY=1 is sent at the latest after this long, even if some workers never said hello.
    pub ready_timeout: Duration,
    /// `TASK_DEADLINE_GRACE`: how long past `DOWNLOAD_TIMEOUT` a worker may hold its task.
    pub task_deadline_grace: Duration,
    /// `DOWNLOAD_TIMEOUT` plus `TASK_DEADLINE_GRACE`: a worker holding a task longer is killed and replaced, and the
    /// task is released as after a crash.
    pub task_deadline: Duration,
}

/// Looks a variable up through the precedence chain.
struct Lookup<'a> {
    flags: &'a Flags,
    env: &'a HashMap<String, String>,
    file: &'a BTreeMap<String, String>,
}

impl Lookup<'_> {
    fn get(&self, var: &'static str, aliases: &[&'static str]) -> Option<(String, Source)> {
        if let Some(v) = self.flags.get(var) {
            return Some((v.clone(), Source::Flag));
        }
        for name in std::iter::once(&var).chain(aliases) {
            if let Some(v) = self.env.get(*name) {
                return Some((v.clone(), Source::Env));
            }
        }
        for name in std::iter::once(&var).chain(aliases) {
            if let Some(v) = self.file.get(&name.to_ascii_lowercase()) {
                return Some((v.clone(), Source::File));
            }
        }
        None
    }

    /// Parses a variable with `parse`, or returns `default` when it is unset (an empty value counts as unset).
    fn parse<T>(
        &self,
        var: &'static str,
        aliases: &[&'static str],
        expected: &'static str,
        default: impl FnOnce() -> T,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        match self.get(var, aliases) {
            Some((raw, source)) if !raw.trim().is_empty() => parse(raw.trim()).ok_or_else(|| ConfigError::Invalid {
                var,
                value: raw,
                source_name: source.describe(),
                expected,
            }),
            _ => Ok(default()),
        }
    }

    fn string(&self, var: &'static str, aliases: &[&'static str]) -> Option<String> {
        self.get(var, aliases)
            .map(|(v, _)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn int<T: std::str::FromStr + PartialOrd + Copy>(
        &self,
        var: &'static str,
        expected: &'static str,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, ConfigError> {
        self.parse(
            var,
            &[],
            expected,
            || default,
            |s| s.parse::<T>().ok().filter(|v| *v >= min && *v <= max),
        )
    }

    fn float(&self, var: &'static str, expected: &'static str, default: f64, max: f64) -> Result<f64, ConfigError> {
        self.parse(
            var,
            &[],
            expected,
            || default,
            |s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0 && *v <= max)
            },
        )
    }

    fn seconds(
        &self,
        var: &'static str,
        expected: &'static str,
        default: u64,
        min: u64,
    ) -> Result<Duration, ConfigError> {
        self.int(var, expected, default, min, 7 * 24 * 3600)
            .map(Duration::from_secs)
    }

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        self.parse(
            var,
            &[],
            "true or false (also 1/0, yes/no, on/off)",
            || default,
            parse_bool,
        )
    }

    /// A duration that may be zero: `0s`, `30s`, `1m`.
    fn duration_or_zero(&self, var: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        self.parse(
            var,
            &[],
            "a duration such as 0s, 30s or 2m",
            || default,
            |s| humantime::parse_duration(s).ok(),
        )
    }

    /// One plan's limits from its `*_COOLDOWN`, `*_DAILY_QUOTA` and `*_MAX_ACTIVE`, with their defaults.
    fn plan_limits(
        &self,
        [cooldown_var, quota_var, active_var]: [&'static str; 3],
        (cooldown, quota, active): (u64, u32, u32),
    ) -> Result<PlanLimits, ConfigError> {
        Ok(PlanLimits {
            cooldown: self.duration_or_zero(cooldown_var, Duration::from_secs(cooldown))?,
            daily_quota: self.int(
                quota_var,
                "a whole number of downloads per day (0: unlimited)",
                quota,
                0,
                1_000_000,
            )?,
            max_active: self.int(
                active_var,
                "a whole number of requests in flight at once from 0 to 1000 (0: unlimited)",
                active,
                0,
                1000,
            )?,
        })
    }

    /// A value checked by `check`, whose error is the whole reason; `None` when unset or empty.
    fn checked<T>(
        &self,
        var: &'static str,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(var, &[]) {
            Some((raw, source)) if !raw.trim().is_empty() => {
                check(raw.trim()).map(Some).map_err(|reason| ConfigError::Refused {
                    var,
                    source_name: source.describe(),
                    reason,
                })
            }
            _ => Ok(None),
        }
    }

    /// A duration written for humans: `500ms`, `5s`, `2m`.
    fn duration(&self, var: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        self.parse(
            var,
            &[],
            "a duration such as 500ms, 5s or 2m (at least 10ms)",
            || default,
            |s| {
                humantime::parse_duration(s)
                    .ok()
                    .filter(|d| *d >= Duration::from_millis(10))
            },
        )
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A file the daemon can open for reading now (its workers copy it for every task).
fn readable_file(path: &str) -> Result<String, String> {
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Ok(m) if m.is_file() => Ok(path.to_string()),
        Ok(_) => Err(format!("{path} is not a file")),
        Err(e) => Err(format!("cannot read {path}: {e}")),
    }
}

/// An executable deno, node, nodejs, bun or qjs/quickjs (named by its file, as yt-dlp's `--js-runtimes` wants).
fn js_runtime(path: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    if doradura_proto::ytdlp_options::js_runtime_name(Path::new(path)).is_none() {
        return Err(format!(
            "{path} is not a JavaScript runtime yt-dlp knows: expected the path of deno, node, bun or qjs"
        ));
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(path.to_string()),
        Ok(_) => Err(format!("{path} is not an executable file")),
        Err(e) => Err(format!("cannot use {path}: {e}")),
    }
}

/// The virtualenv `doradura-ytdlp-update.service` keeps current; `doradurctl ytdlp rollback` swaps it back.
pub const YTDLP_VENV: &str = "/var/lib/doradura/yt-dlp";

/// `YTDLP_PATH`'s default: the updater's virtualenv when it holds a yt-dlp (`YTDLP_VENV/current/bin/yt-dlp`), else
/// `yt-dlp` on `PATH`. `exists` is asked about the virtualenv's file (a parameter, so tests need no such file).
pub fn default_ytdlp_path(exists: impl Fn(&Path) -> bool) -> PathBuf {
    let venv = Path::new(YTDLP_VENV).join("current/bin/yt-dlp");
    if exists(&venv) { venv } else { PathBuf::from("yt-dlp") }
}

/// Words split as a shell would, each option on yt-dlp's allow-list.
fn extra_args(text: &str) -> Result<Vec<String>, String> {
    let words = shlex::split(text).ok_or_else(|| "unbalanced quotes".to_string())?;
    doradura_proto::ytdlp_options::check(&words).map_err(|e| e.to_string())?;
    Ok(words)
}

/// Every name the config file may use (lower-cased variable names).
const FILE_KEYS: &[&str] = &[
    "teloxide_token",
    "bot_token",
    "teloxide_api_url",
    "admin_ids",
    "admin_user_id",
    "database_path",
    "control_socket",
    "workers",
    "ytdlp_path",
    "download_dir",
    "download_timeout",
    "task_deadline_grace",
    "max_file_size_mb",
    "download_min_free_mb",
    "download_allow_private_hosts",
    "download_allowed_hosts",
    "ytdlp_cookies_file",
    "download_proxy",
    "ytdlp_js_runtime",
    "ytdlp_extra_args",
    "metrics_enabled",
    "metrics_port",
    "metrics_bind",
    "metrics_auth_token",
    "alerts_enabled",
    "alert_check_interval",
    "alert_error_rate_threshold",
    "alert_queue_depth_threshold",
    "alert_retry_rate_threshold",
    "alert_window",
    "alert_min_samples",
    "alert_conversion_threshold",
    "alert_conversion_min_checkouts",
    "alert_ytdlp_failures",
    "alert_ytdlp_max_age_days",
    "alert_throttle_error_rate",
    "alert_throttle_queue",
    "alert_throttle",
    "analytics_cache_update_interval",
    "premium_price_stars",
    "vip_price_stars",
    "rust_log",
    "worker_path",
    "worker_heartbeat_interval",
    "worker_heartbeat_timeout",
    "worker_hello_timeout",
    "worker_backoff_initial",
    "worker_backoff_max",
    "worker_crash_loop_threshold",
    "worker_crash_loop_cooldown",
    "worker_stable_after",
    "shutdown_grace_period",
    "ready_timeout",
    "queue_max_size",
    "task_max_attempts",
    "task_retry_backoff",
    "free_cooldown",
    "free_daily_quota",
    "premium_cooldown",
    "premium_daily_quota",
    "vip_cooldown",
    "vip_daily_quota",
    "free_max_active",
    "premium_max_active",
    "vip_max_active",
    "plan_expiry_check_interval",
];

/// Reads a TOML config file into `lower_case_name -> value as text`.
pub fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        let key = key.to_ascii_lowercase();
        if !FILE_KEYS.contains(&key.as_str()) {
            return Err(ConfigError::UnknownFileKey {
                path: path.to_path_buf(),
                key,
            });
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        out.insert(key, text);
    }
    Ok(out)
}

/// The first entry of a systemd directory variable (`STATE_DIRECTORY` may list several, colon-separated).
fn systemd_dir(env: &HashMap<String, String>, var: &str) -> Option<PathBuf> {
    env.get(var)
        .and_then(|v| v.split(':').next())
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `doradura-worker` next to the running daemon, else on `PATH`.
fn default_worker_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("doradura-worker")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("doradura-worker"))
}

impl Config {
    /// Resolves the configuration from flags, an environment, and the config file.
    ///
    /// `config_file` is `Some` when `--config` was given (then it must exist); otherwise
    /// `/etc/doradura/doradura.toml` is read when present.
    pub fn resolve(
        flags: &Flags,
        env: &HashMap<String, String>,
        config_file: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let file = match config_file {
            Some(path) => read_file(path)?,
            None => {
                let default = Path::new("/etc/doradura/doradura.toml");
                if default.exists() {
                    read_file(default)?
                } else {
                    BTreeMap::new()
                }
            }
        };
        Self::resolve_with_file(flags, env, &file)
    }

    pub fn resolve_with_file(
        flags: &Flags,
        env: &HashMap<String, String>,
        file: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let l = Lookup { flags, env, file };
        let state_dir = systemd_dir(env, "STATE_DIRECTORY").unwrap_or_else(|| PathBuf::from("./data"));
        let runtime_dir = systemd_dir(env, "RUNTIME_DIRECTORY").unwrap_or_else(|| PathBuf::from("./data"));
        let cache_dir = systemd_dir(env, "CACHE_DIRECTORY").unwrap_or_else(|| PathBuf::from("./data/downloads"));

        let api_url = l.parse(
            "TELOXIDE_API_URL",
            &[],
            "an http:// or https:// URL",
            || "https://api.telegram.org".to_string(),
            |s| (s.starts_with("https://") || s.starts_with("http://")).then(|| s.trim_end_matches('/').to_string()),
        )?;
        let admin_ids = l.parse(
            "ADMIN_IDS",
            &["ADMIN_USER_ID"],
            "comma-separated numeric Telegram user ids",
            Vec::new,
            |s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| p.parse::<i64>().ok().filter(|id| *id > 0))
                    .collect::<Option<Vec<_>>>()
            },
        )?;
        let path = |var: &'static str, default: PathBuf| -> PathBuf {
            l.string(var, &[]).map(PathBuf::from).unwrap_or(default)
        };

        let heartbeat_interval = l.duration("WORKER_HEARTBEAT_INTERVAL", Duration::from_secs(5))?;
        let heartbeat_timeout = l.duration("WORKER_HEARTBEAT_TIMEOUT", heartbeat_interval * 3)?;
        if heartbeat_timeout <= heartbeat_interval {
            return Err(ConfigError::Invalid {
                var: "WORKER_HEARTBEAT_TIMEOUT",
                value: humantime::format_duration(heartbeat_timeout).to_string(),
                source_name: "configuration",
                expected: "a duration longer than WORKER_HEARTBEAT_INTERVAL",
            });
        }
        let backoff_initial = l.duration("WORKER_BACKOFF_INITIAL", Duration::from_millis(500))?;
        let backoff_max = l.duration("WORKER_BACKOFF_MAX", Duration::from_secs(30))?;
        if backoff_max < backoff_initial {
            return Err(ConfigError::Invalid {
                var: "WORKER_BACKOFF_MAX",
                value: humantime::format_duration(backoff_max).to_string(),
                source_name: "configuration",
                expected: "a duration no shorter than WORKER_BACKOFF_INITIAL",
            });
        }

        let download_timeout = l.seconds("DOWNLOAD_TIMEOUT", "whole seconds from 1 to 604800", 600, 1)?;
        let task_deadline_grace = l.duration("TASK_DEADLINE_GRACE", Duration::from_secs(60))?;

        Ok(Config {
            bot_token: l.string("TELOXIDE_TOKEN", &["BOT_TOKEN"]).map(Secret),
            api_url,
            admin_ids,
            database_path: path("DATABASE_PATH", state_dir.join("doradura.db")),
            control_socket: path("CONTROL_SOCKET", runtime_dir.join("control.sock")),
            workers: l.int("WORKERS", "a whole number from 1 to 64", 2, 1, 64)?,
            ytdlp_path: path("YTDLP_PATH", default_ytdlp_path(|p| p.is_file())),
            download_dir: path("DOWNLOAD_DIR", cache_dir),
            download_timeout,
            max_file_size_mb: l.int("MAX_FILE_SIZE_MB", "megabytes from 1 to 2000", 50, 1, 2000)?,
            download_min_free_mb: l.int("DOWNLOAD_MIN_FREE_MB", "megabytes from 0 to 1048576", 512, 0, 1 << 20)?,
            allow_private_hosts: l.bool("DOWNLOAD_ALLOW_PRIVATE_HOSTS", false)?,
            allowed_hosts: l
                .string("DOWNLOAD_ALLOWED_HOSTS", &[])
                .map(|s| {
                    s.split(',')
                        .map(|h| h.trim().to_string())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            ytdlp_cookies_file: l.checked("YTDLP_COOKIES_FILE", readable_file)?.map(PathBuf::from),
            // `checked`, not `parse`: a refusal must not print the value, which may hold the proxy's password.
            download_proxy: l.checked("DOWNLOAD_PROXY", |s| {
                doradura_proto::proxy_url::ProxyUrl::parse(s)
                    .map(|_| Secret(s.to_string()))
                    .ok_or_else(|| format!("expected {}", doradura_proto::proxy_url::EXPECTED))
            })?,
            ytdlp_js_runtime: l.checked("YTDLP_JS_RUNTIME", js_runtime)?.map(PathBuf::from),
            ytdlp_extra_args: l.checked("YTDLP_EXTRA_ARGS", extra_args)?.unwrap_or_default(),
            metrics_enabled: l.bool("METRICS_ENABLED", true)?,
            metrics_port: l.int("METRICS_PORT", "a TCP port from 0 to 65535", 9090, 0, u16::MAX)?,
            metrics_bind: l.parse(
                "METRICS_BIND",
                &[],
                "an IP address such as 127.0.0.1 or ::1",
                || IpAddr::from([127, 0, 0, 1]),
                |s| s.parse().ok(),
            )?,
            metrics_auth_token: l.string("METRICS_AUTH_TOKEN", &[]).map(Secret),
            alerts_enabled: l.bool("ALERTS_ENABLED", true)?,
            alert_check_interval: l.seconds("ALERT_CHECK_INTERVAL", "whole seconds from 1 to 604800", 60, 1)?,
            alert_error_rate_threshold: l.float(
                "ALERT_ERROR_RATE_THRESHOLD",
                "a percentage from 0 to 100",
                5.0,
                100.0,
            )?,
            alert_queue_depth_threshold: l.int(
                "ALERT_QUEUE_DEPTH_THRESHOLD",
                "a whole number of tasks from 1 to 1000000",
                50,
                1,
                1_000_000,
            )?,
            alert_retry_rate_threshold: l.float(
                "ALERT_RETRY_RATE_THRESHOLD",
                "a percentage from 0 to 100",
                30.0,
                100.0,
            )?,
            alerts: AlertSettings {
                window: l.seconds("ALERT_WINDOW", "whole seconds from 1 to 604800", 900, 1)?,
                min_samples: l.int(
                    "ALERT_MIN_SAMPLES",
                    "a whole number from 1 to 1000000",
                    10,
                    1,
                    1_000_000,
                )?,
                conversion_threshold: l.float(
                    "ALERT_CONVERSION_THRESHOLD",
                    "a percentage from 0 to 100",
                    5.0,
                    100.0,
                )?,
                conversion_min_checkouts: l.int(
                    "ALERT_CONVERSION_MIN_CHECKOUTS",
                    "a whole number from 1 to 1000000",
                    20,
                    1,
                    1_000_000,
                )?,
                ytdlp_failures: l.int("ALERT_YTDLP_FAILURES", "a whole number from 1 to 1000", 3, 1, 1000)?,
                ytdlp_max_age_days: l.int(
                    "ALERT_YTDLP_MAX_AGE_DAYS",
                    "a whole number of days from 1 to 3650",
                    60,
                    1,
                    3650,
                )?,
                throttle_error_rate: l.seconds(
                    "ALERT_THROTTLE_ERROR_RATE",
                    "whole seconds from 0 to 604800",
                    1800,
                    0,
                )?,
                throttle_queue: l.seconds("ALERT_THROTTLE_QUEUE", "whole seconds from 0 to 604800", 900, 0)?,
                throttle_other: l.seconds("ALERT_THROTTLE", "whole seconds from 0 to 604800", 3600, 0)?,
            },
            analytics_cache_update_interval: l.seconds(
                "ANALYTICS_CACHE_UPDATE_INTERVAL",
                "whole seconds from 1 to 604800",
                300,
                1,
            )?,
            premium_price_stars: l.int("PREMIUM_PRICE_STARS", "Stars from 1 to 100000", 100, 1, 100_000)?,
            vip_price_stars: l.int("VIP_PRICE_STARS", "Stars from 1 to 100000", 250, 1, 100_000)?,
            log_filter: l.parse(
                "RUST_LOG",
                &[],
                "a tracing filter such as info or doradurad=debug,warn",
                || "info".to_string(),
                |s| tracing_subscriber::EnvFilter::try_new(s).ok().map(|_| s.to_string()),
            )?,
            supervision: Supervision {
                worker_path: l
                    .string("WORKER_PATH", &[])
                    .map(PathBuf::from)
                    .unwrap_or_else(default_worker_path),
                heartbeat_interval,
                heartbeat_timeout,
                hello_timeout: l.duration("WORKER_HELLO_TIMEOUT", Duration::from_secs(30))?,
                backoff_initial,
                backoff_max,
                crash_loop_threshold: l.int(
                    "WORKER_CRASH_LOOP_THRESHOLD",
                    "a whole number of consecutive failures from 1 to 1000",
                    5,
                    1,
                    1000,
                )?,
                crash_loop_cooldown: l.duration("WORKER_CRASH_LOOP_COOLDOWN", Duration::from_secs(300))?,
                stable_after: l.duration("WORKER_STABLE_AFTER", Duration::from_secs(60))?,
                shutdown_grace: l.duration("SHUTDOWN_GRACE_PERIOD", Duration::from_secs(30))?,
                ready_timeout: l.duration("READY_TIMEOUT", Duration::from_secs(60))?,
                task_deadline_grace,
                task_deadline: download_timeout + task_deadline_grace,
            },
            queue: QueuePolicy {
                max_size: l.int(
                    "QUEUE_MAX_SIZE",
                    "a whole number of tasks from 1 to 1000000",
                    1000,
                    1,
                    1_000_000,
                )?,
                max_attempts: l.int("TASK_MAX_ATTEMPTS", "a whole number from 1 to 20", 3, 1, 20)?,
                retry_backoff_ms: l.duration("TASK_RETRY_BACKOFF", Duration::from_secs(30))?.as_millis() as i64,
            },
            limits: Limits {
                free: l.plan_limits(["FREE_COOLDOWN", "FREE_DAILY_QUOTA", "FREE_MAX_ACTIVE"], (30, 10, 1))?,
                premium: l.plan_limits(
                    ["PREMIUM_COOLDOWN", "PREMIUM_DAILY_QUOTA", "PREMIUM_MAX_ACTIVE"],
                    (5, 100, 3),
                )?,
                vip: l.plan_limits(["VIP_COOLDOWN", "VIP_DAILY_QUOTA", "VIP_MAX_ACTIVE"], (0, 0, 5))?,
            },
            plan_expiry_interval: l.duration("PLAN_EXPIRY_CHECK_INTERVAL", Duration::from_secs(3600))?,
        })
    }
}

/// A duration as the variables are written: `500ms`, `30s`.
fn written(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

impl Config {
    /// Every variable with the value in force, as `doradurad --check-config` prints it (`NAME=value`, secrets as
    /// `<redacted>`), in `.env.example`'s order, so the output can be compared with or pasted into an env file.
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let secret = |s: &Option<Secret>| s.as_ref().map_or(String::new(), |_| "<redacted>".to_string());
        let path = |p: &std::path::Path| p.display().to_string();
        let secs = |d: Duration| d.as_secs().to_string();
        let (a, sv, q, l) = (&self.alerts, &self.supervision, &self.queue, &self.limits);
        let ids: Vec<String> = self.admin_ids.iter().map(|i| i.to_string()).collect();
        vec![
            ("TELOXIDE_TOKEN", secret(&self.bot_token)),
            ("TELOXIDE_API_URL", self.api_url.clone()),
            ("ADMIN_IDS", ids.join(",")),
            ("DATABASE_PATH", path(&self.database_path)),
            ("CONTROL_SOCKET", path(&self.control_socket)),
            ("WORKERS", self.workers.to_string()),
            ("YTDLP_PATH", path(&self.ytdlp_path)),
            ("DOWNLOAD_DIR", path(&self.download_dir)),
            ("DOWNLOAD_TIMEOUT", secs(self.download_timeout)),
            ("TASK_DEADLINE_GRACE", written(sv.task_deadline_grace)),
            ("MAX_FILE_SIZE_MB", self.max_file_size_mb.to_string()),
            ("DOWNLOAD_MIN_FREE_MB", self.download_min_free_mb.to_string()),
            ("DOWNLOAD_ALLOW_PRIVATE_HOSTS", self.allow_private_hosts.to_string()),
            ("DOWNLOAD_ALLOWED_HOSTS", self.allowed_hosts.join(",")),
            (
                "YTDLP_COOKIES_FILE",
                self.ytdlp_cookies_file.as_deref().map(path).unwrap_or_default(),
            ),
            (
                "DOWNLOAD_PROXY",
                // The password is redacted; the rest helps an operator see which proxy is in force.
                self.download_proxy
                    .as_ref()
                    .and_then(|p| doradura_proto::proxy_url::ProxyUrl::parse(p.expose()))
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            ),
            (
                "YTDLP_JS_RUNTIME",
                self.ytdlp_js_runtime.as_deref().map(path).unwrap_or_default(),
            ),
            (
                "YTDLP_EXTRA_ARGS",
                shlex::try_join(self.ytdlp_extra_args.iter().map(String::as_str)).unwrap_or_default(),
            ),
            ("METRICS_ENABLED", self.metrics_enabled.to_string()),
            ("METRICS_PORT", self.metrics_port.to_string()),
            ("METRICS_BIND", self.metrics_bind.to_string()),
            ("METRICS_AUTH_TOKEN", secret(&self.metrics_auth_token)),
            ("ALERTS_ENABLED", self.alerts_enabled.to_string()),
            ("ALERT_CHECK_INTERVAL", secs(self.alert_check_interval)),
            (
                "ALERT_ERROR_RATE_THRESHOLD",
                self.alert_error_rate_threshold.to_string(),
            ),
            (
                "ALERT_QUEUE_DEPTH_THRESHOLD",
                self.alert_queue_depth_threshold.to_string(),
            ),
            (
                "ALERT_RETRY_RATE_THRESHOLD",
                self.alert_retry_rate_threshold.to_string(),
            ),
            ("ALERT_WINDOW", secs(a.window)),
            ("ALERT_MIN_SAMPLES", a.min_samples.to_string()),
            ("ALERT_CONVERSION_THRESHOLD", a.conversion_threshold.to_string()),
            ("ALERT_CONVERSION_MIN_CHECKOUTS", a.conversion_min_checkouts.to_string()),
            ("ALERT_YTDLP_FAILURES", a.ytdlp_failures.to_string()),
            ("ALERT_YTDLP_MAX_AGE_DAYS", a.ytdlp_max_age_days.to_string()),
            ("ALERT_THROTTLE_ERROR_RATE", secs(a.throttle_error_rate)),
            ("ALERT_THROTTLE_QUEUE", secs(a.throttle_queue)),
            ("ALERT_THROTTLE", secs(a.throttle_other)),
            (
                "ANALYTICS_CACHE_UPDATE_INTERVAL",
                secs(self.analytics_cache_update_interval),
            ),
            ("PREMIUM_PRICE_STARS", self.premium_price_stars.to_string()),
            ("VIP_PRICE_STARS", self.vip_price_stars.to_string()),
            ("RUST_LOG", self.log_filter.clone()),
            ("WORKER_PATH", path(&sv.worker_path)),
            ("WORKER_HEARTBEAT_INTERVAL", written(sv.heartbeat_interval)),
            ("WORKER_HEARTBEAT_TIMEOUT", written(sv.heartbeat_timeout)),
            ("WORKER_HELLO_TIMEOUT", written(sv.hello_timeout)),
            ("WORKER_BACKOFF_INITIAL", written(sv.backoff_initial)),
            ("WORKER_BACKOFF_MAX", written(sv.backoff_max)),
            ("WORKER_CRASH_LOOP_THRESHOLD", sv.crash_loop_threshold.to_string()),
            ("WORKER_CRASH_LOOP_COOLDOWN", written(sv.crash_loop_cooldown)),
            ("WORKER_STABLE_AFTER", written(sv.stable_after)),
            ("SHUTDOWN_GRACE_PERIOD", written(sv.shutdown_grace)),
            ("READY_TIMEOUT", written(sv.ready_timeout)),
            ("QUEUE_MAX_SIZE", q.max_size.to_string()),
            ("TASK_MAX_ATTEMPTS", q.max_attempts.to_string()),
            (
                "TASK_RETRY_BACKOFF",
                written(Duration::from_millis(q.retry_backoff_ms.max(0) as u64)),
            ),
            ("FREE_COOLDOWN", written(l.free.cooldown)),
            ("FREE_DAILY_QUOTA", l.free.daily_quota.to_string()),
            ("PREMIUM_COOLDOWN", written(l.premium.cooldown)),
            ("PREMIUM_DAILY_QUOTA", l.premium.daily_quota.to_string()),
            ("VIP_COOLDOWN", written(l.vip.cooldown)),
            ("VIP_DAILY_QUOTA", l.vip.daily_quota.to_string()),
            ("FREE_MAX_ACTIVE", l.free.max_active.to_string()),
            ("PREMIUM_MAX_ACTIVE", l.premium.max_active.to_string()),
            ("VIP_MAX_ACTIVE", l.vip.max_active.to_string()),
            ("PLAN_EXPIRY_CHECK_INTERVAL", written(self.plan_expiry_interval)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn file(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = Config::resolve_with_file(&Flags::new(), &env(&[]), &file(&[])).unwrap();
        assert_eq!(c.workers, 2);
        assert_eq!(c.database_path, PathBuf::from("./data/doradura.db"));
        assert_eq!(c.control_socket, PathBuf::from("./data/control.sock"));
        assert_eq!(c.download_dir, PathBuf::from("./data/downloads"));
        assert_eq!(c.download_timeout, Duration::from_secs(600));
        assert_eq!(
            c.supervision.task_deadline,
            Duration::from_secs(660),
            "DOWNLOAD_TIMEOUT plus a minute"
        );
        assert_eq!(c.download_min_free_mb, 512);
        assert_eq!(c.metrics_port, 9090);
        assert_eq!(c.metrics_bind.to_string(), "127.0.0.1");
        assert_eq!(c.api_url, "https://api.telegram.org");
        assert_eq!((c.premium_price_stars, c.vip_price_stars), (100, 250));
        assert_eq!(
            (
                c.limits.free.max_active,
                c.limits.premium.max_active,
                c.limits.vip.max_active
            ),
            (1, 3, 5)
        );
        assert!(c.bot_token.is_none());
    }

    #[test]
    fn systemd_directories_move_the_defaults() {
        let e = env(&[
            ("STATE_DIRECTORY", "/var/lib/doradura"),
            ("RUNTIME_DIRECTORY", "/run/doradura:/run/other"),
            ("CACHE_DIRECTORY", "/var/cache/doradura"),
        ]);
        let c = Config::resolve_with_file(&Flags::new(), &e, &file(&[])).unwrap();
        assert_eq!(c.database_path, PathBuf::from("/var/lib/doradura/doradura.db"));
        assert_eq!(c.control_socket, PathBuf::from("/run/doradura/control.sock"));
        assert_eq!(c.download_dir, PathBuf::from("/var/cache/doradura"));
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let f = file(&[
            ("workers", "3"),
            ("ytdlp_path", "/file/yt-dlp"),
            ("metrics_port", "9100"),
        ]);
        let e = env(&[("WORKERS", "5"), ("YTDLP_PATH", "/env/yt-dlp")]);
        let mut flags = Flags::new();
        flags.insert("WORKERS", "7".into());
        let c = Config::resolve_with_file(&flags, &e, &f).unwrap();
        assert_eq!(c.workers, 7);
        assert_eq!(c.ytdlp_path, PathBuf::from("/env/yt-dlp"));
        assert_eq!(c.metrics_port, 9100);
        assert_eq!(c.download_timeout, Duration::from_secs(600));
    }

    #[test]
    fn aliases_are_honoured_and_the_token_never_prints() {
        let e = env(&[("BOT_TOKEN", "123:secret"), ("ADMIN_USER_ID", "42, 43")]);
        let c = Config::resolve_with_file(&Flags::new(), &e, &file(&[])).unwrap();
        assert_eq!(c.bot_token.as_ref().unwrap().expose(), "123:secret");
        assert_eq!(c.admin_ids, vec![42, 43]);
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn a_bad_value_names_the_variable_and_what_it_accepts() {
        for (var, value) in [
            ("WORKERS", "abc"),
            ("WORKERS", "0"),
            ("METRICS_PORT", "70000"),
            ("METRICS_BIND", "localhost:9090"),
            ("ADMIN_IDS", "12,bob"),
            ("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "maybe"),
            ("ALERT_ERROR_RATE_THRESHOLD", "150"),
            ("TELOXIDE_API_URL", "ftp://x"),
            ("WORKER_HEARTBEAT_INTERVAL", "soon"),
            ("RUST_LOG", "[[["),
            ("TASK_DEADLINE_GRACE", "later"),
            ("DOWNLOAD_MIN_FREE_MB", "-5"),
            ("FREE_MAX_ACTIVE", "-1"),
            ("VIP_MAX_ACTIVE", "many"),
        ] {
            let err = Config::resolve_with_file(&Flags::new(), &env(&[(var, value)]), &file(&[])).unwrap_err();
            assert_eq!(err.variable(), Some(var), "{err}");
            let msg = err.to_string();
            assert!(msg.contains(var) && msg.contains("expected"), "{msg}");
        }
    }

    #[test]
    fn the_task_deadline_is_the_download_timeout_plus_its_grace() {
        let e = env(&[("DOWNLOAD_TIMEOUT", "5"), ("TASK_DEADLINE_GRACE", "1500ms")]);
        let c = Config::resolve_with_file(&Flags::new(), &e, &file(&[])).unwrap();
        assert_eq!(c.supervision.task_deadline, Duration::from_millis(6500));
        let shown = c.effective();
        assert!(
            shown.contains(&("TASK_DEADLINE_GRACE", "1500ms".to_string())),
            "{shown:?}"
        );
    }

    #[test]
    fn a_bad_value_in_the_file_says_so() {
        let err = Config::resolve_with_file(&Flags::new(), &env(&[]), &file(&[("workers", "-1")])).unwrap_err();
        assert!(err.to_string().contains("WORKERS=\"-1\" (from config file)"), "{err}");
    }

    #[test]
    fn the_file_rejects_unknown_keys_and_takes_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.toml");
        std::fs::write(&p, "workers = 4\nadmin_ids = [1, 2]\n").unwrap();
        let f = read_file(&p).unwrap();
        assert_eq!(f["workers"], "4");
        assert_eq!(f["admin_ids"], "1,2");
        std::fs::write(&p, "wrokers = 4\n").unwrap();
        let err = read_file(&p).unwrap_err();
        assert!(err.to_string().contains("\"wrokers\""), "{err}");
    }

    #[test]
    fn yt_dlp_defaults_to_the_updaters_virtualenv_when_it_holds_one() {
        assert_eq!(
            default_ytdlp_path(|p| p == Path::new("/var/lib/doradura/yt-dlp/current/bin/yt-dlp")),
            PathBuf::from("/var/lib/doradura/yt-dlp/current/bin/yt-dlp")
        );
        assert_eq!(default_ytdlp_path(|_| false), PathBuf::from("yt-dlp"));
        // A value given wins, and the age limit has its default and bounds.
        let c = Config::resolve_with_file(&Flags::new(), &env(&[("YTDLP_PATH", "/opt/yt-dlp")]), &file(&[])).unwrap();
        assert_eq!(c.ytdlp_path, PathBuf::from("/opt/yt-dlp"));
        assert_eq!(c.alerts.ytdlp_max_age_days, 60);
        let e = env(&[("ALERT_YTDLP_MAX_AGE_DAYS", "0")]);
        let err = Config::resolve_with_file(&Flags::new(), &e, &file(&[])).unwrap_err();
        assert!(err.to_string().contains("ALERT_YTDLP_MAX_AGE_DAYS"), "{err}");
        let e = env(&[("ALERT_YTDLP_MAX_AGE_DAYS", "30")]);
        let c = Config::resolve_with_file(&Flags::new(), &e, &file(&[])).unwrap();
        assert_eq!(c.alerts.ytdlp_max_age_days, 30);
    }

    #[test]
    fn env_example_documents_every_setting_and_resolves() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.env.example");
        let text = std::fs::read_to_string(path).unwrap();
        for key in FILE_KEYS {
            let var = key.to_ascii_uppercase();
            assert!(
                text.contains(&format!("{var}=")) || text.contains(&format!("alias: {var}")),
                "{var} is undocumented"
            );
        }
        let vars: HashMap<String, String> = dotenvy::from_path_iter(path).unwrap().map(Result::unwrap).collect();
        let c = Config::resolve_with_file(&Flags::new(), &vars, &file(&[])).unwrap();
        assert_eq!(c.workers, 2);
        assert_eq!(c.supervision.heartbeat_timeout, Duration::from_secs(15));
    }

    #[test]
    fn access_settings_parse_and_the_proxy_password_never_prints() {
        let e = env(&[
            ("DOWNLOAD_PROXY", "http://u:hunter2@proxy.example:3128"),
            ("YTDLP_EXTRA_ARGS", "--impersonate chrome -S 'res:720,codec:h264'"),
        ]);
        let c = Config::resolve_with_file(&Flags::new(), &e, &file(&[])).unwrap();
        assert_eq!(
            c.ytdlp_extra_args,
            ["--impersonate", "chrome", "-S", "res:720,codec:h264"]
        );
        assert_eq!(
            c.download_proxy.as_ref().unwrap().expose(),
            "http://u:hunter2@proxy.example:3128"
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        let shown: HashMap<&str, String> = c.effective().into_iter().collect();
        assert_eq!(shown["DOWNLOAD_PROXY"], "http://u:<redacted>@proxy.example:3128");
        assert_eq!(
            shown["YTDLP_EXTRA_ARGS"],
            "--impersonate chrome -S 'res:720,codec:h264'"
        );
        // A proxy URL that does not parse is refused without echoing it: it may hold a password.
        let bad_proxy = Config::resolve_with_file(
            &Flags::new(),
            &env(&[("DOWNLOAD_PROXY", "http://u:p#ss@proxy.example:1/x")]),
            &file(&[]),
        )
        .unwrap_err();
        assert_eq!(bad_proxy.variable(), Some("DOWNLOAD_PROXY"));
        assert!(!bad_proxy.to_string().contains("p#ss"), "{bad_proxy}");
        let refused = Config::resolve_with_file(&Flags::new(), &env(&[("YTDLP_EXTRA_ARGS", "-o /etc/x")]), &file(&[]))
            .unwrap_err();
        assert_eq!(refused.variable(), Some("YTDLP_EXTRA_ARGS"));
        assert!(
            refused.to_string().contains("-o is not an allowed yt-dlp option"),
            "{refused}"
        );
        let unbalanced =
            Config::resolve_with_file(&Flags::new(), &env(&[("YTDLP_EXTRA_ARGS", "--referer 'x")]), &file(&[]))
                .unwrap_err();
        assert!(unbalanced.to_string().contains("unbalanced quotes"), "{unbalanced}");
    }

    #[test]
    fn heartbeat_timeout_must_exceed_interval() {
        let e = env(&[("WORKER_HEARTBEAT_INTERVAL", "2s"), ("WORKER_HEARTBEAT_TIMEOUT", "1s")]);
        let err = Config::resolve_with_file(&Flags::new(), &e, &file(&[])).unwrap_err();
        assert_eq!(err.variable(), Some("WORKER_HEARTBEAT_TIMEOUT"));
    }
}
