//! What the bot does with each message and button press.

use std::sync::Arc;
use std::time::Duration;

use doradura_proto::types::{Format, RequestState};
use teloxide::prelude::*;
use teloxide::types::{MaybeInaccessibleMessage, ReplyParameters, User};
use teloxide::utils::command::BotCommands;
use tracing::{info, warn};

use super::callback::{self, Action};
use super::commands::{AdminCommand, Command};
use super::store::{self, PROMPT_TTL_MS};
use super::{Ctx, HandlerResult, delivery, keyboards, retry, texts};
use crate::plans;
use crate::queue::NewTask;
use crate::users::{self, Contact};
use doradura_proto::types::ErrorCategory;

/// Budget for a plain reply.
pub(super) const REPLY_BUDGET: Duration = Duration::from_secs(120);

fn now_s() -> i64 {
    crate::now_ms() / 1000
}

/// Records the user (and a command, if it is one) without holding up the reply.
pub(super) fn record(ctx: &Ctx, user: &User, command: bool) {
    tokio::spawn(record_now(ctx, user, command));
}

/// Records the user now; the admin commands wait for it, so their own command is in the figures they show.
pub(super) fn record_now(ctx: &Ctx, user: &User, command: bool) -> impl Future<Output = ()> + Send + 'static {
    let contact = Contact {
        user_id: user.id.0 as i64,
        username: user.username.clone(),
        first_name: user.first_name.clone(),
        language_code: user.language_code.clone(),
    };
    let db = ctx.database.clone();
    let metrics = ctx.downloads.metrics.clone();
    async move {
        let result = db
            .call(move |c| {
                let new = users::upsert(c, &contact, now_s())?;
                if command {
                    users::record_activity(c, contact.user_id, 1, 0, now_s())?;
                }
                Ok::<_, rusqlite::Error>(new)
            })
            .await;
        match result {
            Ok(Ok(true)) => {
                info!("new user");
                metrics.new_user();
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                metrics.error(ErrorCategory::Database);
                warn!(error = %e, "recording a user failed")
            }
            Err(e) => {
                metrics.error(ErrorCategory::Database);
                warn!(error = %e, "recording a user failed")
            }
        }
    }
}

async fn reply(bot: &Bot, msg: &Message, text: impl Into<String>) -> HandlerResult {
    let text = text.into();
    retry::retrying("sendMessage", REPLY_BUDGET, || {
        bot.send_message(msg.chat.id, text.clone())
            .reply_parameters(ReplyParameters::new(msg.id).allow_sending_without_reply())
            .send()
    })
    .await?;
    Ok(())
}

pub async fn command(bot: Bot, msg: Message, cmd: Command, ctx: Arc<Ctx>) -> HandlerResult {
    let Some(user) = msg.from.clone() else { return Ok(()) };
    record(&ctx, &user, true);
    ctx.metrics().command(cmd.name());
    let user_id = user.id.0 as i64;
    match cmd {
        Command::Start(_) => reply(&bot, &msg, texts::start(&user.first_name)).await,
        Command::Help => {
            let mut commands = Command::descriptions().to_string();
            if ctx.is_admin(user_id) {
                commands.push_str(&format!("\n{}", AdminCommand::descriptions()));
            }
            reply(&bot, &msg, texts::help(&commands)).await
        }
        Command::Settings => {
            let (format, quality) = ctx.database.call(move |c| users::defaults(c, user_id)).await??;
            let text = texts::settings(format, quality);
            retry::retrying("sendMessage", REPLY_BUDGET, || {
                bot.send_message(msg.chat.id, text.clone())
                    .reply_markup(keyboards::settings())
                    .send()
            })
            .await?;
            Ok(())
        }
        Command::Cancel => {
            let waiting = ctx
                .database
                .call(move |c| store::waiting_for_user(c, user_id))
                .await??;
            if waiting.is_empty() {
                return reply(&bot, &msg, texts::NOTHING_TO_CANCEL).await;
            }
            for request in &waiting {
                cancel_request(&ctx, request).await?;
            }
            reply(&bot, &msg, texts::cancelled_count(waiting.len())).await
        }
        Command::Plan => super::payments::show_plans(&bot, msg.chat.id, user_id, &ctx).await,
    }
}

/// The first http(s) link in a message.
fn find_link(text: &str) -> Option<&str> {
    text.split_whitespace().find(|w| {
        let lower = w.get(..8).unwrap_or(w).to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    })
}

