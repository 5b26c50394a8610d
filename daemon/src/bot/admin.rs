//! Admin commands and the buttons under `/analytics`. Every attempt is audited first; anyone not in ADMIN_IDS
//! gets one line and no figure.

use std::sync::Arc;

use teloxide::prelude::*;
use teloxide::types::{InputFile, ReplyParameters};
use tracing::{info, warn};

use std::time::Duration;

use super::callback::{Action, AdminView};
use super::commands::AdminCommand;
use super::handlers::{REPLY_BUDGET, answer, record_now};
use super::{Ctx, HandlerResult, health, keyboards, retry, texts};
use crate::admin_metrics as am;
use doradura_proto::types::{CommandName, ErrorCategory, MetricsCategory};

/// Stores who tried which admin command, with what arguments, and whether it was allowed.
async fn audit(ctx: &Ctx, user_id: i64, command: CommandName, args: String) -> bool {
    let allowed = ctx.is_admin(user_id);
    let stored = ctx
        .database
        .query(move |c| {
            c.execute(
                "INSERT INTO admin_actions (user_id, command, args, allowed, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    user_id,
                    command.as_str(),
                    args.chars().take(200).collect::<String>(),
                    allowed,
                    crate::now_ms()
                ],
            )
        })
        .await;
    if stored.is_err() {
        ctx.metrics().error(ErrorCategory::Database);
    }
    if allowed {
        info!(user = user_id, command = command.as_str(), "admin command");
    } else {
        warn!(user = user_id, command = command.as_str(), "admin command refused");
    }
    allowed
}

/// Sends `text` (in pieces when it is longer than Telegram allows), the last piece with `markup`.
async fn send(
    bot: &Bot,
    chat: ChatId,
    reply_to: Option<teloxide::types::MessageId>,
    text: &str,
    markup: Option<teloxide::types::InlineKeyboardMarkup>,
) -> HandlerResult {
    let pieces = texts::pieces(text);
    let last = pieces.len() - 1;
    for (i, piece) in pieces.into_iter().enumerate() {
        let markup = markup.clone().filter(|_| i == last);
        retry::retrying("sendMessage", REPLY_BUDGET, || {
            let mut request = bot.send_message(chat, piece.clone());
            if let Some(id) = reply_to {
                request = request.reply_parameters(ReplyParameters::new(id).allow_sending_without_reply());
            }
            if let Some(m) = markup.clone() {
                request = request.reply_markup(m);
            }
            request.send()
        })
        .await?;
    }
    Ok(())
}

async fn send_png(bot: &Bot, chat: ChatId, png: Vec<u8>, name: &'static str, caption: &'static str) -> HandlerResult {
    retry::retrying("sendPhoto", REPLY_BUDGET, || {
        bot.send_photo(chat, InputFile::memory(png.clone()).file_name(name))
            .caption(caption)
            .send()
    })
    .await?;
    Ok(())
}

