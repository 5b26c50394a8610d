//! doradurad(8): clap's flags plus EXIT STATUS, SIGNALS, ENVIRONMENT, FILES and SEE ALSO. The ENVIRONMENT list is
//! generated from `.env.example` (compiled in), so every variable it documents is in the page with its comment and
//! the value the package ships; `man/doradurad.8` is this output, and a test fails when it is stale.

use doradura_proto::manpage::{Item, Section};

/// `.env.example`, which the package also installs as `/etc/doradura/doradura.env`.
pub const ENV_EXAMPLE: &str = include_str!("../../.env.example");

/// A variable line of `.env.example`: `NAME=value`, or `# NAME=value` for one shown commented out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub value: String,
    pub commented_out: bool,
}

/// `.env.example` in the order it is written: comment-only paragraphs, and runs of variables with the comment
/// written right above them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Documented {
    Para(String),
    Vars { vars: Vec<Variable>, text: String },
}

fn variable(line: &str) -> Option<Variable> {
    let (commented_out, rest) = match line.strip_prefix('#') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, line),
    };
    let (name, value) = rest.split_once('=')?;
    let mut chars = name.chars();
    let is_name = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    is_name.then(|| Variable {
        name: name.to_string(),
        value: value.trim().to_string(),
        commented_out,
    })
}

/// Parses an env file written like `.env.example`.
pub fn documented(text: &str) -> Vec<Documented> {
    let mut out = Vec::new();
    let mut comments: Vec<&str> = Vec::new();
    let mut run: Option<(Vec<Variable>, String)> = None;
    for line in text.lines().map(str::trim).chain([""]) {
        if line.is_empty() {
            if let Some((vars, text)) = run.take() {
                out.push(Documented::Vars { vars, text });
            }
            if !comments.is_empty() {
                out.push(Documented::Para(comments.join(" ")));
                comments.clear();
            }
        } else if let Some(var) = variable(line) {
            match &mut run {
                Some((vars, _)) => vars.push(var),
                None => {
                    run = Some((vec![var], comments.join(" ")));
                    comments.clear();
                }
            }
        } else {
            if let Some((vars, text)) = run.take() {
                out.push(Documented::Vars { vars, text });
            }
            comments.push(line.trim_start_matches('#').trim());
        }
    }
    out
}

fn para(text: &str) -> Item {
    Item::Para(text.to_string())
}

fn entry(term: &str, text: &str) -> Item {
    Item::entry(term, text)
}

fn environment() -> Section {
    let mut items = vec![para(
        "Every setting is an environment variable. Under systemd the variables come from \
         /etc/doradura/doradura.env, which doradura.service names twice: EnvironmentFile= puts it in the \
         process environment at start, and ExecStart= passes it with --env-file, so that doradurad reads it \
         itself, at start and on every SIGHUP. Precedence: a command-line flag, then the file given with \
         --env-file (--check-config reads the packaged one by default), then the process environment, then \
         ./.env in the working directory, then the config file (--config), then the default. An invalid value \
         stops start-up with exit status 78 and a message naming the variable and what it accepts; doradurad \
         --check-config prints the value of every variable in force, secrets redacted.",
    )];
    items.push(para(
        "The list below is the package's /etc/doradura/doradura.env (the project's .env.example), with its \
         comments. A value after = is what that file sets, the default unless noted; a variable shown without \
         one is unset there and takes the default its text gives. Durations are written 500ms, 30s, 5m, 1h.",
    ));
    for block in documented(ENV_EXAMPLE) {
        match block {
            Documented::Para(text) => items.push(Item::Para(text)),
            Documented::Vars { vars, text } => {
                let terms = vars
                    .into_iter()
                    .map(|v| {
                        let rest = match (v.commented_out, v.value.is_empty()) {
                            (true, _) => format!(" (commented out; for example {})", v.value),
                            (false, true) => String::new(),
                            (false, false) => format!("={}", v.value),
                        };
                        (v.name, rest)
                    })
                    .collect();
                items.push(Item::Entry { terms, text });
            }
        }
    }
    items.push(Item::Sub("Read from systemd and the system".into()));
    items.extend([
        entry(
            "STATE_DIRECTORY, RUNTIME_DIRECTORY, CACHE_DIRECTORY",
            "Set by systemd from StateDirectory=, RuntimeDirectory= and CacheDirectory=. Their first path is \
             where DATABASE_PATH, CONTROL_SOCKET and DOWNLOAD_DIR default to (./data otherwise).",
        ),
        entry(
            "NOTIFY_SOCKET, WATCHDOG_USEC",
            "Set by systemd for Type=notify: doradurad reports READY=1, STATUS= lines and STOPPING=1, and pings \
             the watchdog (WatchdogSec=).",
        ),
        entry(
            "JOURNAL_STREAM",
            "Set by systemd when standard error goes to the journal: doradurad then logs to journald (when its \
             socket exists) instead of plain lines on standard error.",
        ),
        entry(
            "HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY",
            "Read by the bot's HTTP client (reqwest) from the process environment at start: Telegram is reached \
             through the http:// or https:// proxy they name (HTTPS_PROXY for https:// Bot API URLs, HTTP_PROXY \
             for http:// ones, ALL_PROXY for both; lower-case names work too; NO_PROXY lists hosts reached \
             directly). SOCKS is not built in: a socks5:// value leaves the bot unable to reach Telegram. \
             Under systemd put them in /etc/doradura/doradura.env or a drop-in's Environment=; ./.env and \
             --env-file do not set them. Downloads do not use them: see DOWNLOAD_PROXY.",
        ),
        entry(
            "PATH, TMPDIR",
            "The only variables passed on to the workers (with RUST_LOG); PATH finds yt-dlp, ffmpeg and \
             doradura-worker when they are given without a directory.",
        ),
    ]);
    Section::new("ENVIRONMENT", items)
}

