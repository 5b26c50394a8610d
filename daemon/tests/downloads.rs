//! The download pipeline end to end: doradurctl → doradurad's queue → a worker → real yt-dlp and ffmpeg against a
//! media site on loopback (or a fake yt-dlp for faults no real site produces).

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::Duration;

use doradura_testkit::media::{MediaSite, hanging_ytdlp, ytdlp};
use doradura_testkit::{Daemon, DaemonBuilder, alive, children, script, signal, wait_for};
use nix::sys::signal::Signal;
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn builder() -> DaemonBuilder {
    Daemon::builder()
        .env("WORKER_HEARTBEAT_INTERVAL", "200ms")
        .env("WORKER_HEARTBEAT_TIMEOUT", "2s")
        .env("WORKER_BACKOFF_INITIAL", "100ms")
        .env("TASK_RETRY_BACKOFF", "100ms")
        .env("DOWNLOAD_ALLOW_PRIVATE_HOSTS", "true")
        .env("YTDLP_PATH", ytdlp())
}

/// A daemon with the real yt-dlp and a media site.
fn with_site(b: DaemonBuilder) -> (MediaSite, Daemon) {
    let site = MediaSite::start(&b.dir().join("site"));
    let d = b.start();
    d.wait_idle(T);
    (site, d)
}

fn out_dir(d: &Daemon, name: &str) -> PathBuf {
    d.dir.path().join(name)
}

fn download(d: &Daemon, url: &str, format: &str, quality: Option<&str>, out: &Path) -> Output {
    let mut args = vec![
        "--json",
        "download",
        url,
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
    ];
    if let Some(q) = quality {
        args.extend(["--quality", q]);
    }
    d.ctl(args)
}

fn spawn_download(d: &Daemon, url: &str, format: &str, quality: &str, out: &Path) -> Child {
    d.ctl_spawn([
        "--json",
        "download",
        url,
        "--format",
        format,
        "--quality",
        quality,
        "--out",
        out.to_str().unwrap(),
    ])
}

