//! Runs one download with yt-dlp: no shell, the URL after `--`, in a process group of its own so that a timeout or
//! a cancel kills yt-dlp and its ffmpeg together.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use doradura_proto::proxy_url::ProxyUrl;
use doradura_proto::types::{ErrorType, Format};
use doradura_proto::{TaskAssignment, TaskProgress, TaskResult};
use doradura_proto::{text, ytdlp_options};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::classify::classify;
use crate::progress;
use crate::sandbox;
use crate::validate;

/// The base name yt-dlp writes in the task's directory.
const STEM: &str = "media";
/// Where yt-dlp leaves the title and duration.
const INFO_FILE: &str = "info.json";
/// Keep this much of stderr for classification and the error message.
const STDERR_TAIL: usize = 16 * 1024;
/// Non-progress stdout lines kept for classification.
const STDOUT_LINES: usize = 50;
/// At most this many progress events per second.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Only formats fetched over http(s), HLS or DASH over http: those go through the worker's proxy. rtmp, rtsp and
/// mms are handed to other programs (rtmpdump, ffmpeg) that would connect past it.
const PROXIED: &str = "[protocol~='^(https?|m3u8(_native)?|http_dash_segments)$']";
/// yt-dlp's exit code when `--max-downloads` stopped it after the file it was allowed.
const MAX_DOWNLOADS_REACHED: i32 = 101;

/// What the task loop reports while it runs.
pub enum Report {
    Started { ytdlp_pgid: u32 },
    Progress(TaskProgress),
}

/// yt-dlp's arguments for a task, the URL last after `--`. `proxy` is the worker's proxy every connection goes
/// through (none when private hosts are allowed and there is no upstream proxy); `cookies` is the task's private
/// copy of the operator's cookies file.
pub fn args(
    task: &TaskAssignment,
    format: Format,
    dir: &Path,
    proxy: Option<std::net::SocketAddr>,
    cookies: Option<&Path>,
) -> Vec<OsString> {
    // The operator's allow-listed options come first: where one names the same setting, doradura's own wins.
    let mut a: Vec<OsString> = task.extra_args.iter().map(OsString::from).collect();
    a.extend(
        [
            "--ignore-config",
            "--no-plugin-dirs",
            "--no-playlist",
            "--max-downloads",
            "1",
            "--newline",
            "--no-colors",
            "--no-cache-dir",
            "--no-mtime",
            "--no-simulate",
            "--socket-timeout",
            "30",
            "--retries",
            "2",
            "--fragment-retries",
            "2",
        ]
        .iter()
        .map(OsString::from),
    );
    if let Some(c) = cookies {
        a.push("--cookies".into());
        a.push(c.into());
    }
    if let Some(runtime) = js_runtime_arg(Path::new(&task.js_runtime)) {
        a.push("--no-js-runtimes".into());
        a.push("--js-runtimes".into());
        a.push(runtime.into());
    }
    a.push("--max-filesize".into());
    a.push(task.max_bytes.to_string().into());
    a.push("--paths".into());
    a.push(dir.into());
    a.push("--output".into());
    a.push(format!("{STEM}.%(ext)s").into());
    a.push("--print-to-file".into());
    a.push("%(.{title,duration})j".into());
    a.push(dir.join(INFO_FILE).into());
    let quality = task.quality.as_str();
    let tail: Vec<String> = match format {
        Format::Mp3 => {
            let kbps = quality.trim_end_matches('k');
            vec![
                "--format".into(),
                format!("bestaudio{PROXIED}/best{PROXIED}"),
                "--extract-audio".into(),
                "--audio-format".into(),
                "mp3".into(),
                "--audio-quality".into(),
                format!("{kbps}K"),
            ]
        }
        Format::Mp4 => {
            let mut v = vec![
                "--format".into(),
                format!("bestvideo*{PROXIED}+bestaudio{PROXIED}/best{PROXIED}"),
            ];
            if let Some(height) = quality.strip_suffix('p') {
                v.push("--format-sort".into());
                v.push(format!("res:{height}"));
            }
            v.extend([
                "--merge-output-format".into(),
                "mp4".into(),
                "--remux-video".into(),
                "mp4".into(),
            ]);
            v
        }
        Format::Srt => vec![
            "--skip-download".into(),
            "--write-subs".into(),
            "--sub-langs".into(),
            "all,-live_chat".into(),
            "--convert-subs".into(),
            "srt".into(),
        ],
    };
    a.extend(tail.into_iter().map(OsString::from));
    if let Some(p) = proxy {
        a.push("--proxy".into());
        a.push(format!("http://{p}").into());
    }
    a.push("--".into());
    a.push(task.url.clone().into());
    a
}

