//! Asks yt-dlp for its version, so the supervisor knows whether downloads can work at all.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// `Ok(version)` or `Err(why it is not usable)`.
pub async fn ytdlp_version(path: &Path) -> Result<String, String> {
    let run = tokio::process::Command::new(path)
        .arg("--version")
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
        Ok(Ok(out)) => Err(format!("{} --version failed with {}", path.display(), out.status)),
    }
}
