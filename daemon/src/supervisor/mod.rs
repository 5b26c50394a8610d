//! The supervisor: one task that owns every worker slot, spawns worker processes, hands out tasks from the queue,
//! and carries out the actions of the pure transition table in [`state`].

pub mod spawn;
pub mod spool;
pub mod state;
pub mod tasks;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use doradura_proto::{
    CancelTask, Ping, Shutdown, SupervisorMessage, TaskProgress, WorkerMessage, supervisor_message, worker_message,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::db::Database;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::queue::Task;
use spool::{SpoolPolicy, SpoolStatus};
pub use state::WorkerPhase;
use state::{Action, Event, Exit, Slot, WorkerState};
use std::sync::Arc;
use tasks::Completion;

/// How often idle workers look for work when nothing announced any (retries whose backoff ended).
const DISPATCH_POLL: Duration = Duration::from_secs(1);

/// What a worker told about itself in its hello.
#[derive(Debug, Clone, Default)]
pub struct HelloInfo {
    pub worker_version: String,
    pub ytdlp_version: String,
    pub ytdlp_error: String,
}

/// A point-in-time view of one slot.
#[derive(Debug, Clone)]
pub struct WorkerSnapshot {
    pub id: u32,
    pub pid: Option<u32>,
    pub state: WorkerPhase,
    pub restarts: u32,
    pub consecutive_failures: u32,
    pub ytdlp_version: String,
    pub last_exit: Option<String>,
    pub connected_for: Option<Duration>,
    pub next_start_in: Option<Duration>,
    pub task: Option<u64>,
    pub progress: Option<TaskProgress>,
}

impl WorkerSnapshot {
    /// Connected: idle or busy, with a process.
    pub fn is_up(&self) -> bool {
        self.pid.is_some() && self.state.is_connected()
    }
}

/// How many workers are up (see `WorkerSnapshot::is_up`): the one count behind `/health` (HTTP and the bot),
/// systemd's `STATUS=`, the alerts and `/metrics system`.
pub fn workers_up(workers: &[WorkerSnapshot]) -> usize {
    workers.iter().filter(|w| w.is_up()).count()
}

/// The oldest yt-dlp among `versions` whose version is a release date, with its age in whole days at `now_s`.
/// Versions that are not dates (or empty: yt-dlp missing) are left out.
pub fn oldest_ytdlp<'a>(versions: impl IntoIterator<Item = &'a str>, now_s: i64) -> Option<(&'a str, u32)> {
    versions
        .into_iter()
        .filter_map(|v| doradura_proto::ytdlp_release::age_days(v, now_s).map(|age| (v, age)))
        .max_by_key(|(_, age)| *age)
}

/// Why a hello was refused.
#[derive(Debug, thiserror::Error)]
pub enum HelloRefused {
    #[error("no worker slot {0}")]
    UnknownSlot(u32),
    #[error("slot {slot} did not spawn pid {pid}")]
    WrongProcess { slot: u32, pid: u32 },
    #[error("the supervisor is shutting down")]
    ShuttingDown,
}

enum Command {
    Hello {
        slot: u32,
        pid: u32,
        info: HelloInfo,
        outbound: mpsc::Sender<SupervisorMessage>,
        reply: oneshot::Sender<Result<u64, HelloRefused>>,
    },
    FromWorker {
        slot: u32,
        generation: u64,
        msg: WorkerMessage,
    },
    StreamClosed {
        slot: u32,
        generation: u64,
    },
    Exited {
        slot: u32,
        generation: u64,
        exit: Exit,
    },
    Leased {
        slot: usize,
        generation: u64,
        task: Option<Task>,
    },
    /// Work may be waiting.
    Kick,
    /// Stop task `task`, which the database says worker `slot` holds.
    CancelRunning {
        slot: u32,
        task: u64,
    },
    Status(oneshot::Sender<Vec<WorkerSnapshot>>),
    Shutdown(oneshot::Sender<()>),
}

/// What the supervisor needs besides its configuration.
#[derive(Clone)]
pub struct Deps {
    pub database: Database,
    pub hub: Hub,
    /// `DOWNLOAD_DIR`, absolute; each task works in `task-<id>` below it.
    pub spool: PathBuf,
    pub metrics: Arc<Metrics>,
}

