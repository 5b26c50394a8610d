//! The life of one worker slot as a pure function of (slot, event, now) → (slot, actions).
//!
//! Nothing here touches a process or a clock: the supervisor feeds events in and carries the actions out, so the
//! whole table is unit-tested without processes.

use std::time::{Duration, Instant};

use crate::config::Supervision;

pub use doradura_proto::types::{RestartReason, WorkerPhase};

/// How a process ended, as the OS reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    pub fn describe(self) -> String {
        match self {
            Exit::Code(c) => format!("exit {c}"),
            Exit::Signal(s) => match nix::sys::signal::Signal::try_from(s) {
                Ok(sig) => format!("signal {}", sig.as_str()),
                Err(_) => format!("signal {s}"),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Not started yet.
    New,
    /// Process spawned, waiting for its hello.
    Starting { pid: u32, since: Instant },
    /// Connected and waiting for work.
    Idle { pid: u32, since: Instant },
    /// Connected and running `Slot::task`, which it was given at `assigned`.
    Busy {
        pid: u32,
        since: Instant,
        assigned: Instant,
    },
    /// Asked to stop (shutdown) or killed (fault); waiting for the process to be reaped.
    Stopping { pid: u32, since: Instant, kill_sent: bool },
    /// Dead; the next start is due at `until`.
    Backoff { until: Instant },
    /// Too many consecutive failures; parked until `until`, then one more attempt.
    CrashLoop { until: Instant },
    /// Shut down for good.
    Stopped,
}

impl WorkerState {
    /// What operators see in status output and metric labels.
    pub fn phase(&self) -> WorkerPhase {
        match self {
            WorkerState::New | WorkerState::Starting { .. } => WorkerPhase::Starting,
            WorkerState::Idle { .. } => WorkerPhase::Idle,
            WorkerState::Busy { .. } => WorkerPhase::Busy,
            WorkerState::Stopping { .. } => WorkerPhase::Stopping,
            WorkerState::Backoff { .. } => WorkerPhase::Backoff,
            WorkerState::CrashLoop { .. } => WorkerPhase::CrashLoop,
            WorkerState::Stopped => WorkerPhase::Stopped,
        }
    }

    /// The wire name of `phase()`.
    pub fn name(&self) -> &'static str {
        self.phase().as_str()
    }

    pub fn pid(&self) -> Option<u32> {
        match *self {
            WorkerState::Starting { pid, .. }
            | WorkerState::Idle { pid, .. }
            | WorkerState::Busy { pid, .. }
            | WorkerState::Stopping { pid, .. } => Some(pid),
            _ => None,
        }
    }
}

/// One worker slot: its state and the counters that outlive its processes.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub state: WorkerState,
    /// Processes started after the first one.
    pub restarts: u32,
    /// Failures since the last process that ran for `stable_after`.
    pub consecutive_failures: u32,
    /// When the supervisor last heard from the current process.
    pub last_heard: Option<Instant>,
    /// Why the current process is being killed, so its exit is attributed to that.
    pub kill_reason: Option<RestartReason>,
    /// How the last process ended, for status output.
    pub last_exit: Option<String>,
    /// Set once shutdown began: exits are final, nothing restarts.
    pub shutting_down: bool,
    /// The task the current process holds.
    pub task: Option<u64>,
    /// When the connected process closed its stream (it is killed if it has not exited soon after).
    pub stream_closed_at: Option<Instant>,
}

/// How long a process that closed its stream has to exit on its own.
pub const STREAM_CLOSE_GRACE: Duration = Duration::from_millis(500);

