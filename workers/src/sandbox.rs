//! What yt-dlp and its children (ffmpeg, a JS runtime) run inside: a minimal environment with no secret in it, a
//! private home in the task's directory (where the operator's cookies are copied), and a cap on the size of any
//! file they write.

use std::ffi::OsString;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The home directory inside a task's directory; removed when the run ends.
pub const HOME: &str = ".home";
/// The private copy of the operator's cookies file.
const COOKIES: &str = "cookies.txt";

/// Bytes a single file may grow past the task's size limit before the kernel stops the write (`RLIMIT_FSIZE`):
/// yt-dlp's own check needs a little room to fire first, and a container's header may add a little.
pub fn file_size_cap(max_bytes: u64) -> u64 {
    max_bytes + (max_bytes / 100).max(1024 * 1024)
}

/// The environment of every child: `PATH` (to find ffmpeg and a JS runtime), a private `HOME` and `TMPDIR`, a UTF-8
/// locale, and the worker's checking proxy for programs that read proxy variables. Nothing else of the worker's
/// environment passes.
pub fn environment(home: &Path, proxy: Option<std::net::SocketAddr>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vec![
        (
            "PATH".into(),
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("HOME".into(), home.into()),
        ("TMPDIR".into(), home.into()),
        ("XDG_CACHE_HOME".into(), home.join(".cache").into()),
        ("XDG_CONFIG_HOME".into(), home.join(".config").into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
        ("PYTHONIOENCODING".into(), "utf-8".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ("PYTHONNOUSERSITE".into(), "1".into()),
    ];
    if let Some(p) = proxy {
        let url: OsString = format!("http://{p}").into();
        for var in [
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
        ] {
            env.push((var.into(), url.clone()));
        }
    }
    env
}

/// Makes the task's private home (mode 0700) and copies the operator's cookies file into it (mode 0600); returns
/// the home and the copy. yt-dlp rewrites the cookies file it is given, so it never gets the operator's own.
pub fn prepare_home(work_dir: &Path, cookies: Option<&Path>) -> std::io::Result<(PathBuf, Option<PathBuf>)> {
    let home = work_dir.join(HOME);
    std::fs::create_dir_all(&home)?;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))?;
    let Some(source) = cookies else {
        return Ok((home, None));
    };
    let copy = home.join(COOKIES);
    let mut from = std::fs::File::open(source).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot read the cookies file {}: {e}", source.display()),
        )
    })?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&copy)?;
    std::io::copy(&mut from, &mut to)?;
    Ok((home, Some(copy)))
}

/// Called between fork and exec: a file written past `cap` bytes fails with EFBIG (Python ignores SIGXFSZ), so a
/// stream that never ends cannot fill the disk, whether or not its server sent a length.
pub fn limit_file_size(cap: u64) -> std::io::Result<()> {
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_FSIZE, cap, cap).map_err(std::io::Error::from)
}

/// Whether some file below `dir` reached `cap` bytes: a write there was stopped by the limit.
pub fn reached_cap(dir: &Path, cap: u64) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| match e.file_type() {
        Ok(t) if t.is_dir() => reached_cap(&e.path(), cap),
        Ok(t) if t.is_file() => e.metadata().is_ok_and(|m| m.len() >= cap),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_holds_no_secret_and_points_home_at_the_task() {
        let env = environment(
            Path::new("/spool/task-1/.home"),
            Some("127.0.0.1:4000".parse().unwrap()),
        );
        let names: Vec<String> = env.iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        for name in &names {
            assert!(
                !name.contains("TOKEN") && !name.contains("SECRET") && !name.starts_with("TELOXIDE"),
                "{name}"
            );
        }
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("HOME").as_deref(), Some("/spool/task-1/.home"));
        assert_eq!(get("https_proxy").as_deref(), Some("http://127.0.0.1:4000"));
        assert!(
            environment(Path::new("/h"), None)
                .iter()
                .all(|(k, _)| k != "http_proxy")
        );
    }

    #[test]
    fn cookies_are_copied_privately_and_the_original_is_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let original = tmp.path().join("operator-cookies.txt");
        std::fs::write(
            &original,
            "# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tFALSE\t0\tsid\tabc\n",
        )
        .unwrap();
        let work = tmp.path().join("task-9");
        std::fs::create_dir(&work).unwrap();
        let (home, copy) = prepare_home(&work, Some(&original)).unwrap();
        let copy = copy.unwrap();
        assert!(copy.starts_with(&home) && home.starts_with(&work));
        assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&original).unwrap());
        assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&home).unwrap().permissions().mode() & 0o777, 0o700);
        let missing = prepare_home(&tmp.path().join("task-10"), Some(&tmp.path().join("nope")));
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .contains("cannot read the cookies file")
        );
    }

    #[test]
    fn a_file_at_the_cap_anywhere_below_the_directory_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("frag")).unwrap();
        std::fs::write(tmp.path().join("small.part"), vec![0u8; 10]).unwrap();
        assert!(!reached_cap(tmp.path(), 100));
        std::fs::write(tmp.path().join("frag/seg.ts"), vec![0u8; 100]).unwrap();
        assert!(reached_cap(tmp.path(), 100));
        assert!(!reached_cap(&tmp.path().join("missing"), 100));
    }

    #[test]
    fn the_size_cap_leaves_a_small_margin() {
        assert_eq!(file_size_cap(5 * 1024 * 1024), 6 * 1024 * 1024);
        assert_eq!(file_size_cap(2_000_000_000), 2_020_000_000);
    }
}
