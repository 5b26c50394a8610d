//! `doradurctl ytdlp status|rollback`: the private yt-dlp that `doradura-ytdlp-update.service` keeps in
//! `/var/lib/doradura/yt-dlp`.
//!
//! These work on the files, not through the daemon: the releases are directories and two symlinks, `current` and
//! `previous`, that only the updater and this command change (under the same `flock` on `.lock`). A rollback
//! must work when the daemon is down or restart-looping because of a bad yt-dlp, and the daemon never touches
//! executables. Nothing here runs the installed yt-dlp (doradurctl often runs as root): versions are read from
//! the marker file the updater writes, or from pip's metadata.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

pub const DEFAULT_DIR: &str = "/var/lib/doradura/yt-dlp";
/// Written by the updater into each release: `version=`, `installed=`, `package=`, `selftest=`.
const MARKER: &str = "doradura-release";
/// Versions rolled back, one per line: the updater does not install them again.
const REJECTED: &str = "rejected";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Release {
    /// The directory under `releases/`.
    pub name: String,
    pub version: Option<String>,
    /// `YYYY-MM-DD` from the version, when it is a date.
    pub release_date: Option<String>,
    pub release_age_days: Option<u32>,
    /// When the updater installed it (UTC).
    pub installed: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub dir: PathBuf,
    pub current: Option<Release>,
    pub previous: Option<Release>,
    pub rejected: Vec<String>,
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The release `base/<link>` points to: `Ok(None)` when the link is absent or points at no release directory.
fn release_of(base: &Path, link: &str) -> anyhow::Result<Option<String>> {
    let path = base.join(link);
    let target = match fs::read_link(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!(
            "{} is not a symlink ({e}); the updater manages it: move it away",
            path.display()
        ),
    };
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    Ok(base.join("releases").join(name).is_dir().then(|| name.to_string()))
}

/// The version pip recorded: `lib/python3.*/site-packages/yt_dlp-<version>.dist-info`.
fn dist_info_version(release: &Path) -> Option<String> {
    for lib in fs::read_dir(release.join("lib")).ok()?.flatten() {
        let Ok(entries) = fs::read_dir(lib.path().join("site-packages")) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(v) = name.strip_prefix("yt_dlp-").and_then(|r| r.strip_suffix(".dist-info")) {
                return Some(v.to_string());
            }
        }
    }
    None
}

fn describe(base: &Path, name: String, now_s: i64) -> Release {
    let dir = base.join("releases").join(&name);
    let marker = fs::read_to_string(dir.join(MARKER)).unwrap_or_default();
    let field = |key: &str| {
        marker
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
            .filter(|v| !v.is_empty())
    };
    let version = field("version").or_else(|| dist_info_version(&dir));
    let v = version.as_deref().unwrap_or("");
    Release {
        release_date: doradura_proto::ytdlp_release::release_date(v),
        release_age_days: doradura_proto::ytdlp_release::age_days(v, now_s),
        installed: field("installed"),
        version,
        name,
    }
}

