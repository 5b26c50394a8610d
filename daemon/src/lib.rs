//! doradurad: the supervisor daemon as a library, so tests can run it in-process or as the real binary.

pub mod admin_metrics;
pub mod alerts;
pub mod analytics;
pub mod bot;
pub mod charts;
pub mod cli;
pub mod config;
pub mod control;
pub mod db;
pub mod downloads;
pub mod hub;
pub mod logging;
pub mod manpage;
pub mod metrics;
pub mod notify;
pub mod payments;
pub mod plans;
pub mod queue;
pub mod revenue;
pub mod rollup;
pub mod socket;
pub mod supervisor;
pub mod urlcheck;
pub mod users;

use std::time::{Duration, Instant};

use doradura_proto::control_server::ControlServer;
use doradura_proto::types::ErrorCategory;
use doradura_proto::worker_link_server::WorkerLinkServer;
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use config::Config;
use control::{ControlService, Phase, WorkerLinkService};
use db::{Database, DbError};
use downloads::Downloads;
use hub::Hub;
use metrics::Metrics;
use metrics::http::{BotState, BotStatus};
use std::sync::Arc;
use supervisor::tasks as supervisor_tasks;
use supervisor::{Deps, Supervisor};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A start-up or shutdown step that failed; the variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Socket(#[from] socket::SocketError),
    #[error("the control server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("cannot prepare the download directory {path}: {source}")]
    Spool {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot recover the queue: {0}")]
    Recover(rusqlite::Error),
    #[error(
        "cannot bind the metrics server on {addr} (METRICS_BIND={ip}, METRICS_PORT={port}): {source}. {advice}",
        ip = addr.ip(),
        port = addr.port(),
        advice = bind_advice(addr, source)
    )]
    MetricsBind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl DaemonError {
    /// A problem of the configuration or the host's setup that a restart cannot fix: the daemon exits with 78
    /// (`EX_CONFIG`), which the unit's `RestartPreventExitStatus=78` does not restart. An address that is not up
    /// yet (a network still coming up at boot) is not one: the unit's restarts bring the daemon up once it is.
    pub fn is_config(&self) -> bool {
        matches!(self, DaemonError::MetricsBind { source, .. } if source.kind() != std::io::ErrorKind::AddrNotAvailable)
    }
}

/// What to do about a metrics address that cannot be bound.
fn bind_advice(addr: &std::net::SocketAddr, e: &std::io::Error) -> String {
    let port = addr.port();
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "Another program listens on port {port}{prometheus}: set METRICS_PORT to a free port in \
             /etc/doradura/doradura.env (the package's file sets 9464, which deploy/prometheus/prometheus.yml \
             scrapes) or METRICS_ENABLED=false; `ss -ltnp 'sport = :{port}'` shows who holds it",
            prometheus = if port == 9090 {
                " (9090 is Prometheus's own port)"
            } else {
                ""
            },
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "{} is not an address of this host: set METRICS_BIND to one (127.0.0.1 by default, 0.0.0.0 for all)",
            addr.ip()
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("port {port} needs privileges the service does not have: set METRICS_PORT to 1024 or above")
        }
        _ => "Check METRICS_BIND and METRICS_PORT".to_string(),
    }
}

