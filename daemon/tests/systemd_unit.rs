//! The systemd unit passes `systemd-analyze verify` with the real binary in place of /usr/bin/doradurad.

use std::process::Command;

#[test]
fn the_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/doradura.service")).unwrap();
    assert!(unit.contains("\nType=notify\n"));
    assert!(unit.contains("\nExecStart=/usr/bin/doradurad\n"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doradura.service");
    let daemon = doradura_testkit::bin("doradurad");
    std::fs::write(&path, unit.replace("/usr/bin/doradurad", daemon.to_str().unwrap())).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed (.ci/run installs systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed:\n{stderr}");
    let own: Vec<&str> = stderr.lines().filter(|l| l.contains("doradura.service")).collect();
    assert!(own.is_empty(), "warnings about the unit:\n{}", own.join("\n"));
}
