//! Plans for Telegram Stars: `/plan`, invoices, pre-checkout answers, successful payments, cancellation, refunds
//! and the hourly expiry job.

use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{LabeledPrice, PreCheckoutQuery, SuccessfulPayment};
use tracing::{error, info, warn};

use super::{Ctx, HandlerResult, keyboards, retry, texts};
use crate::payments::{self, Recorded};
use crate::plans::Plan;
use crate::revenue::FunnelEvent;
use doradura_proto::types::ErrorCategory;

const BUDGET: Duration = Duration::from_secs(120);

fn now_s() -> i64 {
    crate::now_ms() / 1000
}

async fn say(bot: &Bot, chat: ChatId, text: String) {
    if let Err(e) = retry::retrying("sendMessage", BUDGET, || bot.send_message(chat, text.clone()).send()).await {
        warn!(chat = chat.0, error = %e, "could not send a payment message");
    }
}

/// Re-reads the paid plans in force into `doradura_active_subscriptions`.
pub async fn refresh_active(ctx: &Ctx) {
    match ctx.database.call(|c| payments::active_by_plan(c, now_s())).await {
        Ok(Ok(active)) => ctx.metrics().set_active(&active),
        _ => ctx.metrics().error(ErrorCategory::Database),
    }
}

/// Keeps a payment problem for the admin and counts it (the PaymentFailure hook).
async fn raise(
    ctx: &Ctx,
    kind: &'static str,
    user: Option<i64>,
    plan: Option<Plan>,
    charge: Option<String>,
    details: String,
) {
    error!(kind, user, plan = plan.map(Plan::as_str), charge = charge.as_deref(), %details, "payment problem");
    let finding =
        crate::alerts::messages::payment_finding(kind, user, plan.map(Plan::as_str), charge.as_deref(), &details);
    ctx.metrics().error(ErrorCategory::Payment);
    let stored = ctx
        .database
        .call(move |c| payments::raise_issue(c, kind, user, plan, charge.as_deref(), &details, crate::now_ms()))
        .await;
    if !matches!(stored, Ok(Ok(()))) {
        error!(kind, "the payment problem could not even be stored; see this log line");
    }
    ctx.alerts.payment_failure(finding).await;
}