/// Milliseconds since the Unix epoch: the queue's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Creates the spool directory and clears what an earlier run left in it; returns its absolute path.
fn prepare_spool(dir: &std::path::Path) -> Result<std::path::PathBuf, DaemonError> {
    let spool_err = |source| DaemonError::Spool {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(spool_err)?;
    let dir = std::fs::canonicalize(dir).map_err(spool_err)?;
    let removed = supervisor_tasks::purge_spool(&dir).map_err(spool_err)?;
    if removed > 0 {
        info!(removed, path = %dir.display(), "removed task directories left by an earlier run");
    }
    Ok(dir)
}

/// Runs the daemon until `shutdown` is cancelled, then stops gracefully. Each configuration sent on `reloads`
/// (SIGHUP) replaces what can change at run time: the alert thresholds.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    mut reloads: watch::Receiver<Config>,
) -> Result<(), DaemonError> {
    let started = Instant::now();
    notify::status("opening database");
    let database = Database::open(&config.database_path).await?;
    match database.schema_version().await {
        Ok(v) => info!(path = %config.database_path.display(), schema = v, "database ready"),
        Err(e) => warn!(path = %config.database_path.display(), error = %e, "database opened but not answering"),
    }
    let recovered = database
        .call(|c| queue::recover(c, now_ms()))
        .await?
        .map_err(DaemonError::Recover)?;
    if recovered > 0 {
        info!(
            tasks = recovered,
            "tasks left running by the previous run are queued again"
        );
    }
    let spool = prepare_spool(&config.download_dir)?;
    let metrics = Arc::new(Metrics::new());
    {
        let m = metrics.clone();
        database
            .call(move |c| metrics::restore(c, &m))
            .await?
            .map_err(DaemonError::Recover)?;
    }
    let bot_status = Arc::new(BotStatus::with_gauge(metrics.bot_connected_gauge()));
    bot_status.set(if config.bot_token.is_some() {
        BotState::Connecting
    } else {
        metrics.bot_disabled();
        BotState::Disabled
    });
    let http = match config.metrics_enabled {
        true => {
            let addr = std::net::SocketAddr::new(config.metrics_bind, config.metrics_port);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::MetricsBind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| DaemonError::MetricsBind { addr, source })?;
            info!(address = %bound, "metrics served on http://{bound}/metrics");
            Some((listener, bound))
        }
        false => None,
    };

    notify::status("binding control socket");
    let listener = socket::bind(&config.control_socket).await?;
    let socket_path = listener.path.clone();
    info!(path = %socket_path.display(), "control socket bound");

    let (phase_tx, phase) = watch::channel(Phase::Starting);
    notify::status("starting workers");
    let hub = Hub::default();
    let supervisor = Supervisor::start(
        &config,
        socket_path.clone(),
        Deps {
            database: database.clone(),
            hub: hub.clone(),
            spool,
            metrics: metrics.clone(),
        },
    );

    let downloads = Downloads {
        database: database.clone(),
        hub: hub.clone(),
        supervisor: supervisor.clone(),
        queue: config.queue,
        allow_private_hosts: config.allow_private_hosts,
        allowed_hosts: config.allowed_hosts.clone(),
        metrics: metrics.clone(),
    };
    let http_stop = CancellationToken::new();
    let metrics_address = http.as_ref().map(|(_, a)| a.to_string()).unwrap_or_default();
    if let Some((listener, _)) = http {
        let state = metrics::http::HttpState {
            metrics: metrics.clone(),
            database: database.clone(),
            supervisor: supervisor.clone(),
            bot: bot_status.clone(),
            token: config.metrics_auth_token.clone(),
        };
        tokio::spawn(metrics::http::serve(listener, state, http_stop.clone()));
    }
    let refresher = tokio::spawn(refresh_metrics(metrics.clone(), database.clone(), started));
    let alerts = match config.alerts_enabled {
        true => {
            let notifier = alerts::Notifier::spawn(bot::client(&config), config.admin_ids.clone(), metrics.clone());
            alerts::spawn(alerts::Deps {
                database: database.clone(),
                metrics: metrics.clone(),
                supervisor: supervisor.clone(),
                notifier,
                rules: alerts::rules::Rules::from_config(&config),
                interval: config.alert_check_interval,
            })
            .await
        }
        false => {
            info!("ALERTS_ENABLED=false: no alerts are evaluated or sent");
            alerts::Alerts::disabled()
        }
    };
    let reloader = {
        let alerts = alerts.clone();
        tokio::spawn(async move {
            while reloads.changed().await.is_ok() {
                let rules = alerts::rules::Rules::from_config(&reloads.borrow_and_update());
                alerts.reload(rules);
            }
        })
    };
    let roll_ups = tokio::spawn(roll_up(
        database.clone(),
        metrics.clone(),
        config.analytics_cache_update_interval,
    ));

    let server_stop = CancellationToken::new();
    let server = tonic::transport::Server::builder()
        .add_service(WorkerLinkServer::new(WorkerLinkService {
            supervisor: supervisor.clone(),
            heartbeat_interval: config.supervision.heartbeat_interval,
        }))
        .add_service(ControlServer::new(ControlService {
            supervisor: supervisor.clone(),
            started,
            phase: phase.clone(),
            database: database.clone(),
            downloads: downloads.clone(),
            metrics: metrics.clone(),
            metrics_address,
            alerts: alerts.clone(),
        }))
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(listener.into_inner()),
            server_stop.clone().cancelled_owned(),
        );
    let server = tokio::spawn(server);

    let wanted = config.workers as usize;
    let helloed = tokio::select! {
        n = supervisor.wait_all_helloed(config.supervision.ready_timeout) => Some(n),
        _ = shutdown.cancelled() => None,
    };
    if let Some(n) = helloed {
        let _ = phase_tx.send(Phase::Ready);
        let status = format!("ready: {n}/{wanted} workers up");
        if n < wanted {
            warn!(
                "{status} (the rest did not say hello within {:?})",
                config.supervision.ready_timeout
            );
        } else {
            info!("{status}");
        }
        notify::ready(&status);
        let watchdog = tokio::spawn(watchdog(supervisor.clone()));
        let status_updates = tokio::spawn(status_updates(supervisor.clone(), wanted));
        let bot_stop = CancellationToken::new();
        let bot = match config.bot_token {
            Some(_) => {
                let ctx = bot::Ctx::new(
                    &config,
                    downloads.clone(),
                    database.clone(),
                    supervisor.clone(),
                    started,
                    bot_status.clone(),
                    alerts.clone(),
                );
                let (config, stop) = (config.clone(), bot_stop.clone());
                Some(tokio::spawn(async move {
                    bot::run(&config, std::sync::Arc::new(ctx), stop).await
                }))
            }
            None => {
                info!("TELOXIDE_TOKEN is not set: running without the Telegram bot");
                None
            }
        };
        shutdown.cancelled().await;
        // Stop intake first: no new requests from Telegram while the workers finish.
        bot_stop.cancel();
        if let Some(bot) = bot
            && tokio::time::timeout(Duration::from_secs(15), bot).await.is_err()
        {
            warn!("the Telegram bot did not stop within 15s");
        }
        watchdog.abort();
        status_updates.abort();
    }

    info!("shutting down");
    let _ = phase_tx.send(Phase::Stopping);
    notify::stopping("stopping workers");
    supervisor.shutdown().await;
    // Followers of unfinished tasks are told the daemon is stopping, then the server drains their streams.
    hub.close();
    server_stop.cancel();
    http_stop.cancel();
    refresher.abort();
    roll_ups.abort();
    reloader.abort();
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Err(e))) => error!(error = %e, "control server ended with an error"),
        Ok(_) => {}
        Err(_) => warn!("control server did not stop within 5s"),
    }
    socket::remove(&socket_path);
    database.checkpoint().await;
    info!("stopped");
    Ok(())
}

