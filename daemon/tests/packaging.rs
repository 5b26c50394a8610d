//! What an operator installs: the Debian package's contents and scripts, the manual pages (kept in `man/` and
//! regenerated from the binaries' own flags), and doradurctl's shell completions.

use std::path::{Path, PathBuf};
use std::process::Command;

use doradura_testkit::bin;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_manual_pages_in_the_repository_are_the_binaries_own() {
    for (page, binary, args) in [
        ("doradurad.8", "doradurad", &["--man"][..]),
        ("doradura-worker.8", "doradura-worker", &["--man"][..]),
        ("doradurctl.1", "doradurctl", &["man"][..]),
    ] {
        let generated = output(Command::new(bin(binary)).args(args));
        assert!(generated.starts_with(".ie \\n(.g .ds Aq"), "{binary}: roff");
        let kept = std::fs::read_to_string(root().join("man").join(page)).unwrap();
        assert_eq!(
            kept, generated,
            "man/{page} is stale: regenerate it with `{binary} {}`",
            args[0]
        );
    }
}

#[test]
fn completions_cover_every_subcommand() {
    let bash = output(Command::new(bin("doradurctl")).args(["completions", "bash"]));
    for sub in ["status", "download", "queue", "cancel", "metrics", "alerts", "silence"] {
        assert!(bash.contains(sub), "bash completions lack {sub}");
    }
    let zsh = output(Command::new(bin("doradurctl")).args(["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef doradurctl"));
    let bad = Command::new(bin("doradurctl"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid value 'tcsh'"));
}

/// `cargo deb` packs the binaries this test run was built with (`.ci/run` installs cargo-deb; a release package is
/// `cargo build --release --workspace && cargo deb -p doradurad --no-build`).
#[test]
fn the_debian_package_installs_everything_an_operator_needs() {
    let out = tempfile::tempdir().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let made = output(
        Command::new(cargo)
            .args([
                "deb",
                "-p",
                "doradurad",
                "--no-build",
                "--profile",
                "dev",
                "--fast",
                "--output",
            ])
            .arg(out.path())
            .current_dir(root()),
    );
    let deb = PathBuf::from(made.lines().last().expect("the package's path").trim());
    assert!(deb.starts_with(out.path()), "{made}");
    let contents = output(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let entry = |path: &str| {
        contents
            .lines()
            .find(|l| l.ends_with(&format!(" ./{path}")))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
    };
    for (path, mode) in [
        ("usr/bin/doradurad", "-rwxr-xr-x"),
        ("usr/bin/doradura-worker", "-rwxr-xr-x"),
        ("usr/bin/doradurctl", "-rwxr-xr-x"),
        ("usr/lib/systemd/system/doradura.service", "-rw-r--r--"),
        ("usr/lib/sysusers.d/doradura.conf", "-rw-r--r--"),
        ("usr/lib/tmpfiles.d/doradura.conf", "-rw-r--r--"),
        ("etc/doradura/doradura.env", "-rw-r-----"),
        ("usr/share/doradura/migrations/V1__core.sql", "-rw-r--r--"),
        ("usr/share/doradura/deploy/prometheus/alerts.yml", "-rw-r--r--"),
        (
            "usr/share/doradura/deploy/grafana/dashboards/system-health.json",
            "-rw-r--r--",
        ),
        ("usr/share/man/man8/doradurad.8.gz", "-rw-r--r--"),
        ("usr/share/man/man1/doradurctl.1.gz", "-rw-r--r--"),
    ] {
        assert_eq!(entry(path).as_deref(), Some(mode), "{path} in\n{contents}");
    }
    // Every migration the daemon embeds is shipped.
    for m in std::fs::read_dir(root().join("migrations")).unwrap() {
        let name = m.unwrap().file_name().into_string().unwrap();
        assert!(
            entry(&format!("usr/share/doradura/migrations/{name}")).is_some(),
            "{name}"
        );
    }
    let fields = output(
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .args(["Package", "Depends"]),
    );
    assert!(fields.contains("Package: doradura\n"), "{fields}");
    assert!(fields.contains("ffmpeg") && fields.contains("systemd"), "{fields}");
    let control = tempfile::tempdir().unwrap();
    output(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(control.path()));
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert_eq!(
        conffiles.trim(),
        "/etc/doradura/doradura.env",
        "the env file survives upgrades"
    );
    let postinst = std::fs::read_to_string(control.path().join("postinst")).unwrap();
    let sysusers = postinst.find("systemd-sysusers").expect("the user is created");
    let chown = postinst
        .find("chown root:doradura /etc/doradura/doradura.env")
        .expect("the env file's group");
    assert!(sysusers < chown, "the group exists before the env file is given to it");
}

#[test]
fn check_config_prints_the_effective_configuration_without_secrets_and_refuses_bad_values() {
    let t = std::time::Duration::from_secs(30);
    let out = doradura_testkit::Daemon::builder()
        .env("TELOXIDE_TOKEN", "123456:VERY-SECRET-TOKEN")
        .env("METRICS_AUTH_TOKEN", "scrape-secret")
        .env("ALERT_WINDOW", "120")
        .run_to_exit(&["--check-config"], t);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"ALERT_WINDOW=120"), "{text}");
    assert!(lines.contains(&"TELOXIDE_TOKEN=<redacted>") && lines.contains(&"METRICS_AUTH_TOKEN=<redacted>"));
    assert!(
        lines.contains(&"WORKERS=2") && lines.contains(&"FREE_COOLDOWN=30s"),
        "defaults shown: {text}"
    );
    // The same variables, in the same order, as .env.example documents.
    let example = std::fs::read_to_string(root().join(".env.example")).unwrap();
    let documented: Vec<&str> = example
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .filter(|n| !n.starts_with('#'))
        .collect();
    let printed: Vec<&str> = lines.iter().filter_map(|l| l.split_once('=').map(|(n, _)| n)).collect();
    let without_worker_path: Vec<&str> = printed.iter().copied().filter(|n| *n != "WORKER_PATH").collect();
    assert_eq!(without_worker_path, documented);
    assert!(
        !text.contains("VERY-SECRET") && !text.contains("scrape-secret"),
        "{text}"
    );
    let bad = doradura_testkit::Daemon::builder()
        .env("ALERT_THROTTLE", "soon")
        .run_to_exit(&["--check-config"], t);
    assert_eq!(bad.status.code(), Some(78));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("ALERT_THROTTLE=\"soon\""), "{err}");
}