pub async fn show_plans(bot: &Bot, chat: ChatId, user_id: i64, ctx: &Ctx) -> HandlerResult {
    let (plan, expires, cancelled) = ctx
        .database
        .call(move |c| {
            let plan = crate::users::plan(c, user_id, now_s())?;
            let (expires, status): (Option<i64>, Option<String>) = c
                .query_row(
                    "SELECT u.plan_expires_at, (SELECT status FROM subscriptions s WHERE s.user_id = u.user_id
                             AND s.status IN ('active', 'cancelled') ORDER BY s.id DESC LIMIT 1)
                       FROM users u WHERE u.user_id = ?1",
                    [user_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap_or((None, None));
            Ok::<_, rusqlite::Error>((plan, expires, status.as_deref() == Some("cancelled")))
        })
        .await??;
    let text = texts::plans(plan, expires, cancelled, &ctx.limits, &ctx.prices, ctx.max_file_mb);
    let view = ctx
        .database
        .query(move |c| crate::revenue::record_event(c, FunnelEvent::PlanView, user_id, None, None, crate::now_ms()))
        .await;
    if view.is_err() {
        ctx.metrics().error(ErrorCategory::Database);
    }
    let paid = plan != Plan::Free && !cancelled;
    retry::retrying("sendMessage", BUDGET, || {
        bot.send_message(chat, text.clone())
            .reply_markup(keyboards::plans(paid))
            .send()
    })
    .await?;
    Ok(())
}

/// A buy button: the invoice, with the price `/plan` showed.
pub async fn buy(bot: &Bot, chat: ChatId, user_id: i64, plan: Plan, ctx: &Ctx) -> HandlerResult {
    let Some(price) = ctx.prices.of(plan) else {
        return Ok(());
    };
    let payload = payments::Payload { plan, user_id }.encode();
    let prices = vec![LabeledPrice::new(texts::invoice_title(plan), price)];
    retry::retrying("sendInvoice", BUDGET, || {
        bot.send_invoice(
            chat,
            texts::invoice_title(plan),
            texts::invoice_description(plan, &ctx.limits),
            payload.clone(),
            "XTR",
            prices.clone(),
        )
        .send()
    })
    .await?;
    ctx.metrics().checkout_started(plan);
    ctx.database
        .call(move |c| payments::record_checkout(c, user_id, plan, price, crate::now_ms()))
        .await??;
    info!(user = user_id, plan = plan.as_str(), price, "invoice sent");
    Ok(())
}

pub async fn cancel_plan(bot: &Bot, chat: ChatId, user_id: i64, ctx: &Ctx) -> HandlerResult {
    match ctx
        .database
        .call(move |c| payments::cancel(c, user_id, now_s()))
        .await??
    {
        Some((plan, expires)) => {
            ctx.metrics().cancelled_plan(plan);
            info!(user = user_id, plan = plan.as_str(), "plan cancelled");
            say(bot, chat, texts::plan_cancelled(plan, expires)).await;
        }
        None => say(bot, chat, texts::NO_PLAN_TO_CANCEL.to_string()).await,
    }
    Ok(())
}

/// Answers `ok=true` only for this user's payload, an existing plan, and the current price in Stars.
pub async fn pre_checkout(bot: Bot, q: PreCheckoutQuery, ctx: Arc<Ctx>) -> HandlerResult {
    let from = q.from.id.0 as i64;
    let verdict = payments::check(&q.invoice_payload, from, &q.currency, q.total_amount, &ctx.prices);
    let answer = match verdict {
        Ok(plan) => {
            info!(user = from, plan = plan.as_str(), "pre-checkout accepted");
            bot.answer_pre_checkout_query(q.id.clone(), true)
        }
        Err((plan, refusal)) => {
            warn!(user = from, reason = refusal.reason().as_str(), "pre-checkout refused");
            ctx.metrics()
                .payment_failed(plan.unwrap_or(Plan::Free), refusal.reason());
            let reason = refusal.reason().as_str();
            let stored = ctx
                .database
                .query(move |c| {
                    crate::revenue::record_event(
                        c,
                        FunnelEvent::CheckoutRefused,
                        from,
                        plan,
                        Some(reason),
                        crate::now_ms(),
                    )
                })
                .await;
            if stored.is_err() {
                ctx.metrics().error(ErrorCategory::Database);
            }
            bot.answer_pre_checkout_query(q.id.clone(), false)
                .error_message(refusal.message())
        }
    };
    retry::retrying("answerPreCheckoutQuery", Duration::from_secs(10), || {
        answer.clone().send()
    })
    .await?;
    Ok(())
}

/// Records a payment once per charge id; a redelivered update changes and counts nothing.
pub async fn successful(bot: Bot, msg: Message, ctx: Arc<Ctx>) -> HandlerResult {
    let Some(p) = msg.successful_payment().cloned() else {
        return Ok(());
    };
    let Some(user) = msg.from.as_ref() else { return Ok(()) };
    let user_id = user.id.0 as i64;
    let charge = p.telegram_payment_charge_id.0.clone();
    let SuccessfulPayment {
        total_amount,
        invoice_payload,
        currency,
        provider_payment_charge_id,
        ..
    } = p;
    let Some(payload) = payments::Payload::parse(&invoice_payload).filter(|pl| pl.user_id == user_id) else {
        raise(
            &ctx,
            "unmatched_payment",
            Some(user_id),
            None,
            Some(charge),
            format!("payload {invoice_payload:?}"),
        )
        .await;
        return Ok(());
    };
    let plan = payload.plan;
    let (c2, prov) = (charge.clone(), provider_payment_charge_id.clone());
    let recorded = ctx
        .database
        .query(move |c| payments::record_payment(c, user_id, plan, total_amount, &c2, &prov, now_s()))
        .await;
    match recorded {
        Ok(Recorded::New { expires_at }) => {
            let expected = ctx.prices.of(plan).unwrap_or(0);
            if currency != "XTR" || total_amount != expected {
                // The money arrived: the plan is granted, and a person looks at the difference (once: a
                // redelivered update is a duplicate and never gets here).
                let details = format!("paid {total_amount} {currency}, price {expected} XTR");
                raise(
                    &ctx,
                    "amount_mismatch",
                    Some(user_id),
                    Some(plan),
                    Some(charge.clone()),
                    details,
                )
                .await;
            }
            ctx.metrics().paid_plan(plan, total_amount);
            info!(user = user_id, plan = plan.as_str(), stars = total_amount, charge = %charge, "payment recorded");
            refresh_active(&ctx).await;
            say(&bot, msg.chat.id, texts::thanks(plan, expires_at)).await;
        }
        Ok(Recorded::Duplicate) => info!(charge = %charge, "a payment delivered again was ignored"),
        Err(e) => {
            raise(
                &ctx,
                "record_failed",
                Some(user_id),
                Some(plan),
                Some(charge),
                e.to_string(),
            )
            .await
        }
    }
    Ok(())
}

/// Revokes the plan of a refunded payment (whether the refund came from `/refund` or from Telegram).
async fn revoke(bot: &Bot, ctx: &Ctx, charge: String) -> Option<(i64, Plan)> {
    let c2 = charge.clone();
    let found = ctx
        .database
        .call(move |c| payments::refundable(c, &c2))
        .await
        .ok()?
        .ok()??;
    let c3 = charge.clone();
    match ctx.database.call(move |c| payments::refund(c, &c3, now_s())).await {
        Ok(Ok(true)) => {
            ctx.metrics().cancelled_plan(found.1);
            refresh_active(ctx).await;
            say(bot, ChatId(found.0), texts::refunded(found.1)).await;
            Some(found)
        }
        _ => None,
    }
}

pub async fn refund_command(bot: &Bot, chat: ChatId, charge: String, ctx: &Ctx) -> HandlerResult {
    let charge = charge.trim().to_string();
    if charge.is_empty() || charge.len() > 200 {
        say(bot, chat, texts::REFUND_USAGE.to_string()).await;
        return Ok(());
    }
    let c2 = charge.clone();
    let Some((user, plan)) = ctx.database.call(move |c| payments::refundable(c, &c2)).await?? else {
        say(bot, chat, texts::refund_unknown(&charge)).await;
        return Ok(());
    };
    let call = retry::retrying("refundStarPayment", BUDGET, || {
        bot.refund_star_payment(UserId(user as u64), charge.clone().into())
            .send()
    })
    .await;
    match call {
        Ok(_) => {
            revoke(bot, ctx, charge.clone()).await;
            info!(charge = %charge, user, "payment refunded");
            say(bot, chat, texts::refund_done(&charge, user, plan)).await;
        }
        Err(e) => {
            raise(
                ctx,
                "refund_refused",
                Some(user),
                Some(plan),
                Some(charge.clone()),
                e.to_string(),
            )
            .await;
            say(bot, chat, texts::refund_refused(&charge)).await;
        }
    }
    Ok(())
}

/// A `refunded_payment` message: Telegram refunded it (the user asked, or it was done elsewhere).
pub async fn refunded(bot: Bot, msg: Message, ctx: Arc<Ctx>) -> HandlerResult {
    if let teloxide::types::MessageKind::RefundedPayment(r) = &msg.kind {
        let charge = r.refunded_payment.telegram_payment_charge_id.0.clone();
        if revoke(&bot, &ctx, charge.clone()).await.is_none() {
            info!(charge = %charge, "a refund of an unknown or already refunded payment was ignored");
        }
    }
    Ok(())
}

/// Every `every`: lapsed plans end, and their users are told; expired link prompts are pruned.
pub async fn expiry_job(bot: Bot, ctx: Arc<Ctx>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        super::handlers::prune_prompts(&ctx).await;
        let lapsed = match ctx.database.call(|c| payments::expire(c, now_s())).await {
            Ok(Ok(l)) => l,
            _ => {
                ctx.metrics().error(ErrorCategory::Database);
                continue;
            }
        };
        if lapsed.is_empty() {
            continue;
        }
        refresh_active(&ctx).await;
        for (user, plan) in lapsed {
            info!(user, plan = plan.as_str(), "plan expired");
            say(&bot, ChatId(user), texts::plan_ended(plan)).await;
        }
    }
}
