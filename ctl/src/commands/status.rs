//! `doradurctl status`: the daemon and its workers, as a table or JSON.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, Table};
use doradura_proto::control_client::ControlClient;
use doradura_proto::types::WorkerPhase;
use doradura_proto::{StatusReply, StatusRequest};
use serde::Serialize;
use tonic::transport::Channel;

use super::{human_bytes, human_duration};

/// A worker's state as the daemon named it; `None` for a name this doradurctl does not know (a newer daemon),
/// which is shown as it came, without timings.
fn phase(state: &str) -> Option<WorkerPhase> {
    state.parse().ok()
}

#[derive(Serialize)]
struct StatusJson<'a> {
    version: &'a str,
    uptime_seconds: u64,
    pid: u32,
    state: &'a str,
    database: DatabaseJson<'a>,
    metrics_address: Option<&'a str>,
    /// `None` from a daemon that does not report it.
    spool: Option<SpoolJson<'a>>,
    workers: Vec<WorkerJson<'a>>,
}

#[derive(Serialize)]
struct SpoolJson<'a> {
    has_room: bool,
    free_bytes: Option<u64>,
    required_bytes: u64,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct DatabaseJson<'a> {
    path: &'a str,
    schema_version: u32,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct WorkerJson<'a> {
    id: u32,
    pid: Option<u32>,
    state: &'a str,
    restarts: u32,
    consecutive_failures: u32,
    ytdlp_version: Option<&'a str>,
    /// `YYYY-MM-DD`: yt-dlp versions are release dates.
    ytdlp_release_date: Option<&'a str>,
    ytdlp_release_age_days: Option<u32>,
    last_exit: Option<&'a str>,
    connected_seconds: u64,
    next_start_in_seconds: Option<u64>,
    current_task: Option<u64>,
    current_progress: Option<f32>,
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn to_json(r: &StatusReply) -> StatusJson<'_> {
    StatusJson {
        version: &r.version,
        uptime_seconds: r.uptime_seconds,
        pid: r.pid,
        state: &r.daemon_state,
        database: DatabaseJson {
            path: &r.database_path,
            schema_version: r.schema_version,
            error: non_empty(&r.database_error),
        },
        metrics_address: non_empty(&r.metrics_address),
        spool: r.spool.as_ref().map(|s| SpoolJson {
            has_room: s.has_room,
            free_bytes: s.error.is_empty().then_some(s.free_bytes),
            required_bytes: s.required_bytes,
            error: non_empty(&s.error),
        }),
        workers: r
            .workers
            .iter()
            .map(|w| WorkerJson {
                id: w.id,
                pid: (w.pid != 0).then_some(w.pid),
                state: &w.state,
                restarts: w.restarts,
                consecutive_failures: w.consecutive_failures,
                ytdlp_version: non_empty(&w.ytdlp_version),
                ytdlp_release_date: non_empty(&w.ytdlp_release_date),
                ytdlp_release_age_days: w.ytdlp_release_age_days,
                last_exit: non_empty(&w.last_exit),
                connected_seconds: w.connected_seconds,
                next_start_in_seconds: phase(&w.state)
                    .is_some_and(WorkerPhase::is_waiting_to_start)
                    .then_some(w.next_start_in_seconds),
                current_task: (w.current_task != 0).then_some(w.current_task),
                current_progress: (w.current_task != 0).then_some(w.current_progress),
            })
            .collect(),
    }
}

fn render(r: &StatusReply) -> String {
    let mut out = format!(
        "doradurad {} (pid {}): {}, up {}\n",
        r.version,
        r.pid,
        r.daemon_state,
        human_duration(r.uptime_seconds)
    );
    if r.database_error.is_empty() {
        out.push_str(&format!(
            "database: {} (schema v{})\n",
            r.database_path, r.schema_version
        ));
    } else {
        out.push_str(&format!(
            "database: {} — ERROR: {}\n",
            r.database_path, r.database_error
        ));
    }
    if let Some(s) = &r.spool {
        let room = if s.error.is_empty() {
            format!(
                "{} free, {} needed for the next download",
                human_bytes(s.free_bytes),
                human_bytes(s.required_bytes)
            )
        } else {
            format!("cannot be measured: {}", doradura_proto::text::clean(&s.error))
        };
        if s.has_room {
            out.push_str(&format!("spool: {room}\n"));
        } else {
            out.push_str(&format!(
                "spool: LOW ON SPACE — {room}; downloads wait in the queue (free space in DOWNLOAD_DIR)\n"
            ));
        }
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "WORKER",
        "PID",
        "STATE",
        "TASK",
        "RESTARTS",
        "YT-DLP",
        "LAST EXIT",
        "UP / NEXT START",
    ]);
    for w in &r.workers {
        let timing = match phase(&w.state) {
            Some(p) if p.is_connected() => human_duration(w.connected_seconds),
            Some(p) if p.is_waiting_to_start() => format!("in {}", human_duration(w.next_start_in_seconds)),
            _ => "-".into(),
        };
        table.add_row([
            Cell::new(w.id),
            Cell::new(if w.pid == 0 { "-".to_string() } else { w.pid.to_string() }),
            Cell::new(&w.state),
            Cell::new(if w.current_task == 0 {
                "-".to_string()
            } else {
                format!("{} ({:.0}%)", w.current_task, w.current_progress)
            }),
            Cell::new(w.restarts),
            Cell::new(match (non_empty(&w.ytdlp_version), w.ytdlp_release_age_days) {
                (None, _) => "missing".to_string(),
                (Some(v), Some(age)) => format!("{v} ({age} days old)"),
                (Some(v), None) => v.to_string(),
            }),
            Cell::new(non_empty(&w.last_exit).unwrap_or("-")),
            Cell::new(timing),
        ]);
    }
    out.push_str(&table.to_string());
    out.push('\n');
    let looping: Vec<String> = r
        .workers
        .iter()
        .filter(|w| phase(&w.state) == Some(WorkerPhase::CrashLoop))
        .map(|w| w.id.to_string())
        .collect();
    if !looping.is_empty() {
        out.push_str(&format!(
            "warning: worker {} crash-looping (see the daemon's log)\n",
            looping.join(", ")
        ));
    }
    out
}