/// `NAME:PATH` for `--js-runtimes`, the runtime named by its file; `None` for a program that is no runtime (the
/// daemon refused it at start-up, and `attempt` refuses the task).
fn js_runtime_arg(path: &Path) -> Option<String> {
    ytdlp_options::js_runtime_name(path).map(|name| format!("{name}:{}", path.display()))
}

/// Runs the task to its end: success, failure, timeout or cancel. Never panics on yt-dlp's behaviour. Text that
/// came from the site is cleaned of control characters before it leaves the worker.
pub async fn run(
    ytdlp: &Path,
    task: TaskAssignment,
    reports: mpsc::Sender<Report>,
    cancel: oneshot::Receiver<()>,
) -> TaskResult {
    let dir = PathBuf::from(&task.work_dir);
    let mut result = attempt(ytdlp, task, reports, cancel).await;
    // The private home holds the copy of the cookies: it goes as soon as yt-dlp is done.
    if let Err(e) = std::fs::remove_dir_all(dir.join(sandbox::HOME))
        && e.kind() != std::io::ErrorKind::NotFound
    {
        warn!(dir = %dir.display(), error = %e, "could not remove the task's private home");
    }
    result.title = text::clean(&result.title);
    result.error_message = text::clean(&result.error_message);
    result
}

