//! The HTTP server: `GET /metrics` (text format 0.0.4, optionally behind a bearer token), `GET /health` (JSON,
//! 200 or 503 naming what is not healthy), `GET /` (a page linking both).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::config::Secret;
use crate::db::Database;
use crate::supervisor::Supervisor;

/// Where the Telegram poller stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BotState {
    Disabled = 0,
    /// Not reached Telegram yet.
    Connecting = 1,
    Connected = 2,
    /// A `getUpdates` call failed; until one succeeds again.
    Disconnected = 3,
}

impl BotState {
    pub fn as_str(self) -> &'static str {
        match self {
            BotState::Disabled => "disabled",
            BotState::Connecting => "connecting",
            BotState::Connected => "connected",
            BotState::Disconnected => "disconnected",
        }
    }
}

/// Shared between the bot, which sets it, and `/health`, which reads it.
#[derive(Default)]
pub struct BotStatus {
    state: AtomicU8,
    /// `doradura_bot_connected`: 1 exactly while the state is `Connected`.
    gauge: Option<prometheus::IntGauge>,
}

impl BotStatus {
    /// A status that also sets `gauge` (1 while connected, else 0).
    pub fn with_gauge(gauge: prometheus::IntGauge) -> BotStatus {
        BotStatus {
            state: AtomicU8::new(BotState::Disabled as u8),
            gauge: Some(gauge),
        }
    }

    pub fn set(&self, s: BotState) {
        self.state.store(s as u8, Ordering::Relaxed);
        if let Some(g) = &self.gauge {
            g.set(i64::from(s == BotState::Connected));
        }
    }

    pub fn get(&self) -> BotState {
        match self.state.load(Ordering::Relaxed) {
            1 => BotState::Connecting,
            2 => BotState::Connected,
            3 => BotState::Disconnected,
            _ => BotState::Disabled,
        }
    }
}

#[derive(Clone)]
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    pub database: Database,
    pub supervisor: Supervisor,
    pub bot: Arc<BotStatus>,
    pub token: Option<Secret>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(state)
}

pub async fn serve(listener: tokio::net::TcpListener, state: HttpState, stop: CancellationToken) {
    if let Err(e) = axum::serve(listener, router(state))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "the metrics server failed");
    }
}

async fn index() -> Html<&'static str> {
    Html(
        "<!DOCTYPE html><html><head><title>doradura</title></head><body><h1>doradura</h1>\
         <ul><li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>\
         <li><a href=\"/health\">/health</a>: health as JSON</li></ul></body></html>",
    )
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics(State(s): State<HttpState>, headers: HeaderMap) -> Response {
    if let Some(token) = &s.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same(given.as_bytes(), token.expose().as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is required\n",
            )
                .into_response();
        }
    }
    let metrics = s.metrics.clone();
    let body = tokio::task::spawn_blocking(move || metrics.encode())
        .await
        .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn health(State(s): State<HttpState>) -> Response {
    let database = s.database.schema_version().await;
    let workers = s.supervisor.snapshot().await.unwrap_or_default();
    let up = crate::supervisor::workers_up(&workers);
    let bot = s.bot.get();
    let mut failing = Vec::new();
    if database.is_err() {
        failing.push("database");
    }
    if up == 0 {
        failing.push("workers");
    }
    let bot_ok = !matches!(bot, BotState::Connecting | BotState::Disconnected);
    if !bot_ok {
        failing.push("bot");
    }
    // No room for the next download: tasks wait in the queue.
    let spool = s.supervisor.spool();
    if !spool.has_room() {
        failing.push("spool");
    }
    // yt-dlp as the connected workers report it. Its age is for the operator (YtdlpOutdated warns), not a failure.
    let reported: Vec<&str> = workers
        .iter()
        .filter(|w| w.is_up())
        .map(|w| w.ytdlp_version.as_str())
        .collect();
    let mut versions: Vec<&str> = reported.iter().copied().filter(|v| !v.is_empty()).collect();
    versions.sort_unstable();
    versions.dedup();
    let oldest = crate::supervisor::oldest_ytdlp(reported.iter().copied(), crate::now_ms() / 1000);
    let body = json!({
        "status": if failing.is_empty() { "ok" } else { "unhealthy" },
        "failing": failing,
        "database": match &database {
            Ok(v) => json!({"ok": true, "schema_version": v}),
            Err(e) => json!({"ok": false, "error": e}),
        },
        "workers": {"ok": up > 0, "up": up, "total": workers.len()},
        "bot": {"ok": bot_ok, "state": bot.as_str()},
        "spool": {
            "ok": spool.has_room(),
            "free_bytes": spool.free_bytes,
            "required_bytes": spool.required_bytes,
            "error": spool.error,
        },
        "ytdlp": {
            "versions": versions,
            "workers_without": reported.iter().filter(|v| v.is_empty()).count(),
            "release_date": oldest.and_then(|(v, _)| doradura_proto::ytdlp_release::release_date(v)),
            "release_age_days": oldest.map(|(_, age)| age),
        },
    });
    let code = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}