/// Refuses when the user's plan does not allow another request now. `press` is a format button pressed (a
/// request about to be queued): only then does the cap on requests in flight apply, so a link sent while another
/// download runs still gets its keyboard, to be pressed once that one ends.
async fn check_limits(
    ctx: &Ctx,
    user_id: i64,
    press: bool,
) -> Result<Result<plans::Plan, String>, super::HandlerError> {
    let now_ms = crate::now_ms();
    let (plan, usage) = ctx
        .database
        .call(move |c| {
            let (last_request_ms, today) = store::usage(c, user_id, plans::day_start_ms(now_ms))?;
            let active = if press {
                Some(store::in_flight(c, user_id)?)
            } else {
                None
            };
            Ok::<_, rusqlite::Error>((
                users::plan(c, user_id, now_ms / 1000)?,
                plans::Usage {
                    last_request_ms,
                    today,
                    active,
                },
            ))
        })
        .await??;
    Ok(plans::check(ctx.limits.of(plan), now_ms, usage)
        .map(|()| plan)
        .map_err(|r| {
            ctx.metrics().rate_limited(plan);
            texts::refusal(r, plan)
        }))
}

pub async fn text(bot: Bot, msg: Message, ctx: Arc<Ctx>) -> HandlerResult {
    let Some(user) = msg.from.clone() else { return Ok(()) };
    record(&ctx, &user, false);
    let user_id = user.id.0 as i64;
    let Some(link) = msg.text().and_then(find_link) else {
        return reply(&bot, &msg, texts::NOT_A_LINK).await;
    };
    let url = match ctx.downloads.check_url(link).await {
        Ok(url) => url,
        Err(e) => return reply(&bot, &msg, format!("🚫 {e}")).await,
    };
    if let Err(refusal) = check_limits(&ctx, user_id, false).await? {
        return reply(&bot, &msg, refusal).await;
    }
    let (format, quality) = ctx.database.call(move |c| users::defaults(c, user_id)).await??;
    let prompt = retry::retrying("sendMessage", REPLY_BUDGET, || {
        bot.send_message(msg.chat.id, texts::CHOOSE_FORMAT)
            .reply_parameters(ReplyParameters::new(msg.id).allow_sending_without_reply())
            .reply_markup(keyboards::formats((format, quality)))
            .send()
    })
    .await?;
    let (chat, prompt_id, reply_to) = (msg.chat.id.0, prompt.id.0, msg.id.0);
    ctx.database
        .call(move |c| store::save_prompt(c, chat, prompt_id, user_id, &url, reply_to, crate::now_ms()))
        .await??;
    Ok(())
}

pub(super) async fn answer(bot: &Bot, q: &CallbackQuery, text: &str, alert: bool) -> HandlerResult {
    retry::retrying("answerCallbackQuery", Duration::from_secs(10), || {
        bot.answer_callback_query(q.id.clone())
            .text(text)
            .show_alert(alert)
            .send()
    })
    .await?;
    Ok(())
}

pub async fn callback(bot: Bot, q: CallbackQuery, ctx: Arc<Ctx>) -> HandlerResult {
    record(&ctx, &q.from, false);
    let user_id = q.from.id.0 as i64;
    let Some(action) = q.data.as_deref().and_then(callback::parse) else {
        warn!(user = user_id, "refused invalid callback data");
        return answer(&bot, &q, texts::BUTTON_INVALID, false).await;
    };
    let Some(message) = q
        .message
        .as_ref()
        .and_then(MaybeInaccessibleMessage::regular_message)
        .cloned()
    else {
        return answer(&bot, &q, texts::LINK_EXPIRED, false).await;
    };
    match action {
        Action::Download { format, quality } => choose(&bot, &q, &message, &ctx, format, quality).await,
        Action::Admin(view) => super::admin::button(bot, q, message, view, ctx).await,
        Action::AlertSilence { .. } | Action::AlertAck { .. } => super::admin::alert_button(bot, q, action, ctx).await,
        Action::Cancel { request } => {
            let found = ctx.database.call(move |c| store::request(c, request)).await??;
            let Some(request) = found else {
                return answer(&bot, &q, texts::REQUEST_GONE, false).await;
            };
            if request.user_id != user_id {
                warn!(
                    user = user_id,
                    request = request.id,
                    "refused a cancel of another user's download"
                );
                return answer(&bot, &q, texts::BUTTON_NOT_YOURS, false).await;
            }
            if request.state != RequestState::Waiting {
                return answer(&bot, &q, texts::REQUEST_FINISHED, false).await;
            }
            cancel_request(&ctx, &request).await?;
            answer(&bot, &q, texts::CANCELLING, false).await
        }
        Action::Buy { plan } => {
            answer(&bot, &q, &texts::choice_plan(plan), false).await?;
            super::payments::buy(&bot, message.chat.id, user_id, plan, &ctx).await
        }
        Action::CancelPlan => {
            answer(&bot, &q, "…", false).await?;
            super::payments::cancel_plan(&bot, message.chat.id, user_id, &ctx).await
        }
        Action::Setting { format, quality } => {
            ctx.database
                .call(move |c| users::set_defaults(c, user_id, format, quality))
                .await??;
            answer(&bot, &q, "✅", false).await?;
            let text = texts::settings_saved(format, quality);
            retry::retrying("editMessageText", REPLY_BUDGET, || {
                bot.edit_message_text(message.chat.id, message.id, text.clone()).send()
            })
            .await?;
            Ok(())
        }
    }
}