fn read_rejected(base: &Path) -> Vec<String> {
    fs::read_to_string(base.join(REJECTED))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn status(base: &Path, now_s: i64) -> anyhow::Result<Status> {
    let release = |link| -> anyhow::Result<Option<Release>> {
        Ok(release_of(base, link)?.map(|name| describe(base, name, now_s)))
    };
    Ok(Status {
        dir: base.to_path_buf(),
        current: release("current")?,
        previous: release("previous")?,
        rejected: read_rejected(base),
    })
}

/// Gives what this created to the owner of the base directory (the service user), so that the updater can still
/// read and replace it when doradurctl runs as root. Elsewhere it fails harmlessly (the owner is already right).
fn give_to_owner(base: &Path, path: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = fs::metadata(base) {
        let _ = std::os::unix::fs::lchown(path, Some(m.uid()), Some(m.gid()));
    }
}

/// Points `base/<link>` at `releases/<name>` by renaming a fresh symlink over it (atomic).
fn point(base: &Path, link: &str, name: &str) -> io::Result<()> {
    let tmp = base.join(format!(".{link}.new"));
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::os::unix::fs::symlink(Path::new("releases").join(name), &tmp)?;
    give_to_owner(base, &tmp);
    fs::rename(&tmp, base.join(link))
}

/// What a rollback did.
#[derive(Debug, Serialize)]
pub struct Rolled {
    pub dir: PathBuf,
    /// Current now (the release that was previous).
    pub current: Release,
    /// Previous now (the release rolled back from).
    pub previous: Release,
    /// Versions the updater will not install again.
    pub rejected: Vec<String>,
}

/// Swaps `current` and `previous`, and records the version left in `rejected` (the updater skips it; the
/// version made current again is taken off that list).
pub fn rollback(base: &Path, now_s: i64) -> anyhow::Result<Rolled> {
    if !base.is_dir() {
        bail!(
            "there is no yt-dlp virtualenv in {}: the updater has not run (systemctl start doradura-ytdlp-update), \
             or give its directory with --dir",
            base.display()
        );
    }
    let denied = |e: io::Error| -> anyhow::Error {
        if e.kind() == io::ErrorKind::PermissionDenied {
            anyhow::anyhow!(
                "cannot change {}: permission denied (run it as root or as the doradura user)",
                base.display()
            )
        } else {
            anyhow::anyhow!("cannot change {}: {e}", base.display())
        }
    };
    let lock_path = base.join(".lock");
    let existed = lock_path.exists();
    let lock = match File::open(&lock_path) {
        Ok(f) => f,
        Err(_) => OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(denied)?,
    };
    if !existed {
        give_to_owner(base, &lock_path);
    }
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => bail!(
            "an update is running ({} is locked); try again when it has finished (systemctl status \
             doradura-ytdlp-update)",
            lock_path.display()
        ),
        Err(TryLockError::Error(e)) => return Err(e).context(format!("locking {}", lock_path.display())),
    }
    let Some(current) = release_of(base, "current")? else {
        bail!(
            "there is no current release in {}: nothing to roll back",
            base.display()
        );
    };
    let Some(previous) = release_of(base, "previous")? else {
        bail!(
            "there is no previous release in {} to go back to (current is releases/{current}); the updater keeps \
             one from its second successful update on",
            base.display()
        );
    };
    point(base, "current", &previous).map_err(denied)?;
    point(base, "previous", &current).map_err(denied)?;
    let (now_current, now_previous) = (describe(base, previous, now_s), describe(base, current, now_s));
    let mut rejected = read_rejected(base);
    rejected.retain(|v| Some(v) != now_current.version.as_ref());
    if let Some(v) = &now_previous.version
        && !rejected.contains(v)
    {
        rejected.push(v.clone());
    }
    let tmp = base.join(format!(".{REJECTED}.new"));
    let text: String = rejected.iter().map(|v| format!("{v}\n")).collect();
    // A fresh file, never through whatever stands at that name (a symbolic link left there).
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(denied(e)),
        _ => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(denied)?;
    give_to_owner(base, &tmp);
    fs::rename(&tmp, base.join(REJECTED)).map_err(denied)?;
    if let Ok(dir) = File::open(base) {
        let _ = dir.sync_all();
    }
    Ok(Rolled {
        dir: base.to_path_buf(),
        current: now_current,
        previous: now_previous,
        rejected,
    })
}

fn line(r: &Release) -> String {
    let mut s = format!(
        "yt-dlp {} (releases/{}",
        r.version.as_deref().unwrap_or("of unknown version"),
        r.name
    );
    if let (Some(date), Some(age)) = (&r.release_date, r.release_age_days) {
        s.push_str(&format!(", released {date}, {age} days ago"));
    }
    if let Some(at) = &r.installed {
        s.push_str(&format!(", installed {at}"));
    }
    s.push(')');
    s
}

