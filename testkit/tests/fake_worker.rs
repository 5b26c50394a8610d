//! The fake worker is a binary of this crate: this test makes `cargo nextest run --workspace` build it (the daemon's
//! supervision tests run it), and checks that it fails clearly when it cannot do its one job.

use std::process::Command;

#[test]
fn the_fake_worker_refuses_bad_arguments_and_a_missing_socket() {
    let exe = env!("CARGO_BIN_EXE_doradura-fake-worker");
    let usage = Command::new(exe).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage: doradura-fake-worker"));
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no.sock");
    let out = Command::new(exe)
        .args(["--id", "0", "--socket"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fake-worker: cannot connect"));
}