/// A cheap handle to the supervisor task.
#[derive(Clone)]
pub struct Supervisor {
    tx: mpsc::Sender<Command>,
    /// Outcome recording in flight; shutdown waits for it.
    tracker: TaskTracker,
    /// How many slots have had a process say hello at least once.
    helloed: watch::Receiver<usize>,
    /// The spool's room, as last measured.
    spool: watch::Receiver<SpoolStatus>,
    workers: usize,
}

impl Supervisor {
    /// Starts the supervisor task; it spawns the workers on its first tick.
    pub fn start(config: &Config, socket: PathBuf, deps: Deps) -> Supervisor {
        let (tx, rx) = mpsc::channel(1024);
        let (helloed_tx, helloed) = watch::channel(0);
        let workers = config.workers as usize;
        let tracker = TaskTracker::new();
        let spool_policy = SpoolPolicy::from_config(config);
        let (spool_tx, spool) = watch::channel(spool_policy.assess(spool::free_bytes(&deps.spool), 0));
        let actor = Actor {
            slots: (0..workers).map(|_| SlotRuntime::default()).collect(),
            config: config.clone(),
            socket,
            completion: Completion {
                database: deps.database,
                hub: deps.hub,
                spool: deps.spool,
                policy: config.queue,
                metrics: deps.metrics,
            },
            tracker: tracker.clone(),
            tx: tx.clone(),
            helloed: helloed_tx,
            next_ping: Instant::now(),
            ping_seq: 0,
            work_maybe: true,
            next_poll: Instant::now(),
            cancel_pending: HashSet::new(),
            shutdown_waiters: Vec::new(),
            spool_policy,
            spool_tx,
            spool_short: false,
        };
        tokio::spawn(actor.run(rx));
        Supervisor {
            tx,
            tracker,
            helloed,
            spool,
            workers,
        }
    }

    /// Resolves once every slot had a worker say hello, or after `timeout`; returns how many did.
    pub async fn wait_all_helloed(&self, timeout: Duration) -> usize {
        let mut rx = self.helloed.clone();
        let want = self.workers;
        let _ = tokio::time::timeout(timeout, rx.wait_for(|n| *n >= want)).await;
        *rx.borrow()
    }

    pub async fn hello(
        &self,
        slot: u32,
        pid: u32,
        info: HelloInfo,
        outbound: mpsc::Sender<SupervisorMessage>,
    ) -> Result<u64, HelloRefused> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Hello {
                slot,
                pid,
                info,
                outbound,
                reply,
            })
            .await
            .map_err(|_| HelloRefused::ShuttingDown)?;
        rx.await.map_err(|_| HelloRefused::ShuttingDown)?
    }

    pub async fn from_worker(&self, slot: u32, generation: u64, msg: WorkerMessage) {
        let _ = self.tx.send(Command::FromWorker { slot, generation, msg }).await;
    }

    pub async fn stream_closed(&self, slot: u32, generation: u64) {
        let _ = self.tx.send(Command::StreamClosed { slot, generation }).await;
    }

    /// Tells the supervisor that a task was queued.
    pub async fn kick(&self) {
        let _ = self.tx.send(Command::Kick).await;
    }

    pub async fn cancel_running(&self, slot: u32, task: u64) {
        let _ = self.tx.send(Command::CancelRunning { slot, task }).await;
    }

    /// Whether the spool has room for one more task, as last measured (at least once a second).
    pub fn spool(&self) -> SpoolStatus {
        self.spool.borrow().clone()
    }

    /// The slots as they are now; `None` if the supervisor task is gone.
    pub async fn snapshot(&self) -> Option<Vec<WorkerSnapshot>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Status(reply)).await.ok()?;
        rx.await.ok()
    }

    /// Asks every worker to finish, kills what is left after the grace period, and resolves when every process
    /// has been reaped.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = rx.await;
        }
        // Tasks of the stopped workers are back in the queue before this returns.
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[derive(Default)]
struct SlotRuntime {
    slot: Slot,
    /// Bumped for every process, so events about an earlier process are ignored.
    generation: u64,
    outbound: Option<mpsc::Sender<SupervisorMessage>>,
    ever_helloed: bool,
    ytdlp_version: String,
    /// A lease request for this slot is on its way to the database.
    leasing: bool,
    /// The process group of the yt-dlp run by the current task, killed with the worker.
    ytdlp_pgid: Option<u32>,
    progress: Option<TaskProgress>,
}