pub async fn run(channel: Channel, json: bool) -> anyhow::Result<()> {
    let reply = ControlClient::new(channel).status(StatusRequest {}).await?.into_inner();
    if json {
        println!("{}", serde_json::to_string_pretty(&to_json(&reply))?);
    } else {
        print!("{}", render(&reply));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use doradura_proto::WorkerStatus;

    fn reply() -> StatusReply {
        StatusReply {
            version: "1.2.3".into(),
            uptime_seconds: 65,
            pid: 100,
            daemon_state: "ready".into(),
            database_path: "/var/lib/doradura/doradura.db".into(),
            schema_version: 2,
            database_error: String::new(),
            metrics_address: "127.0.0.1:9090".into(),
            spool: Some(doradura_proto::SpoolRoom {
                has_room: true,
                free_bytes: 3 << 30,
                required_bytes: 612 << 20,
                error: String::new(),
            }),
            workers: vec![
                WorkerStatus {
                    id: 0,
                    pid: 101,
                    restarts: 1,
                    ytdlp_version: "2026.10.26".into(),
                    ytdlp_release_date: "2026-10-26".into(),
                    ytdlp_release_age_days: Some(36),
                    last_exit: "signal SIGKILL".into(),
                    connected_seconds: 30,
                    state: "busy".into(),
                    current_task: 5,
                    current_progress: 42.4,
                    ..Default::default()
                },
                WorkerStatus {
                    id: 1,
                    pid: 0,
                    state: "crash_loop".into(),
                    restarts: 5,
                    consecutive_failures: 5,
                    last_exit: "exit 1".into(),
                    next_start_in_seconds: 290,
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn json_has_the_documented_fields() {
        let v: serde_json::Value = serde_json::to_value(to_json(&reply())).unwrap();
        assert_eq!(v["version"], "1.2.3");
        assert_eq!(v["uptime_seconds"], 65);
        assert_eq!(v["workers"][0]["pid"], 101);
        assert_eq!(v["workers"][0]["restarts"], 1);
        assert_eq!(v["workers"][1]["pid"], serde_json::Value::Null);
        assert_eq!(v["workers"][1]["state"], "crash_loop");
        assert_eq!(v["workers"][1]["next_start_in_seconds"], 290);
        assert_eq!(v["workers"][0]["next_start_in_seconds"], serde_json::Value::Null);
        assert_eq!(v["workers"][0]["current_task"], 5);
        assert_eq!(v["workers"][1]["current_task"], serde_json::Value::Null);
        assert_eq!(v["workers"][0]["ytdlp_release_date"], "2026-10-26");
        assert_eq!(v["workers"][0]["ytdlp_release_age_days"], 36);
        assert_eq!(v["workers"][1]["ytdlp_release_age_days"], serde_json::Value::Null);
        assert_eq!(v["spool"]["has_room"], true);
        assert_eq!(v["spool"]["free_bytes"], 3u64 << 30);
        assert_eq!(v["spool"]["error"], serde_json::Value::Null);
    }

    #[test]
    fn a_spool_without_room_is_called_out() {
        let mut r = reply();
        assert!(render(&r).contains("spool: 3.0 GiB free, 612.0 MiB needed for the next download\n"));
        r.spool = Some(doradura_proto::SpoolRoom {
            has_room: false,
            free_bytes: 100 << 20,
            required_bytes: 612 << 20,
            error: String::new(),
        });
        let text = render(&r);
        assert!(
            text.contains(
                "spool: LOW ON SPACE — 100.0 MiB free, 612.0 MiB needed for the next download; downloads wait"
            ),
            "{text}"
        );
        r.spool = Some(doradura_proto::SpoolRoom {
            has_room: false,
            free_bytes: 0,
            required_bytes: 612 << 20,
            error: "statvfs /x: EACCES\x1b[2J".into(),
        });
        let text = render(&r);
        assert!(text.contains("cannot be measured: statvfs /x: EACCES;"), "{text}");
        let v = serde_json::to_value(to_json(&r)).unwrap();
        assert_eq!(v["spool"]["free_bytes"], serde_json::Value::Null);
        assert_eq!(v["spool"]["has_room"], false);
        // An older daemon says nothing about it.
        r.spool = None;
        assert!(!render(&r).contains("spool:"));
    }

    #[test]
    fn the_table_shows_each_worker_and_warns_of_crash_loops() {
        let text = render(&reply());
        assert!(
            text.starts_with("doradurad 1.2.3 (pid 100): ready, up 1m 5s\n"),
            "{text}"
        );
        assert!(text.contains("schema v2"));
        let row0 = text.lines().find(|l| l.contains(" 101 ")).expect("row for pid 101");
        assert!(
            row0.contains("busy") && row0.contains("signal SIGKILL") && row0.contains("2026.10.26 (36 days old)"),
            "{row0}"
        );
        assert!(row0.contains("5 (42%)"), "{row0}");
        let row1 = text
            .lines()
            .find(|l| l.contains("crash_loop"))
            .expect("row for worker 1");
        assert!(row1.contains("in 4m 50s") && row1.contains("missing"), "{row1}");
        assert!(text.contains("warning: worker 1 crash-looping"));
    }
}