impl Default for Slot {
    fn default() -> Self {
        Slot {
            state: WorkerState::New,
            restarts: 0,
            consecutive_failures: 0,
            last_heard: None,
            kill_reason: None,
            last_exit: None,
            shutting_down: false,
            stream_closed_at: None,
            task: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The periodic check: starts due, deadlines passed.
    Tick,
    Spawned {
        pid: u32,
    },
    SpawnFailed,
    /// The process with this pid said hello.
    Hello {
        pid: u32,
    },
    /// Any message from the connected process.
    Heard,
    /// The connected process closed its stream.
    StreamClosed,
    /// The process was reaped.
    Exited(Exit),
    /// A task was handed to the connected worker.
    Assigned {
        task: u64,
    },
    /// The worker reported the task's result.
    Released {
        task: u64,
    },
    /// Shutdown: finish, then stop.
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Spawn,
    /// SIGKILL the process group.
    KillGroup {
        pid: u32,
    },
    /// Ask the worker over its stream to finish and exit.
    SendShutdown,
    /// A dead process will be replaced; counted by reason.
    RestartScheduled {
        reason: RestartReason,
        delay: Duration,
    },
    /// The slot was parked after too many consecutive failures.
    CrashLoopEntered {
        failures: u32,
        retry_in: Duration,
    },
    /// The process died holding `task`: put it back (`counts`: the attempt is charged to the task).
    ReleaseTask {
        task: u64,
        counts: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event:?} is not valid in state {state:?}")]
pub struct InvalidTransition {
    pub state: WorkerState,
    pub event: Event,
}

/// The backoff before restart number `failures` (1-based): doubling from the initial delay, capped at the maximum,
/// scaled by a jitter factor in 0.8..1.2 drawn from `jitter` in [0, 1).
pub fn backoff_delay(policy: &Supervision, failures: u32, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let base = policy
        .backoff_initial
        .saturating_mul(1u32 << exp)
        .min(policy.backoff_max);
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// The transition table. `jitter` is a random number in [0, 1) drawn by the caller.
pub fn step(
    slot: &Slot,
    event: Event,
    now: Instant,
    policy: &Supervision,
    jitter: f64,
) -> Result<(Slot, Vec<Action>), InvalidTransition> {
    use WorkerState as S;
    let mut next = slot.clone();
    let mut actions = Vec::new();
    let invalid = || InvalidTransition {
        state: slot.state,
        event,
    };

    match (slot.state, event) {
        // Starting a process.
        (S::New, Event::Tick) if !slot.shutting_down => actions.push(Action::Spawn),
        (S::Backoff { until } | S::CrashLoop { until }, Event::Tick) if now >= until && !slot.shutting_down => {
            actions.push(Action::Spawn)
        }
        (S::New | S::Backoff { .. } | S::CrashLoop { .. }, Event::Spawned { pid }) => {
            if slot.state != S::New {
                next.restarts += 1;
            }
            next.state = S::Starting { pid, since: now };
            next.last_heard = None;
            next.kill_reason = None;
            next.stream_closed_at = None;
        }
        (S::New | S::Backoff { .. } | S::CrashLoop { .. }, Event::SpawnFailed) => {
            next.last_exit = Some("could not start".into());
            schedule_restart(
                &mut next,
                RestartReason::SpawnFailed,
                None,
                now,
                policy,
                jitter,
                &mut actions,
            );
        }

        // Waiting for hello.
        (S::Starting { pid, .. }, Event::Hello { pid: hello_pid }) if pid == hello_pid => {
            next.state = S::Idle { pid, since: now };
            next.last_heard = Some(now);
        }
        (S::Starting { pid, since }, Event::Tick) => {
            if now.duration_since(since) >= policy.hello_timeout {
                kill(&mut next, pid, now, Some(RestartReason::HelloTimeout), &mut actions);
            }
        }

        // Connected.
        (S::Idle { .. } | S::Busy { .. }, Event::Heard) => next.last_heard = Some(now),
        (S::Idle { pid, since }, Event::Assigned { task }) => {
            next.state = S::Busy {
                pid,
                since,
                assigned: now,
            };
            next.task = Some(task);
        }
        (S::Busy { pid, since, .. }, Event::Released { task }) if slot.task == Some(task) => {
            next.state = S::Idle { pid, since };
            next.task = None;
        }
        // A worker finishing its task while it is being stopped.
        (S::Stopping { .. }, Event::Released { task }) if slot.task == Some(task) => next.task = None,
        (S::Idle { pid, .. } | S::Busy { pid, .. }, Event::Tick) => {
            let heard = slot.last_heard.unwrap_or(now);
            if slot
                .stream_closed_at
                .is_some_and(|at| now.duration_since(at) >= STREAM_CLOSE_GRACE)
            {
                kill(&mut next, pid, now, Some(RestartReason::StreamClosed), &mut actions);
            } else if now.duration_since(heard) >= policy.heartbeat_timeout {
                kill(&mut next, pid, now, Some(RestartReason::Heartbeat), &mut actions);
            } else if let S::Busy { assigned, .. } = slot.state
                && now.duration_since(assigned) >= policy.task_deadline
            {
                // It answers pings but keeps its task past the worker's own timeout and the grace: take it back.
                kill(&mut next, pid, now, Some(RestartReason::TaskDeadline), &mut actions);
            }
        }
        // A dying process closes its stream and is reaped at about the same moment: give the exit the chance to
        // arrive first, so the cause is recorded as what it was.
        (S::Idle { .. } | S::Busy { .. }, Event::StreamClosed) => next.stream_closed_at = Some(now),
        // Word about a stream whose process is already going or gone changes nothing.
        (
            S::New | S::Starting { .. } | S::Stopping { .. } | S::Backoff { .. } | S::CrashLoop { .. } | S::Stopped,
            Event::StreamClosed | Event::Heard,
        ) => {}

        // Shutdown.
        (S::Idle { pid, .. } | S::Busy { pid, .. }, Event::Shutdown) => {
            next.shutting_down = true;
            next.state = S::Stopping {
                pid,
                since: now,
                kill_sent: false,
            };
            actions.push(Action::SendShutdown);
        }
        (S::Starting { pid, .. }, Event::Shutdown) => {
            // It has no stream to be asked on: kill it.
            next.shutting_down = true;
            kill(&mut next, pid, now, None, &mut actions);
        }
        (S::Stopping { .. }, Event::Shutdown) => next.shutting_down = true,
        (S::New | S::Backoff { .. } | S::CrashLoop { .. } | S::Stopped, Event::Shutdown) => {
            next.shutting_down = true;
            next.state = S::Stopped;
        }
        (
            S::Stopping {
                pid,
                since,
                kill_sent: false,
            },
            Event::Tick,
        ) => {
            if now.duration_since(since) >= policy.shutdown_grace {
                next.state = S::Stopping {
                    pid,
                    since,
                    kill_sent: true,
                };
                actions.push(Action::KillGroup { pid });
            }
        }
        (
            S::Stopping { kill_sent: true, .. } | S::New | S::Backoff { .. } | S::CrashLoop { .. } | S::Stopped,
            Event::Tick,
        ) => {}

        // A process ended.
        (S::Starting { .. } | S::Idle { .. } | S::Busy { .. } | S::Stopping { .. }, Event::Exited(exit)) => {
            if let Some(task) = slot.task {
                // Its task goes back to the queue; the attempt counts unless the daemon was stopping it.
                actions.push(Action::ReleaseTask {
                    task,
                    counts: !slot.shutting_down,
                });
                next.task = None;
            }
            next.last_exit = Some(match slot.kill_reason {
                Some(RestartReason::Heartbeat) => "killed: heartbeat timeout".to_string(),
                Some(RestartReason::HelloTimeout) => "killed: no hello".to_string(),
                Some(RestartReason::StreamClosed) => "killed: stream closed".to_string(),
                Some(RestartReason::TaskDeadline) => "killed: task deadline".to_string(),
                _ => exit.describe(),
            });
            if slot.shutting_down {
                next.state = S::Stopped;
            } else {
                let reason = slot.kill_reason.unwrap_or(match exit {
                    Exit::Code(0) => RestartReason::CleanExit,
                    Exit::Code(_) => RestartReason::ExitCode,
                    Exit::Signal(_) => RestartReason::Signal,
                });
                let connected_since = match slot.state {
                    S::Idle { since, .. } | S::Busy { since, .. } => Some(since),
                    _ => None,
                };
                schedule_restart(&mut next, reason, connected_since, now, policy, jitter, &mut actions);
            }
        }

        _ => return Err(invalid()),
    }
    Ok((next, actions))
}

/// Kills the process group of `pid` and waits in `stopping` for it to be reaped; `reason` is what its exit will be
/// attributed to.
fn kill(next: &mut Slot, pid: u32, now: Instant, reason: Option<RestartReason>, actions: &mut Vec<Action>) {
    next.state = WorkerState::Stopping {
        pid,
        since: now,
        kill_sent: true,
    };
    next.kill_reason = reason;
    actions.push(Action::KillGroup { pid });
}

fn schedule_restart(
    next: &mut Slot,
    reason: RestartReason,
    connected_since: Option<Instant>,
    now: Instant,
    policy: &Supervision,
    jitter: f64,
    actions: &mut Vec<Action>,
) {
    let stable = connected_since.is_some_and(|since| now.duration_since(since) >= policy.stable_after);
    next.consecutive_failures = if stable { 1 } else { next.consecutive_failures + 1 };
    next.kill_reason = None;
    next.last_heard = None;
    if next.consecutive_failures >= policy.crash_loop_threshold {
        next.state = WorkerState::CrashLoop {
            until: now + policy.crash_loop_cooldown,
        };
        actions.push(Action::CrashLoopEntered {
            failures: next.consecutive_failures,
            retry_in: policy.crash_loop_cooldown,
        });
        actions.push(Action::RestartScheduled {
            reason,
            delay: policy.crash_loop_cooldown,
        });
    } else {
        let delay = backoff_delay(policy, next.consecutive_failures, jitter);
        next.state = WorkerState::Backoff { until: now + delay };
        actions.push(Action::RestartScheduled { reason, delay });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn policy() -> Supervision {
        Supervision {
            worker_path: PathBuf::from("doradura-worker"),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(15),
            hello_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            crash_loop_threshold: 5,
            crash_loop_cooldown: Duration::from_secs(300),
            stable_after: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            ready_timeout: Duration::from_secs(60),
            task_deadline_grace: Duration::from_secs(60),
            task_deadline: Duration::from_secs(660),
        }
    }

    fn run(slot: &Slot, event: Event, now: Instant) -> (Slot, Vec<Action>) {
        step(slot, event, now, &policy(), 0.5).unwrap()
    }

    fn connected(pid: u32, now: Instant) -> Slot {
        let (s, _) = run(&Slot::default(), Event::Spawned { pid }, now);
        run(&s, Event::Hello { pid }, now).0
    }

    #[test]
    fn a_new_slot_spawns_then_waits_for_hello() {
        let t0 = Instant::now();
        let (s, a) = run(&Slot::default(), Event::Tick, t0);
        assert_eq!(a, vec![Action::Spawn]);
        assert_eq!(s.state, WorkerState::New);
        let (s, a) = run(&s, Event::Spawned { pid: 10 }, t0);
        assert!(a.is_empty());
        assert_eq!(s.state, WorkerState::Starting { pid: 10, since: t0 });
        assert_eq!(s.restarts, 0, "the first process is not a restart");
        let (s, _) = run(&s, Event::Hello { pid: 10 }, t0);
        assert_eq!(s.state.name(), "idle");
    }

    #[test]
    fn a_hello_from_another_pid_is_refused() {
        let t0 = Instant::now();
        let (s, _) = run(&Slot::default(), Event::Spawned { pid: 10 }, t0);
        let err = step(&s, Event::Hello { pid: 11 }, t0, &policy(), 0.5).unwrap_err();
        assert_eq!(err.state, s.state);
    }

    #[test]
    fn a_killed_worker_backs_off_then_restarts_with_count_one() {
        let t0 = Instant::now();
        let s = connected(10, t0);
        let t1 = t0 + Duration::from_secs(1);
        let (s, a) = run(&s, Event::Exited(Exit::Signal(9)), t1);
        let delay = Duration::from_millis(500);
        assert_eq!(
            a,
            vec![Action::RestartScheduled {
                reason: RestartReason::Signal,
                delay
            }]
        );
        assert_eq!(s.state, WorkerState::Backoff { until: t1 + delay });
        assert_eq!(s.last_exit.as_deref(), Some("signal SIGKILL"));
        // Not due yet.
        assert!(run(&s, Event::Tick, t1 + Duration::from_millis(100)).1.is_empty());
        let (s, a) = run(&s, Event::Tick, t1 + delay);
        assert_eq!(a, vec![Action::Spawn]);
        let (s, _) = run(&s, Event::Spawned { pid: 11 }, t1 + delay);
        assert_eq!(s.restarts, 1);
        assert_eq!(s.state.pid(), Some(11));
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = policy();
        assert_eq!(backoff_delay(&p, 1, 0.5), Duration::from_millis(500));
        assert_eq!(backoff_delay(&p, 2, 0.5), Duration::from_millis(1000));
        assert_eq!(backoff_delay(&p, 3, 0.5), Duration::from_millis(2000));
        assert_eq!(backoff_delay(&p, 20, 0.5), Duration::from_secs(30));
        assert_eq!(backoff_delay(&p, 1, 0.0), Duration::from_millis(400));
        assert_eq!(
            backoff_delay(&p, 1, 0.999_999),
            Duration::from_millis(599).max(backoff_delay(&p, 1, 0.999_999))
        );
        assert!(backoff_delay(&p, 1, 0.999_999) < Duration::from_millis(600));
    }

    #[test]
    fn repeated_start_failures_end_in_crash_loop_and_retry_after_cooldown() {
        let p = policy();
        let mut now = Instant::now();
        let mut slot = Slot::default();
        let mut delays = Vec::new();
        for pid in 1..=5 {
            let (s, _) = run(&slot, Event::Spawned { pid }, now);
            now += Duration::from_millis(50);
            let (s, a) = run(&s, Event::Exited(Exit::Code(1)), now);
            slot = s;
            match a.last() {
                Some(Action::RestartScheduled { delay, reason }) => {
                    assert_eq!(*reason, RestartReason::ExitCode);
                    delays.push(*delay);
                    now += *delay;
                }
                other => panic!("expected a restart, got {other:?}"),
            }
        }
        assert_eq!(slot.consecutive_failures, 5);
        assert!(matches!(slot.state, WorkerState::CrashLoop { .. }));
        assert_eq!(delays[..4], [500, 1000, 2000, 4000].map(Duration::from_millis));
        assert_eq!(delays[4], p.crash_loop_cooldown);
        // After the cooldown, one more attempt.
        assert_eq!(run(&slot, Event::Tick, now).1, vec![Action::Spawn]);
        assert!(run(&slot, Event::Tick, now - Duration::from_secs(1)).1.is_empty());
    }

    #[test]
    fn a_worker_that_ran_long_enough_starts_its_failure_count_afresh() {
        let t0 = Instant::now();
        let mut s = connected(10, t0);
        s.consecutive_failures = 4;
        let (s, _) = run(&s, Event::Exited(Exit::Code(1)), t0 + Duration::from_secs(61));
        assert_eq!(s.consecutive_failures, 1);
        assert!(matches!(s.state, WorkerState::Backoff { .. }));
    }

    #[test]
    fn silence_past_the_heartbeat_timeout_kills_the_group() {
        let t0 = Instant::now();
        let s = connected(10, t0);
        let (s, a) = run(&s, Event::Heard, t0 + Duration::from_secs(10));
        assert!(a.is_empty());
        assert!(run(&s, Event::Tick, t0 + Duration::from_secs(24)).1.is_empty());
        let (s, a) = run(&s, Event::Tick, t0 + Duration::from_secs(25));
        assert_eq!(a, vec![Action::KillGroup { pid: 10 }]);
        let (s, a) = run(&s, Event::Exited(Exit::Signal(9)), t0 + Duration::from_secs(25));
        assert_eq!(s.last_exit.as_deref(), Some("killed: heartbeat timeout"));
        assert!(matches!(
            a[0],
            Action::RestartScheduled {
                reason: RestartReason::Heartbeat,
                ..
            }
        ));
    }

    #[test]
    fn no_hello_in_time_kills_the_process() {
        let t0 = Instant::now();
        let (s, _) = run(&Slot::default(), Event::Spawned { pid: 10 }, t0);
        let (s, a) = run(&s, Event::Tick, t0 + Duration::from_secs(30));
        assert_eq!(a, vec![Action::KillGroup { pid: 10 }]);
        let (_, a) = run(&s, Event::Exited(Exit::Signal(9)), t0 + Duration::from_secs(30));
        assert!(matches!(
            a[0],
            Action::RestartScheduled {
                reason: RestartReason::HelloTimeout,
                ..
            }
        ));
    }

    #[test]
    fn a_closed_stream_kills_a_process_that_does_not_exit_by_itself() {
        let t0 = Instant::now();
        let (s, a) = run(&connected(10, t0), Event::StreamClosed, t0);
        assert!(a.is_empty());
        // An exit within the grace period is recorded as what it was.
        let (exited, _) = run(&s, Event::Exited(Exit::Signal(9)), t0 + Duration::from_millis(10));
        assert_eq!(exited.last_exit.as_deref(), Some("signal SIGKILL"));
        assert!(run(&s, Event::Tick, t0 + STREAM_CLOSE_GRACE / 2).1.is_empty());
        let (s, a) = run(&s, Event::Tick, t0 + STREAM_CLOSE_GRACE);
        assert_eq!(a, vec![Action::KillGroup { pid: 10 }]);
        assert_eq!(s.kill_reason, Some(RestartReason::StreamClosed));
    }

    #[test]
    fn shutdown_asks_then_kills_after_grace_and_never_restarts() {
        let t0 = Instant::now();
        let (s, a) = run(&connected(10, t0), Event::Shutdown, t0);
        assert_eq!(a, vec![Action::SendShutdown]);
        assert!(run(&s, Event::Tick, t0 + Duration::from_secs(29)).1.is_empty());
        let (s, a) = run(&s, Event::Tick, t0 + Duration::from_secs(30));
        assert_eq!(a, vec![Action::KillGroup { pid: 10 }]);
        // Only one kill.
        assert!(run(&s, Event::Tick, t0 + Duration::from_secs(31)).1.is_empty());
        let (s, a) = run(&s, Event::Exited(Exit::Signal(9)), t0 + Duration::from_secs(31));
        assert!(a.is_empty());
        assert_eq!(s.state, WorkerState::Stopped);
        assert!(run(&s, Event::Tick, t0 + Duration::from_secs(99)).1.is_empty());
    }

    #[test]
    fn shutdown_during_backoff_stops_at_once() {
        let t0 = Instant::now();
        let (s, _) = run(&connected(10, t0), Event::Exited(Exit::Code(1)), t0);
        let (s, a) = run(&s, Event::Shutdown, t0);
        assert!(a.is_empty());
        assert_eq!(s.state, WorkerState::Stopped);
        // A process that was spawned concurrently with shutdown is still reaped properly.
        let (s, a) = run(&Slot::default(), Event::Shutdown, t0);
        assert!(a.is_empty() && s.state == WorkerState::Stopped);
    }

    #[test]
    fn a_busy_worker_returns_to_idle_when_its_task_is_reported() {
        let t0 = Instant::now();
        let (s, a) = run(&connected(10, t0), Event::Assigned { task: 7 }, t0);
        assert!(a.is_empty());
        assert_eq!(s.state.name(), "busy");
        assert_eq!(s.task, Some(7));
        assert!(
            step(&s, Event::Released { task: 8 }, t0, &policy(), 0.5).is_err(),
            "not its task"
        );
        assert!(
            step(&s, Event::Assigned { task: 8 }, t0, &policy(), 0.5).is_err(),
            "one task at a time"
        );
        let (s, _) = run(&s, Event::Released { task: 7 }, t0);
        assert_eq!((s.state.name(), s.task), ("idle", None));
    }

    #[test]
    fn a_worker_dying_with_a_task_gives_it_back() {
        let t0 = Instant::now();
        let (s, _) = run(&connected(10, t0), Event::Assigned { task: 7 }, t0);
        let (s, a) = run(&s, Event::Exited(Exit::Signal(9)), t0);
        assert_eq!(a[0], Action::ReleaseTask { task: 7, counts: true });
        assert_eq!(s.task, None);
        // Stopped by shutdown past the grace period: the attempt does not count.
        let (s, _) = run(&connected(10, t0), Event::Assigned { task: 8 }, t0);
        let (s, a) = run(&s, Event::Shutdown, t0);
        assert_eq!(a, vec![Action::SendShutdown]);
        let (s, a) = run(&s, Event::Exited(Exit::Signal(9)), t0);
        assert_eq!(a, vec![Action::ReleaseTask { task: 8, counts: false }]);
        assert_eq!(s.state, WorkerState::Stopped);
    }

    #[test]
    fn a_silent_busy_worker_is_killed_like_an_idle_one() {
        let t0 = Instant::now();
        let (s, _) = run(&connected(10, t0), Event::Assigned { task: 7 }, t0);
        let (_, a) = run(&s, Event::Tick, t0 + Duration::from_secs(15));
        assert_eq!(a, vec![Action::KillGroup { pid: 10 }]);
    }

    /// A tick with a heartbeat just before it: only the task deadline can fire.
    fn tick_alive(s: &Slot, at: Instant) -> (Slot, Vec<Action>) {
        let (s, _) = run(s, Event::Heard, at);
        run(&s, Event::Tick, at)
    }

    #[test]
    fn a_busy_worker_that_answers_pings_but_holds_its_task_past_the_deadline_is_killed() {
        let t0 = Instant::now();
        let assigned = t0 + Duration::from_secs(10);
        let (s, _) = run(&connected(10, t0), Event::Assigned { task: 7 }, assigned);
        assert_eq!(
            s.state,
            WorkerState::Busy {
                pid: 10,
                since: t0,
                assigned
            }
        );
        // DOWNLOAD_TIMEOUT (600 s) plus the grace (60 s) is the policy's deadline: up to it, nothing.
        let (s, a) = tick_alive(&s, assigned + Duration::from_secs(659));
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(s.state.name(), "busy");
        let (s, a) = tick_alive(&s, assigned + Duration::from_secs(660));
        assert_eq!(a, vec![Action::KillGroup { pid: 10 }]);
        assert_eq!(s.kill_reason, Some(RestartReason::TaskDeadline));
        assert_eq!(s.task, Some(7), "still held until the process is reaped");
        // One kill only, while the process is being reaped.
        assert!(run(&s, Event::Tick, assigned + Duration::from_secs(661)).1.is_empty());
        let (s, a) = run(&s, Event::Exited(Exit::Signal(9)), assigned + Duration::from_secs(661));
        assert_eq!(
            a[0],
            Action::ReleaseTask { task: 7, counts: true },
            "released like a crash"
        );
        assert!(matches!(
            a[1],
            Action::RestartScheduled {
                reason: RestartReason::TaskDeadline,
                ..
            }
        ));
        assert_eq!(s.task, None);
        assert_eq!(s.last_exit.as_deref(), Some("killed: task deadline"));
        assert_eq!(RestartReason::TaskDeadline.as_str(), "task_deadline");
    }

    #[test]
    fn the_task_deadline_runs_from_the_assignment_not_from_the_connection() {
        let t0 = Instant::now();
        // Idle for longer than the deadline: idle workers have none.
        let (s, a) = tick_alive(&connected(10, t0), t0 + Duration::from_secs(1000));
        assert!(a.is_empty());
        let (s, _) = run(&s, Event::Assigned { task: 7 }, t0 + Duration::from_secs(1000));
        let (s, a) = tick_alive(&s, t0 + Duration::from_secs(1001));
        assert!(a.is_empty(), "{a:?}");
        // A task reported in time, and the next one assigned: its own clock starts.
        let (s, _) = run(&s, Event::Released { task: 7 }, t0 + Duration::from_secs(1600));
        let (s, _) = run(&s, Event::Assigned { task: 8 }, t0 + Duration::from_secs(1650));
        let (s, a) = tick_alive(&s, t0 + Duration::from_secs(2000));
        assert!(a.is_empty(), "{a:?}");
        let (_, a) = tick_alive(&s, t0 + Duration::from_secs(2310));
        assert_eq!(a, vec![Action::KillGroup { pid: 10 }]);
    }

    #[test]
    fn a_worker_stopping_for_shutdown_gets_the_shutdown_grace_not_the_task_deadline() {
        let t0 = Instant::now();
        let (s, _) = run(&connected(10, t0), Event::Assigned { task: 7 }, t0);
        let (s, _) = run(&s, Event::Shutdown, t0 + Duration::from_secs(650));
        // Past the task deadline, inside the shutdown grace: the shutdown decides, and the attempt is not charged.
        assert!(run(&s, Event::Tick, t0 + Duration::from_secs(670)).1.is_empty());
        let (s, a) = run(&s, Event::Tick, t0 + Duration::from_secs(680));
        assert_eq!(a, vec![Action::KillGroup { pid: 10 }]);
        let (_, a) = run(&s, Event::Exited(Exit::Signal(9)), t0 + Duration::from_secs(680));
        assert_eq!(a, vec![Action::ReleaseTask { task: 7, counts: false }]);
    }

    #[test]
    fn events_that_make_no_sense_are_rejected() {
        let t0 = Instant::now();
        let p = policy();
        assert!(step(&Slot::default(), Event::Hello { pid: 1 }, t0, &p, 0.5).is_err());
        assert!(step(&Slot::default(), Event::Exited(Exit::Code(0)), t0, &p, 0.5).is_err());
        assert!(step(&connected(1, t0), Event::Spawned { pid: 2 }, t0, &p, 0.5).is_err());
        let stopped = Slot {
            state: WorkerState::Stopped,
            ..Slot::default()
        };
        assert!(step(&stopped, Event::Spawned { pid: 2 }, t0, &p, 0.5).is_err());
    }
}
