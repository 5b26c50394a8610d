//! Long polling of `getUpdates`, as teloxide's own `Polling` does it, but telling [`BotStatus`] (and through it
//! `/health` and `doradura_bot_connected`) how every call went: connected after a call that succeeded,
//! disconnected after one that failed, until one succeeds again.
//!
//! teloxide's `Polling` only reports the failures (an empty answer to a long poll yields nothing), so the bot
//! could never be seen coming back. This listener makes the calls itself on a task of its own and hands the
//! updates to the dispatcher through a channel.

use std::sync::Arc;
use std::time::Duration;

use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::stop::{StopFlag, StopToken, mk_stop_token};
use teloxide::types::{AllowedUpdate, Update};
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{info, warn};

use crate::metrics::http::{BotState, BotStatus};

/// Seconds Telegram may hold a `getUpdates` call open.
const LONG_POLL_S: u32 = 10;
/// The longest pause between two failed calls.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The dispatcher's update listener.
pub struct Poller {
    bot: Bot,
    status: Arc<BotStatus>,
    allowed: Option<Vec<AllowedUpdate>>,
    token: StopToken,
    flag: StopFlag,
}

impl Poller {
    pub fn new(bot: Bot, status: Arc<BotStatus>) -> Poller {
        let (token, flag) = mk_stop_token();
        Poller {
            bot,
            status,
            allowed: None,
            token,
            flag,
        }
    }
}

impl UpdateListener for Poller {
    type Err = RequestError;

    fn stop_token(&mut self) -> StopToken {
        self.token.clone()
    }

    fn hint_allowed_updates(&mut self, hint: &mut dyn Iterator<Item = AllowedUpdate>) {
        self.allowed = Some(hint.collect());
    }
}

impl<'a> AsUpdateStream<'a> for Poller {
    type StreamErr = RequestError;
    type Stream = ReceiverStream<Result<Update, RequestError>>;

    fn as_stream(&'a mut self) -> Self::Stream {
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(poll(
            self.bot.clone(),
            self.status.clone(),
            self.allowed.clone(),
            self.flag.clone(),
            tx,
        ));
        ReceiverStream::new(rx)
    }
}

/// The pause after `failures` failed calls in a row (the first failure is 0): 1 s, doubling, at most 30 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(5)).min(MAX_BACKOFF)
}

/// Calls `getUpdates` until the flag stops it, then confirms the updates handed on, so that the next start does
/// not receive them again. The stream ends when this returns (the sender is dropped).
async fn poll(
    bot: Bot,
    status: Arc<BotStatus>,
    mut allowed: Option<Vec<AllowedUpdate>>,
    mut flag: StopFlag,
    tx: mpsc::Sender<Result<Update, RequestError>>,
) {
    let mut offset = 0;
    let mut failures = 0u32;
    loop {
        let mut request = bot.get_updates().offset(offset).timeout(LONG_POLL_S);
        // Telegram keeps the list of update kinds once it has accepted it.
        if let Some(kinds) = &allowed {
            request = request.allowed_updates(kinds.clone());
        }
        let result = tokio::select! {
            r = request.send() => r,
            _ = &mut flag => break,
        };
        match result {
            Ok(updates) => {
                if failures > 0 {
                    info!(
                        failed_calls = failures,
                        "getUpdates succeeds again: the bot is connected to Telegram"
                    );
                }
                failures = 0;
                allowed = None;
                status.set(BotState::Connected);
                for update in updates {
                    offset = update.id.as_offset();
                    if tx.send(Ok(update)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let pause = match &e {
                    RequestError::RetryAfter(s) => s.duration(),
                    _ => backoff(failures),
                };
                if failures == 0 {
                    warn!(retry_in = ?pause, "getUpdates failed: the bot is disconnected from Telegram");
                }
                failures = failures.saturating_add(1);
                status.set(BotState::Disconnected);
                // The dispatcher's listener error handler logs the error itself.
                if tx.send(Err(e)).await.is_err() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = &mut flag => break,
                }
            }
        }
    }
    if offset != 0 {
        let _ = bot.get_updates().offset(offset).limit(1).timeout(0).send().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_from_a_second_up_to_thirty() {
        let pauses: Vec<u64> = (0..8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
