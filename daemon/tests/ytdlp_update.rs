//! The yt-dlp updater (`systemd/ytdlp-update` with its units) and `doradurctl ytdlp`: run against a package index
//! this test serves on loopback, holding wheels of a tiny stand-in `yt-dlp` it builds itself, so no network is
//! needed. It proves the atomic switch, that a failed self-test changes nothing, and the rollback.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use doradura_testkit::{bin, wait_for};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Writes `yt_dlp-<version>-py3-none-any.whl` into `dir`: project `yt-dlp` with an extra `default`, and a console
/// script `yt-dlp` that answers `--version` and "downloads" a URL with urllib into `-o` (`%(ext)s` filled in), or,
/// when `broken`, fails like a yt-dlp that a site change broke.
const WHEEL_BUILDER: &str = r##"
import base64, hashlib, os, sys, zipfile
out, version, broken = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
code = f'''import sys, urllib.request
__version__ = "{version}"
BROKEN = {broken}
def main():
    args = sys.argv[1:]
    if "--version" in args:
        print(__version__)
        return 0
    if BROKEN:
        print("ERROR: [generic] Unable to extract anything: this test build is broken", file=sys.stderr)
        return 1
    template, url = args[args.index("-o") + 1], args[-1]
    with urllib.request.urlopen(url) as r, open(template.replace("%(ext)s", url.rsplit(".", 1)[-1]), "wb") as f:
        f.write(r.read())
    return 0
'''
info = f"yt_dlp-{version}.dist-info"
files = {
    "yt_dlp/__init__.py": code,
    f"{info}/METADATA": f"Metadata-Version: 2.1\nName: yt-dlp\nVersion: {version}\nSummary: doradura test stand-in\nProvides-Extra: default\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: doradura-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    f"{info}/entry_points.txt": "[console_scripts]\nyt-dlp = yt_dlp:main\n",
}
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
record = "".join(f"{name},{digest(text.encode())},{len(text.encode())}\n" for name, text in files.items())
files[f"{info}/RECORD"] = record + f"{info}/RECORD,,\n"
path = os.path.join(out, f"yt_dlp-{version}-py3-none-any.whl")
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    for name, text in files.items():
        z.writestr(name, text)
with open(path, "rb") as f:
    print(path + "#" + hashlib.sha256(f.read()).hexdigest())
"##;