fn sections() -> Vec<Section> {
    vec![
        Section::new(
            "EXIT STATUS",
            vec![
                entry(
                    "0",
                    "Stopped after SIGTERM or SIGINT (see SIGNALS), or --check-config or --man succeeded.",
                ),
                entry(
                    "1",
                    "Start-up or the service failed: the database could not be opened or migrated, the control \
                     socket could not be bound, the download directory could not be prepared, the metrics address \
                     is not (yet) an address of this host (the unit restarts it until the network is up). The \
                     message on \
                     standard error and in the journal says which.",
                ),
                entry("2", "The command line is wrong (an unknown flag, a missing value)."),
                entry(
                    "78",
                    "A setting is invalid (EX_CONFIG): the message names the variable, its value and what it \
                     accepts; or an --env-file cannot be read; or the metrics port is taken (the message names \
                     METRICS_BIND and METRICS_PORT, and says what to do: another program on the port, Prometheus \
                     on 9090 for one). doradura.service does not restart on it \
                     (RestartPreventExitStatus=78).",
                ),
            ],
        ),
        Section::new(
            "SIGNALS",
            vec![
                entry(
                    "SIGTERM, SIGINT",
                    "Stop gracefully: take no new work, let running downloads finish for up to \
                     SHUTDOWN_GRACE_PERIOD, leave the rest queued in the database for the next start, stop the \
                     workers, tell systemd STOPPING=1, exit 0. systemctl stop sends SIGTERM.",
                ),
                entry(
                    "SIGHUP",
                    "Reload: read the configuration again (the --env-file file, ./.env and the config file) \
                     and apply what can change at run time, the log filter (RUST_LOG) and the alert thresholds, \
                     windows and throttles. Everything else (the token, ports, paths, workers, \
                     ALERT_CHECK_INTERVAL) needs a restart. An invalid configuration is refused in the log and the \
                     running one kept. systemctl reload sends it. The process environment is the one the daemon \
                     was started with, but the re-read --env-file file wins over it: an edit to \
                     /etc/doradura/doradura.env applies although systemd's EnvironmentFile= gave the process the \
                     old value, and a line deleted from it falls back as at a restart.",
                ),
                entry(
                    "SIGKILL, a crash",
                    "Nothing queued is lost: the queue is in SQLite, and tasks that were running are queued again \
                     at the next start. Workers get SIGTERM when the supervisor dies (PR_SET_PDEATHSIG), and their \
                     yt-dlp processes die with them.",
                ),
                para(
                    "The supervisor itself sends SIGKILL to a worker's whole process group (the worker, yt-dlp, \
                     ffmpeg) when the worker stops answering, misses a task deadline, or is still running when the \
                     shutdown grace period ends.",
                ),
            ],
        ),
        environment(),
        Section::new(
            "FILES",
            vec![
                entry(
                    "/etc/doradura/doradura.env",
                    "The settings (see ENVIRONMENT), read by doradura.service at start and on systemctl \
                     reload. Mode 0640, group doradura: it holds the bot token. A conffile: upgrades keep your \
                     edits.",
                ),
                entry(
                    "/etc/doradura/doradura.toml",
                    "An optional TOML config file with lower-case variable names, read when present (or the file \
                     given with --config).",
                ),
                entry(
                    "/var/lib/doradura/doradura.db",
                    "The SQLite database (DATABASE_PATH), with doradura.db-wal and doradura.db-shm beside it: \
                     users, plans, payments, the queue and task history, alerts. Back it up with sqlite3 \
                     .backup, never cp while the daemon runs (see operations.md).",
                ),
                entry(
                    "/run/doradura/control.sock",
                    "The gRPC control socket (CONTROL_SOCKET) of the workers and doradurctl(1).",
                ),
                entry(
                    "/var/cache/doradura/",
                    "The spool (DOWNLOAD_DIR): a directory per running task, where yt-dlp also gets a private home, \
                     removed once the file is sent.",
                ),
                entry(
                    "/var/lib/doradura/yt-dlp/",
                    "The private yt-dlp that the opt-in doradura-ytdlp-update.timer keeps current; YTDLP_PATH \
                     defaults to current/bin/yt-dlp there when it exists. doradurctl ytdlp status and rollback \
                     work on it.",
                ),
                entry(
                    "/usr/lib/systemd/system/doradura.service",
                    "The hardened Type=notify unit; sysusers.d and tmpfiles.d files create the doradura user and \
                     its directories.",
                ),
                entry(
                    "/usr/share/doradura/",
                    "The SQL migrations (also compiled into doradurad, which applies them at start) and example \
                     Prometheus, Alertmanager and Grafana files under deploy/.",
                ),
                entry(
                    "/usr/share/doc/doradura/",
                    "README.md, the runbook operations.md, reliability.md, DESIGN.md and the changelog.",
                ),
            ],
        ),
        Section::new(
            "SEE ALSO",
            vec![para(
                "doradurctl(1), doradura-worker(8), yt-dlp(1), sqlite3(1), systemd.service(5), \
                 /usr/share/doc/doradura/operations.md",
            )],
        ),
    ]
}

