//! Who may do what: the control socket's changing calls are refused to a foreign user even when the socket's
//! file mode would let them in, while reading calls stay open to whoever can connect.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::Duration;

use doradura_testkit::{Daemon, bin};

const T: Duration = Duration::from_secs(60);
const NOBODY: u32 = 65534;

fn ctl_as(d: &Daemon, uid: Option<u32>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("doradurctl"));
    cmd.env_clear()
        .arg("--socket")
        .arg(d.dir.path().join("run/control.sock"))
        .args(args);
    if let Some(uid) = uid {
        // From root, std drops the supplementary groups before setuid: the child is nobody in every way.
        cmd.uid(uid).gid(uid);
    }
    cmd.output().expect("run doradurctl")
}

#[test]
fn a_foreign_user_may_read_but_not_change_anything() {
    let d = Daemon::builder().start();
    d.wait_idle(T);
    let socket = d.dir.path().join("run/control.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "the first gate");
    if !nix::unistd::geteuid().is_root() {
        // Only root can become another user: here the caller is the daemon's own user, and is let in.
        let out = ctl_as(&d, None, &["cancel", "999"]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("there is no task 999"));
        return;
    }
    // Open the file gate wide, as a careless operator might: the second gate still holds.
    for (path, mode) in [
        (d.dir.path().to_path_buf(), 0o755),
        (d.dir.path().join("run"), 0o755),
        (socket.clone(), 0o666),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let status = ctl_as(&d, Some(NOBODY), &["--json", "status"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    for args in [
        &["cancel", "1"][..],
        &["download", "http://127.0.0.1:9/a.mp4", "--out", "/tmp"][..],
        &["alerts", "silence", "QueueBackup", "1h"][..],
        &["alerts", "test", "QueueBackup"][..],
    ] {
        let out = ctl_as(&d, Some(NOBODY), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(
                "needs root, the daemon's user (uid 0) or a member of its group (gid 0); uid 65534 is none of them"
            ),
            "{args:?}: {err}"
        );
    }
    let db = rusqlite::Connection::open(d.db_path()).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(tasks(&d), 0, "nothing was queued");
    assert_eq!(count("SELECT COUNT(*) FROM alert_silences"), 0, "nothing was silenced");
    assert_eq!(count("SELECT COUNT(*) FROM alert_history"), 0, "no test alert");
    // Root still may.
    let out = ctl_as(&d, None, &["alerts", "silence", "QueueBackup", "1h"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let by: String = db
        .query_row("SELECT set_by FROM alert_silences", [], |r| r.get(0))
        .unwrap();
    assert!(by.starts_with("doradurctl uid=0 pid="), "{by}");
}

/// Oversized and malformed messages on the control socket are refused, and the daemon serves the next caller.
#[test]
fn oversized_and_garbage_control_messages_are_refused_and_nothing_breaks() {
    use doradura_proto::DownloadRequest;
    use doradura_proto::control_client::ControlClient;
    use std::io::{Read, Write};

    let d = Daemon::builder().start();
    d.wait_idle(T);
    let socket = d.dir.path().join("run/control.sock");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        let channel = doradura_proto::connect_unix(&socket).await.unwrap();
        let mut client = ControlClient::new(channel).max_encoding_message_size(64 << 20);
        client
            .download(DownloadRequest {
                url: format!("https://93.184.216.34/{}", "a".repeat(8 << 20)),
                format: "mp3".into(),
                ..Default::default()
            })
            .await
            .expect_err("an 8 MiB request is refused")
    });
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    // Bytes that are not HTTP/2 at all: the connection is closed, the daemon carries on.
    let mut raw = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    raw.set_read_timeout(Some(T)).unwrap();
    let _ = raw.write_all(b"\x00\xffGET / HTTP/1.1\r\n\r\n\x16\x03\x01garbage");
    let mut buf = Vec::new();
    let _ = raw.read_to_end(&mut buf);
    // A URL over the limit through doradurctl: a sentence, nothing queued.
    let long = format!("https://93.184.216.34/{}", "a".repeat(3000));
    let out = ctl_as(&d, None, &["download", &long, "--out", "/tmp"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the link is too long (3022 characters; at most 2048)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = ctl_as(&d, None, &["--json", "status"]);
    assert!(status.status.success(), "the daemon still answers");
    assert_eq!(tasks(&d), 0);
}

/// Whether `doradura_alerts_firing` for DatabaseIssues reads `v` now.
fn database_issues_firing(d: &Daemon, v: u8) -> bool {
    doradura_testkit::http_get(&d.metrics_address(), "/metrics", &[])
        .map(|(_, m)| {
            m.contains(&format!(
                "doradura_alerts_firing{{alert_type=\"DatabaseIssues\",severity=\"critical\"}} {v}\n"
            ))
        })
        .unwrap_or(false)
}

/// Rows in the task table, read by the test itself.
fn tasks(d: &Daemon) -> i64 {
    rusqlite::Connection::open_with_flags(d.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM download_tasks", [], |r| r.get(0))
        .unwrap()
}

/// Unmounts the scratch filesystem however the test ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The database on a 4 MiB filesystem that the test fills: enqueueing fails with a clear error, DatabaseIssues
/// fires, nothing half-written is left, and freeing the space is enough to recover.
#[test]
fn a_full_disk_is_reported_and_freeing_space_recovers() {
    let b = Daemon::builder()
        .metrics_on()
        .env("ALERT_CHECK_INTERVAL", "1")
        .env("ALERT_WINDOW", "2");
    let vol = b.dir().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "doradura-test"])
        .arg(&vol)
        .status()
        .expect("mount");
    assert!(
        mounted.success(),
        "this test mounts a small tmpfs: it needs root (CI runs as root)"
    );
    let _guard = Mounted(vol.clone());
    let d = b.env("DATABASE_PATH", vol.join("doradura.db")).start();
    d.wait_idle(T);
    assert!(database_issues_firing(&d, 0));
    // Fill the filesystem to the last byte.
    let filler = vol.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.write_all(&[0]);
        let _ = f.sync_all();
    }
    let out = ctl_as(&d, None, &["download", "https://93.184.216.34/a.mp4", "--out", "/tmp"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("database error") && err.contains("full"), "{err}");
    doradura_testkit::wait_for(T, "DatabaseIssues firing", || {
        database_issues_firing(&d, 1).then_some(())
    });
    assert_eq!(tasks(&d), 0, "nothing half-written");
    // Space again: the next request is queued and the alert clears.
    std::fs::remove_file(&filler).unwrap();
    let out = ctl_as(&d, None, &["download", "https://93.184.216.34/b.mp4", "--out", "/tmp"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("database error"));
    assert_eq!(tasks(&d), 1);
    doradura_testkit::wait_for(T, "DatabaseIssues resolved", || {
        database_issues_firing(&d, 0).then_some(())
    });
    let status = ctl_as(&d, None, &["--json", "status"]);
    assert!(status.status.success());
}

/// The database's files made immutable (`chattr +i` on an ext4 image: even root's writes fail) under the running
/// daemon: requests get a clear error, DatabaseIssues fires, and making them writable again is enough.
#[test]
fn a_read_only_database_is_reported_and_making_it_writable_recovers() {
    let b = Daemon::builder()
        .metrics_on()
        .env("ALERT_CHECK_INTERVAL", "1")
        .env("ALERT_WINDOW", "2");
    let image = b.dir().join("db.img");
    let vol = b.dir().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let ok = |cmd: &mut Command| {
        let out = cmd.output().expect("run");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(Command::new("truncate").args(["-s", "16M"]).arg(&image));
    ok(Command::new("mkfs.ext4").arg("-q").arg(&image));
    ok(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&vol));
    let _guard = Mounted(vol.clone());
    let d = b.env("DATABASE_PATH", vol.join("doradura.db")).start();
    d.wait_idle(T);
    let files: Vec<_> = ["doradura.db", "doradura.db-wal"].iter().map(|f| vol.join(f)).collect();
    for f in &files {
        ok(Command::new("chattr").arg("+i").arg(f));
    }
    let out = ctl_as(&d, None, &["download", "https://93.184.216.34/a.mp4", "--out", "/tmp"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("database error"), "{err}");
    doradura_testkit::wait_for(T, "DatabaseIssues firing", || {
        database_issues_firing(&d, 1).then_some(())
    });
    for f in &files {
        ok(Command::new("chattr").arg("-i").arg(f));
    }
    let out = ctl_as(&d, None, &["download", "https://93.184.216.34/b.mp4", "--out", "/tmp"]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("database error"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    doradura_testkit::wait_for(T, "DatabaseIssues resolved", || {
        database_issues_firing(&d, 0).then_some(())
    });
    assert_eq!(
        tasks(&d),
        1,
        "the refused request left nothing; the later one was queued"
    );
}