/// A PEP 503 simple index at `root/<name>/simple/` offering one wheel; returns its URL path.
fn index(root: &Path, name: &str, version: &str, broken: bool) -> String {
    let dir = root.join(name);
    let project = dir.join("simple/yt-dlp");
    std::fs::create_dir_all(&project).unwrap();
    let out = Command::new("python3")
        .args(["-c", WHEEL_BUILDER])
        .arg(&dir)
        .args([version, if broken { "1" } else { "0" }])
        .output()
        .expect("python3 is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let made = String::from_utf8(out.stdout).unwrap();
    let (path, sha) = made.trim().split_once('#').unwrap();
    let file = Path::new(path).file_name().unwrap().to_str().unwrap();
    std::fs::write(
        dir.join("simple/index.html"),
        "<!DOCTYPE html><html><body><a href=\"yt-dlp/\">yt-dlp</a></body></html>\n",
    )
    .unwrap();
    std::fs::write(
        project.join("index.html"),
        format!("<!DOCTYPE html><html><body><a href=\"../../{file}#sha256={sha}\">{file}</a></body></html>\n"),
    )
    .unwrap();
    format!("/{name}/simple/")
}

/// Serves the files under `root` (a directory's `index.html` for the directory), as pip's index pages need.
async fn files(State(root): State<PathBuf>, uri: Uri) -> Response {
    let rel = uri.path().trim_start_matches('/');
    if rel.split('/').any(|c| c == "..") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut path = root.join(rel);
    if path.is_dir() {
        path = path.join("index.html");
    }
    let kind = if path.extension().is_some_and(|e| e == "html") {
        "text/html; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    match std::fs::read(&path) {
        Ok(body) => ([(header::CONTENT_TYPE, kind)], body).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Runs a command to its end within `limit`, its output going to files (no pipe can fill up).
fn run(mut cmd: Command, scratch: &Path, limit: Duration) -> Output {
    let (out_path, err_path) = (scratch.join("stdout"), scratch.join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let status = wait_for(limit, "the command to finish", || child.try_wait().unwrap());
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Updater {
    base: PathBuf,
    scratch: tempfile::TempDir,
    server: String,
}

impl Updater {
    /// One run of the script, with pip pointed at `index_path` on the test's server and nothing else.
    fn run(&self, index_path: &str) -> Output {
        let mut cmd = Command::new(repo("systemd/ytdlp-update"));
        cmd.arg("--dir")
            .arg(&self.base)
            .args(["--index-url", &format!("{}{index_path}", self.server)])
            .arg("--selftest-file")
            .arg(repo("systemd/ytdlp-selftest.mp3"))
            .env("HOME", self.scratch.path())
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env_remove("PIP_INDEX_URL")
            .env_remove("PIP_EXTRA_INDEX_URL")
            .env_remove("DORADURA_YTDLP_PACKAGE");
        run(cmd, self.scratch.path(), Duration::from_secs(600))
    }

    fn ctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin("doradurctl"));
        cmd.args(args).arg("--dir").arg(&self.base);
        run(cmd, self.scratch.path(), Duration::from_secs(30))
    }

    /// The release a symlink points to, and the version its yt-dlp answers through that symlink.
    fn link(&self, name: &str) -> Option<(String, String)> {
        let target = std::fs::read_link(self.base.join(name)).ok()?;
        let version = Command::new(self.base.join(name).join("bin/yt-dlp"))
            .arg("--version")
            .output()
            .unwrap();
        assert!(version.status.success(), "{name}/bin/yt-dlp runs");
        Some((
            target.to_str().unwrap().to_string(),
            String::from_utf8(version.stdout).unwrap().trim().to_string(),
        ))
    }

    fn releases(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.base.join("releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

#[test]
fn the_updater_switches_atomically_keeps_the_old_one_on_a_failed_self_test_and_rolls_back() {
    let root = tempfile::tempdir().unwrap();
    let (v1, v2, v3) = ("2026.10.26", "2026.11.20", "2026.11.27");
    let first = index(root.path(), "first", v1, false);
    let second = index(root.path(), "second", v2, false);
    let broken = index(root.path(), "broken", v3, true);
    let app = Router::new().fallback(files).with_state(root.path().to_path_buf());
    let (addr, _stop) = doradura_testkit::serve(app);
    let u = Updater {
        base: root.path().join("yt-dlp"),
        scratch: tempfile::tempdir().unwrap(),
        server: format!("http://{addr}"),
    };

    // The first run installs, self-tests and makes it current; there is nothing to roll back to yet.
    let out = u.run(&first);
    assert!(out.status.success(), "{}", text(&out));
    let (first_release, version) = u.link("current").expect("current");
    assert_eq!(version, v1);
    assert!(
        first_release.starts_with("releases/"),
        "a relative link: {first_release}"
    );
    assert!(
        text(&out).contains(&format!("yt-dlp {v1} is current now")),
        "{}",
        text(&out)
    );
    assert!(u.link("previous").is_none());
    let marker = std::fs::read_to_string(u.base.join(&first_release).join("doradura-release")).unwrap();
    assert!(
        marker.contains(&format!("version={v1}\n")) && marker.contains("selftest=passed\n"),
        "{marker}"
    );
    let none = u.ctl(&["ytdlp", "rollback"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(text(&none).contains("there is no previous release"), "{}", text(&none));
    assert_eq!(
        u.link("current").unwrap().0,
        first_release,
        "a refused rollback changes nothing"
    );

    // The same version again: nothing to switch, and the new virtualenv is gone.
    let out = u.run(&first);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("is current already"), "{}", text(&out));
    assert_eq!(u.releases().len(), 1);

    // The same version while the current release no longer runs (as after an upgrade of the Python it was made
    // with): a fresh release replaces it.
    std::fs::remove_file(u.base.join(&first_release).join("bin/python")).unwrap();
    let out = u.run(&first);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no longer runs"), "{}", text(&out));
    let (first_release, version) = u.link("current").expect("current");
    assert_eq!(version, v1);

    // A newer version: current switches to it, previous keeps the first.
    let out = u.run(&second);
    assert!(out.status.success(), "{}", text(&out));
    let (second_release, version) = u.link("current").unwrap();
    assert_eq!(version, v2);
    assert_ne!(second_release, first_release);
    assert_eq!(u.link("previous").unwrap(), (first_release.clone(), v1.to_string()));
    assert!(!u.base.join(".current.new").exists() && !u.base.join(".previous.new").exists());

    // A version whose self-test fails: exit 1 saying so, nothing switched, its virtualenv removed.
    let out = u.run(&broken);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "the self-test of yt-dlp {v3} failed; yt-dlp {v2} stays current"
        )),
        "{said}"
    );
    assert!(
        said.contains("this test build is broken"),
        "the tool's own error is shown: {said}"
    );
    assert_eq!(u.link("current").unwrap(), (second_release.clone(), v2.to_string()));
    assert_eq!(u.link("previous").unwrap(), (first_release.clone(), v1.to_string()));
    assert_eq!(u.releases().len(), 2, "{:?}", u.releases());

    // The operator rolls back: current is the first again, previous the second, whose version is not reinstalled.
    let rolled = u.ctl(&["ytdlp", "rollback"]);
    assert!(rolled.status.success(), "{}", text(&rolled));
    assert!(
        text(&rolled).contains(&format!("current:  yt-dlp {v1}")),
        "{}",
        text(&rolled)
    );
    assert_eq!(u.link("current").unwrap(), (first_release.clone(), v1.to_string()));
    assert_eq!(u.link("previous").unwrap(), (second_release.clone(), v2.to_string()));
    let out = u.run(&second);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("was rolled back"), "{}", text(&out));
    assert_eq!(u.link("current").unwrap().1, v1);

    let status = u.ctl(&["--json", "ytdlp", "status"]);
    assert!(status.status.success(), "{}", text(&status));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["current"]["version"], v1);
    assert_eq!(v["current"]["release_date"], "2026-10-26");
    assert_eq!(v["previous"]["version"], v2);
    assert_eq!(v["rejected"], serde_json::json!([v2]));
}

#[test]
fn the_updater_refuses_a_base_directory_of_another_user_and_a_missing_self_test_file() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let script = |base: &Path, sample: &Path| {
        let mut cmd = Command::new(repo("systemd/ytdlp-update"));
        cmd.arg("--dir")
            .arg(base)
            .args(["--index-url", "http://127.0.0.1:9/simple/", "--selftest-file"])
            .arg(sample);
        run(cmd, scratch.path(), Duration::from_secs(60))
    };
    let out = script(&dir.path().join("a"), &dir.path().join("missing.mp3"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("the self-test file"), "{}", text(&out));
    if nix::unistd::geteuid().is_root() {
        let base = dir.path().join("b");
        std::fs::create_dir(&base).unwrap();
        std::os::unix::fs::chown(&base, Some(65534), Some(65534)).unwrap();
        let out = script(&base, &repo("systemd/ytdlp-selftest.mp3"));
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out).contains("belongs to uid 65534"), "{}", text(&out));
        assert!(std::fs::read_dir(&base).unwrap().next().is_none(), "nothing written");
    }
    let usage = Command::new(repo("systemd/ytdlp-update"))
        .arg("--nope")
        .output()
        .unwrap();
    assert_eq!(
        usage.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&usage.stderr)
    );
}