pub async fn command(bot: Bot, msg: Message, cmd: AdminCommand, ctx: Arc<Ctx>) -> HandlerResult {
    let Some(user) = msg.from.clone() else { return Ok(()) };
    record_now(&ctx, &user, true).await;
    ctx.metrics().command(cmd.name());
    let args = msg
        .text()
        .unwrap_or("")
        .split_once(' ')
        .map_or("", |(_, a)| a)
        .to_string();
    let (chat, id) = (msg.chat.id, Some(msg.id));
    if !audit(&ctx, user.id.0 as i64, cmd.name(), args).await {
        return send(&bot, chat, id, texts::ADMIN_ONLY, None).await;
    }
    match cmd {
        AdminCommand::Health => send(&bot, chat, id, &health_text(&ctx).await?, None).await,
        AdminCommand::Analytics => {
            let (text, hours) = analytics(&ctx).await?;
            send(&bot, chat, id, &text, Some(keyboards::analytics())).await?;
            let png = tokio::task::spawn_blocking(move || crate::charts::downloads_24h(&hours)).await??;
            send_png(&bot, chat, png, "analytics.png", texts::ANALYTICS_CHART).await
        }
        AdminCommand::Metrics(category) => {
            let category = category.trim().to_ascii_lowercase();
            send(&bot, chat, id, &metrics_typed(&ctx, &category).await?, None).await
        }
        AdminCommand::Revenue => {
            let now = crate::now_ms();
            let revenue = ctx.database.query(move |c| crate::revenue::compute(c, now)).await?;
            send(&bot, chat, id, &crate::revenue::render(&revenue), None).await?;
            let daily = revenue.daily.clone();
            let png = tokio::task::spawn_blocking(move || crate::charts::revenue_30d(&daily)).await??;
            send_png(&bot, chat, png, "revenue.png", texts::REVENUE_CHART).await
        }
        AdminCommand::Export(days) => export(&bot, chat, &days, &ctx).await,
        AdminCommand::Alerts => {
            let text = match ctx.alerts.overview(20).await {
                Ok(o) => crate::alerts::render(&o, crate::now_ms() / 1000),
                Err(e) => format!("🚨 Alerts: {e}"),
            };
            send(&bot, chat, id, &text, None).await
        }
        AdminCommand::Refund(charge) => super::payments::refund_command(&bot, chat, charge, &ctx).await,
    }
}

/// A press on a button under `/analytics`: refresh edits the dashboard in place, a category sends its details.
pub async fn button(bot: Bot, q: CallbackQuery, message: Message, view: AdminView, ctx: Arc<Ctx>) -> HandlerResult {
    let (command, args) = match view {
        AdminView::Refresh => (CommandName::Analytics, "refresh".to_string()),
        AdminView::Category(c) => (CommandName::Metrics, c.to_string()),
    };
    if !audit(&ctx, q.from.id.0 as i64, command, args).await {
        return answer(&bot, &q, texts::ADMIN_ONLY, true).await;
    }
    ctx.metrics().command(command);
    match view {
        AdminView::Refresh => {
            let (text, _) = analytics(&ctx).await?;
            answer(&bot, &q, texts::REFRESHED, false).await?;
            retry::retrying("editMessageText", REPLY_BUDGET, || {
                bot.edit_message_text(message.chat.id, message.id, text.clone())
                    .reply_markup(keyboards::analytics())
                    .send()
            })
            .await?;
            Ok(())
        }
        AdminView::Category(category) => {
            answer(&bot, &q, "…", false).await?;
            send(&bot, message.chat.id, None, &metrics_text(&ctx, category).await?, None).await
        }
    }
}

/// A press on an alert's buttons: silence its type, or acknowledge it. Audited as `alerts`.
pub async fn alert_button(bot: Bot, q: CallbackQuery, action: Action, ctx: Arc<Ctx>) -> HandlerResult {
    let user = q.from.id.0 as i64;
    let args = match &action {
        Action::AlertSilence { kind, hours } => format!("silence {kind} {hours}h"),
        Action::AlertAck { id } => format!("ack {id}"),
        _ => return Ok(()),
    };
    if !audit(&ctx, user, CommandName::Alerts, args).await {
        return answer(&bot, &q, texts::ADMIN_ONLY, true).await;
    }
    let reply = match action {
        Action::AlertSilence { kind, hours } => {
            let by = format!("telegram:{user}");
            match ctx
                .alerts
                .silence(kind, Duration::from_secs(u64::from(hours) * 3600), by)
                .await
            {
                Ok(_) => texts::alert_silenced(kind.as_str(), hours),
                Err(e) => format!("⚠️ {e}"),
            }
        }
        Action::AlertAck { id } => match ctx.alerts.acknowledge(id, user).await {
            Ok(kind) => texts::alert_acknowledged(kind.as_str(), id),
            Err(e) => format!("⚠️ {e}"),
        },
        _ => return Ok(()),
    };
    answer(&bot, &q, &reply, false).await
}

