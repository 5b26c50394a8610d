//! The worker binary on its own (integration tests here also make cargo build it before the daemon's tests).

use std::process::Command;

#[test]
fn a_worker_whose_parent_is_not_the_given_supervisor_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_doradura-worker"))
        .args(["--id", "0", "--supervisor-pid", "1", "--socket"])
        .arg(dir.path().join("control.sock"))
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("supervisor is gone"));
}

#[test]
fn a_worker_that_cannot_reach_the_socket_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_doradura-worker"))
        .args([
            "--id",
            "0",
            "--supervisor-pid",
            &std::process::id().to_string(),
            "--socket",
        ])
        .arg(dir.path().join("control.sock"))
        .args(["--ytdlp-path", "/nonexistent/yt-dlp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("connecting to the supervisor") && err.contains("doradurad is not running"),
        "{err}"
    );
}