fn unit(name: &str) -> String {
    std::fs::read_to_string(repo(&format!("systemd/{name}"))).unwrap()
}

#[test]
fn the_updater_units_verify_and_are_opt_in() {
    let service = unit("doradura-ytdlp-update.service");
    let timer = unit("doradura-ytdlp-update.timer");
    for line in [
        "Type=oneshot",
        "ExecStart=/usr/lib/doradura/ytdlp-update",
        "User=doradura",
        "StateDirectory=doradura/yt-dlp",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
    ] {
        assert!(service.lines().any(|l| l == line), "the service lacks {line:?}");
    }
    assert!(
        !service.contains("[Install]"),
        "the service runs from its timer or by hand"
    );
    for line in ["OnCalendar=daily", "Persistent=true", "WantedBy=timers.target"] {
        assert!(timer.lines().any(|l| l == line), "the timer lacks {line:?}");
    }
    assert!(timer.lines().any(|l| l.starts_with("RandomizedDelaySec=")));
    // Verified with the script in place of its installed path (verify wants the executable to exist).
    let dir = tempfile::tempdir().unwrap();
    let script = repo("systemd/ytdlp-update");
    std::fs::write(
        dir.path().join("doradura-ytdlp-update.service"),
        service.replace("/usr/lib/doradura/ytdlp-update", script.to_str().unwrap()),
    )
    .unwrap();
    std::fs::write(dir.path().join("doradura-ytdlp-update.timer"), &timer).unwrap();
    doradura_testkit::verify_units(
        &[
            &dir.path().join("doradura-ytdlp-update.service"),
            &dir.path().join("doradura-ytdlp-update.timer"),
        ],
        "doradura-ytdlp-update",
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "the script is executable in the repository");
    assert!(
        std::fs::read_to_string(&script)
            .unwrap()
            .starts_with("#!/usr/bin/python3\n")
    );
}

