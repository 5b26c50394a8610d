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

/// Run as root against a directory the `doradura` user owns, a rollback acts as that user: a symbolic link planted
/// where it writes cannot make root write anywhere else.
#[test]
fn a_rollback_run_as_root_acts_as_the_directorys_owner_and_follows_no_planted_link() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    assert!(nix::unistd::geteuid().is_root(), "this test needs root, as CI has");
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("a nobody user");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Root's own directory, where the planted link points.
    let vault = tmp.path().join("vault");
    std::fs::create_dir(&vault).unwrap();
    std::fs::set_permissions(&vault, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = vault.join("cron-entry");
    let base = tmp.path().join("yt-dlp");
    for (name, version) in [("a", "2026.10.26"), ("b", "2026.09.01")] {
        let dir = base.join("releases").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("doradura-release"), format!("version={version}\n")).unwrap();
    }
    symlink("releases/a", base.join("current")).unwrap();
    symlink("releases/b", base.join("previous")).unwrap();
    symlink(&victim, base.join(".rejected.new")).unwrap();
    let chown = Command::new("chown")
        .args(["-hR", &format!("{}:{}", nobody.uid, nobody.gid)])
        .arg(&base)
        .status()
        .unwrap();
    assert!(chown.success());
    let out = Command::new(env!("CARGO_BIN_EXE_doradurctl"))
        .args(["ytdlp", "rollback", "--dir"])
        .arg(&base)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!victim.exists(), "root wrote through the planted link");
    assert_eq!(
        std::fs::read_link(base.join("current")).unwrap(),
        std::path::Path::new("releases/b")
    );
    use std::os::unix::fs::MetadataExt;
    let rejected = std::fs::symlink_metadata(base.join("rejected")).unwrap();
    assert!(rejected.is_file());
    assert_eq!(rejected.uid(), nobody.uid.as_raw(), "written as the directory's owner");
}
