//! The Telegram bot: teloxide long polling against `TELOXIDE_API_URL`, on top of the download pipeline.

mod admin;
mod callback;
mod commands;
mod delivery;
mod handlers;
mod health;
pub(crate) mod keyboards;
mod payments;
pub mod poller;
pub(crate) mod retry;
mod store;
pub(crate) mod texts;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use teloxide::dispatching::{Dispatcher, UpdateFilterExt, UpdateHandler};
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::*;
use teloxide::types::{BotCommand, BotCommandScope, Recipient};
use teloxide::utils::command::BotCommands;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::db::Database;
use crate::downloads::Downloads;
use crate::metrics::http::{BotState, BotStatus};
use crate::plans::Limits;
use crate::supervisor::Supervisor;
pub use commands::{AdminCommand, Command};

type HandlerError = Box<dyn std::error::Error + Send + Sync>;
type HandlerResult = Result<(), HandlerError>;

/// What every handler needs.
pub struct Ctx {
    pub downloads: Downloads,
    pub database: Database,
    pub supervisor: Supervisor,
    pub admins: HashSet<i64>,
    pub limits: Limits,
    pub max_file_mb: u64,
    pub started: Instant,
    pub status: Arc<BotStatus>,
    pub prices: crate::payments::Prices,
    pub expiry_every: Duration,
    pub alerts: crate::alerts::Alerts,
    /// Per-request cancel signals of running deliveries.
    cancels: Mutex<HashMap<i64, oneshot::Sender<()>>>,
}

impl Ctx {
    pub fn new(
        config: &Config,
        downloads: Downloads,
        database: Database,
        supervisor: Supervisor,
        started: Instant,
        status: Arc<BotStatus>,
        alerts: crate::alerts::Alerts,
    ) -> Ctx {
        Ctx {
            downloads,
            database,
            supervisor,
            admins: config.admin_ids.iter().copied().collect(),
            limits: config.limits,
            max_file_mb: config.max_file_size_mb,
            started,
            status,
            prices: crate::payments::Prices {
                premium: config.premium_price_stars,
                vip: config.vip_price_stars,
            },
            expiry_every: config.plan_expiry_interval,
            alerts,
            cancels: Mutex::new(HashMap::new()),
        }
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.downloads.metrics
    }

    pub fn is_admin(&self, user_id: i64) -> bool {
        self.admins.contains(&user_id)
    }
}

/// The handler tree: commands, admin commands, links, button presses.
pub fn schema() -> UpdateHandler<HandlerError> {
    let messages = Update::filter_message()
        .branch(dptree::filter(|m: Message| m.successful_payment().is_some()).endpoint(payments::successful))
        .branch(
            dptree::filter(|m: Message| matches!(m.kind, teloxide::types::MessageKind::RefundedPayment(_)))
                .endpoint(payments::refunded),
        )
        .branch(dptree::entry().filter_command::<Command>().endpoint(handlers::command))
        .branch(
            dptree::entry()
                .filter_command::<AdminCommand>()
                .endpoint(admin::command),
        )
        .endpoint(handlers::text);
    dptree::entry()
        .branch(messages)
        .branch(Update::filter_callback_query().endpoint(handlers::callback))
        .branch(Update::filter_pre_checkout_query().endpoint(payments::pre_checkout))
}