#[test]
fn the_updater_unit_is_hardened_like_the_daemons() {
    let (score, report) =
        doradura_testkit::unit_exposure("doradura-ytdlp-update.service", &unit("doradura-ytdlp-update.service"));
    assert!(score <= 2.5, "exposure {score}:\n{report}");
}

/// The package ships the units, the script and its self-test file, and no longer recommends Debian's yt-dlp.
#[test]
fn the_package_ships_the_updater_and_recommends_python3_venv() {
    let manifest: toml::Table = std::fs::read_to_string(repo("daemon/Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let recommends: Vec<&str> = deb["recommends"].as_str().unwrap().split(", ").collect();
    assert!(recommends.contains(&"python3-venv"), "{recommends:?}");
    assert!(
        !recommends.contains(&"yt-dlp"),
        "Debian's yt-dlp is years old: {recommends:?}"
    );
    let assets: Vec<(String, String, String)> = deb["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            let s = |i: usize| a[i].as_str().unwrap().to_string();
            (s(0), s(1), s(2))
        })
        .collect();
    // The units come through cargo-deb's systemd handling (daemon-reload, purge), installed but not enabled.
    let units = deb["systemd-units"].as_array().expect("a list of unit sets");
    let updater = units
        .iter()
        .find(|u| u.get("unit-name").and_then(|n| n.as_str()) == Some("doradura-ytdlp-update"))
        .expect("the updater's units are handled by cargo-deb");
    assert_eq!(updater["enable"].as_bool(), Some(false));
    assert_eq!(updater["start"].as_bool(), Some(false));
    for (source, dest, mode) in [
        ("../systemd/ytdlp-update", "usr/lib/doradura/ytdlp-update", "755"),
        (
            "../systemd/ytdlp-selftest.mp3",
            "usr/share/doradura/ytdlp-selftest.mp3",
            "644",
        ),
    ] {
        assert!(
            assets.contains(&(source.into(), dest.into(), mode.into())),
            "{source} is not shipped as {dest} ({mode})"
        );
        assert!(repo(source.trim_start_matches("../")).is_file(), "{source}");
    }
    // The script's defaults are where the package puts things.
    let script = std::fs::read_to_string(repo("systemd/ytdlp-update")).unwrap();
    assert!(script.contains("DEFAULT_SELFTEST = \"/usr/share/doradura/ytdlp-selftest.mp3\""));
    assert!(script.contains("DEFAULT_DIR = \"/var/lib/doradura/yt-dlp\""));
    assert!(script.contains("DEFAULT_PACKAGE = \"yt-dlp[default]\""));
}

/// A stand-in yt-dlp in `releases/<name>/bin/yt-dlp` answering `--version` with `version`.
fn fake_release(base: &Path, name: &str, version: &str) {
    let bin_dir = base.join("releases").join(name).join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    doradura_testkit::script(&bin_dir.join("yt-dlp"), &format!("echo {version}"));
}

fn switch(base: &Path, name: &str) {
    let tmp = base.join(".current.new");
    std::os::unix::fs::symlink(format!("releases/{name}"), &tmp).unwrap();
    std::fs::rename(&tmp, base.join("current")).unwrap();
}

/// The workers notice a switch of `current` on their own, and the release date reaches `doradurctl status`,
/// `/health`, `doradura_ytdlp_release_age_days` and YtdlpOutdated, which fires and resolves without a restart.
#[test]
fn a_switched_ytdlp_is_noticed_and_its_age_is_reported_and_alerted() {
    const T: Duration = Duration::from_secs(60);
    let b = doradura_testkit::Daemon::builder();
    let base = b.dir().join("yt-dlp");
    // Released on 2020-01-01, and today (by the test's clock, as the daemon's).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = doradura_proto::time::utc_date(now).replace('-', ".");
    let old_age = (now / 86_400 - 18_262) as u64; // days since 2020-01-01
    fake_release(&base, "old", "2020.01.01");
    fake_release(&base, "new", &today);
    switch(&base, "old");
    let d = b
        .env("YTDLP_PATH", base.join("current/bin/yt-dlp"))
        .env("WORKER_HEARTBEAT_INTERVAL", "200ms")
        .env("ALERT_CHECK_INTERVAL", "1")
        .env("ALERT_YTDLP_MAX_AGE_DAYS", "30")
        .metrics_on()
        .start();
    d.wait_idle(T);
    let metrics_at = d.metrics_address();
    let scrape = |path: &str| doradura_testkit::http_get(&metrics_at, path, &[]).unwrap().1;
    // The gauge's value; the test allows for midnight UTC passing while it runs.
    let age_gauge = || -> i64 {
        let text = scrape("/metrics");
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("doradura_ytdlp_release_age_days "));
        line.expect("the gauge is exported").parse().unwrap()
    };
    let status = d.status().unwrap();
    for w in status["workers"].as_array().unwrap() {
        assert_eq!(w["ytdlp_version"], "2020.01.01", "{w}");
        assert_eq!(w["ytdlp_release_date"], "2020-01-01", "{w}");
        assert!(w["ytdlp_release_age_days"].as_u64().unwrap() >= old_age, "{w}");
    }
    let table = String::from_utf8(d.ctl(["status"]).stdout).unwrap();
    assert!(
        table.contains(&format!("2020.01.01 ({old_age} days old)"))
            || table.contains(&format!("2020.01.01 ({} days old)", old_age + 1)),
        "{table}"
    );
    let health: serde_json::Value = serde_json::from_str(&scrape("/health")).unwrap();
    assert_eq!(health["ytdlp"]["release_date"], "2020-01-01", "{health}");
    assert_eq!(
        health["ytdlp"]["versions"],
        serde_json::json!(["2020.01.01"]),
        "{health}"
    );
    assert!(health["ytdlp"]["release_age_days"].as_u64().unwrap() >= old_age);
    assert!((old_age as i64..=old_age as i64 + 1).contains(&age_gauge()));
    let firing = r#"doradura_alerts_firing{alert_type="YtdlpOutdated",severity="warning"} 1"#;
    wait_for(T, "YtdlpOutdated to fire", || {
        scrape("/metrics").lines().any(|l| l == firing).then_some(())
    });

    // The updater switches (as a rollback would): every worker reports the new version within heartbeats.
    switch(&base, "new");
    wait_for(T, "the workers to report the new yt-dlp", || {
        let s = d.status()?;
        s["workers"]
            .as_array()?
            .iter()
            .all(|w| w["ytdlp_version"] == today.as_str() && w["ytdlp_release_age_days"].as_u64() <= Some(1))
            .then_some(())
    });
    let resolved = r#"doradura_alerts_firing{alert_type="YtdlpOutdated",severity="warning"} 0"#;
    wait_for(T, "YtdlpOutdated to resolve", || {
        scrape("/metrics").lines().any(|l| l == resolved).then_some(())
    });
    assert!((0..=1).contains(&age_gauge()));
    assert!(d.log().contains("the worker's yt-dlp changed"), "{}", d.log());
    let workers = d.workers().unwrap();
    assert!(
        workers.iter().all(|w| w.restarts == 0),
        "no restart was needed: {workers:?}"
    );
}

/// The bundled file passes the self-test of the real yt-dlp (the pinned PyPI release `.ci/run` installs), through
/// its generic extractor, as it does on a host.
#[test]
fn the_bundled_self_test_file_passes_the_real_ytdlp() {
    let check = r#"
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.SourceFileLoader("ytdlp_update", sys.argv[1])
spec = importlib.util.spec_from_loader("ytdlp_update", loader)
module = importlib.util.module_from_spec(spec)
loader.exec_module(module)
module.self_test(sys.argv[2], sys.argv[3])
try:
    module.self_test("/bin/false", sys.argv[3])
except module.Failure as e:
    print("refused:", e)
"#;
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", check])
        .arg(repo("systemd/ytdlp-update"))
        .arg(doradura_testkit::media::ytdlp())
        .arg(repo("systemd/ytdlp-selftest.mp3"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = run(cmd, scratch.path(), Duration::from_secs(120));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("refused: the self-test download of http://127.0.0.1:"),
        "a yt-dlp that fails is refused: {}",
        text(&out)
    );
}