/// A format chosen on a link prompt: checks, then the request.
async fn choose(
    bot: &Bot,
    q: &CallbackQuery,
    message: &Message,
    ctx: &Arc<Ctx>,
    format: Format,
    quality: &'static str,
) -> HandlerResult {
    let user_id = q.from.id.0 as i64;
    let (chat, message_id) = (message.chat.id.0, message.id.0);
    let prompt = ctx.database.call(move |c| store::prompt(c, chat, message_id)).await??;
    let Some(prompt) = prompt.filter(|p| crate::now_ms() - p.created_at_ms < PROMPT_TTL_MS) else {
        return answer(bot, q, texts::LINK_EXPIRED, false).await;
    };
    if prompt.user_id != user_id {
        warn!(
            user = user_id,
            owner = prompt.user_id,
            "refused a press on another user's prompt"
        );
        return answer(bot, q, texts::BUTTON_NOT_YOURS, false).await;
    }
    if prompt.used {
        return answer(bot, q, texts::ALREADY_REQUESTED, false).await;
    }
    let plan = match check_limits(ctx, user_id, true).await? {
        Ok(plan) => plan,
        Err(refusal) => return answer(bot, q, &refusal, true).await,
    };
    if !ctx
        .database
        .call(move |c| store::use_prompt(c, chat, message_id))
        .await??
    {
        return answer(bot, q, texts::ALREADY_REQUESTED, false).await;
    }
    let new = NewTask {
        url: prompt.url.clone(),
        format,
        quality,
        priority: plan.priority(),
        user_id: Some(user_id),
        chat_id: Some(chat),
    };
    let (enqueued, watch) = match ctx.downloads.enqueue(new).await {
        Ok(x) => x,
        Err(e) => {
            warn!(user = user_id, error = %e, "request refused");
            let text = match e {
                crate::downloads::RequestError::Full(m) => format!("🚦 {m}"),
                _ => texts::TRY_LATER.to_string(),
            };
            answer(bot, q, &text, true).await?;
            return Ok(());
        }
    };
    let reply_to = prompt.reply_to;
    let request_id = ctx
        .database
        .call(move |c| {
            store::add_request(
                c,
                enqueued.id,
                user_id,
                chat,
                message_id,
                reply_to,
                format,
                quality,
                crate::now_ms(),
            )
        })
        .await??;
    info!(
        user = user_id,
        task = enqueued.id,
        request = request_id,
        plan = plan.as_str(),
        "download requested"
    );
    answer(bot, q, &texts::choice(format, quality), false).await?;
    let request = store::Request {
        id: request_id,
        task_id: enqueued.id,
        user_id,
        chat_id: chat,
        status_message_id: Some(message_id),
        reply_to: Some(reply_to),
        format,
        quality,
        state: RequestState::Waiting,
    };
    delivery::start(bot.clone(), ctx.clone(), request, watch, Some(enqueued.position));
    Ok(())
}

/// Deletes the link prompts whose buttons have expired, and logs how many (run by the plan-expiry loop).
pub(super) async fn prune_prompts(ctx: &Ctx) {
    match ctx.database.call(|c| store::prune_prompts(c, crate::now_ms())).await {
        Ok(Ok(0)) => tracing::debug!(pruned = 0, "no expired link prompts to prune"),
        Ok(Ok(n)) => info!(pruned = n, "pruned expired link prompts"),
        Ok(Err(e)) => {
            ctx.metrics().error(ErrorCategory::Database);
            warn!(error = %e, "pruning expired link prompts failed");
        }
        Err(e) => {
            ctx.metrics().error(ErrorCategory::Database);
            warn!(error = %e, "pruning expired link prompts failed");
        }
    }
}

/// Stops one user's request; the task itself is cancelled when nobody else waits for it.
async fn cancel_request(ctx: &Ctx, request: &store::Request) -> HandlerResult {
    let (id, task) = (request.id, request.task_id);
    let others = ctx.database.call(move |c| store::others_waiting(c, task, id)).await??;
    if let Some(signal) = ctx.cancels.lock().unwrap().remove(&id) {
        let _ = signal.send(());
    }
    if others == 0 {
        ctx.downloads.cancel(task).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::find_link;

    #[test]
    fn the_first_link_in_a_message_is_found() {
        assert_eq!(
            find_link("look https://example.com/v?x=1 and more"),
            Some("https://example.com/v?x=1")
        );
        assert_eq!(find_link("HTTP://EXAMPLE.COM/A"), Some("HTTP://EXAMPLE.COM/A"));
        assert_eq!(find_link("no link here, ftp://x"), None);
        assert_eq!(find_link("ünïcödé ✨ http://a.b/c"), Some("http://a.b/c"));
        assert_eq!(find_link(""), None);
    }
}
