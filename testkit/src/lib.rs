//! Test support for doradura: the real binaries started in a temp dir of their own, a systemd notify socket
//! the test owns, and polling with deadlines instead of sleeps.
//!
//! Nothing here touches the test runner's own environment: every child gets an explicit one.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub mod media;
pub mod proxy;
pub mod telegram;

/// Path of a workspace binary, next to the running test executable (`target/<profile>/`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo nextest run --workspace` (or `cargo build --workspace` first)",
        path.display()
    );
    path
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// The process group of a live process.
pub fn pgid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    // state ppid pgrp ...
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// The executable name of a live process.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Resident set size of a live process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn signal(pid: u32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), sig);
}

/// A datagram socket standing in for systemd's `NOTIFY_SOCKET`.
pub struct NotifySocket {
    pub path: PathBuf,
    sock: UnixDatagram,
    received: Vec<String>,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        NotifySocket {
            path,
            sock,
            received: Vec::new(),
        }
    }

    /// Every message received so far (each may hold several `KEY=value` lines).
    pub fn received(&self) -> &[String] {
        &self.received
    }

    /// Reads messages until one has a line equal to `line`; returns that message's index.
    pub fn wait_line(&mut self, line: &str, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        let mut checked = 0;
        loop {
            for (i, msg) in self.received.iter().enumerate().skip(checked) {
                if msg.lines().any(|l| l == line) {
                    return i;
                }
            }
            checked = self.received.len();
            assert!(
                Instant::now() < deadline,
                "no {line:?} on the notify socket within {timeout:?}; got {:?}",
                self.received
            );
            if let Ok(n) = self.sock.recv(&mut buf) {
                self.received.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }
}

/// Serves `app` on a free loopback port from a thread of its own; dropping the sender stops it.
pub fn serve(app: axum::Router) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
    });
    (addr, stop)
}

/// A plain HTTP/1.0 GET: (status code, body).
pub fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A free TCP port on loopback (bound and released; good enough for a test's own server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Live processes whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|stat| stat.rsplit_once(") ")?.1.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .filter(|p| alive(*p))
        .collect()
}

/// `systemd-analyze verify` of unit files: it must pass, with no warning about the units named `name*`.
pub fn verify_units(units: &[&Path], name: &str) {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(units)
        .output()
        .expect("systemd-analyze is installed (.ci/run installs systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed:\n{stderr}");
    let own: Vec<&str> = stderr.lines().filter(|l| l.contains(name)).collect();
    assert!(own.is_empty(), "warnings about the units:\n{}", own.join("\n"));
}

/// `systemd-analyze security --offline=yes` of a unit written as `name` in a scratch directory: its overall
/// exposure score and the report.
pub fn unit_exposure(name: &str, text: &str) -> (f64, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze is installed");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let score = report
        .lines()
        .find_map(|l| l.split(&format!("Overall exposure level for {name}: ")).nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in:\n{report}\n{}", String::from_utf8_lossy(&out.stderr)));
    (score, report)
}

/// Writes an executable shell script.
pub fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A doradurad process in a temp dir of its own.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    child: Option<Child>,
    env: HashMap<String, String>,
    args: Vec<std::ffi::OsString>,
    notify: Option<PathBuf>,
}

