//! Sends alert messages to every admin from its own task, so a slow or failing Telegram never holds up an
//! evaluation. Each send is retried within a budget; a message that reached an admin is counted once per admin.

use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::*;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::kinds::AlertType;
use crate::metrics::Metrics;

/// How long one message to one admin may keep retrying.
const BUDGET: Duration = Duration::from_secs(300);
/// Messages waiting to be sent; beyond this the newest are dropped with a log line.
const QUEUE: usize = 1000;

#[derive(Debug, Clone)]
pub struct Outgoing {
    pub kind: AlertType,
    pub text: String,
    /// The history row its buttons act on (firing messages only).
    pub history_id: Option<i64>,
    /// Counted in `doradura_alerts_sent_total` (firing messages; not resolutions or tests).
    pub counted: bool,
}

#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Outgoing>,
}

impl Notifier {
    /// Without a bot the messages are written to the log only.
    pub fn spawn(bot: Option<Bot>, admins: Vec<i64>, metrics: Arc<Metrics>) -> Notifier {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, bot, admins, metrics));
        Notifier { tx }
    }

    pub fn send(&self, message: Outgoing) {
        if let Err(e) = self.tx.try_send(message) {
            error!(error = %e, "the alert send queue is full; an alert message was dropped");
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Outgoing>, bot: Option<Bot>, admins: Vec<i64>, metrics: Arc<Metrics>) {
    while let Some(m) = rx.recv().await {
        let Some(bot) = &bot else {
            warn!(alert = %m.kind, text = %m.text, "alert (no Telegram bot configured to send it)");
            continue;
        };
        if admins.is_empty() {
            warn!(alert = %m.kind, text = %m.text, "alert (ADMIN_IDS is empty: nobody to send it to)");
        }
        let pieces = crate::bot::texts::pieces(&m.text);
        let markup = m.history_id.map(|id| crate::bot::keyboards::alert(m.kind, id));
        for admin in &admins {
            let mut delivered = true;
            for (i, piece) in pieces.iter().enumerate() {
                let markup = markup.clone().filter(|_| i + 1 == pieces.len());
                let sent = crate::bot::retry::retrying("sendMessage (alert)", BUDGET, || {
                    let mut request = bot.send_message(ChatId(*admin), piece.clone());
                    if let Some(k) = markup.clone() {
                        request = request.reply_markup(k);
                    }
                    request.send()
                })
                .await;
                if let Err(e) = sent {
                    error!(alert = %m.kind, admin, error = %e, "an alert message could not be sent");
                    delivered = false;
                    break;
                }
            }
            if delivered {
                info!(alert = %m.kind, admin, "alert message sent");
                if m.counted {
                    metrics.alert_sent(m.kind);
                }
            }
        }
    }
}
