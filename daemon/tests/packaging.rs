//! What an operator installs: the Debian package's contents and scripts, the manual pages and doradurctl's shell
//! completions (kept in `man/` and `completions/`, regenerated from the binaries themselves), the docs, the
//! changelog, and binaries stripped with their debug symbols in the -dbgsym package.

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

#[test]
fn the_completions_in_the_repository_are_doradurctls_own() {
    for (file, shell) in [
        ("doradurctl.bash", "bash"),
        ("_doradurctl", "zsh"),
        ("doradurctl.fish", "fish"),
    ] {
        let generated = output(Command::new(bin("doradurctl")).args(["completions", shell]));
        let kept = std::fs::read_to_string(root().join("completions").join(file)).unwrap();
        assert!(
            kept == generated,
            "completions/{file} is stale: regenerate it with `doradurctl completions {shell} > completions/{file}`"
        );
    }
}

/// `cargo deb` packs the binaries this test run was built with (`.ci/run` installs cargo-deb; a release package is
/// `cargo build --release --workspace && cargo deb -p doradurad --no-build`, which also writes the -dbgsym .ddeb).
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
                // The release package compresses the symbols in its -dbgsym package; the test's debug build would
                // spend 15 s of this test on that.
                "--no-compress-debug-symbols",
                "--output",
            ])
            .arg(out.path())
            .current_dir(root()),
    );
    let written = |ext: &str| {
        let path = made
            .lines()
            .map(str::trim)
            .find(|l| l.ends_with(ext))
            .unwrap_or_else(|| panic!("no {ext} in:\n{made}"));
        let path = PathBuf::from(path);
        assert!(path.starts_with(out.path()), "{made}");
        path
    };
    let (deb, ddeb) = (written(".deb"), written(".ddeb"));
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
        ("usr/lib/systemd/system/doradura-ytdlp-update.service", "-rw-r--r--"),
        ("usr/lib/systemd/system/doradura-ytdlp-update.timer", "-rw-r--r--"),
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
    the_package_is_complete(&deb, &ddeb, &contents);
}

/// The telegram-bot-api unit that docs/operations.md tells the operator to write passes `systemd-analyze verify`
/// (with a stub in place of the server's binary).
#[test]
fn the_runbooks_local_bot_api_unit_verifies() {
    let runbook = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let section = &runbook[runbook
        .find("\n## Files over 50 MB")
        .expect("the local Bot API section")..];
    let block = &section[section.find("```ini\n").expect("the unit") + 7..];
    let unit: String = block[..block.find("```").unwrap()]
        .lines()
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/telegram-bot-api --local "),
        "{unit}"
    );
    let dir = tempfile::tempdir().unwrap();
    let stub = dir.path().join("telegram-bot-api");
    doradura_testkit::script(&stub, "exit 0");
    let path = dir.path().join("telegram-bot-api.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/telegram-bot-api", stub.to_str().unwrap()),
    )
    .unwrap();
    doradura_testkit::verify_units(&[&path], "telegram-bot-api.service");
}

/// Every variable `.env.example` documents, commented-out ones (`# WORKER_PATH=...`) too, read independently of the
/// daemon's own parser.
fn documented_variables() -> Vec<String> {
    let example = std::fs::read_to_string(root().join(".env.example")).unwrap();
    example
        .lines()
        .filter_map(|l| {
            let (name, _) = l.trim_start_matches(['#', ' ']).split_once('=')?;
            let mut c = name.chars();
            (c.next()?.is_ascii_uppercase() && c.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .then(|| name.to_string())
        })
        .collect()
}

/// The section `.SH title` of a roff page, up to the next `.SH`.
fn section<'a>(page: &'a str, title: &str) -> &'a str {
    let head = format!("\n.SH {title}\n");
    let start = page.find(&head).unwrap_or_else(|| panic!("no {head:?} section"));
    let body = &page[start + head.len()..];
    &body[..body.find("\n.SH ").unwrap_or(body.len())]
}

fn gunzip(path: &Path) -> String {
    output(Command::new("gzip").arg("-dc").arg(path))
}