async fn attempt(
    ytdlp: &Path,
    task: TaskAssignment,
    reports: mpsc::Sender<Report>,
    mut cancel: oneshot::Receiver<()>,
) -> TaskResult {
    let started = Instant::now();
    let mut result = TaskResult {
        task_id: task.task_id,
        ..Default::default()
    };
    let fail = |mut r: TaskResult, error: ErrorType, message: String| {
        r.ok = false;
        r.error_type = error.as_str().to_string();
        r.error_message = message;
        r.total_ms = started.elapsed().as_millis() as u64;
        r
    };
    let format: Format = match task.format.parse() {
        Ok(f) => f,
        Err(e) => return fail(result, ErrorType::Unknown, e.to_string()),
    };
    let dir = PathBuf::from(&task.work_dir);
    // Lives until yt-dlp is done: every connection it makes is checked.
    let upstream = match task.upstream_proxy.as_str() {
        "" => None,
        text => match ProxyUrl::parse(text) {
            Some(p) => Some(p),
            None => {
                return fail(
                    result,
                    ErrorType::Unknown,
                    "DOWNLOAD_PROXY is not a valid proxy URL".into(),
                );
            }
        },
    };
    if let Err(refused) = ytdlp_options::check(&task.extra_args) {
        return fail(result, ErrorType::Unknown, format!("YTDLP_EXTRA_ARGS: {refused}"));
    }
    if !task.js_runtime.is_empty() && js_runtime_arg(Path::new(&task.js_runtime)).is_none() {
        let why = format!(
            "YTDLP_JS_RUNTIME: {} is not a JavaScript runtime yt-dlp knows",
            task.js_runtime
        );
        return fail(result, ErrorType::Unknown, why);
    }
    // Lives until yt-dlp is done: every connection it makes is checked, and carried through the upstream proxy.
    let proxy = match (task.allow_private_hosts, upstream) {
        (true, None) => None,
        (allow, upstream) => {
            let rules = crate::proxy::Rules {
                check: !allow,
                allowed: task.allowed_hosts.clone(),
                upstream,
            };
            match crate::proxy::Proxy::start(rules).await {
                Ok(p) => Some(p),
                Err(e) => {
                    return fail(
                        result,
                        ErrorType::Unknown,
                        format!("cannot start the download proxy: {e}"),
                    );
                }
            }
        }
    };
    let cookies = (!task.cookies_file.is_empty()).then(|| PathBuf::from(&task.cookies_file));
    let (home, cookies) = match sandbox::prepare_home(&dir, cookies.as_deref()) {
        Ok(prepared) => prepared,
        Err(e) => return fail(result, ErrorType::Unknown, e.to_string()),
    };
    let proxy_addr = proxy.as_ref().map(|p| p.addr);

    let mut cmd = tokio::process::Command::new(ytdlp);
    cmd.args(args(&task, format, &dir, proxy_addr, cookies.as_deref()))
        .current_dir(&dir)
        .env_clear()
        .envs(sandbox::environment(&home, proxy_addr))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let file_cap = sandbox::file_size_cap(task.max_bytes);
    // SAFETY: prctl and setrlimit are async-signal-safe. If this worker dies, yt-dlp dies with it; no file it or
    // its children write grows past the cap.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            sandbox::limit_file_size(file_cap)
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let error = if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::PermissionDenied
            {
                ErrorType::YtdlpMissing
            } else {
                ErrorType::Unknown
            };
            return fail(result, error, format!("cannot run {}: {e}", ytdlp.display()));
        }
    };
    let pgid = child.id().unwrap_or(0);
    let _ = reports.send(Report::Started { ytdlp_pgid: pgid }).await;
    info!(task = task.task_id, pgid, url = %task.url, format = %format, quality = %task.quality, "yt-dlp started");

    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let progress_reports = reports.clone();
    let task_id = task.task_id;
    let stdout_reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut last_sent: Option<Instant> = None;
        // yt-dlp says some things (a size limit hit) on stdout and still exits 0.
        let mut said: Vec<String> = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let Some(p) = progress::parse(&line) else {
                debug!(task = task_id, "{line}");
                if said.len() == STDOUT_LINES {
                    said.remove(0);
                }
                said.push(line.chars().take(500).collect());
                continue;
            };
            let due = last_sent.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || p.percent >= 100.0;
            if due {
                last_sent = Some(Instant::now());
                let _ = progress_reports.try_send(Report::Progress(TaskProgress {
                    task_id,
                    percent: p.percent,
                    downloaded_bytes: p.downloaded_bytes().unwrap_or(0),
                    total_bytes: p.total_bytes.unwrap_or(0),
                    speed_bytes_per_second: p.speed_bytes_per_second.unwrap_or(0.0),
                    eta_seconds: p.eta_seconds.map_or(-1, |s| s as i64),
                }));
            }
        }
        said.join("\n")
    });
    let stderr_reader = tokio::spawn(async move {
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4096];
        let mut stderr = stderr;
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 2 * STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        let keep = tail.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&tail[keep..]).into_owned()
    });

    let timeout = Duration::from_millis(task.timeout_ms.max(1));
    let ended = tokio::select! {
        status = child.wait() => Ok(status),
        _ = tokio::time::sleep(timeout) => Err(ErrorType::Timeout),
        _ = &mut cancel => Err(ErrorType::Cancelled),
    };
    let status = match ended {
        Ok(status) => status,
        Err(reason) => {
            kill_group(pgid);
            let _ = child.wait().await;
            stdout_reader.abort();
            stderr_reader.abort();
            result.ytdlp_ms = started.elapsed().as_millis() as u64;
            let message = match reason {
                ErrorType::Timeout => format!("the download took longer than {}s and was stopped", timeout.as_secs()),
                _ => "cancelled".to_string(),
            };
            return fail(result, reason, message);
        }
    };
    // yt-dlp is gone; anything it left in its group (an ffmpeg) goes too.
    kill_group(pgid);
    let stdout_text = stdout_reader.await.unwrap_or_default();
    let stderr_text = stderr_reader.await.unwrap_or_default();
    result.ytdlp_ms = started.elapsed().as_millis() as u64;
    let status = match status {
        Ok(s) => s,
        Err(e) => return fail(result, ErrorType::Unknown, format!("waiting for yt-dlp failed: {e}")),
    };
    if !status.success() && status.code() != Some(MAX_DOWNLOADS_REACHED) {
        // ffmpeg (a live stream, a merge) dies of SIGXFSZ at the cap without a word; yt-dlp then reports only
        // that ffmpeg failed. A file at the cap says what happened.
        if sandbox::reached_cap(&dir, file_cap) {
            let limit = task.max_bytes / (1024 * 1024);
            return fail(
                result,
                ErrorType::TooLarge,
                format!("the download grew past the {limit} MB limit and was stopped"),
            );
        }
        let error = classify(&stderr_text);
        return fail(result, error, summarize(&stderr_text, &status));
    }
    match finished_file(&dir, format, task.max_bytes) {
        Ok((path, bytes)) => {
            let (title, duration) = read_info(&dir);
            // Direct links carry no duration in their metadata; the file itself knows it.
            let duration = if duration > 0.0 {
                duration
            } else {
                media_duration(&path, &home).await.unwrap_or(0.0)
            };
            result.ok = true;
            result.file_path = path.display().to_string();
            result.bytes = bytes;
            result.title = title;
            result.duration_seconds = duration;
            result.total_ms = started.elapsed().as_millis() as u64;
            result
        }
        Err((error, message)) => {
            // yt-dlp says it succeeded, yet printed why there is no file (a size limit, no subtitles).
            let error = [&stdout_text, &stderr_text]
                .into_iter()
                .map(|text| classify(text))
                .find(|e| *e != ErrorType::Unknown)
                .unwrap_or(error);
            fail(result, error, message)
        }
    }
}