/// The bot: `setMyCommands`, the deliveries a restart interrupted, then long polling until `shutdown`.
pub async fn run(config: &Config, ctx: Arc<Ctx>, shutdown: CancellationToken) {
    let Some(token) = config.bot_token.as_ref() else { return };
    let url = match reqwest_url(&config.api_url) {
        Some(u) => u,
        None => {
            error!(url = %config.api_url, "TELOXIDE_API_URL is not a valid URL; the bot stays off");
            return;
        }
    };
    let bot = new_bot(token.expose(), url, config.max_file_size_mb);
    let _ = retry::METRICS.set(ctx.downloads.metrics.clone());

    // Telegram may be unreachable at start: keep trying; the rest of the daemon runs meanwhile.
    let mut backoff = Duration::from_secs(1);
    let me = loop {
        match bot.get_me().await {
            Ok(me) => break me,
            Err(e) => {
                warn!(error = %e, retry_in = ?backoff, "Telegram is not reachable yet");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    };
    info!(username = %me.username(), "Telegram bot connected");
    ctx.status.set(BotState::Connected);
    register_commands(&bot, &ctx.admins).await;
    delivery::resume(&bot, &ctx).await;
    payments::refresh_active(&ctx).await;
    let expiry = tokio::spawn(payments::expiry_job(bot.clone(), ctx.clone(), ctx.expiry_every));

    // A webhook left set by another program would make every getUpdates call fail.
    if let Ok(info) = bot.get_webhook_info().await
        && info.url.is_some()
        && let Err(e) = bot.delete_webhook().await
    {
        warn!(error = %e, "could not remove the bot's webhook; long polling will fail until it is removed");
    }
    let status = ctx.status.clone();
    let mut dispatcher = Dispatcher::builder(bot.clone(), schema())
        .dependencies(dptree::deps![ctx])
        .default_handler(|_| async {})
        .error_handler(LoggingErrorHandler::with_custom_text("a bot handler failed"))
        .build();
    let stop = dispatcher.shutdown_token();
    let shutdown_copy = shutdown.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        loop {
            match stop.shutdown() {
                Ok(done) => {
                    done.await;
                    return;
                }
                // Not dispatching yet: try again in a moment.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let mut backoff = Duration::from_secs(1);
    loop {
        let poller = poller::Poller::new(bot.clone(), status.clone());
        let errors = LoggingErrorHandler::with_custom_text("getUpdates failed");
        // The dispatcher asks getMe again before it polls; Telegram may be gone by then.
        match dispatcher.try_dispatch_with_listener(poller, errors).await {
            Ok(()) => break,
            Err(e) => {
                status.set(BotState::Disconnected);
                warn!(error = %e, retry_in = ?backoff, "Telegram is not reachable; the bot polls again later");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown_copy.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
    expiry.abort();
    info!("Telegram bot stopped");
}

/// A Bot API client for other senders (the alerts), when a token is configured and the URL is valid.
pub fn client(config: &Config) -> Option<Bot> {
    let token = config.bot_token.as_ref()?;
    Some(new_bot(
        token.expose(),
        reqwest_url(&config.api_url)?,
        config.max_file_size_mb,
    ))
}

/// How long one Bot API request may take: a minute, plus a second per megabyte of the largest file (an upload at
/// 1 MB/s). teloxide's default client gives every request 17 s, which a large upload outlives, above all through a
/// local Bot API server, which answers only once it has passed the file on; the upload would then be sent again.
fn request_timeout(max_file_size_mb: u64) -> Duration {
    Duration::from_secs(60 + max_file_size_mb)
}

/// A Bot API client with teloxide's settings but [`request_timeout`].
fn new_bot(token: &str, url: url::Url, max_file_size_mb: u64) -> Bot {
    let client = teloxide::net::default_reqwest_settings()
        .timeout(request_timeout(max_file_size_mb))
        .build();
    match client {
        Ok(client) => Bot::with_client(token, client).set_api_url(url),
        Err(e) => {
            warn!(error = %e, "cannot build the Bot API client with a longer timeout; using teloxide's default");
            Bot::new(token).set_api_url(url)
        }
    }
}

fn reqwest_url(s: &str) -> Option<url::Url> {
    url::Url::parse(s).ok()
}

/// Registers the command menus: users see theirs, each admin also sees the admin commands.
async fn register_commands(bot: &Bot, admins: &HashSet<i64>) {
    // Telegram wants command names without the slash that teloxide's descriptions carry.
    let bare = |cmds: Vec<BotCommand>| -> Vec<BotCommand> {
        cmds.into_iter()
            .map(|c| BotCommand::new(c.command.trim_start_matches('/'), c.description))
            .collect()
    };
    let users = bare(Command::bot_commands());
    if let Err(e) = retry::retrying("setMyCommands", Duration::from_secs(60), || {
        bot.set_my_commands(users.clone()).send()
    })
    .await
    {
        warn!(error = %e, "could not register the bot's commands");
    }
    let mut all = users.clone();
    all.extend(bare(AdminCommand::bot_commands()));
    for admin in admins {
        let scope = BotCommandScope::Chat {
            chat_id: Recipient::Id(ChatId(*admin)),
        };
        let request = || bot.set_my_commands(all.clone()).scope(scope.clone()).send();
        if let Err(e) = retry::retrying("setMyCommands (admin)", Duration::from_secs(60), request).await {
            warn!(admin, error = %e, "could not register the admin commands");
        }
    }
}