/// The dashboard text and the hourly series of its chart.
async fn analytics(ctx: &Ctx) -> Result<(String, Vec<(u64, u64)>), super::HandlerError> {
    let workers = ctx.supervisor.snapshot().await.unwrap_or_default();
    let now = crate::now_ms();
    let (dashboard, hours) = ctx
        .database
        .query(move |c| Ok((crate::analytics::dashboard(c, now)?, crate::charts::hourly(c, now)?)))
        .await?;
    Ok((
        crate::analytics::render(&dashboard, &health::ytdlp_status(&workers)),
        hours,
    ))
}

/// `/metrics CATEGORY` as typed: empty gets the menu, an unknown category the menu naming it.
async fn metrics_typed(ctx: &Ctx, category: &str) -> Result<String, super::HandlerError> {
    if category.is_empty() {
        return Ok(am::menu(None));
    }
    match category.parse::<MetricsCategory>() {
        Ok(known) => metrics_text(ctx, known).await,
        Err(_) => Ok(am::menu(Some(category))),
    }
}

async fn metrics_text(ctx: &Ctx, category: MetricsCategory) -> Result<String, super::HandlerError> {
    let now = crate::now_ms();
    Ok(match category {
        MetricsCategory::Performance => ctx.database.query(move |c| am::performance(c, now)).await?,
        MetricsCategory::Business => ctx.database.query(move |c| am::business(c, now)).await?,
        MetricsCategory::Engagement => ctx.database.query(move |c| am::engagement(c, now)).await?,
        MetricsCategory::System => {
            let workers = ctx.supervisor.snapshot().await.unwrap_or_default();
            let metrics = ctx.downloads.metrics.clone();
            ctx.database.query(move |c| am::system(c, &workers, &metrics)).await?
        }
    })
}

async fn health_text(ctx: &Ctx) -> Result<String, super::HandlerError> {
    let workers = ctx.supervisor.snapshot().await.unwrap_or_default();
    let now = crate::now_ms();
    let (queue, oldest) = ctx
        .database
        .query(move |c| {
            let oldest: Option<i64> = c.query_row(
                "SELECT MIN(created_at_ms) FROM download_tasks WHERE state = 'queued'",
                [],
                |r| r.get(0),
            )?;
            Ok((crate::queue::depth(c)?, oldest))
        })
        .await?;
    let database = ctx.database.schema_version().await;
    let path = ctx.database.path().to_path_buf();
    let database_bytes = [path.clone(), path.with_extension("db-wal")]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let errors = ctx.metrics().errors_last_hour();
    Ok(health::render(&health::Health {
        uptime: ctx.started.elapsed(),
        workers: &workers,
        queue: &queue,
        oldest_wait: oldest.map(|t| std::time::Duration::from_millis((now - t).max(0) as u64)),
        errors_last_hour: &errors,
        database,
        database_bytes,
    }))
}

/// `/export [days]`: the daily roll-ups, brought up to date first, as a CSV document.
async fn export(bot: &Bot, chat: ChatId, days: &str, ctx: &Ctx) -> HandlerResult {
    let Some(days) = texts::export_days(days) else {
        return send(bot, chat, None, texts::EXPORT_USAGE, None).await;
    };
    let now_s = crate::now_ms() / 1000;
    let csv = ctx
        .database
        .query(move |c| {
            crate::rollup::roll_up(c, Some(now_s - crate::rollup::DAY_S))?;
            Ok(crate::rollup::csv(&crate::rollup::daily(c, now_s, days)?))
        })
        .await?;
    let name = format!("doradura-{}-{days}d.csv", crate::users::utc_date(now_s));
    retry::retrying("sendDocument", REPLY_BUDGET, || {
        bot.send_document(
            chat,
            InputFile::memory(csv.clone().into_bytes()).file_name(name.clone()),
        )
        .caption(texts::export_caption(days))
        .send()
    })
    .await?;
    Ok(())
}