fn kill_group(pgid: u32) {
    if let Ok(raw) = i32::try_from(pgid)
        && raw > 0
    {
        let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

/// The last ERROR line of stderr (else its last line), for the error message.
fn summarize(stderr: &str, status: &std::process::ExitStatus) -> String {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("ERROR:"))
        .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("");
    let line: String = line.trim().chars().take(500).collect();
    if line.is_empty() {
        format!("yt-dlp failed ({status}) without a message")
    } else {
        line
    }
}

/// Finds the one result file of the format, checks its size and its content.
fn finished_file(dir: &Path, format: Format, max_bytes: u64) -> Result<(PathBuf, u64), (ErrorType, String)> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| (ErrorType::Unknown, format!("cannot read the download directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(format.extension()))
        .collect();
    // Subtitles: English first, then any.
    candidates.sort_by_key(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        (!name.contains(".en"), name.to_string())
    });
    let Some(path) = candidates.into_iter().next() else {
        let what = match format {
            Format::Srt => "no subtitles are available for this video".to_string(),
            _ => format!("yt-dlp finished without producing an {} file", format.extension()),
        };
        let error = if format == Format::Srt {
            ErrorType::Unavailable
        } else {
            ErrorType::Postprocessing
        };
        return Err((error, what));
    };
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if bytes > max_bytes {
        return Err((
            ErrorType::TooLarge,
            format!(
                "the file is {} MB, more than the {} MB limit",
                bytes / 1_000_000,
                max_bytes / 1_000_000
            ),
        ));
    }
    validate::check(&path, format).map_err(|why| (ErrorType::Postprocessing, why))?;
    Ok((path, bytes))
}

/// The duration of a media file by ffprobe (installed with ffmpeg, which yt-dlp needs anyway); subtitles have none.
async fn media_duration(path: &Path, home: &Path) -> Option<f64> {
    let out = tokio::process::Command::new("ffprobe")
        .env_clear()
        .envs(sandbox::environment(home, None))
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out).await.ok()?.ok()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d > 0.0)
}

