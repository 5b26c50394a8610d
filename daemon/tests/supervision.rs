//! The supervised process tree, through the real binaries: doradurad, doradura-worker and doradurctl.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::time::Duration;

use doradura_testkit::{Daemon, DaemonBuilder, NotifySocket, alive, comm, pgid, script, signal, wait_for};
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(20);

/// Short heartbeats and backoffs, so faults show within a second or two.
fn fast() -> DaemonBuilder {
    Daemon::builder()
        .env("WORKER_HEARTBEAT_INTERVAL", "200ms")
        .env("WORKER_HEARTBEAT_TIMEOUT", "1s")
        .env("WORKER_BACKOFF_INITIAL", "100ms")
        .env("WORKER_BACKOFF_MAX", "2s")
}

#[test]
fn status_lists_every_worker_with_a_live_pid_in_its_own_group() {
    let d = fast().env("WORKERS", "3").start();
    let workers = d.wait_idle(T);
    assert_eq!(workers.len(), 3);
    let mut pids: Vec<u32> = workers.iter().map(|w| w.pid.unwrap()).collect();
    for (i, w) in workers.iter().enumerate() {
        let pid = w.pid.unwrap();
        assert_eq!(w.id, i as u64);
        assert!(alive(pid), "worker {pid} is not running");
        assert_eq!(pgid(pid), Some(pid), "worker {pid} leads its own process group");
        assert_eq!(comm(pid).as_deref(), Some("doradura-worker"));
        assert_eq!(w.restarts, 0);
    }
    pids.dedup();
    assert_eq!(pids.len(), 3);

    let status = d.status().unwrap();
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(status["uptime_seconds"].is_u64());
    assert_eq!(status["state"], "ready");
    assert_eq!(status["pid"], d.pid());
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .unwrap()
        .count();
    assert_eq!(status["database"]["schema_version"], migrations as u64);

    let table = d.ctl(["status"]);
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    for pid in &pids {
        let row = text
            .lines()
            .find(|l| l.contains(&format!(" {pid} ")))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(row.contains("idle"), "{row}");
    }
}

#[test]
fn a_killed_worker_is_replaced_with_a_new_pid_and_one_restart() {
    let d = fast().start();
    let before = d.wait_idle(T);
    let victim = before[1].pid.unwrap();
    signal(victim, Signal::SIGKILL);
    let after = wait_for(T, "worker 1 to come back", || {
        d.workers()
            .filter(|ws| ws[1].state == "idle" && ws[1].pid.is_some_and(|p| p != victim))
    });
    assert_eq!(after[1].restarts, 1);
    assert_eq!(after[1].last_exit.as_deref(), Some("signal SIGKILL"));
    assert!(alive(after[1].pid.unwrap()));
    assert!(!alive(victim));
    // The other worker was left alone.
    assert_eq!(after[0].pid, before[0].pid);
    assert_eq!(after[0].restarts, 0);
    assert!(
        d.log().contains("reason=\"signal\"") || d.log().contains("reason=signal"),
        "{}",
        d.log()
    );
}

#[test]
fn a_worker_that_crashes_at_start_is_backed_off_then_parked() {
    let b = fast()
        .env("WORKERS", "1")
        .env("WORKER_BACKOFF_INITIAL", "300ms")
        .env("WORKER_BACKOFF_MAX", "10s")
        .env("WORKER_CRASH_LOOP_THRESHOLD", "4")
        .env("WORKER_CRASH_LOOP_COOLDOWN", "1h");
    let starts = b.dir().join("starts.log");
    let crashing = b.dir().join("crashing-worker");
    script(&crashing, &format!("date +%s.%N >> {}\nexit 3", starts.display()));
    let d = b.env("WORKER_PATH", &crashing).start();

    let w = wait_for(T, "the slot to be parked", || {
        d.workers()
            .filter(|ws| ws[0].state == "crash_loop")
            .map(|ws| ws[0].clone())
    });
    assert_eq!(w.pid, None);
    assert_eq!(w.restarts, 3);
    assert_eq!(w.last_exit.as_deref(), Some("exit 3"));

    let read_starts = || -> Vec<f64> {
        std::fs::read_to_string(&starts)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    };
    let times = read_starts();
    assert_eq!(times.len(), 4, "{times:?}");
    // Backoff doubles from 300ms with ±20% jitter: the gaps are at least 240, 480 and 960ms.
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, min) in gaps.iter().zip([0.24, 0.48, 0.96]) {
        assert!(*gap >= min, "gaps {gaps:?} are not backed off");
    }
    // Parked: no more starts.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(read_starts().len(), 4);
    let table = String::from_utf8(d.ctl(["status"]).stdout).unwrap();
    assert!(table.contains("warning: worker 0 crash-looping"), "{table}");
    assert!(d.log().contains("crash-looping"), "{}", d.log());
}

