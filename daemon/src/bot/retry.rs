//! Telegram trouble is waited out, not fatal: 429 honours `retry_after`, 5xx and network errors back off.

use std::future::Future;
use std::time::{Duration, Instant};

use doradura_proto::types::{ErrorCategory, SendKind};
use teloxide::{ApiError, RequestError};
use tracing::warn;

/// Errors worth another attempt.
fn transient(e: &RequestError) -> bool {
    match e {
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => true,
        RequestError::Api(ApiError::Unknown(description)) => {
            let d = description.to_ascii_lowercase();
            [
                "bad gateway",
                "internal server error",
                "service unavailable",
                "gateway timeout",
                "too many requests",
            ]
            .iter()
            .any(|s| d.contains(s))
        }
        _ => false,
    }
}

/// Runs `op` until it succeeds, fails for good, or `budget` is spent.
pub async fn retrying<T, F, Fut>(what: &str, budget: Duration, op: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let started = Instant::now();
    let result = attempt(what, budget, op).await;
    if result.is_ok()
        && what == "sendMessage"
        && let Some(m) = METRICS.get()
    {
        m.sent(SendKind::Message, started.elapsed().as_secs_f64());
    }
    if let Err(e) = &result {
        warn!(what, error = %e, "Telegram call failed for good");
        if let Some(m) = METRICS.get() {
            m.error(ErrorCategory::TelegramApi);
        }
    }
    result
}

/// Where Telegram send times and failures are counted; set once when the bot starts (one bot per process).
pub static METRICS: std::sync::OnceLock<std::sync::Arc<crate::metrics::Metrics>> = std::sync::OnceLock::new();

async fn attempt<T, F, Fut>(what: &str, budget: Duration, mut op: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let started = Instant::now();
    let mut backoff = Duration::from_millis(500);
    loop {
        let wait = match op().await {
            Ok(v) => return Ok(v),
            Err(RequestError::RetryAfter(after)) => after.duration(),
            Err(e) if transient(&e) => {
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                warn!(what, error = %e, retry_in = ?wait, "Telegram call failed; retrying");
                wait
            }
            Err(e) => return Err(e),
        };
        if started.elapsed() + wait > budget {
            warn!(what, "giving up after {:?}", started.elapsed());
            return Err(RequestError::Io(std::sync::Arc::new(std::io::Error::other(format!(
                "{what}: Telegram did not accept it within {budget:?}"
            )))));
        }
        tokio::time::sleep(wait).await;
    }
}