/// Title and duration from the info file yt-dlp wrote; empty and 0 when absent.
fn read_info(dir: &Path) -> (String, f64) {
    let Ok(text) = std::fs::read_to_string(dir.join(INFO_FILE)) else {
        return (String::new(), 0.0);
    };
    let Some(first) = text.lines().next() else {
        return (String::new(), 0.0);
    };
    let v: serde_json::Value = serde_json::from_str(first).unwrap_or_default();
    let title = v["title"].as_str().unwrap_or("").chars().take(256).collect();
    (title, v["duration"].as_f64().unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(format: &str, quality: &str) -> TaskAssignment {
        TaskAssignment {
            task_id: 7,
            url: "https://example.com/v?a=1&b=$(rm -rf /)".into(),
            format: format.into(),
            quality: quality.into(),
            work_dir: "/spool/task-7".into(),
            timeout_ms: 1000,
            max_bytes: 50_000_000,
            ..Default::default()
        }
    }

    fn args_of(format: &str, quality: &str) -> Vec<String> {
        let t = task(format, quality);
        args(&t, format.parse().unwrap(), Path::new(&t.work_dir), None, None)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn the_proxy_comes_before_the_url_when_there_is_one() {
        let t = task("mp3", "320k");
        let proxy: std::net::SocketAddr = "127.0.0.1:4567".parse().unwrap();
        let a: Vec<String> = args(&t, Format::Mp3, Path::new(&t.work_dir), Some(proxy), None)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let at = a.iter().position(|x| x == "--proxy").expect("--proxy");
        assert_eq!(a[at + 1], "http://127.0.0.1:4567");
        assert!(at < a.iter().position(|x| x == "--").unwrap());
        assert!(
            !args_of("mp3", "320k").contains(&"--proxy".to_string()),
            "none when private hosts are allowed"
        );
    }

    #[test]
    fn isolation_options_are_always_there() {
        for (f, q) in [("mp3", "320k"), ("mp4", "720p"), ("srt", "none")] {
            let a = args_of(f, q);
            assert!(a.contains(&"--no-plugin-dirs".to_string()));
            assert!(a.windows(2).any(|w| w == ["--max-downloads", "1"]));
            if f != "srt" {
                let spec = &a[a.iter().position(|x| x == "--format").unwrap() + 1];
                // Every alternative of the format is limited to proxied protocols.
                for alternative in spec.split(['/', '+']) {
                    assert!(alternative.ends_with(PROXIED), "{alternative}");
                }
            }
        }
    }

    #[test]
    fn cookies_js_runtime_and_extra_options_are_passed_before_the_url() {
        let mut t = task("mp4", "720p");
        t.js_runtime = "/usr/bin/nodejs".into();
        t.extra_args = vec!["--impersonate".into(), "chrome".into()];
        let a: Vec<String> = args(
            &t,
            Format::Mp4,
            Path::new(&t.work_dir),
            None,
            Some(Path::new("/spool/c.txt")),
        )
        .into_iter()
        .map(|s| s.into_string().unwrap())
        .collect();
        assert_eq!(a[..2], ["--impersonate", "chrome"]);
        assert!(a.windows(2).any(|w| w == ["--cookies", "/spool/c.txt"]));
        assert!(
            a.windows(3)
                .any(|w| w == ["--no-js-runtimes", "--js-runtimes", "node:/usr/bin/nodejs"])
        );
        assert_eq!(a[a.len() - 2], "--");
        assert_eq!(
            js_runtime_arg(Path::new("/opt/deno/bin/deno")).unwrap(),
            "deno:/opt/deno/bin/deno"
        );
        assert_eq!(
            js_runtime_arg(Path::new("/usr/bin/qjs")).unwrap(),
            "quickjs:/usr/bin/qjs"
        );
        assert_eq!(js_runtime_arg(Path::new("/usr/bin/python3")), None);
        assert_eq!(js_runtime_arg(Path::new("")), None);
    }

    #[test]
    fn the_url_comes_last_after_a_double_dash_untouched() {
        for (f, q) in [("mp3", "320k"), ("mp4", "720p"), ("srt", "none")] {
            let a = args_of(f, q);
            assert_eq!(a[a.len() - 2], "--");
            assert_eq!(a[a.len() - 1], "https://example.com/v?a=1&b=$(rm -rf /)");
            assert!(a.windows(2).any(|w| w == ["--max-filesize", "50000000"]));
            assert!(a.windows(2).any(|w| w == ["--paths", "/spool/task-7"]));
            assert!(a.contains(&"--ignore-config".to_string()));
        }
    }

    #[test]
    fn each_format_asks_for_what_it_needs() {
        let mp3 = args_of("mp3", "192k");
        assert!(mp3.windows(2).any(|w| w == ["--audio-format", "mp3"]));
        assert!(mp3.windows(2).any(|w| w == ["--audio-quality", "192K"]));
        let mp4 = args_of("mp4", "480p");
        assert!(mp4.windows(2).any(|w| w == ["--format-sort", "res:480"]));
        assert!(mp4.windows(2).any(|w| w == ["--remux-video", "mp4"]));
        assert!(!args_of("mp4", "best").contains(&"--format-sort".to_string()));
        let srt = args_of("srt", "none");
        assert!(srt.contains(&"--skip-download".to_string()));
        assert!(srt.windows(2).any(|w| w == ["--convert-subs", "srt"]));
    }

    #[test]
    fn the_error_message_is_the_last_error_line() {
        use std::os::unix::process::ExitStatusExt;
        let status = std::process::ExitStatus::from_raw(256);
        assert_eq!(
            summarize("WARNING: a\nERROR: first\nERROR: second\ntrailer", &status),
            "ERROR: second"
        );
        assert_eq!(summarize("just this\n", &status), "just this");
        assert!(summarize("", &status).contains("without a message"));
    }
}
