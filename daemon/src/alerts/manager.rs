//! The alert manager: one task that owns the alert state, evaluates the conditions every
//! `ALERT_CHECK_INTERVAL`, takes payment failures as they happen, and answers `/alerts`, the alert buttons and
//! `doradurctl alerts`. Every change is written to the database; messages go through the `Notifier`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::kinds::AlertType;
use super::messages;
use super::notifier::{Notifier, Outgoing};
use super::rules::{self, Finding, Observation, Rules};
use super::state::{self, Action, AlertState, Delivery};
use super::store;
use crate::db::{Database, DbError};
use crate::metrics::Metrics;
use crate::supervisor::Supervisor;
use doradura_proto::types::ErrorCategory;

fn now_s() -> i64 {
    crate::now_ms() / 1000
}

/// What `/alerts` and `doradurctl alerts` show.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// Evaluated alerts firing now: type, since, acknowledged, the latest figures.
    pub firing: Vec<(AlertType, i64, bool, Option<Finding>)>,
    /// Payment failures not yet acknowledged.
    pub payment_open: Vec<store::Row>,
    pub silences: Vec<(AlertType, i64)>,
    pub history: Vec<store::Row>,
}

/// Why the alerts handle could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("alerting is off (ALERTS_ENABLED=false)")]
    Disabled,
    #[error("the alert manager stopped")]
    Stopped,
    #[error("there is no alert #{0}")]
    NoSuchAlert(i64),
    #[error(transparent)]
    Database(#[from] DbError),
}

type Reply<T> = oneshot::Sender<Result<T, AlertsError>>;

enum Msg {
    Payment(Finding),
    Silence(AlertType, i64, String, Reply<()>),
    Ack(i64, i64, Reply<AlertType>),
    Test(AlertType, Reply<i64>),
    Overview(u32, Reply<Overview>),
    Reload(Rules),
}

/// The handle every part of the daemon holds. Without alerting (ALERTS_ENABLED=false) every call says so.
#[derive(Clone)]
pub struct Alerts {
    tx: Option<mpsc::Sender<Msg>>,
}

impl Alerts {
    pub fn disabled() -> Alerts {
        Alerts { tx: None }
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Msg) -> Result<T, AlertsError> {
        let tx = self.tx.as_ref().ok_or(AlertsError::Disabled)?;
        let (reply, rx) = oneshot::channel();
        tx.send(make(reply)).await.map_err(|_| AlertsError::Stopped)?;
        rx.await.map_err(|_| AlertsError::Stopped)?
    }

    /// A payment problem that needs a person: a critical alert at once, never throttled.
    pub async fn payment_failure(&self, finding: Finding) {
        if let Some(tx) = &self.tx
            && tx.send(Msg::Payment(finding)).await.is_err()
        {
            error!("the alert manager stopped; a payment failure was not alerted");
        }
    }

    /// Silences `kind` for `duration`; returns when the silence ends (Unix seconds).
    pub async fn silence(&self, kind: AlertType, duration: Duration, by: String) -> Result<i64, AlertsError> {
        let until = now_s() + duration.as_secs() as i64;
        self.ask(|r| Msg::Silence(kind, until, by, r)).await.map(|()| until)
    }

    pub async fn acknowledge(&self, history_id: i64, by: i64) -> Result<AlertType, AlertsError> {
        self.ask(|r| Msg::Ack(history_id, by, r)).await
    }

    /// Sends a test alert of `kind` through the real path; returns its history row.
    pub async fn test(&self, kind: AlertType) -> Result<i64, AlertsError> {
        self.ask(|r| Msg::Test(kind, r)).await
    }

    pub async fn overview(&self, history: u32) -> Result<Overview, AlertsError> {
        self.ask(|r| Msg::Overview(history, r)).await
    }

    pub fn reload(&self, rules: Rules) {
        if let Some(tx) = &self.tx
            && tx.try_send(Msg::Reload(rules)).is_err()
        {
            warn!("the alert manager did not take the new thresholds");
        }
    }
}

pub struct Deps {
    pub database: Database,
    pub metrics: Arc<Metrics>,
    pub supervisor: Supervisor,
    pub notifier: Notifier,
    pub rules: Rules,
    pub interval: Duration,
}