#[test]
fn a_worker_that_stops_answering_is_killed_and_replaced() {
    let d = fast().start();
    let victim = d.wait_idle(T)[0].pid.unwrap();
    signal(victim, Signal::SIGSTOP);
    let after = wait_for(T, "the silent worker to be replaced", || {
        d.workers()
            .filter(|ws| ws[0].state == "idle" && ws[0].pid.is_some_and(|p| p != victim))
    });
    assert_eq!(after[0].last_exit.as_deref(), Some("killed: heartbeat timeout"));
    assert_eq!(after[0].restarts, 1);
    wait_for(T, "the stopped worker to be gone", || (!alive(victim)).then_some(()));
}

#[test]
fn sigterm_stops_the_workers_and_exits_zero() {
    let mut d = fast().env("WORKERS", "3").start();
    let pids: Vec<u32> = d.wait_idle(T).iter().map(|w| w.pid.unwrap()).collect();
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(T);
    assert!(status.success(), "{status:?}\n{}", d.log());
    for pid in pids {
        assert!(!alive(pid), "worker {pid} outlived the daemon");
    }
    assert!(!d.socket.exists(), "the control socket was left behind");
    assert!(d.log().contains("all workers stopped"));
}

#[test]
fn readiness_waits_for_the_workers_and_stopping_is_announced() {
    let b = fast();
    let mut notify = NotifySocket::bind(b.dir());
    let mut d = b.notify(&notify).start();
    let ready = notify.wait_line("READY=1", T);
    // READY=1 comes only after every worker said hello: the first status after it shows them all idle.
    let workers = d.workers().expect("status answers once ready");
    assert!(workers.iter().all(|w| w.state == "idle"), "{workers:?}");
    assert!(
        notify.received()[ready].contains("STATUS=ready: 2/2 workers up"),
        "{:?}",
        notify.received()
    );
    assert!(
        notify.received()[..ready]
            .iter()
            .any(|m| m.contains("STATUS=starting workers"))
    );

    d.signal(Signal::SIGTERM);
    let stopping = notify.wait_line("STOPPING=1", T);
    assert!(stopping > ready);
    assert!(d.wait_exit(T).success());
}

#[test]
fn workers_exit_when_the_supervisor_dies() {
    let mut d = fast().start();
    let pids: Vec<u32> = d.wait_idle(T).iter().map(|w| w.pid.unwrap()).collect();
    d.signal(Signal::SIGKILL);
    d.wait_exit(T);
    for pid in pids {
        wait_for(T, "an orphaned worker to exit", || (!alive(pid)).then_some(()));
    }
}

#[test]
fn a_bad_configuration_value_stops_startup_naming_the_variable() {
    let out = Daemon::builder().env("WORKERS", "many").run_to_exit(&[], T);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WORKERS=\"many\"") && err.contains("expected a whole number from 1 to 64"),
        "{err}"
    );

    let b = Daemon::builder();
    let file = b.dir().join("doradura.toml");
    std::fs::write(&file, "metrics_port = \"ninety\"\n").unwrap();
    let out = b.run_to_exit(&["--config", file.to_str().unwrap()], T);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("METRICS_PORT") && err.contains("config file"), "{err}");
}

#[test]
fn the_hello_carries_the_ytdlp_version() {
    let b = fast().env("WORKERS", "1");
    let fake = b.dir().join("yt-dlp");
    script(&fake, "echo 2099.01.02");
    let d = b.env("YTDLP_PATH", &fake).start();
    d.wait_idle(T);
    assert_eq!(d.status().unwrap()["workers"][0]["ytdlp_version"], "2099.01.02");
}

#[test]
fn the_control_socket_is_0660_and_a_second_daemon_refuses_it() {
    let d = fast().start();
    d.wait_idle(T);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let out = Daemon::builder().env("CONTROL_SOCKET", &d.socket).run_to_exit(&[], T);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another doradurad is already serving"), "{err}");
    // The first one is untouched.
    assert!(d.status().is_some());
}

#[test]
fn a_stale_socket_is_replaced_at_start() {
    let b = fast();
    let path = b.dir().join("run/control.sock");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let d = b.start();
    assert_eq!(d.wait_idle(T).len(), 2);
}

fn ctl_status(socket: &std::path::Path) -> std::process::Output {
    std::process::Command::new(doradura_testkit::bin("doradurctl"))
        .arg("--socket")
        .arg(socket)
        .arg("status")
        .output()
        .unwrap()
}

#[test]
fn doradurctl_says_when_the_daemon_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("control.sock");
    let out = ctl_status(&missing);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("doradurad is not running: no control socket at"), "{err}");

    drop(std::os::unix::net::UnixListener::bind(&missing).unwrap());
    let out = ctl_status(&missing);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stale socket"));

    // A symlink to somewhere that is not a socket at all.
    let bogus = dir.path().join("bogus.sock");
    symlink("/dev/null", &bogus).unwrap();
    let out = ctl_status(&bogus);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("doradurad"));
}