pub fn render_status(s: &Status) -> String {
    let mut out = format!("yt-dlp virtualenvs in {}\n", s.dir.display());
    match &s.current {
        Some(r) => out.push_str(&format!("current:  {}\n", line(r))),
        None => {
            out.push_str("current:  none (the updater has not installed one: systemctl start doradura-ytdlp-update)\n")
        }
    }
    match &s.previous {
        Some(r) => out.push_str(&format!("previous: {}\n", line(r))),
        None => out.push_str("previous: none (nothing to roll back to)\n"),
    }
    if !s.rejected.is_empty() {
        out.push_str(&format!(
            "rolled back, not installed again: {}\n",
            s.rejected.join(", ")
        ));
    }
    out
}

pub fn render_rolled(r: &Rolled) -> String {
    format!(
        "rolled back in {dir}\ncurrent:  {cur}\nprevious: {prev}\n{skip}The next download uses it: every download \
         starts yt-dlp afresh from {dir}/current, and each worker reports the version it finds within a heartbeat \
         (`doradurctl status`). No restart is needed where YTDLP_PATH is the default or {dir}/current/bin/yt-dlp.\n",
        dir = r.dir.display(),
        cur = line(&r.current),
        prev = line(&r.previous),
        skip = r
            .previous
            .version
            .as_ref()
            .map(|v| format!("The updater will not install yt-dlp {v} again; it waits for a newer release.\n"))
            .unwrap_or_default(),
    )
}

pub fn status_command(dir: &Path, json: bool) -> anyhow::Result<()> {
    become_owner(dir)?;
    let s = status(dir, now_s())?;
    print(json, &s, render_status)
}

/// Prints `value` as JSON, or as the human text `render` makes of it.
fn print<T: Serialize>(json: bool, value: &T, render: fn(&T) -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", render(value));
    }
    Ok(())
}

/// Run as root, the command goes on as the owner of the directory (the `doradura` user): every file it reads or
/// writes there is that user's, who could otherwise plant a symbolic link that root would follow.
fn become_owner(base: &Path) -> anyhow::Result<()> {
    use nix::unistd::{Gid, Uid, geteuid, setgid, setgroups, setuid};
    use std::os::unix::fs::MetadataExt;
    if !geteuid().is_root() {
        return Ok(());
    }
    let Ok(m) = fs::metadata(base) else {
        return Ok(());
    };
    if m.uid() == 0 {
        return Ok(());
    }
    setgroups(&[]).context("dropping root's groups")?;
    setgid(Gid::from_raw(m.gid())).context("taking the directory's group")?;
    setuid(Uid::from_raw(m.uid())).context("taking the directory's owner")?;
    Ok(())
}