/// Starts the manager: the state is restored from the database first.
pub async fn spawn(deps: Deps) -> Alerts {
    let now = now_s();
    let state = match deps.database.query(move |c| store::restore(c, now)).await {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "the alert state could not be restored; starting without it");
            AlertState::default()
        }
    };
    if !state.open.is_empty() {
        let open: Vec<&str> = state.open.keys().map(|k| k.as_str()).collect();
        info!(?open, "alerts still firing before the restart");
    }
    let (tx, rx) = mpsc::channel(256);
    let errors = deps.metrics.errors_total(ErrorCategory::Database);
    let manager = Manager {
        samples: VecDeque::from([(now, errors)]),
        deps,
        state,
        latest: Vec::new(),
    };
    tokio::spawn(manager.run(rx));
    Alerts { tx: Some(tx) }
}

struct Manager {
    deps: Deps,
    state: AlertState,
    /// `(time, doradura_errors_total{category="database"})` at each evaluation, back to the window's start.
    samples: VecDeque<(i64, u64)>,
    /// The latest evaluation's findings, for test alerts.
    latest: Vec<Finding>,
}

impl Manager {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        // The first evaluation waits one interval: the workers say hello meanwhile.
        let every = self.deps.interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.publish().await;
        loop {
            tokio::select! {
                _ = tick.tick() => self.evaluate().await,
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(m).await,
                    None => return,
                },
            }
        }
    }

    async fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Payment(f) => self.payment(f).await,
            Msg::Silence(kind, until, by, reply) => {
                self.state.silenced_until.insert(kind, until);
                let by2 = by.clone();
                let stored = self
                    .deps
                    .database
                    .query(move |c| store::silence(c, kind, until, &by2, now_s()))
                    .await
                    .map_err(AlertsError::from);
                info!(alert = %kind, until, by, "alert type silenced");
                let _ = reply.send(stored);
            }
            Msg::Ack(id, by, reply) => {
                let result = self
                    .deps
                    .database
                    .query(move |c| store::acknowledge(c, id, by, now_s()))
                    .await
                    .map_err(AlertsError::from)
                    .and_then(|k| k.ok_or(AlertsError::NoSuchAlert(id)));
                if let Ok(kind) = result {
                    if let Some(open) = self.state.open.get_mut(&kind).filter(|o| o.history_id == Some(id)) {
                        open.acknowledged = true;
                    }
                    info!(alert = %kind, id, by, "alert acknowledged");
                    self.publish().await;
                }
                let _ = reply.send(result);
            }
            Msg::Test(kind, reply) => {
                let _ = reply.send(self.test(kind).await);
            }
            Msg::Overview(limit, reply) => {
                let _ = reply.send(self.overview(limit).await);
            }
            Msg::Reload(rules) => {
                if rules != self.deps.rules {
                    info!(?rules, "alert thresholds reloaded");
                    self.deps.rules = rules;
                }
            }
        }
    }

    async fn evaluate(&mut self) {
        let now = now_s();
        let observation = self.observe(now).await;
        let findings = rules::evaluate(&observation, &self.deps.rules);
        let actions = state::step(&mut self.state, &findings, now, &self.deps.rules);
        for action in actions {
            self.apply(action, now).await;
        }
        self.store_missing(now).await;
        self.latest = findings;
        self.publish().await;
    }

    /// Reads the window's figures. A database that does not answer is itself the finding.
    async fn observe(&mut self, now: i64) -> Observation {
        let r = &self.deps.rules;
        let (since_ms, day_ms, streak_len) = (
            (now - r.window.as_secs() as i64) * 1000,
            (now - 86_400) * 1000,
            r.ytdlp_failures,
        );
        let read = self
            .deps
            .database
            .call(move |c| {
                let figures = (|| -> rusqlite::Result<_> {
                    let (all, failed, attempts, retries): (u64, u64, u64, u64) = c.query_row(
                        "SELECT COUNT(*), COALESCE(SUM(state = 'failed'), 0), COALESCE(SUM(attempts), 0),
                                COALESCE(SUM(MAX(attempts - 1, 0)), 0)
                           FROM download_tasks WHERE finished_at_ms >= ?1 AND state IN ('done', 'failed')",
                        [since_ms],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )?;
                    let (queued, checkouts, payments): (u64, u64, u64) = c.query_row(
                        "SELECT (SELECT COUNT(*) FROM download_tasks WHERE state = 'queued'),
                                (SELECT COUNT(*) FROM checkouts WHERE created_at_ms >= ?1),
                                (SELECT COUNT(*) FROM payments WHERE paid_at >= ?1 / 1000)",
                        [day_ms],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )?;
                    let latest: Vec<Option<String>> = c
                        .prepare(
                            "SELECT error_type FROM download_tasks WHERE state IN ('done', 'failed')
                              ORDER BY finished_at_ms DESC LIMIT ?1",
                        )?
                        .query_map(params![streak_len], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    let streak = latest
                        .iter()
                        .take_while(|e| e.as_deref() == Some("ytdlp_missing"))
                        .count() as u32;
                    Ok((
                        (all, failed),
                        queued,
                        (attempts, retries),
                        (checkouts, payments),
                        streak,
                    ))
                })();
                // Can the database still take a write? (Locks, a read-only file, a full disk.)
                let probe = c
                    .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
                    .err()
                    .map(|e| e.to_string());
                (figures, probe)
            })
            .await;
        let mut o = Observation::default();
        match read {
            Ok((figures, probe)) => {
                match figures {
                    Ok((downloads, queued, attempts, conversion, streak)) => {
                        o.downloads = Some(downloads);
                        o.queued = Some(queued);
                        o.attempts = Some(attempts);
                        o.conversion = Some(conversion);
                        o.ytdlp_failing_streak = Some(streak);
                    }
                    Err(e) => {
                        self.deps.metrics.error(ErrorCategory::Database);
                        o.database_probe = Some(e.to_string());
                    }
                }
                if let Some(e) = probe {
                    self.deps.metrics.error(ErrorCategory::Database);
                    o.database_probe.get_or_insert(e);
                }
            }
            Err(e) => {
                self.deps.metrics.error(ErrorCategory::Database);
                o.database_probe = Some(e.to_string());
            }
        }
        if let Some(workers) = self.deps.supervisor.snapshot().await {
            let connected: Vec<_> = workers.iter().filter(|w| w.is_up()).collect();
            let without = connected.iter().filter(|w| w.ytdlp_version.is_empty()).count();
            o.workers = (connected.len() as u64, without as u64);
            let versions = connected.iter().map(|w| w.ytdlp_version.as_str());
            o.ytdlp_release =
                crate::supervisor::oldest_ytdlp(versions, now).map(|(version, age_days)| rules::YtdlpRelease {
                    version: version.to_string(),
                    age_days,
                    workers: connected.iter().filter(|w| w.ytdlp_version == version).count() as u64,
                    connected: connected.len() as u64,
                });
            o.spool = Some(self.deps.supervisor.spool());
        }
        // Database errors in the window: the counter now against its value at the window's start.
        let errors = self.deps.metrics.errors_total(ErrorCategory::Database);
        let start = now - r.window.as_secs() as i64;
        while self.samples.len() > 1 && self.samples[1].0 <= start {
            self.samples.pop_front();
        }
        let base = self.samples.front().map_or(errors, |s| s.1);
        o.database_errors = errors.saturating_sub(base);
        self.samples.push_back((now, errors));
        o
    }

    async fn apply(&mut self, action: Action, now: i64) {
        match action {
            Action::Opened { kind, delivery } => {
                let open = self.state.open.get(&kind).expect("just opened").clone();
                let finding = open.finding.clone().expect("a new firing has its figures");
                let text = messages::firing(kind, &finding, open.since_s, now, false);
                warn!(alert = %kind, current = %finding.current, threshold = %finding.threshold, ?delivery, "alert firing");
                let sent = delivery == Delivery::Send;
                let t = text.clone();
                let id = self
                    .deps
                    .database
                    .query(move |c| store::insert(c, kind, &t, &finding, now, sent, false))
                    .await;
                let id = match id {
                    Ok(id) => {
                        if let Some(o) = self.state.open.get_mut(&kind) {
                            o.history_id = Some(id);
                        }
                        Some(id)
                    }
                    Err(e) => {
                        error!(alert = %kind, error = %e, "the alert could not be stored; it is retried");
                        None
                    }
                };
                if sent {
                    self.send(kind, text, id, true);
                }
            }
            Action::Reminder { kind } => {
                let open = self.state.open.get(&kind).expect("open").clone();
                let Some(finding) = open.finding else { return };
                let text = messages::firing(kind, &finding, open.since_s, now, false);
                if let Some(id) = open.history_id {
                    let _ = self.deps.database.query(move |c| store::sent(c, id, now)).await;
                }
                info!(alert = %kind, "alert still firing: reminder");
                self.send(kind, text, open.history_id, true);
            }
            Action::Resolved { kind, open, notify } => {
                info!(alert = %kind, since = open.since_s, "alert resolved");
                // A firing whose row could not be written yet gets it now, resolved.
                let (since, announced, finding) = (open.since_s, open.announced, open.finding.clone());
                let resolved = self
                    .deps
                    .database
                    .query(move |c| {
                        let id = match (open.history_id, finding) {
                            (Some(id), _) => id,
                            (None, Some(f)) => {
                                let text = messages::firing(kind, &f, since, since, false);
                                store::insert(c, kind, &text, &f, since, announced, false)?
                            }
                            (None, None) => return Ok(()),
                        };
                        store::resolve(c, id, now)
                    })
                    .await;
                if let Err(e) = resolved {
                    error!(alert = %kind, error = %e, "the resolution could not be stored");
                }
                if notify {
                    let text = messages::resolved(kind, open.finding.as_ref(), open.since_s, now);
                    self.send(kind, text, None, false);
                }
            }
        }
    }

    /// Firings whose row could not be written (the database was failing) get it now.
    async fn store_missing(&mut self, now: i64) {
        let missing: Vec<_> = self
            .state
            .open
            .iter()
            .filter(|(_, o)| o.history_id.is_none() && o.finding.is_some())
            .map(|(k, o)| (*k, o.clone()))
            .collect();
        for (kind, open) in missing {
            let finding = open.finding.clone().expect("filtered");
            let text = messages::firing(kind, &finding, open.since_s, now, false);
            let (since, sent) = (open.since_s, open.announced);
            if let Ok(id) = self
                .deps
                .database
                .query(move |c| store::insert(c, kind, &text, &finding, since, sent, false))
                .await
                && let Some(o) = self.state.open.get_mut(&kind)
            {
                o.history_id = Some(id);
            }
        }
    }

    fn send(&self, kind: AlertType, text: String, history_id: Option<i64>, counted: bool) {
        self.deps.notifier.send(Outgoing {
            kind,
            text,
            history_id,
            counted,
        });
    }

    async fn payment(&mut self, finding: Finding) {
        let (kind, now) = (AlertType::PaymentFailure, now_s());
        let text = messages::firing(kind, &finding, now, now, false);
        let silenced = self.state.silenced(kind, now);
        let t = text.clone();
        let id = self
            .deps
            .database
            .query(move |c| store::insert(c, kind, &t, &finding, now, !silenced, false))
            .await;
        if let Err(e) = &id {
            error!(error = %e, "the payment failure alert could not be stored");
        }
        error!(alert = %kind, silenced, "payment failure alerted");
        if !silenced {
            self.send(kind, text, id.ok(), true);
        }
        self.publish().await;
    }

    async fn test(&mut self, kind: AlertType) -> Result<i64, AlertsError> {
        let now = now_s();
        let finding = self
            .latest
            .iter()
            .find(|f| f.kind == kind)
            .cloned()
            .unwrap_or_else(|| match kind {
                AlertType::PaymentFailure => {
                    messages::payment_finding("test", None, None, None, "A test of the payment failure alert.")
                }
                _ => Finding {
                    kind,
                    firing: false,
                    current: "not evaluated yet".into(),
                    threshold: "see the configuration".into(),
                    affected: "nothing".into(),
                    details: "A test alert.".into(),
                },
            });
        let text = messages::firing(kind, &finding, now, now, true);
        let t = text.clone();
        let id = self
            .deps
            .database
            .query(move |c| store::insert(c, kind, &t, &finding, now, true, true))
            .await?;
        info!(alert = %kind, id, "test alert sent");
        self.send(kind, text, Some(id), false);
        Ok(id)
    }

    async fn overview(&self, limit: u32) -> Result<Overview, AlertsError> {
        let (history, payment_open) = self
            .deps
            .database
            .query(move |c| {
                let payments = store::history(c, 100, true)?
                    .into_iter()
                    .filter(|r| r.kind == AlertType::PaymentFailure && !r.test)
                    .collect();
                Ok((store::history(c, limit, false)?, payments))
            })
            .await?;
        let now = now_s();
        Ok(Overview {
            firing: self
                .state
                .open
                .iter()
                .map(|(k, o)| (*k, o.since_s, o.acknowledged, o.finding.clone()))
                .collect(),
            payment_open,
            silences: self
                .state
                .silenced_until
                .iter()
                .filter(|(_, u)| **u > now)
                .map(|(k, u)| (*k, *u))
                .collect(),
            history,
        })
    }

    /// `doradura_alerts_firing`: 1 per firing evaluated type, the number of unacknowledged payment failures.
    async fn publish(&self) {
        let payments = self
            .deps
            .database
            .query(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM alert_history
                      WHERE alert_type = 'PaymentFailure' AND resolved_at IS NULL AND is_test = 0",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .await
            .ok();
        for &kind in AlertType::ALL {
            let firing = match kind {
                AlertType::PaymentFailure => match payments {
                    Some(n) => n,
                    None => continue,
                },
                k => i64::from(self.state.open.contains_key(&k)),
            };
            self.deps.metrics.set_alert_firing(kind, firing);
        }
    }
}