/// Uptime every second; DAU, MAU and total users every minute.
async fn refresh_metrics(metrics: Arc<Metrics>, database: Database, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut counted = 0;
    for ticks in 1u64.. {
        tick.tick().await;
        let up = started.elapsed().as_secs();
        metrics.count_uptime(up.saturating_sub(counted));
        counted = counted.max(up);
        if ticks.is_multiple_of(60) {
            let m = metrics.clone();
            if !matches!(
                database
                    .call(move |c| metrics::refresh_users(c, &m, now_ms() / 1000))
                    .await,
                Ok(Ok(()))
            ) {
                metrics.error(ErrorCategory::Database);
            }
        }
    }
}

/// Rolls the history up into `metric_aggregates` every `every`: at start from the newest period stored, then
/// from a little before the previous run, so a write that was in flight during it is not missed.
async fn roll_up(database: Database, metrics: Arc<Metrics>, every: Duration) {
    const MARGIN_S: i64 = 300;
    let mut since = None;
    loop {
        let started_s = now_ms() / 1000;
        match database.call(move |c| rollup::roll_up(c, since)).await {
            Ok(Ok(rows)) => {
                tracing::debug!(rows, "analytics rolled up");
                since = Some(started_s - MARGIN_S);
            }
            Ok(Err(e)) => {
                metrics.error(ErrorCategory::Database);
                warn!(error = %e, "the analytics roll-up failed");
            }
            Err(e) => {
                metrics.error(ErrorCategory::Database);
                warn!(error = %e, "the analytics roll-up failed");
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Pings the systemd watchdog while the supervisor answers; a hung supervisor stops the pings.
async fn watchdog(supervisor: Supervisor) {
    let Some(interval) = notify::watchdog_interval() else {
        return;
    };
    let every = interval / 2;
    loop {
        if tokio::time::timeout(every, supervisor.snapshot())
            .await
            .ok()
            .flatten()
            .is_some()
        {
            notify::watchdog();
        }
        tokio::time::sleep(every).await;
    }
}

/// Keeps systemd's STATUS= line current with the workers' states.
async fn status_updates(supervisor: Supervisor, wanted: usize) {
    let mut last = String::new();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(workers) = supervisor.snapshot().await else {
            return;
        };
        let up = crate::supervisor::workers_up(&workers);
        let looping = workers
            .iter()
            .filter(|w| w.state == crate::supervisor::WorkerPhase::CrashLoop)
            .count();
        let mut line = format!("{up}/{wanted} workers up");
        if looping > 0 {
            line.push_str(&format!(", {looping} crash-looping"));
        }
        if line != last {
            notify::status(&line);
            last = line;
        }
    }
}