pub fn rollback_command(dir: &Path, json: bool) -> anyhow::Result<()> {
    become_owner(dir)?;
    let r = rollback(dir, now_s())?;
    print(json, &r, render_rolled)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 20_782 * 86_400; // 2026-11-25

    fn release(base: &Path, name: &str, version: &str) {
        let dir = base.join("releases").join(name);
        fs::create_dir_all(dir.join("lib/python3.11/site-packages/yt_dlp-9.dist-info")).unwrap();
        fs::write(
            dir.join(MARKER),
            format!("version={version}\ninstalled=2026-11-01T03:00:00Z\n"),
        )
        .unwrap();
    }

    fn link(base: &Path, name: &str, to: &str) {
        std::os::unix::fs::symlink(format!("releases/{to}"), base.join(name)).unwrap();
    }

    #[test]
    fn a_rollback_swaps_current_and_previous_and_remembers_the_version_left() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        release(base, "a", "2026.10.26");
        release(base, "b", "2026.11.20");
        link(base, "current", "b");
        link(base, "previous", "a");
        let r = rollback(base, NOW).unwrap();
        assert_eq!(fs::read_link(base.join("current")).unwrap(), Path::new("releases/a"));
        assert_eq!(fs::read_link(base.join("previous")).unwrap(), Path::new("releases/b"));
        assert_eq!(r.current.version.as_deref(), Some("2026.10.26"));
        assert_eq!(r.current.release_age_days, Some(30));
        assert_eq!(fs::read_to_string(base.join(REJECTED)).unwrap(), "2026.11.20\n");
        let text = render_rolled(&r);
        assert!(
            text.contains("current:  yt-dlp 2026.10.26 (releases/a, released 2026-10-26, 30 days ago"),
            "{text}"
        );
        assert!(text.contains("will not install yt-dlp 2026.11.20 again"), "{text}");
        // Rolling back again returns to the newer one, which is then allowed again.
        rollback(base, NOW).unwrap();
        assert_eq!(fs::read_link(base.join("current")).unwrap(), Path::new("releases/b"));
        assert_eq!(fs::read_to_string(base.join(REJECTED)).unwrap(), "2026.10.26\n");
        assert!(!base.join(".current.new").exists() && !base.join(".previous.new").exists());
    }

    #[test]
    fn without_a_previous_release_nothing_changes_and_the_error_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let err = rollback(&base.join("missing"), NOW).unwrap_err().to_string();
        assert!(err.contains("there is no yt-dlp virtualenv in"), "{err}");
        let err = rollback(base, NOW).unwrap_err().to_string();
        assert!(err.contains("no current release"), "{err}");
        release(base, "a", "2026.10.26");
        link(base, "current", "a");
        let err = rollback(base, NOW).unwrap_err().to_string();
        assert!(
            err.contains("no previous release") && err.contains("releases/a"),
            "{err}"
        );
        // A previous link to a release that was removed counts as none.
        link(base, "previous", "gone");
        assert!(
            rollback(base, NOW)
                .unwrap_err()
                .to_string()
                .contains("no previous release")
        );
        assert_eq!(fs::read_link(base.join("current")).unwrap(), Path::new("releases/a"));
        assert!(!base.join(REJECTED).exists());
    }

    #[test]
    fn a_running_update_holds_the_lock_and_the_rollback_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        release(base, "a", "2026.10.26");
        release(base, "b", "2026.11.20");
        link(base, "current", "b");
        link(base, "previous", "a");
        let held = File::create(base.join(".lock")).unwrap();
        held.lock().unwrap();
        let err = rollback(base, NOW).unwrap_err().to_string();
        assert!(err.contains("an update is running"), "{err}");
        assert_eq!(fs::read_link(base.join("current")).unwrap(), Path::new("releases/b"));
        drop(held);
        rollback(base, NOW).unwrap();
    }

    #[test]
    fn status_reads_versions_without_running_anything() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let s = status(base, NOW).unwrap();
        assert!(s.current.is_none() && s.previous.is_none());
        assert!(render_status(&s).contains("current:  none"));
        release(base, "b", "2026.11.20");
        // A release without the updater's marker: pip's metadata names the version.
        let bare = base.join("releases/a/lib/python3.11/site-packages/yt_dlp-2026.10.26.dist-info");
        fs::create_dir_all(bare).unwrap();
        link(base, "current", "b");
        link(base, "previous", "a");
        fs::write(base.join(REJECTED), "2026.11.21\n").unwrap();
        let s = status(base, NOW).unwrap();
        assert_eq!(s.previous.as_ref().unwrap().version.as_deref(), Some("2026.10.26"));
        assert_eq!(s.current.as_ref().unwrap().release_age_days, Some(5));
        let text = render_status(&s);
        assert!(
            text.contains("current:  yt-dlp 2026.11.20 (releases/b, released 2026-11-20, 5 days ago, installed"),
            "{text}"
        );
        assert!(text.contains("rolled back, not installed again: 2026.11.21"), "{text}");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["current"]["release_date"], "2026-11-20");
        assert_eq!(v["previous"]["name"], "a");
    }
}
