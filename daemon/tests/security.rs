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
    assert_eq!(count("SELECT COUNT(*) FROM download_tasks"), 0, "nothing was queued");
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
