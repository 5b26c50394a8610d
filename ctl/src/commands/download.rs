//! `doradurctl download URL`: through the daemon's queue and workers, with progress, into `--out`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use doradura_proto::control_client::ControlClient;
use doradura_proto::text::clean;
use doradura_proto::{DownloadRequest, FileReady, TaskProgress, download_event};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tonic::transport::Channel;

use super::{human_bytes, rpc};

pub struct Args {
    pub url: String,
    pub format: String,
    pub quality: Option<String>,
    pub priority: Option<String>,
    pub out: PathBuf,
}

#[derive(Serialize)]
struct Done<'a> {
    task_id: u64,
    path: &'a Path,
    bytes: u64,
    title: &'a str,
    duration_seconds: f64,
}

/// The file name the daemon sent, if it names one plain file in `--out`: not empty, not `.` or `..`, not absolute,
/// without a path separator (`/`, or a backslash for good measure), NUL or control character. Anything else could write
/// outside `--out` or rewrite the terminal it is printed to, so it is refused and nothing is written.
fn safe_file_name(name: &str) -> anyhow::Result<&str> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !Path::new(name).is_absolute()
        && !name.contains(['/', '\\'])
        && !name
            .chars()
            .any(|c| c.is_control() || doradura_proto::text::is_bidi_control(c));
    if !plain {
        bail!(
            "the daemon sent an unsafe file name ({:?}); nothing was written",
            clean(name)
        );
    }
    Ok(name)
}

/// A path in `dir` for `name` that does not exist yet: `name`, then `name (1)`, ...
fn free_path(dir: &Path, name: &str) -> PathBuf {
    let candidate = dir.join(name);
    if !candidate.exists() {
        return candidate;
    }
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    (1..)
        .map(|i| dir.join(format!("{stem} ({i}).{ext}")))
        .find(|p| !p.exists())
        .expect("some name is free")
}

fn progress_line(task: u64, p: &TaskProgress) -> String {
    let mut line = format!("task {task}: {:5.1}%", p.percent);
    if p.total_bytes > 0 {
        line.push_str(&format!(" of {}", human_bytes(p.total_bytes)));
    }
    if p.speed_bytes_per_second > 0.0 {
        line.push_str(&format!(" at {}/s", human_bytes(p.speed_bytes_per_second as u64)));
    }
    if p.eta_seconds >= 0 {
        line.push_str(&format!(" ETA {}s", p.eta_seconds));
    }
    line
}