/// doradurad(8) in roff.
pub fn render(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    doradura_proto::manpage::render(&clap_mangen::Man::new(cmd).section("8"), &sections())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_are_read_with_their_comments() {
        let text = "# header\n# more\n\n# Group.\nA=1\nB=\n# Own.\n# C=/x\n\nnot a var: X=1\nlower=1\n";
        let v = |name: &str, value: &str, commented_out| Variable {
            name: name.into(),
            value: value.into(),
            commented_out,
        };
        assert_eq!(
            documented(text),
            [
                Documented::Para("header more".into()),
                Documented::Vars {
                    vars: vec![v("A", "1", false), v("B", "", false)],
                    text: "Group.".into()
                },
                Documented::Vars {
                    vars: vec![v("C", "/x", true)],
                    text: "Own.".into()
                },
                Documented::Para("not a var: X=1 lower=1".into()),
            ]
        );
    }

    #[test]
    fn every_variable_of_env_example_is_in_the_page() {
        let page = String::from_utf8(render(<crate::cli::Cli as clap::CommandFactory>::command()).unwrap()).unwrap();
        let env = &page[page.find(".SH ENVIRONMENT").unwrap()..page.find(".SH FILES").unwrap()];
        let names: Vec<String> = documented(ENV_EXAMPLE)
            .into_iter()
            .flat_map(|d| match d {
                Documented::Vars { vars, .. } => vars.into_iter().map(|v| v.name).collect(),
                Documented::Para(_) => Vec::new(),
            })
            .collect();
        assert!(
            names.len() > 60 && names.contains(&"WORKER_PATH".to_string()),
            "{names:?}"
        );
        for name in names {
            assert!(env.contains(&format!("\\fB{name}\\fR")), "{name} missing:\n{env}");
        }
    }
}
