//! The supervised process tree, through the real binaries: doradurad, doradura-worker and doradurctl.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::time::Duration;

use doradura_testkit::{Daemon, DaemonBuilder, NotifySocket, alive, children, comm, pgid, script, signal, wait_for};
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

/// `doradura_<family>{<labels>} <value>` is a line of /metrics now.
fn metric_is(d: &Daemon, line: &str) -> bool {
    doradura_testkit::http_get(&d.metrics_address(), "/metrics", &[]).is_ok_and(|(_, m)| m.lines().any(|l| l == line))
}

/// The one task row: (state, attempts, error_type).
fn task_row(d: &Daemon) -> Option<(String, u32, Option<String>)> {
    let db = rusqlite::Connection::open_with_flags(d.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    db.query_row(
        "SELECT state, attempts, error_type FROM download_tasks WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .ok()
}

/// A worker that answers every ping but never finishes its task (the fake worker, speaking the real protocol) is
/// killed with its yt-dlp at `DOWNLOAD_TIMEOUT` plus `TASK_DEADLINE_GRACE` and replaced, and the task is taken back
/// like after a crash: retried, then failed once its attempts ran out.
#[test]
fn a_task_held_past_the_supervisors_deadline_by_a_fake_worker_is_taken_back() {
    let b = fast()
        .metrics_on()
        .env("WORKERS", "1")
        .env("WORKER_PATH", doradura_testkit::bin("doradura-fake-worker"))
        .env("DOWNLOAD_TIMEOUT", "1")
        .env("TASK_DEADLINE_GRACE", "1s")
        .env("TASK_MAX_ATTEMPTS", "2")
        .env("TASK_RETRY_BACKOFF", "100ms");
    let out = b.dir().join("out");
    let d = b.start();
    let first = d.wait_idle(T)[0].pid.unwrap();
    let ctl = d.ctl_spawn([
        "download",
        "https://93.184.216.34/endless.mp4",
        "--out",
        out.to_str().unwrap(),
    ]);
    wait_for(T, "the fake worker to hold the task", || {
        let s = d.status()?;
        (s["workers"][0]["state"] == "busy" && s["workers"][0]["current_task"] == 1).then_some(())
    });
    let stand_in = wait_for(T, "the fake worker's yt-dlp", || children(first).first().copied());
    assert_eq!(pgid(stand_in), Some(stand_in), "its yt-dlp runs in a group of its own");

    // It keeps answering pings (heartbeat timeout 1s), so only the deadline (1s + 1s) ends it.
    let replaced = wait_for(T, "the holder to be killed and replaced", || {
        d.workers()
            .filter(|ws| ws[0].pid.is_some_and(|p| p != first))
            .map(|ws| ws[0].clone())
    });
    // Killed for the deadline, not for silence: the restart's reason says which.
    assert_eq!(replaced.last_exit.as_deref(), Some("killed: task deadline"));
    assert!(replaced.restarts >= 1);
    wait_for(T, "the holder and its yt-dlp to be gone", || {
        (!alive(first) && !alive(stand_in)).then_some(())
    });

    // The attempt counted: the task was retried on the new worker, which held it too, and then it failed.
    wait_for(T, "the task to fail", || {
        task_row(&d).filter(|r| r.0 == "failed").map(|_| ())
    });
    let output = ctl.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("task 1 failed (unknown): the worker running it died on every attempt"),
        "{err}"
    );
    assert_eq!(task_row(&d), Some(("failed".into(), 2, Some("unknown".into()))));
    assert_eq!(d.log().matches("holds task 1").count(), 2, "{}", d.log());
    wait_for(T, "both kills counted as task_deadline", || {
        metric_is(&d, "doradura_worker_restarts_total{reason=\"task_deadline\"} 2").then_some(())
    });
    let w = wait_for(T, "a fresh worker", || {
        d.workers().filter(|ws| ws[0].state == "idle").map(|ws| ws[0].clone())
    });
    assert_eq!(w.restarts, 2);
    assert_eq!(w.last_exit.as_deref(), Some("killed: task deadline"));
    assert!(d.spool_entries().is_empty(), "{:?}", d.spool_entries());
}

/// Unmounts a scratch filesystem however the test ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `/health` as (status code, JSON).
fn health(d: &Daemon) -> (u16, serde_json::Value) {
    let (code, body) = doradura_testkit::http_get(&d.metrics_address(), "/health", &[]).unwrap();
    (code, serde_json::from_str(&body).unwrap())
}

/// `DOWNLOAD_DIR` on a 4 MiB tmpfs, 3 MiB of it taken, while the next download needs `MAX_FILE_SIZE_MB` (1) plus
/// `DOWNLOAD_MIN_FREE_MB` (1): the download waits in the queue and nothing fails; `/health` (503), `doradurctl
/// status` and DiskSpaceLow name the spool, and the shortage is logged once. Freeing the space lets the task start,
/// and the alert resolves.
#[test]
fn a_spool_without_room_keeps_downloads_queued_and_says_so_until_there_is_room() {
    let b = fast()
        .metrics_on()
        .env("WORKERS", "1")
        .env("MAX_FILE_SIZE_MB", "1")
        .env("DOWNLOAD_MIN_FREE_MB", "1")
        .env("ALERT_CHECK_INTERVAL", "1");
    let spool = b.dir().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "doradura-test"])
        .arg(&spool)
        .status()
        .expect("mount");
    assert!(
        mounted.success(),
        "this test mounts a small tmpfs: it needs root (CI runs as root)"
    );
    let _guard = Mounted(spool.clone());
    let filler = spool.join("filler");
    std::fs::write(&filler, vec![0u8; 3 << 20]).unwrap();
    let out = b.dir().join("out");
    let d = b.env("DOWNLOAD_DIR", &spool).start();
    d.wait_idle(T);

    let (code, h) = health(&d);
    assert_eq!(code, 503, "{h}");
    assert!(h["failing"].as_array().unwrap().contains(&"spool".into()), "{h}");
    assert_eq!(h["spool"]["ok"], false);
    assert_eq!(h["spool"]["required_bytes"], 2u64 << 20);
    assert!(h["spool"]["free_bytes"].as_u64().unwrap() < 2 << 20, "{h}");
    let status = d.status().unwrap();
    assert_eq!(status["spool"]["has_room"], false, "{status}");
    let table = String::from_utf8(d.ctl(["status"]).stdout).unwrap();
    assert!(table.contains("spool: LOW ON SPACE"), "{table}");

    let ctl = d.ctl_spawn([
        "download",
        "https://93.184.216.34/waiting.mp3",
        "--format",
        "mp3",
        "--out",
        out.to_str().unwrap(),
    ]);
    wait_for(T, "the task to be queued", || task_row(&d));
    wait_for(T, "DiskSpaceLow to fire", || {
        metric_is(
            &d,
            "doradura_alerts_firing{alert_type=\"DiskSpaceLow\",severity=\"critical\"} 1",
        )
        .then_some(())
    });
    // Several dispatch rounds later it still waits, untouched.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(task_row(&d), Some(("queued".into(), 0, None)));
    assert_eq!(d.workers().unwrap()[0].state, "idle");
    assert!(metric_is(&d, "doradura_spool_required_bytes 2097152"));
    assert_eq!(d.log().matches("short of space").count(), 1, "{}", d.log());

    // Room again: the task starts (and fails, as there is no yt-dlp here), and the alert resolves.
    std::fs::remove_file(&filler).unwrap();
    let row = wait_for(T, "the task to be taken", || {
        task_row(&d).filter(|r| r.0 != "queued" || r.1 > 0)
    });
    assert!(row.1 >= 1, "{row:?}");
    let output = ctl.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("spool"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_for(T, "DiskSpaceLow to resolve", || {
        metric_is(
            &d,
            "doradura_alerts_firing{alert_type=\"DiskSpaceLow\",severity=\"critical\"} 0",
        )
        .then_some(())
    });
    assert_eq!(health(&d).1["spool"]["ok"], true);
    assert_eq!(d.status().unwrap()["spool"]["has_room"], true);
    assert!(d.log().contains("the spool has room again"), "{}", d.log());
}