struct Actor {
    slots: Vec<SlotRuntime>,
    config: Config,
    socket: PathBuf,
    completion: Completion,
    tracker: TaskTracker,
    tx: mpsc::Sender<Command>,
    helloed: watch::Sender<usize>,
    next_ping: Instant,
    ping_seq: u64,
    /// Something may be waiting in the queue.
    work_maybe: bool,
    next_poll: Instant,
    /// Cancels that arrived before the task's assignment did.
    cancel_pending: HashSet<u64>,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
    spool_policy: SpoolPolicy,
    /// The spool's last measurement.
    spool_tx: watch::Sender<SpoolStatus>,
    /// A shortage of spool space is going on (its start and its end are logged once each).
    spool_short: bool,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let tick_every = (self.config.supervision.heartbeat_interval / 4)
            .clamp(Duration::from_millis(20), Duration::from_millis(250));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.on_tick(),
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => return,
                },
            }
            self.dispatch();
            self.update_gauges();
            if !self.shutdown_waiters.is_empty() && self.slots.iter().all(|s| s.slot.state == WorkerState::Stopped) {
                info!("all workers stopped");
                for w in self.shutdown_waiters.drain(..) {
                    let _ = w.send(());
                }
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        for id in 0..self.slots.len() {
            self.apply(id, Event::Tick, now);
        }
        if now >= self.next_ping {
            self.next_ping = now + self.config.supervision.heartbeat_interval;
            self.ping_seq += 1;
            let ping = SupervisorMessage {
                kind: Some(supervisor_message::Kind::Ping(Ping { seq: self.ping_seq })),
            };
            for rt in &self.slots {
                if let Some(out) = &rt.outbound {
                    // A full or closed channel means the worker is not reading: the heartbeat timeout handles it.
                    let _ = out.try_send(ping.clone());
                }
            }
        }
        if now >= self.next_poll {
            self.next_poll = now + DISPATCH_POLL;
            self.work_maybe = true;
            // Also while every worker is busy, so that /health and the alert follow the disk.
            self.measure_spool();
        }
    }

    /// Tasks held by workers or on their way to one: each may still write up to `MAX_FILE_SIZE_MB`.
    fn running(&self) -> u64 {
        self.slots
            .iter()
            .filter(|rt| rt.slot.task.is_some() || rt.leasing)
            .count() as u64
    }

    /// Measures the spool's filesystem, publishes the result, and logs the start and the end of a shortage once
    /// each. Returns the free bytes (0 when the filesystem could not be asked).
    fn measure_spool(&mut self) -> u64 {
        let running = self.running();
        let free = spool::free_bytes(&self.completion.spool);
        let status = self.spool_policy.assess(free, running);
        let m = &self.completion.metrics;
        m.set_spool(status.free_bytes, status.required_bytes);
        match (self.spool_short, !status.has_room()) {
            (false, true) => warn!(
                spool = %self.completion.spool.display(),
                running,
                state = %status.describe(),
                "the spool's filesystem is short of space: downloads wait in the queue until there is room \
                 (MAX_FILE_SIZE_MB per running task and the next, plus DOWNLOAD_MIN_FREE_MB)"
            ),
            (true, false) => info!(state = %status.describe(), "the spool has room again: downloads resume"),
            _ => {}
        }
        self.spool_short = !status.has_room();
        let free = status.free_bytes.unwrap_or(0);
        self.spool_tx.send_if_modified(|old| {
            let changed = *old != status;
            *old = status;
            changed
        });
        free
    }

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Hello {
                slot,
                pid,
                info,
                outbound,
                reply,
            } => {
                let result = self.on_hello(slot, pid, info, outbound, now);
                let _ = reply.send(result);
            }
            Command::FromWorker { slot, generation, msg } => {
                if self.is_current(slot, generation) {
                    self.apply(slot as usize, Event::Heard, now);
                    self.on_worker_message(slot as usize, msg, now);
                }
            }
            Command::StreamClosed { slot, generation } => {
                if self.is_current(slot, generation) {
                    self.slots[slot as usize].outbound = None;
                    self.apply(slot as usize, Event::StreamClosed, now);
                }
            }
            Command::Exited { slot, generation, exit } => {
                if self.is_current(slot, generation) {
                    let rt = &mut self.slots[slot as usize];
                    rt.outbound = None;
                    rt.progress = None;
                    if let Some(pgid) = rt.ytdlp_pgid.take() {
                        spawn::kill_group(pgid);
                    }
                    self.apply(slot as usize, Event::Exited(exit), now);
                }
            }
            Command::Leased { slot, generation, task } => self.on_leased(slot, generation, task, now),
            Command::Kick => self.work_maybe = true,
            Command::CancelRunning { slot, task } => {
                if !self.send_cancel(slot as usize, task) {
                    self.cancel_pending.insert(task);
                }
            }
            Command::Status(reply) => {
                let _ = reply.send(self.snapshot(now));
            }
            Command::Shutdown(reply) => {
                info!(workers = self.slots.len(), "stopping workers");
                self.shutdown_waiters.push(reply);
                for id in 0..self.slots.len() {
                    self.apply(id, Event::Shutdown, now);
                }
            }
        }
    }

    fn on_worker_message(&mut self, id: usize, msg: WorkerMessage, now: Instant) {
        let rt = &mut self.slots[id];
        match msg.kind {
            Some(worker_message::Kind::Started(s)) if rt.slot.task == Some(s.task_id) => {
                rt.ytdlp_pgid = (s.ytdlp_pgid > 0).then_some(s.ytdlp_pgid);
            }
            Some(worker_message::Kind::Progress(p)) if rt.slot.task == Some(p.task_id) => {
                rt.progress = Some(p);
                self.completion.hub.progress(&p);
            }
            Some(worker_message::Kind::Result(result)) if rt.slot.task == Some(result.task_id) => {
                rt.ytdlp_pgid = None;
                rt.progress = None;
                let task = result.task_id;
                self.apply(id, Event::Released { task }, now);
                self.work_maybe = true;
                let completion = self.completion.clone();
                let tx = self.tx.clone();
                self.tracker.spawn(async move {
                    completion.finish(id as u32, result).await;
                    let _ = tx.send(Command::Kick).await;
                });
            }
            Some(worker_message::Kind::Hello(_)) => warn!(worker = id, "a second hello on one stream was ignored"),
            Some(worker_message::Kind::Ytdlp(probe)) => {
                if probe.ytdlp_version.is_empty() {
                    warn!(worker = id, was = %rt.ytdlp_version, error = %probe.ytdlp_error, "the worker's yt-dlp changed and is not usable");
                } else {
                    info!(worker = id, was = %rt.ytdlp_version, ytdlp = %probe.ytdlp_version, "the worker's yt-dlp changed");
                }
                rt.ytdlp_version = probe.ytdlp_version;
            }
            Some(worker_message::Kind::Pong(_)) | None => {}
            Some(other) => warn!(
                worker = id,
                ?other,
                "a report about a task this worker does not hold was ignored"
            ),
        }
    }

    /// Workers by state, downloads in progress, and whether yt-dlp works on every connected worker.
    fn update_gauges(&self) {
        let m = &self.completion.metrics;
        m.set_workers(self.slots.iter().map(|rt| rt.slot.state.phase()));
        m.set_downloads_in_progress(self.slots.iter().filter(|rt| rt.slot.task.is_some()).count());
        let connected: Vec<&SlotRuntime> = self.slots.iter().filter(|rt| rt.outbound.is_some()).collect();
        let up = !connected.is_empty() && connected.iter().all(|rt| !rt.ytdlp_version.is_empty());
        m.set_ytdlp_up(up);
        let oldest = oldest_ytdlp(
            connected.iter().map(|rt| rt.ytdlp_version.as_str()),
            crate::now_ms() / 1000,
        );
        m.set_ytdlp_release_age(oldest.map(|(_, age)| age));
    }

    /// Asks the database for a task for every idle slot that has not asked yet.
    fn dispatch(&mut self) {
        if !self.work_maybe || !self.shutdown_waiters.is_empty() {
            return;
        }
        self.work_maybe = false;
        let wanting = |rt: &SlotRuntime| {
            matches!(rt.slot.state, WorkerState::Idle { .. }) && !rt.leasing && !rt.slot.shutting_down
        };
        if !self.slots.iter().any(wanting) {
            return;
        }
        // Room in the spool first: without it tasks stay queued (the poll looks again within a second).
        let free = self.measure_spool();
        let mut room = self.spool_policy.room_for(free, self.running());
        for (id, rt) in self.slots.iter_mut().enumerate() {
            if !wanting(rt) {
                continue;
            }
            if room == 0 {
                break;
            }
            room -= 1;
            rt.leasing = true;
            let generation = rt.generation;
            let db = self.completion.database.clone();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let task = match db
                    .call(move |c| crate::queue::lease(c, id as u32, crate::now_ms()))
                    .await
                {
                    Ok(Ok(task)) => task,
                    Ok(Err(e)) => {
                        error!(error = %e, "leasing a task failed");
                        None
                    }
                    Err(e) => {
                        error!(error = %e, "leasing a task failed");
                        None
                    }
                };
                let _ = tx
                    .send(Command::Leased {
                        slot: id,
                        generation,
                        task,
                    })
                    .await;
            });
        }
    }

    fn on_leased(&mut self, id: usize, generation: u64, task: Option<Task>, now: Instant) {
        let rt = &mut self.slots[id];
        rt.leasing = false;
        let Some(task) = task else { return };
        // More may be waiting behind it.
        self.work_maybe = true;
        if let Some(wait) = task.queue_wait_ms {
            self.completion.metrics.queued_wait(task.priority, wait);
        }
        let completion = self.completion.clone();
        tokio::spawn(async move { completion.refresh_depth().await });
        let usable = rt.generation == generation
            && matches!(rt.slot.state, WorkerState::Idle { .. })
            && !rt.slot.shutting_down
            && rt.outbound.is_some();
        if !usable {
            self.give_back(task.id, false);
            return;
        }
        let work_dir = match self.completion.prepare_dir(task.id) {
            Ok(dir) => dir,
            Err(e) => {
                error!(task = task.id, error = %e, "cannot prepare the task's directory");
                self.give_back(task.id, false);
                return;
            }
        };
        let assignment = SupervisorMessage {
            kind: Some(supervisor_message::Kind::Task(doradura_proto::TaskAssignment {
                task_id: task.id,
                url: task.url.clone(),
                format: task.format.as_str().to_string(),
                quality: task.quality.to_string(),
                work_dir: work_dir.display().to_string(),
                timeout_ms: self.config.download_timeout.as_millis() as u64,
                max_bytes: self.config.max_file_size_mb * 1024 * 1024,
                allow_private_hosts: self.config.allow_private_hosts,
                allowed_hosts: self.config.allowed_hosts.clone(),
                cookies_file: (self.config.ytdlp_cookies_file.as_deref())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                upstream_proxy: (self.config.download_proxy.as_ref())
                    .map(|p| p.expose().to_string())
                    .unwrap_or_default(),
                js_runtime: (self.config.ytdlp_js_runtime.as_deref())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                extra_args: self.config.ytdlp_extra_args.clone(),
            })),
        };
        let rt = &self.slots[id];
        if rt.outbound.as_ref().is_some_and(|out| out.try_send(assignment).is_ok()) {
            info!(worker = id, task = task.id, attempt = task.attempts, url = %task.url, "task assigned");
            self.apply(id, Event::Assigned { task: task.id }, now);
            if self.cancel_pending.remove(&task.id) {
                self.send_cancel(id, task.id);
            }
        } else {
            self.give_back(task.id, false);
        }
    }

    /// Tells worker `id` to stop `task`, if that is the task it holds; `false` if it could not be told.
    fn send_cancel(&self, id: usize, task: u64) -> bool {
        let msg = SupervisorMessage {
            kind: Some(supervisor_message::Kind::Cancel(CancelTask { task_id: task })),
        };
        self.slots
            .get(id)
            .filter(|rt| rt.slot.task == Some(task))
            .and_then(|rt| rt.outbound.as_ref())
            .is_some_and(|out| out.try_send(msg).is_ok())
    }

    /// Puts a task back in the queue (in the background).
    fn give_back(&self, task: u64, counts: bool) {
        let completion = self.completion.clone();
        let tx = self.tx.clone();
        self.tracker.spawn(async move {
            completion.release(task, counts).await;
            let _ = tx.send(Command::Kick).await;
        });
    }

    fn is_current(&self, slot: u32, generation: u64) -> bool {
        self.slots
            .get(slot as usize)
            .is_some_and(|rt| rt.generation == generation)
    }

    fn on_hello(
        &mut self,
        slot: u32,
        pid: u32,
        info: HelloInfo,
        outbound: mpsc::Sender<SupervisorMessage>,
        now: Instant,
    ) -> Result<u64, HelloRefused> {
        let policy = &self.config.supervision;
        let rt = self
            .slots
            .get_mut(slot as usize)
            .ok_or(HelloRefused::UnknownSlot(slot))?;
        if rt.slot.shutting_down {
            return Err(HelloRefused::ShuttingDown);
        }
        let (next, _) = state::step(&rt.slot, Event::Hello { pid }, now, policy, 0.0)
            .map_err(|_| HelloRefused::WrongProcess { slot, pid })?;
        rt.slot = next;
        rt.outbound = Some(outbound);
        rt.ytdlp_version = info.ytdlp_version.clone();
        if info.ytdlp_version.is_empty() {
            warn!(worker = slot, pid, error = %info.ytdlp_error, "worker said hello; yt-dlp is not usable");
        } else {
            info!(worker = slot, pid, ytdlp = %info.ytdlp_version, version = %info.worker_version, "worker said hello");
        }
        if !rt.ever_helloed {
            rt.ever_helloed = true;
            self.helloed.send_modify(|n| *n += 1);
        }
        self.work_maybe = true;
        Ok(rt.generation)
    }

    /// Runs one event through the table and carries out the actions.
    fn apply(&mut self, id: usize, event: Event, now: Instant) {
        let jitter: f64 = rand::random();
        let rt = &mut self.slots[id];
        let (next, actions) = match state::step(&rt.slot, event, now, &self.config.supervision, jitter) {
            Ok(t) => t,
            Err(e) => {
                warn!(worker = id, error = %e, "ignored an event");
                return;
            }
        };
        let previous = std::mem::replace(&mut rt.slot, next);
        for action in actions {
            match action {
                Action::Spawn => self.spawn(id, now),
                Action::KillGroup { pid } => {
                    spawn::kill_group(pid);
                    if let Some(pgid) = self.slots[id].ytdlp_pgid.take() {
                        spawn::kill_group(pgid);
                    }
                }
                Action::SendShutdown => {
                    let rt = &self.slots[id];
                    let msg = SupervisorMessage {
                        kind: Some(supervisor_message::Kind::Shutdown(Shutdown {
                            grace_ms: self.config.supervision.shutdown_grace.as_millis() as u64,
                        })),
                    };
                    // A worker that cannot be asked is killed.
                    let asked = rt.outbound.as_ref().is_some_and(|out| out.try_send(msg).is_ok());
                    if !asked && let Some(pid) = rt.slot.state.pid() {
                        spawn::kill_group(pid);
                    }
                }
                Action::RestartScheduled { reason, delay } => {
                    self.completion.metrics.worker_restarted(reason);
                    let rt = &self.slots[id];
                    warn!(
                        worker = id,
                        pid = previous.state.pid(),
                        ended = rt.slot.last_exit.as_deref().unwrap_or("?"),
                        reason = reason.as_str(),
                        restart_in = ?delay,
                        "worker ended; restart scheduled"
                    );
                }
                Action::CrashLoopEntered { failures, retry_in } => {
                    error!(
                        worker = id,
                        failures,
                        retry_in = ?retry_in,
                        "worker is crash-looping; parked until the cooldown ends"
                    );
                }
                Action::ReleaseTask { task, counts } => {
                    warn!(
                        worker = id,
                        task, counts, "the worker ended holding a task; it goes back to the queue"
                    );
                    self.give_back(task, counts);
                }
            }
        }
    }

    fn spawn(&mut self, id: usize, now: Instant) {
        let generation = self.slots[id].generation + 1;
        let result = spawn::spawn_worker(&self.config, &self.socket, id as u32);
        let event = match result {
            Ok(child) => {
                self.slots[id].generation = generation;
                let pid = child.pid;
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let exit = child.wait().await;
                    let _ = tx
                        .send(Command::Exited {
                            slot: id as u32,
                            generation,
                            exit,
                        })
                        .await;
                });
                info!(worker = id, pid, "worker spawned");
                Event::Spawned { pid }
            }
            Err(e) => {
                error!(worker = id, path = %self.config.supervision.worker_path.display(), error = %e, "cannot start worker");
                Event::SpawnFailed
            }
        };
        self.apply(id, event, now);
    }

    fn snapshot(&self, now: Instant) -> Vec<WorkerSnapshot> {
        self.slots
            .iter()
            .enumerate()
            .map(|(id, rt)| {
                let s = &rt.slot;
                WorkerSnapshot {
                    id: id as u32,
                    pid: s.state.pid(),
                    state: s.state.phase(),
                    restarts: s.restarts,
                    consecutive_failures: s.consecutive_failures,
                    ytdlp_version: rt.ytdlp_version.clone(),
                    last_exit: s.last_exit.clone(),
                    connected_for: match s.state {
                        WorkerState::Idle { since, .. } | WorkerState::Busy { since, .. } => {
                            Some(now.duration_since(since))
                        }
                        _ => None,
                    },
                    next_start_in: match s.state {
                        WorkerState::Backoff { until } | WorkerState::CrashLoop { until } => {
                            Some(until.saturating_duration_since(now))
                        }
                        _ => None,
                    },
                    task: s.task,
                    progress: rt.progress,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod workers_up_tests {
    use super::{WorkerPhase, WorkerSnapshot, workers_up};

    fn worker(pid: Option<u32>, state: WorkerPhase) -> WorkerSnapshot {
        WorkerSnapshot {
            id: 0,
            pid,
            state,
            restarts: 0,
            consecutive_failures: 0,
            ytdlp_version: String::new(),
            last_exit: None,
            connected_for: None,
            next_start_in: None,
            task: None,
            progress: None,
        }
    }

    #[test]
    fn a_worker_is_up_when_idle_or_busy_with_a_process() {
        for phase in WorkerPhase::ALL {
            let up = matches!(phase, WorkerPhase::Idle | WorkerPhase::Busy);
            assert_eq!(worker(Some(7), *phase).is_up(), up, "{phase}");
            assert!(!worker(None, *phase).is_up(), "{phase} without a process");
        }
        let workers = [
            worker(Some(1), WorkerPhase::Idle),
            worker(Some(2), WorkerPhase::Busy),
            worker(Some(3), WorkerPhase::Starting),
            worker(None, WorkerPhase::CrashLoop),
            worker(Some(4), WorkerPhase::Stopping),
        ];
        assert_eq!(workers_up(&workers), 2, "busy counts as up, not only idle");
        assert_eq!(workers_up(&[]), 0);
    }
}

#[cfg(test)]
mod ytdlp_age_tests {
    use super::oldest_ytdlp;

    #[test]
    fn the_oldest_dated_ytdlp_is_the_one_reported() {
        let now = 20_752 * 86_400 + 3600; // 2026-10-26 01:00 UTC
        assert_eq!(
            oldest_ytdlp(["2026.10.26", "2026.08.01", "", "custom-build"], now),
            Some(("2026.08.01", 86))
        );
        assert_eq!(oldest_ytdlp(["2026.10.26.010203"], now), Some(("2026.10.26.010203", 0)));
        assert_eq!(oldest_ytdlp(["", "custom-build"], now), None, "no date to go by");
        assert_eq!(oldest_ytdlp([], now), None);
    }
}
