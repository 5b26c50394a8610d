//! Asks yt-dlp for its version, so the supervisor knows whether downloads can work at all.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// `Ok(version)` or `Err(why it is not usable)`.
pub async fn ytdlp_version(path: &Path) -> Result<String, String> {
    // The options every task passes come along: a yt-dlp too old to know them fails here, not on every download.
    let run = tokio::process::Command::new(path)
        .args(["--version", "--ignore-config", "--no-plugin-dirs", "--no-js-runtimes"])
        .env_clear()
        .envs(crate::sandbox::environment(&std::env::temp_dir(), None))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(20), run).await {
        Err(_) => Err(format!("{} --version did not answer within 20s", path.display())),
        Ok(Err(e)) => Err(format!("cannot run {}: {e}", path.display())),
        Ok(Ok(out)) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            if version.is_empty() {
                Err(format!("{} --version printed nothing", path.display()))
            } else {
                Ok(version)
            }
        }
        Ok(Ok(out)) => {
            let said = String::from_utf8_lossy(&out.stderr);
            let last = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            let hint = if last.contains("no such option") {
                " (this yt-dlp is too old for doradura: update it)"
            } else {
                ""
            };
            Err(format!(
                "{} --version failed with {}: {}{hint}",
                path.display(),
                out.status,
                doradura_proto::text::clean(last)
            ))
        }
    }
}

/// Which file `path` runs now: its canonical path (a bare name is looked up in `PATH`), inode and modification
/// time. `None` when it cannot be found. A change means yt-dlp was switched or replaced (an update's new
/// virtualenv behind `current`, a package upgrade), so its version is asked again.
pub fn identity(path: &Path) -> Option<(std::path::PathBuf, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let found = if path.components().count() == 1 && !path.is_absolute() {
        std::env::var_os("PATH")
            .map(|dirs| std::env::split_paths(&dirs).map(|d| d.join(path)).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.is_file())?
    } else {
        path.to_path_buf()
    };
    let real = std::fs::canonicalize(&found).ok()?;
    let m = std::fs::metadata(&real).ok()?;
    Some((real, m.ino(), m.mtime(), m.mtime_nsec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ytdlp_too_old_for_the_task_options_is_not_usable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old-yt-dlp");
        // What an old yt-dlp's option parser says about an option it does not know.
        std::fs::write(
            &old,
            "#!/bin/sh\nfor a; do [ \"$a\" = --no-plugin-dirs ] && { echo 'yt-dlp: error: no such option: --no-plugin-dirs' >&2; exit 2; }; done\necho 2023.03.04\n",
        )
        .unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ytdlp_version(&old).await.unwrap_err();
        assert!(
            err.contains("no such option: --no-plugin-dirs") && err.contains("too old"),
            "{err}"
        );
    }

    #[test]
    fn the_identity_follows_a_switched_symlink_and_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let link = dir.path().join("current");
        std::os::unix::fs::symlink("a", &link).unwrap();
        let first = identity(&link).expect("found");
        assert_eq!(first.0, a.canonicalize().unwrap());
        assert_eq!(identity(&link), Some(first.clone()), "nothing changed");
        let tmp = dir.path().join("current.tmp");
        std::os::unix::fs::symlink("b", &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
        let second = identity(&link).expect("found");
        assert_ne!(second, first);
        // Replaced in place by a new file (a package upgrade): another inode.
        std::fs::write(&tmp, "b2").unwrap();
        std::fs::rename(&tmp, &b).unwrap();
        assert_ne!(identity(&link), Some(second));
        assert_eq!(identity(&dir.path().join("missing")), None);
        assert_eq!(identity(Path::new("surely-no-such-program-on-path")), None);
    }
}