/// Issue 15's "complete package": docs, completions, manual pages with their sections and every variable, the
/// changelog, `Recommends: sqlite3`, and binaries stripped with their symbols in the -dbgsym package by build id.
fn the_package_is_complete(deb: &Path, ddeb: &Path, contents: &str) {
    let has = |path: &str| {
        contents
            .lines()
            .any(|l| l.ends_with(&format!(" ./{path}")) && l.starts_with("-rw-r--r--"))
    };
    for path in [
        "usr/share/doc/doradura/README.md",
        "usr/share/doc/doradura/DESIGN.md",
        "usr/share/doc/doradura/operations.md",
        "usr/share/doc/doradura/reliability.md",
        "usr/share/doc/doradura/changelog.Debian.gz",
        "usr/share/doc/doradura/copyright",
        "usr/share/bash-completion/completions/doradurctl",
        "usr/share/zsh/vendor-completions/_doradurctl",
        "usr/share/fish/vendor_completions.d/doradurctl.fish",
        "usr/share/man/man8/doradura-worker.8.gz",
    ] {
        assert!(has(path), "{path} (mode 644) in\n{contents}");
    }
    let fs = tempfile::tempdir().unwrap();
    output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(fs.path()));
    let installed = |path: &str| fs.path().join(path);

    // The docs and completions are the repository's files.
    for (path, source) in [
        ("usr/share/doc/doradura/operations.md", "docs/operations.md"),
        ("usr/share/doc/doradura/reliability.md", "docs/reliability.md"),
        (
            "usr/share/bash-completion/completions/doradurctl",
            "completions/doradurctl.bash",
        ),
        (
            "usr/share/zsh/vendor-completions/_doradurctl",
            "completions/_doradurctl",
        ),
        (
            "usr/share/fish/vendor_completions.d/doradurctl.fish",
            "completions/doradurctl.fish",
        ),
    ] {
        let (a, b) = (
            std::fs::read(installed(path)).unwrap(),
            std::fs::read(root().join(source)).unwrap(),
        );
        assert!(a == b, "{path} differs from {source}");
    }
    let bash = std::fs::read_to_string(installed("usr/share/bash-completion/completions/doradurctl")).unwrap();
    assert!(
        bash.contains("complete -F _doradurctl") && bash.contains("doradurctl"),
        "bash completion"
    );
    let fish = std::fs::read_to_string(installed("usr/share/fish/vendor_completions.d/doradurctl.fish")).unwrap();
    assert!(fish.contains("complete -c doradurctl"), "fish completion");

    // Manual pages: the four sections in each, and every documented variable in doradurad(8)'s ENVIRONMENT.
    for page in [
        "man8/doradurad.8.gz",
        "man8/doradura-worker.8.gz",
        "man1/doradurctl.1.gz",
    ] {
        let text = gunzip(&installed(&format!("usr/share/man/{page}")));
        for title in ["ENVIRONMENT", "FILES", "\"EXIT STATUS\"", "SIGNALS"] {
            assert!(!section(&text, title).trim().is_empty(), "{page}: empty {title}");
        }
    }
    let daemon = gunzip(&installed("usr/share/man/man8/doradurad.8.gz"));
    let environment = section(&daemon, "ENVIRONMENT");
    let variables = documented_variables();
    assert!(
        variables.len() >= 60 && variables.iter().any(|v| v == "WORKER_PATH"),
        "{variables:?}"
    );
    for name in &variables {
        assert!(
            environment.contains(&format!("\\fB{name}\\fR")),
            "doradurad(8) ENVIRONMENT lacks {name}: regenerate man/doradurad.8 with `doradurad --man`"
        );
    }

    // The changelog: Debian's format, its newest entry the package's version.
    let fields = output(
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .args(["Version", "Recommends"]),
    );
    let version = fields
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .expect("Version");
    let changelog = gunzip(&installed("usr/share/doc/doradura/changelog.Debian.gz"));
    assert!(
        changelog.starts_with(&format!("doradura ({version}) ")),
        "{}",
        changelog.lines().next().unwrap_or_default()
    );
    assert!(
        changelog.lines().any(|l| l.starts_with(" -- ") && l.contains(">  ")),
        "a trailer line"
    );
    let recommends = fields
        .lines()
        .find_map(|l| l.strip_prefix("Recommends: "))
        .expect("Recommends");
    assert!(recommends.split(", ").any(|r| r == "sqlite3"), "{recommends}");

    // Stripped binaries; each one's symbols in the -dbgsym package under its build id.
    let debug = output(Command::new("dpkg-deb").arg("-c").arg(ddeb));
    let dbgsym = output(
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(ddeb)
            .args(["Package", "Version"]),
    );
    assert_eq!(dbgsym, format!("Package: doradura-dbgsym\nVersion: {version}\n"));
    for binary in ["doradurad", "doradura-worker", "doradurctl"] {
        let path = installed(&format!("usr/bin/{binary}"));
        let sections = output(Command::new("readelf").args(["-S", "--wide"]).arg(&path));
        for stripped in [".symtab", ".debug_info", ".debug_line"] {
            assert!(
                !sections.contains(&format!(" {stripped} ")),
                "{binary} still has {stripped}"
            );
        }
        let notes = output(Command::new("readelf").arg("-n").arg(&path));
        let id = notes
            .lines()
            .find_map(|l| l.trim().strip_prefix("Build ID: "))
            .unwrap_or_else(|| panic!("{binary} has no build id"));
        let file = format!("./usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]);
        assert!(
            debug.lines().any(|l| l.ends_with(&file)),
            "{binary}: {file} not in\n{debug}"
        );
    }
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

#[test]
fn check_config_reads_the_env_file_over_the_environment_as_the_service_does() {
    let t = std::time::Duration::from_secs(30);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doradura.env");
    std::fs::write(
        &file,
        "# as /etc/doradura/doradura.env\nTELOXIDE_TOKEN=123456:SECRET-FROM-THE-FILE\nMETRICS_PORT=9464\n\
         ALERT_WINDOW=120\nFREE_COOLDOWN=\"45s\"\n",
    )
    .unwrap();
    let out = doradura_testkit::Daemon::builder()
        .env("ALERT_WINDOW", "300")
        .env("ALERT_MIN_SAMPLES", "7")
        .run_to_exit(&["--check-config", "--env-file", file.to_str().unwrap()], t);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // The file's values, a quoted one too; the file wins where both set a variable, as the service's --env-file
    // does over what EnvironmentFile= put in its environment (so that a reload applies the file's edits), and as
    // systemd's EnvironmentFile= does over Environment=. What only the environment sets still counts.
    for line in [
        "METRICS_PORT=9464",
        "FREE_COOLDOWN=45s",
        "ALERT_WINDOW=120",
        "ALERT_MIN_SAMPLES=7",
        "TELOXIDE_TOKEN=<redacted>",
    ] {
        assert!(lines.contains(&line), "{line} not in:\n{text}");
    }
    assert!(!text.contains("SECRET-FROM-THE-FILE"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "environment file {} (it wins over the environment)",
            file.display()
        )),
        "{err}"
    );

    // A bad value in the file stops it like one in the environment; so does a file that is not there.
    std::fs::write(&file, "ALERT_THROTTLE=soon\n").unwrap();
    let bad =
        doradura_testkit::Daemon::builder().run_to_exit(&["--check-config", "--env-file", file.to_str().unwrap()], t);
    assert_eq!(bad.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ALERT_THROTTLE=\"soon\""));
    let missing = dir.path().join("missing.env");
    let gone = doradura_testkit::Daemon::builder()
        .run_to_exit(&["--check-config", "--env-file", missing.to_str().unwrap()], t);
    assert_eq!(gone.status.code(), Some(78));
    let err = String::from_utf8_lossy(&gone.stderr);
    assert!(
        err.contains(&format!("cannot read the environment file {}", missing.display())),
        "{err}"
    );

    // The packaged file itself (.env.example, installed as /etc/doradura/doradura.env) resolves, with its port.
    let packaged = doradura_testkit::Daemon::builder().run_to_exit(
        &[
            "--check-config",
            "--env-file",
            root().join(".env.example").to_str().unwrap(),
        ],
        t,
    );
    assert!(
        packaged.status.success(),
        "{}",
        String::from_utf8_lossy(&packaged.stderr)
    );
    assert!(
        String::from_utf8_lossy(&packaged.stdout)
            .lines()
            .any(|l| l == "METRICS_PORT=9464")
    );
}
