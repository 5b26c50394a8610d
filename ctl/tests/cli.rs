//! The CLI's surface (integration tests here also make cargo build it before the daemon's tests).

use std::process::Command;

#[test]
fn help_lists_every_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_doradurctl"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["status", "download", "queue", "cancel", "metrics"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd} missing from:\n{text}"
        );
    }
}

#[test]
fn usage_errors_exit_2_before_touching_the_socket() {
    let out = Command::new(env!("CARGO_BIN_EXE_doradurctl"))
        .args(["--socket", "/nonexistent/control.sock", "cancel", "not-a-number"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'not-a-number'"));
}