pub async fn run(channel: Channel, args: Args, json: bool) -> anyhow::Result<()> {
    let request = DownloadRequest {
        url: args.url,
        format: args.format,
        quality: args.quality.unwrap_or_default(),
        priority: args.priority.unwrap_or_default(),
    };
    let mut stream = ControlClient::new(channel)
        .download(request)
        .await
        .map_err(rpc)?
        .into_inner();
    let tty = std::io::stderr().is_terminal();
    let mut task = 0;
    let mut last_decile = -1;
    let mut file: Option<(FileReady, PathBuf, PathBuf, tokio::fs::File, u64)> = None;
    while let Some(event) = stream.message().await.map_err(rpc)? {
        match event.kind {
            Some(download_event::Kind::Queued(q)) => {
                task = q.task_id;
                if q.joined {
                    eprintln!("task {task}: joined an identical download already in flight");
                } else {
                    eprintln!("task {task}: queued at position {}", q.position);
                }
            }
            Some(download_event::Kind::Progress(p)) => {
                if tty {
                    eprint!("\r{}\x1b[K", progress_line(task, &p));
                } else if (p.percent / 10.0) as i32 > last_decile {
                    last_decile = (p.percent / 10.0) as i32;
                    eprintln!("{}", progress_line(task, &p));
                }
            }
            Some(download_event::Kind::File(ready)) => {
                if tty {
                    eprintln!();
                }
                let name = safe_file_name(&ready.file_name)?;
                tokio::fs::create_dir_all(&args.out)
                    .await
                    .with_context(|| format!("cannot create {}", args.out.display()))?;
                let target = free_path(&args.out, name);
                let part = args.out.join(format!(".{name}.part"));
                let f = tokio::fs::File::create(&part)
                    .await
                    .with_context(|| format!("cannot write {}", part.display()))?;
                file = Some((ready, target, part, f, 0));
            }
            Some(download_event::Kind::Chunk(bytes)) => {
                let Some((_, _, part, f, written)) = file.as_mut() else {
                    bail!("the daemon sent file data before announcing the file");
                };
                f.write_all(&bytes)
                    .await
                    .with_context(|| format!("cannot write {}", part.display()))?;
                *written += bytes.len() as u64;
            }
            Some(download_event::Kind::Failed(f)) => {
                if tty {
                    eprintln!();
                }
                // Remote text (yt-dlp's error lines) never reaches the terminal raw.
                let (error_type, message) = (clean(&f.error_type), clean(&f.message));
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"task_id": task, "error_type": error_type, "message": message})
                    );
                }
                bail!("task {task} failed ({error_type}): {message}");
            }
            None => {}
        }
    }
    let Some((ready, target, part, mut f, written)) = file else {
        bail!("the daemon closed the download of task {task} without a result");
    };
    f.flush().await?;
    drop(f);
    if written != ready.size {
        let _ = std::fs::remove_file(&part);
        bail!(
            "task {task}: received {written} of {} bytes; the file was discarded",
            ready.size
        );
    }
    std::fs::rename(&part, &target).with_context(|| format!("cannot move the file to {}", target.display()))?;
    if json {
        let title = clean(&ready.title);
        let done = Done {
            task_id: task,
            path: &target,
            bytes: written,
            title: &title,
            duration_seconds: ready.duration_seconds,
        };
        println!("{}", serde_json::to_string(&done)?);
    } else {
        eprintln!("task {task}: done, {}", human_bytes(written));
        println!("{}", target.display());
    }
    std::io::stdout().flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_path(dir.path(), "a.mp3"), dir.path().join("a.mp3"));
        std::fs::write(dir.path().join("a.mp3"), b"x").unwrap();
        assert_eq!(free_path(dir.path(), "a.mp3"), dir.path().join("a (1).mp3"));
        std::fs::write(dir.path().join("a (1).mp3"), b"x").unwrap();
        assert_eq!(free_path(dir.path(), "a.mp3"), dir.path().join("a (2).mp3"));
    }

    #[test]
    fn only_a_plain_file_name_from_the_socket_is_taken() {
        for good in ["a.mp3", "My Song (Live).mp4", "..hidden.srt", "a..b", "Ünïcode 曲.mp3"] {
            assert_eq!(safe_file_name(good).unwrap(), good);
        }
        for bad in [
            "",
            ".",
            "..",
            "/etc/passwd",
            "/",
            "../x.mp3",
            "a/b.mp3",
            "sub/",
            "a\\b.mp3",
            "a\0b",
            "evil\x1b]0;pwned\x07.mp3",
            "line\nbreak.mp3",
        ] {
            let err = safe_file_name(bad).unwrap_err().to_string();
            assert!(err.contains("unsafe file name"), "{bad:?}: {err}");
            assert!(!err.contains('\x1b') && !err.contains('\n'), "{err:?}");
        }
    }

    #[test]
    fn remote_text_loses_its_control_characters() {
        assert_eq!(clean("Title\x1b[2J\x1b]0;x\x07 ok\r\n"), "Title ok  ");
        assert_eq!(clean("ERROR: \u{202e}gnp.exe"), "ERROR: gnp.exe");
    }

    #[test]
    fn progress_reads_naturally() {
        let p = TaskProgress {
            task_id: 1,
            percent: 42.0,
            total_bytes: 3 * 1024 * 1024,
            speed_bytes_per_second: 1024.0 * 1024.0,
            eta_seconds: 2,
            ..Default::default()
        };
        assert_eq!(progress_line(1, &p), "task 1:  42.0% of 3.0 MiB at 1.0 MiB/s ETA 2s");
        let unknown = TaskProgress {
            percent: 5.0,
            eta_seconds: -1,
            ..Default::default()
        };
        assert_eq!(progress_line(2, &unknown), "task 2:   5.0%");
    }
}
