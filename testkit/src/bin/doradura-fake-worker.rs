//! A stand-in for `doradura-worker` that speaks the real `WorkerLink` protocol but misbehaves on purpose, for the
//! supervisor's tests. It takes the real worker's arguments, says hello with its pid, answers every ping, accepts a
//! task, reports it started with a "yt-dlp" of its own (a `sleep` in a process group of its own, as the real worker
//! runs yt-dlp), and then never finishes it: the supervisor's own task deadline is what ends it.
//!
//! Every step is written to stderr (the daemon's log) as `fake-worker: ...`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use doradura_proto::worker_link_client::WorkerLinkClient;
use doradura_proto::{Hello, Pong, TaskStarted, WorkerMessage, supervisor_message, worker_message};
use tokio_stream::wrappers::ReceiverStream;

fn message(kind: worker_message::Kind) -> WorkerMessage {
    WorkerMessage { kind: Some(kind) }
}

/// `--id N --socket PATH`; the real worker's other arguments are accepted and ignored.
fn args() -> Option<(u32, PathBuf)> {
    let mut id = None;
    let mut socket = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--id" => id = it.next()?.parse().ok(),
            "--socket" => socket = it.next().map(PathBuf::from),
            _ => {}
        }
    }
    Some((id?, socket?))
}

/// A long sleep in a process group of its own, killed if this process dies: the "yt-dlp" of a held task.
fn stand_in_ytdlp() -> std::io::Result<std::process::Child> {
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("300").process_group(0);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    cmd.spawn()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some((id, socket)) = args() else {
        eprintln!("fake-worker: usage: doradura-fake-worker --id N --socket PATH");
        return ExitCode::from(2);
    };
    let pid = std::process::id();
    let channel = match doradura_proto::connect_unix(&socket).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fake-worker: cannot connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let hello = Hello {
        worker_id: id,
        pid,
        worker_version: "fake".into(),
        ytdlp_version: "fake".into(),
        ytdlp_error: String::new(),
    };
    let _ = tx.send(message(worker_message::Kind::Hello(hello))).await;
    let mut inbound = match WorkerLinkClient::new(channel).attach(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(e) => {
            eprintln!("fake-worker: hello refused: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("fake-worker: worker {id} pid {pid} said hello");
    // Held tasks' stand-ins live as long as this process.
    let mut held = Vec::new();
    while let Ok(Some(msg)) = inbound.message().await {
        let reply = match msg.kind {
            Some(supervisor_message::Kind::Ping(p)) => worker_message::Kind::Pong(Pong { seq: p.seq }),
            Some(supervisor_message::Kind::Task(task)) => {
                let ytdlp = match stand_in_ytdlp() {
                    Ok(child) => child,
                    Err(e) => {
                        eprintln!("fake-worker: cannot start the stand-in: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                eprintln!(
                    "fake-worker: pid {pid} holds task {} (yt-dlp stand-in pid {}); it will never finish",
                    task.task_id,
                    ytdlp.id()
                );
                let started = TaskStarted {
                    task_id: task.task_id,
                    ytdlp_pgid: ytdlp.id(),
                };
                held.push(ytdlp);
                worker_message::Kind::Started(started)
            }
            Some(supervisor_message::Kind::Shutdown(_)) => {
                eprintln!("fake-worker: pid {pid} asked to shut down");
                return ExitCode::SUCCESS;
            }
            // Cancels are ignored too: only the deadline takes the task back.
            _ => continue,
        };
        if tx.send(message(reply)).await.is_err() {
            break;
        }
    }
    eprintln!("fake-worker: pid {pid}: the supervisor closed the stream");
    ExitCode::SUCCESS
}