/// The JSON line doradurctl prints at the end of a download.
fn result(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| {
        panic!("no result; stderr: {}", String::from_utf8_lossy(&out.stderr));
    });
    serde_json::from_str(line).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ffprobe` of a file: its container and its streams' codecs and heights.
fn probe(path: &Path) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=format_name:stream=codec_type,codec_name,height",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe is installed with ffmpeg");
    assert!(
        out.status.success(),
        "ffprobe rejects {}: {}",
        path.display(),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn db(d: &Daemon) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(d.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// (state, attempts, error_type) of a task.
fn task_row(d: &Daemon, id: u64) -> (String, u32, Option<String>) {
    db(d)
        .query_row(
            "SELECT state, attempts, error_type FROM download_tasks WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

/// Waits until the one worker runs a task that made progress; returns (worker pid, task id).
fn wait_busy(d: &Daemon, min_progress: f64) -> (u32, u64) {
    wait_for(T, "a busy worker", || {
        let status = d.status()?;
        status["workers"].as_array()?.iter().find_map(|w| {
            let busy = w["state"] == "busy" && w["current_progress"].as_f64().unwrap_or(0.0) >= min_progress;
            busy.then(|| (w["pid"].as_u64().unwrap() as u32, w["current_task"].as_u64().unwrap()))
        })
    })
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn mp3_mp4_and_srt_come_out_of_real_ytdlp_and_are_valid() {
    let (site, d) = with_site(builder());
    let out = out_dir(&d, "out");

    let mp3 = download(&d, &site.url("clip.mp4"), "mp3", Some("192k"), &out);
    assert!(mp3.status.success(), "{}", stderr(&mp3));
    let r = result(&mp3);
    let path = PathBuf::from(r["path"].as_str().unwrap());
    let p = probe(&path);
    assert_eq!(p["format"]["format_name"], "mp3", "{p}");
    assert_eq!(p["streams"][0]["codec_name"], "mp3");
    assert_eq!(r["bytes"].as_u64().unwrap(), std::fs::metadata(&path).unwrap().len());
    assert!((r["duration_seconds"].as_f64().unwrap() - 3.0).abs() < 0.5, "{r}");
    assert!(d.spool_entries().is_empty(), "{:?}", d.spool_entries());

    let mp4 = download(&d, &site.url("clip.mp4"), "mp4", Some("360p"), &out);
    assert!(mp4.status.success(), "{}", stderr(&mp4));
    let path = PathBuf::from(result(&mp4)["path"].as_str().unwrap());
    let p = probe(&path);
    assert!(p["format"]["format_name"].as_str().unwrap().contains("mp4"), "{p}");
    let video = p["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert!(video["height"].as_u64().unwrap() <= 360);
    assert!(d.spool_entries().is_empty());

    let srt = download(&d, &site.url("page.html"), "srt", None, &out);
    assert!(srt.status.success(), "{}", stderr(&srt));
    let path = PathBuf::from(result(&srt)["path"].as_str().unwrap());
    assert!(path.to_str().unwrap().ends_with(".srt"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("1\n00:00:00,000 --> 00:00:01,500\nHello from doradura"),
        "{text}"
    );
    let p = probe(&path);
    assert_eq!(p["streams"][0]["codec_name"], "subrip");
    assert!(d.spool_entries().is_empty());

    // Each task is in the history with its timings.
    let rows: Vec<(String, String, i64, i64, i64, i64)> = db(&d)
        .prepare("SELECT format, state, bytes, queue_wait_ms, ytdlp_ms, total_ms FROM download_tasks ORDER BY id")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["mp3", "mp4", "srt"]
    );
    for (_, state, bytes, wait, ytdlp_ms, total) in &rows {
        assert_eq!(state, "done");
        assert!(
            *bytes > 0 && *wait >= 0 && *ytdlp_ms > 0 && *total >= *ytdlp_ms,
            "{rows:?}"
        );
    }
    // The workers report the real yt-dlp's version.
    let version = d.status().unwrap()["workers"][0]["ytdlp_version"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(version.starts_with("20"), "{version}");
}

#[test]
fn a_worker_killed_mid_download_loses_nothing_and_the_file_comes_out_once() {
    let (site, d) = with_site(builder().env("WORKERS", "1"));
    let out = out_dir(&d, "out");
    let ctl = spawn_download(&d, &site.url("slow.mp4"), "mp4", "best", &out);
    let (worker, task) = wait_busy(&d, 1.0);
    let ytdlp_pids = children(worker);
    assert!(!ytdlp_pids.is_empty(), "yt-dlp runs under the worker");
    signal(worker, Signal::SIGKILL);
    // The supervisor kills the dead worker's yt-dlp group too.
    for pid in &ytdlp_pids {
        wait_for(T, "the orphaned yt-dlp to be killed", || (!alive(*pid)).then_some(()));
    }
    let output = finish(ctl);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(result(&output)["task_id"], task);
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(files.len(), 1, "exactly one file comes out");
    assert_eq!(task_row(&d, task), ("done".into(), 2, None));
    assert!(site.hits("/slow.mp4") >= 2, "the download ran again");
    let w = &d.workers().unwrap()[0];
    assert_eq!((w.restarts, w.state.as_str()), (1, "idle"));
    assert!(d.spool_entries().is_empty());
}

#[test]
fn a_daemon_restarted_with_tasks_queued_finishes_them() {
    let (site, mut d) = with_site(builder().env("WORKERS", "1").env("SHUTDOWN_GRACE_PERIOD", "200ms"));
    let out = out_dir(&d, "out");
    let url = site.url("slow.mp4");
    let ctls: Vec<Child> = [("mp4", "best"), ("mp4", "720p"), ("mp3", "128k")]
        .iter()
        .map(|(f, q)| spawn_download(&d, &url, f, q, &out))
        .collect();
    wait_for(T, "one running and two queued", || {
        let n: (u32, u32) = db(&d)
            .query_row(
                "SELECT SUM(state = 'running'), SUM(state = 'queued') FROM download_tasks",
                [],
                |r| {
                    Ok((
                        r.get::<_, Option<u32>>(0)?.unwrap_or(0),
                        r.get::<_, Option<u32>>(1)?.unwrap_or(0),
                    ))
                },
            )
            .ok()?;
        (n == (1, 2)).then_some(())
    });
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(T).success(), "{}", d.log());
    for ctl in ctls {
        let output = finish(ctl);
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains("resumes when the daemon is back"),
            "{}",
            stderr(&output)
        );
    }
    // Persisted, none lost, and the interrupted attempt not charged.
    let states: Vec<(String, u32)> = db(&d)
        .prepare("SELECT state, attempts FROM download_tasks ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(states, vec![("queued".to_string(), 0); 3]);

    d.restart();
    wait_for(T, "all three tasks done after the restart", || {
        let done: u32 = db(&d)
            .query_row(
                "SELECT COUNT(*) FROM download_tasks WHERE state = 'done' AND attempts = 1",
                [],
                |r| r.get(0),
            )
            .ok()?;
        (done == 3).then_some(())
    });
    // Nobody was there to receive them: the files were removed, nothing accumulates.
    wait_for(T, "an empty spool", || d.spool_entries().is_empty().then_some(()));
}

#[test]
fn a_daemon_killed_with_sigkill_finishes_every_task_once_after_the_restart() {
    let (site, mut d) = with_site(builder().env("WORKERS", "1").metrics_on());
    let out = out_dir(&d, "out");
    // One slow download running when the daemon dies, two quick ones waiting behind it.
    let first = spawn_download(&d, &site.url("slow.mp4"), "mp4", "best", &out);
    let (worker, _) = wait_busy(&d, 0.0);
    let ctls: Vec<Child> = [("mp4", "720p"), ("mp3", "128k")]
        .iter()
        .map(|(f, q)| spawn_download(&d, &site.url("clip.mp4"), f, q, &out))
        .chain([first])
        .collect();
    wait_for(T, "two tasks waiting", || {
        let queued: u32 = db(&d)
            .query_row("SELECT COUNT(*) FROM download_tasks WHERE state = 'queued'", [], |r| {
                r.get(0)
            })
            .ok()?;
        (queued == 2).then_some(())
    });
    d.signal(Signal::SIGKILL);
    assert!(!d.wait_exit(T).success());
    // The worker and its yt-dlp die with the supervisor (PR_SET_PDEATHSIG and the process group).
    wait_for(T, "the orphaned worker gone", || {
        (!doradura_testkit::alive(worker)).then_some(())
    });
    for ctl in ctls {
        assert!(!finish(ctl).status.success());
    }
    d.restart();
    // A generous deadline: the suite runs many real downloads side by side on two cores.
    wait_for(3 * T, "all three tasks done after the restart", || {
        let done: u32 = db(&d)
            .query_row("SELECT COUNT(*) FROM download_tasks WHERE state = 'done'", [], |r| {
                r.get(0)
            })
            .ok()?;
        (done == 3).then_some(())
    });
    let rows: u32 = db(&d)
        .query_row("SELECT COUNT(*) FROM download_tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3, "no task doubled");
    // The success counter is restored from the database: it counts each file once and never went back.
    let metrics = doradura_testkit::http_get(&d.metrics_address(), "/metrics", &[])
        .unwrap()
        .1;
    let successes: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("doradura_download_success_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(successes, 3.0);
}

#[test]
fn a_redirect_to_a_private_address_is_refused_by_the_workers_proxy() {
    // Private hosts are refused (the default), except the media site the operator listed.
    let b = Daemon::builder().env("YTDLP_PATH", ytdlp());
    let site = MediaSite::start(&b.dir().join("site"));
    let other = MediaSite::start(&b.dir().join("other"));
    let d = b.env("DOWNLOAD_ALLOWED_HOSTS", site.addr.to_string()).start();
    d.wait_idle(T);
    let out = out_dir(&d, "out");
    // The listed site works, through the proxy.
    let ok = download(&d, &site.url("clip.mp4"), "mp3", Some("128k"), &out);
    assert!(ok.status.success(), "{}", stderr(&ok));
    // A redirect from it to a private address that is not listed: refused, and nothing reaches that address.
    let hop = format!("{}?to={}", site.url("redirect"), other.url("clip.mp4"));
    let refused = download(&d, &hop, "mp3", Some("128k"), &out);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("unavailable"), "{}", stderr(&refused));
    assert_eq!(other.hits("/clip.mp4"), 0, "the private address was never contacted");
    let (_, _, error) = task_row(&d, 2);
    assert_eq!(error.as_deref(), Some("unavailable"));
    // The same private site named directly is refused before anything is queued.
    let direct = download(&d, &other.url("clip.mp4"), "mp3", Some("128k"), &out);
    assert!(
        stderr(&direct).contains("points to a private or local address"),
        "{}",
        stderr(&direct)
    );
    assert_eq!(
        db(&d)
            .query_row("SELECT COUNT(*) FROM download_tasks", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        2
    );
}

fn read_pid(path: &Path) -> u32 {
    wait_for(T, "a pid file", || {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    })
}

#[test]
fn a_hung_ytdlp_is_killed_at_the_timeout_with_its_children() {
    let b = builder().env("DOWNLOAD_TIMEOUT", "2");
    let fake = hanging_ytdlp(b.dir());
    let dir = b.dir().to_path_buf();
    let d = b.env("YTDLP_PATH", &fake).start();
    d.wait_idle(T);
    let out = download(&d, "http://media.invalid/clip.mp4", "mp3", None, &out_dir(&d, "out"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("failed (timeout): the download took longer than 2s"),
        "{}",
        stderr(&out)
    );
    for pid in [read_pid(&dir.join("ytdlp.pid")), read_pid(&dir.join("child.pid"))] {
        wait_for(T, "the hung processes to be gone", || (!alive(pid)).then_some(()));
    }
    assert_eq!(task_row(&d, 1), ("failed".into(), 1, Some("timeout".into())));
    // The worker survived its task.
    assert_eq!(d.workers().unwrap()[0].restarts, 0);
}

#[test]
fn cancel_stops_a_running_download_and_removes_a_waiting_one() {
    let b = builder().env("WORKERS", "1");
    let fake = hanging_ytdlp(b.dir());
    let dir = b.dir().to_path_buf();
    let d = b.env("YTDLP_PATH", &fake).start();
    let worker_before = d.wait_idle(T)[0].pid;
    let out = out_dir(&d, "out");
    let running = spawn_download(&d, "http://media.invalid/a.mp4", "mp3", "320k", &out);
    let task = wait_for(T, "the task to start", || {
        let w = d.status()?["workers"][0].clone();
        (w["state"] == "busy").then(|| w["current_task"].as_u64().unwrap())
    });
    let ytdlp = read_pid(&dir.join("ytdlp.pid"));
    let child = read_pid(&dir.join("child.pid"));
    let waiting = spawn_download(&d, "http://media.invalid/b.mp4", "mp3", "320k", &out);
    wait_for(T, "the second task to be queued", || {
        let q: Value = serde_json::from_slice(&d.ctl(["--json", "queue"]).stdout).ok()?;
        (q.as_array()?.len() == 2).then_some(())
    });

    let c = d.ctl(["cancel", &(task + 1).to_string()]);
    assert!(c.status.success());
    assert_eq!(
        String::from_utf8_lossy(&c.stdout).trim(),
        format!("task {} cancelled", task + 1)
    );
    let output = finish(waiting);
    assert!(stderr(&output).contains("failed (cancelled)"), "{}", stderr(&output));

    let c = d.ctl(["cancel", &task.to_string()]);
    assert!(c.status.success());
    assert!(String::from_utf8_lossy(&c.stdout).contains("being stopped"));
    let output = finish(running);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("failed (cancelled)"), "{}", stderr(&output));
    for pid in [ytdlp, child] {
        wait_for(T, "yt-dlp and its child to be killed", || (!alive(pid)).then_some(()));
    }
    assert_eq!(task_row(&d, task).0, "cancelled");
    assert_eq!(task_row(&d, task + 1).0, "cancelled");
    let w = d.wait_idle(T);
    assert_eq!(w[0].pid, worker_before, "cancelling does not cost the worker its life");

    let again = d.ctl(["cancel", &task.to_string()]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("has already finished"));
    let missing = d.ctl(["cancel", "999"]);
    assert!(stderr(&missing).contains("there is no task 999"));
}

#[test]
fn real_failures_map_to_their_error_types() {
    let (site, d) = with_site(builder().env("MAX_FILE_SIZE_MB", "1").env("DOWNLOAD_TIMEOUT", "4"));
    let out = out_dir(&d, "out");
    for (path, format, want) in [
        ("missing.mp4", "mp3", "unavailable"),
        ("big.mp4", "mp4", "too_large"),
        ("stall.mp4", "mp4", "timeout"),
        ("about.html", "mp4", "unsupported_url"),
        // A subtitle file cannot be remuxed into an mp4.
        ("clip.vtt", "mp4", "postprocessing"),
    ] {
        let o = download(&d, &site.url(path), format, None, &out);
        assert!(!o.status.success(), "{path}");
        assert!(
            stderr(&o).contains(&format!("failed ({want})")),
            "{path}: {}",
            stderr(&o)
        );
    }
    assert!(d.spool_entries().is_empty(), "{:?}", d.spool_entries());
}

#[test]
fn errors_no_real_site_produces_map_to_their_error_types() {
    let b = builder().env("TASK_MAX_ATTEMPTS", "1").env("MAX_FILE_SIZE_MB", "1");
    let fake = b.dir().join("failing-yt-dlp");
    script(
        &fake,
        "[ \"$1\" = --version ] && { echo 2099.01.01; exit 0; }\n\
         for last; do :; done\n\
         case \"$last\" in\n\
           *geo*) echo 'ERROR: [youtube] x: The uploader has not made this video available in your country' >&2 ;;\n\
           *age*) echo 'ERROR: [youtube] x: Sign in to confirm your age. This video may be inappropriate for some users.' >&2 ;;\n\
           *auth*) echo 'ERROR: [instagram] x: login required' >&2 ;;\n\
           *net*) echo 'ERROR: [generic] Unable to download webpage: <urlopen error [Errno 111] Connection refused>' >&2 ;;\n\
           *post*) echo 'ERROR: Postprocessing: Conversion failed!' >&2 ;;\n\
           *disk*) echo 'ERROR: unable to write data: [Errno 28] No space left on device' >&2 ;;\n\
           *junk*) printf '\\377\\376 \\033[31m not utf-8 at all\\n' >&2 ;;\n\
           *ok-but-nothing*) exit 0 ;;\n\
           *huge*|*fake*) while [ $# -gt 0 ]; do [ \"$1\" = --paths ] && dir=\"$2\"; shift; done\n\
             case \"$last\" in *huge*) head -c 2000000 /dev/zero > \"$dir/media.mp3\" ;;\n\
               *) echo '<html>not audio</html>' > \"$dir/media.mp3\" ;; esac\n\
             exit 0 ;;\n\
         esac\n\
         exit 1",
    );
    let d = b.env("YTDLP_PATH", &fake).start();
    d.wait_idle(T);
    let out = out_dir(&d, "out");
    for (case, want) in [
        ("geo", "geo_blocked"),
        ("age", "age_restricted"),
        ("auth", "auth_required"),
        ("net", "network"),
        ("post", "postprocessing"),
        ("disk", "disk_full"),
        ("junk", "unknown"),
        ("ok-but-nothing", "postprocessing"),
        // A file past MAX_FILE_SIZE_MB that yt-dlp could not size beforehand, and one that is not what it claims.
        ("huge", "too_large"),
        ("fake", "postprocessing"),
    ] {
        let o = download(&d, &format!("http://media.invalid/{case}"), "mp3", None, &out);
        assert!(!o.status.success(), "{case}");
        assert!(
            stderr(&o).contains(&format!("failed ({want})")),
            "{case}: {}",
            stderr(&o)
        );
    }
    let n: u32 = db(&d)
        .query_row("SELECT COUNT(*) FROM download_tasks WHERE state = 'failed'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 10);
    assert!(d.spool_entries().is_empty(), "{:?}", d.spool_entries());
}

#[test]
fn a_missing_ytdlp_is_reported_as_such() {
    let d = builder()
        .env("YTDLP_PATH", "/nonexistent/yt-dlp")
        .env("WORKERS", "1")
        .start();
    let w = d.wait_idle(T);
    assert_eq!(w.len(), 1);
    assert_eq!(d.status().unwrap()["workers"][0]["ytdlp_version"], Value::Null);
    let o = download(&d, "http://media.invalid/a.mp4", "mp3", None, &out_dir(&d, "out"));
    assert!(
        stderr(&o).contains("failed (ytdlp_missing): cannot run /nonexistent/yt-dlp"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_transient_failure_is_retried_and_then_succeeds() {
    let b = builder().env("TASK_RETRY_BACKOFF", "100ms");
    // A prepared mp3 that the fake hands over on its second run.
    let mp3 = b.dir().join("ready.mp3");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-c:a",
            "libmp3lame",
        ])
        .arg(&mp3)
        .output()
        .unwrap();
    assert!(made.status.success());
    let count = b.dir().join("runs");
    let fake = b.dir().join("flaky-yt-dlp");
    script(
        &fake,
        &format!(
            "[ \"$1\" = --version ] && {{ echo 2099.01.01; exit 0; }}\n\
             echo run >> {count}\n\
             if [ \"$(wc -l < {count})\" -lt 2 ]; then echo 'ERROR: Connection reset by peer' >&2; exit 1; fi\n\
             while [ $# -gt 0 ]; do [ \"$1\" = --paths ] && dir=\"$2\"; shift; done\n\
             cp {mp3} \"$dir/media.mp3\"",
            count = count.display(),
            mp3 = mp3.display()
        ),
    );
    let d = b.env("YTDLP_PATH", &fake).start();
    d.wait_idle(T);
    let o = download(&d, "http://media.invalid/flaky", "mp3", None, &out_dir(&d, "out"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 2);
    assert_eq!(task_row(&d, 1), ("done".into(), 2, None));
}

#[test]
fn file_and_private_urls_are_refused_by_default_and_nothing_is_queued() {
    let b = Daemon::builder().env("YTDLP_PATH", ytdlp());
    let site = MediaSite::start(&b.dir().join("site"));
    let d = b.start();
    d.wait_idle(T);
    let out = out_dir(&d, "out");
    for (url, says) in [
        (
            "file:///etc/passwd".to_string(),
            "only http:// and https:// links can be downloaded, not file:",
        ),
        (
            site.url("clip.mp4"),
            "points to a private or local address; such links are refused",
        ),
        ("http://localhost/x".to_string(), "private or local address"),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "private or local address",
        ),
        ("https://user:secret@example.com/v".to_string(), "user name or password"),
        ("not a url".to_string(), "not a valid link"),
        (
            format!("https://example.com/{}", "a".repeat(3000)),
            "the link is too long",
        ),
    ] {
        let o = download(&d, &url, "mp3", None, &out);
        assert!(!o.status.success(), "{url}");
        assert!(stderr(&o).contains(says), "{url}: {}", stderr(&o));
    }
    let bad_format = download(&d, "https://example.com/v", "flac", None, &out);
    assert!(stderr(&bad_format).contains("unknown format \"flac\" (one of: mp3, mp4, srt)"));
    let bad_quality = download(&d, "https://example.com/v", "mp3", Some("999k"), &out);
    assert!(stderr(&bad_quality).contains("one of: 320k, 256k, 192k, 128k"));
    let n: u32 = db(&d)
        .query_row("SELECT COUNT(*) FROM download_tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(site.hits("/clip.mp4"), 0);
}

#[test]
fn identical_downloads_in_flight_run_once_and_both_get_the_file() {
    let b = builder().env("WORKERS", "2");
    let log = b.dir().join("invocations");
    let wrapper = b.dir().join("counting-yt-dlp");
    script(
        &wrapper,
        &format!(
            "[ \"$1\" = --version ] || echo run >> {}\nexec {} \"$@\"",
            log.display(),
            ytdlp().display()
        ),
    );
    let (site, d) = with_site(b.env("YTDLP_PATH", &wrapper));
    let url = site.url("slow.mp4");
    let first = spawn_download(&d, &url, "mp4", "best", &out_dir(&d, "a"));
    wait_busy(&d, 0.0);
    let second = spawn_download(&d, &url, "mp4", "best", &out_dir(&d, "b"));
    let (a, b) = (finish(first), finish(second));
    assert!(
        a.status.success() && b.status.success(),
        "{} {}",
        stderr(&a),
        stderr(&b)
    );
    assert!(
        stderr(&b).contains("joined an identical download already in flight"),
        "{}",
        stderr(&b)
    );
    assert_eq!(result(&a)["task_id"], result(&b)["task_id"]);
    let fa = std::fs::read(result(&a)["path"].as_str().unwrap()).unwrap();
    let fb = std::fs::read(result(&b)["path"].as_str().unwrap()).unwrap();
    assert_eq!(fa, fb);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        1,
        "yt-dlp ran once"
    );
    assert!(d.spool_entries().is_empty());
}

#[test]
fn the_queue_lists_priorities_positions_and_refuses_when_full() {
    let b = builder().env("WORKERS", "1").env("QUEUE_MAX_SIZE", "3");
    let fake = hanging_ytdlp(b.dir());
    let d = b.env("YTDLP_PATH", &fake).start();
    d.wait_idle(T);
    let out = out_dir(&d, "out");
    let mut ctls = vec![];
    for (name, priority) in [("first", "low"), ("second", "low"), ("third", "high")] {
        ctls.push(d.ctl_spawn([
            "download",
            &format!("http://media.invalid/{name}"),
            "--priority",
            priority,
            "--out",
            out.to_str().unwrap(),
        ]));
        wait_for(T, "the request to be queued", || {
            let q: Value = serde_json::from_slice(&d.ctl(["--json", "queue"]).stdout).ok()?;
            q.as_array()?
                .iter()
                .any(|e| e["url"].as_str().is_some_and(|u| u.ends_with(name)))
                .then_some(())
        });
    }
    let q: Value = serde_json::from_slice(&d.ctl(["--json", "queue"]).stdout).unwrap();
    let rows: Vec<(String, String, Value)> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let url = e["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
            (url, e["state"].as_str().unwrap().to_string(), e["position"].clone())
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("first".into(), "running".into(), Value::Null),
            ("third".into(), "queued".into(), Value::from(0)),
            ("second".into(), "queued".into(), Value::from(1)),
        ]
    );
    let table = String::from_utf8(d.ctl(["queue"]).stdout).unwrap();
    assert!(
        table.lines().any(|l| l.contains("third") && l.contains("high")),
        "{table}"
    );
    let status = d.status().unwrap();
    assert_eq!(status["workers"][0]["current_task"], 1);

    let full = download(&d, "http://media.invalid/fourth", "mp3", None, &out);
    assert!(
        stderr(&full).contains("the queue is full (3 tasks waiting or running)"),
        "{}",
        stderr(&full)
    );
    for c in ctls {
        let mut c = c;
        let _ = c.kill();
        let _ = c.wait();
    }
}