/// Builds the environment and starts a daemon.
pub struct DaemonBuilder {
    env: HashMap<String, String>,
    args: Vec<std::ffi::OsString>,
    notify: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Default for DaemonBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DaemonBuilder {
    pub fn new() -> DaemonBuilder {
        let dir = tempfile::Builder::new()
            .prefix("doradura-test-")
            .tempdir()
            .expect("tempdir");
        let mut env = HashMap::new();
        env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
        env.insert("RUST_LOG".into(), "info".into());
        env.insert("WORKERS".into(), "2".into());
        env.insert("METRICS_ENABLED".into(), "false".into());
        env.insert(
            "DATABASE_PATH".into(),
            dir.path().join("doradura.db").display().to_string(),
        );
        env.insert(
            "CONTROL_SOCKET".into(),
            dir.path().join("run/control.sock").display().to_string(),
        );
        env.insert(
            "DOWNLOAD_DIR".into(),
            dir.path().join("downloads").display().to_string(),
        );
        env.insert("WORKER_PATH".into(), bin("doradura-worker").display().to_string());
        // A yt-dlp that does not exist unless a test provides one.
        env.insert("YTDLP_PATH".into(), dir.path().join("no-yt-dlp").display().to_string());
        DaemonBuilder {
            env,
            args: Vec::new(),
            notify: None,
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.env
            .insert(key.into(), value.as_ref().to_string_lossy().into_owned());
        self
    }

    /// Command-line arguments for `start()` (and every `restart()`), after any given before.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Serves /metrics on a free loopback port.
    pub fn metrics_on(self) -> Self {
        self.env("METRICS_ENABLED", "true").env("METRICS_PORT", "0")
    }

    pub fn notify(mut self, socket: &NotifySocket) -> Self {
        self.notify = Some(socket.path.clone());
        self
    }

    /// Starts the daemon with stderr going to `daemon.log` in its dir.
    pub fn start(self) -> Daemon {
        let socket = PathBuf::from(&self.env["CONTROL_SOCKET"]);
        let mut d = Daemon {
            dir: self.dir,
            socket,
            child: None,
            env: self.env,
            args: self.args,
            notify: self.notify,
        };
        d.spawn();
        d
    }

    /// Runs the daemon with `args` (after those of `args()`) to completion (for start-up failures) and returns its
    /// output.
    pub fn run_to_exit(self, args: &[&str], timeout: Duration) -> Output {
        let mut child = Command::new(bin("doradurad"))
            .args(&self.args)
            .args(args)
            .env_clear()
            .envs(&self.env)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start doradurad");
        wait_for(timeout, "doradurad to exit", || child.try_wait().unwrap());
        child.wait_with_output().unwrap()
    }
}

/// One worker row of `doradurctl --json status`.
#[derive(Debug, Clone)]
pub struct WorkerRow {
    pub id: u64,
    pub pid: Option<u32>,
    pub state: String,
    pub restarts: u64,
    pub last_exit: Option<String>,
}

impl Daemon {
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::new()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let mut cmd = Command::new(bin("doradurad"));
        cmd.args(&self.args)
            .env_clear()
            .envs(&self.env)
            .current_dir(self.dir.path());
        if let Some(n) = &self.notify {
            cmd.env("NOTIFY_SOCKET", n);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start doradurad");
        self.child = Some(child);
    }

    /// Starts the daemon again on the same directory, database and socket, after it exited.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "wait_exit() first");
        self.spawn();
    }

    pub fn db_path(&self) -> PathBuf {
        PathBuf::from(&self.env["DATABASE_PATH"])
    }

    /// What is in the download spool (should be empty between downloads).
    pub fn spool_entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.env["DOWNLOAD_DIR"])
            .map(|it| it.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default()
    }

    /// Starts `doradurctl ARGS` without waiting for it.
    pub fn ctl_spawn<I, S>(&self, args: I) -> Child
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.ctl_command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run doradurctl")
    }

    /// doradurctl pointed at this daemon's socket, with an empty environment.
    fn ctl_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(bin("doradurctl"));
        cmd.env_clear().arg("--socket").arg(&self.socket).args(args);
        cmd
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Runs doradurctl against this daemon's socket.
    pub fn ctl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.ctl_command(args).output().expect("run doradurctl")
    }

    /// The address /metrics is served on (the daemon is started with METRICS_PORT=0 by `metrics_on()`).
    pub fn metrics_address(&self) -> String {
        wait_for(Duration::from_secs(30), "the metrics address", || {
            self.status()?["metrics_address"].as_str().map(str::to_string)
        })
    }

    /// `doradurctl --json status`, or `None` while the daemon does not answer.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = self.ctl(["--json", "status"]);
        if !out.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("status --json is JSON"))
    }

    pub fn workers(&self) -> Option<Vec<WorkerRow>> {
        let status = self.status()?;
        Some(
            status["workers"]
                .as_array()?
                .iter()
                .map(|w| WorkerRow {
                    id: w["id"].as_u64().unwrap(),
                    pid: w["pid"].as_u64().map(|p| p as u32),
                    state: w["state"].as_str().unwrap().to_string(),
                    restarts: w["restarts"].as_u64().unwrap(),
                    last_exit: w["last_exit"].as_str().map(str::to_string),
                })
                .collect(),
        )
    }

    /// Waits until every worker is idle, and returns them.
    pub fn wait_idle(&self, timeout: Duration) -> Vec<WorkerRow> {
        wait_for(timeout, "all workers idle", || {
            self.workers()
                .filter(|ws| !ws.is_empty() && ws.iter().all(|w| w.state == "idle" && w.pid.is_some()))
        })
    }

    pub fn signal(&self, sig: Signal) {
        signal(self.pid(), sig);
    }

    /// Waits for the daemon to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let status = wait_for(timeout, "doradurad to exit", || child.try_wait().unwrap());
        self.child = None;
        status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
