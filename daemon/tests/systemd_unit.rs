//! The systemd unit passes `systemd-analyze verify` with the real binary in place of /usr/bin/doradurad.

use std::process::Command;

#[test]
fn the_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/doradura.service")).unwrap();
    assert!(unit.contains("\nType=notify\n"));
    assert!(unit.contains("\nExecStart=/usr/bin/doradurad --env-file /etc/doradura/doradura.env\n"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doradura.service");
    let daemon = doradura_testkit::bin("doradurad");
    std::fs::write(&path, unit.replace("/usr/bin/doradurad", daemon.to_str().unwrap())).unwrap();
    doradura_testkit::verify_units(&[&path], "doradura.service");
}

fn unit_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/doradura.service")).unwrap()
}

#[test]
fn the_unit_has_what_an_operator_expects() {
    let unit = unit_text();
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30",
        "Restart=on-failure",
        "StartLimitBurst=5",
        "User=doradura",
        "StateDirectory=doradura",
        "RuntimeDirectory=doradura",
        "CacheDirectory=doradura",
        "EnvironmentFile=-/etc/doradura/doradura.env",
        "ExecReload=/bin/kill -HUP $MAINPID",
        // SIGHUP re-reads the file only when the daemon is told its name.
        "ExecStart=/usr/bin/doradurad --env-file /etc/doradura/doradura.env",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line:?}");
    }
}

#[test]
fn the_hardening_scores_an_exposure_of_at_most_2_5() {
    let (score, report) = doradura_testkit::unit_exposure("doradura.service", &unit_text());
    assert!(score <= 2.5, "exposure {score}:\n{report}");
}

/// sysusers.d creates the user and group, then tmpfiles.d the directories with their owners and modes, both
/// into a scratch root.
#[test]
fn sysusers_and_tmpfiles_create_the_user_and_its_directories() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for (dir, file) in [
        ("usr/lib/sysusers.d", "doradura.sysusers"),
        ("usr/lib/tmpfiles.d", "doradura.tmpfiles"),
    ] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
        std::fs::copy(
            format!("{}/../systemd/{file}", env!("CARGO_MANIFEST_DIR")),
            r.join(dir).join("doradura.conf"),
        )
        .unwrap();
    }
    std::fs::create_dir_all(r.join("etc")).unwrap();
    for (tool, args) in [("systemd-sysusers", &[][..]), ("systemd-tmpfiles", &["--create"][..])] {
        let out = Command::new(tool)
            .arg(format!("--root={}", r.display()))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool} is installed: {e}"));
        assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    let user = passwd.lines().find(|l| l.starts_with("doradura:")).expect("the user");
    let fields: Vec<&str> = user.split(':').collect();
    assert_eq!(fields[5..], ["/var/lib/doradura", "/usr/sbin/nologin"]);
    let uid: u32 = fields[2].parse().unwrap();
    use std::os::unix::fs::MetadataExt;
    for (path, owner, mode) in [
        ("etc/doradura", 0, 0o750),
        ("var/lib/doradura", uid, 0o750),
        ("var/cache/doradura", uid, 0o750),
    ] {
        let m = std::fs::metadata(r.join(path)).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o7777), (owner, mode), "{path}");
    }
}
