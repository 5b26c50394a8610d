//! Following one request: the status message edited with the queue position and progress (rate-limited), then
//! the file sent with its caption, or the failure in plain words.

use std::sync::Arc;
use std::time::{Duration, Instant};

use doradura_proto::types::{ErrorType, Format, RequestState, SendKind};
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::requests::Request as _;
use teloxide::types::{InputFile, MessageId, ReplyParameters};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::store::{self, Request};
use super::{Ctx, keyboards, retry, texts};
use crate::hub::{Outcome, SpoolFile, Watch};
use crate::queue;

/// At most one status edit this often (Telegram throttles edits).
const EDIT_EVERY: Duration = Duration::from_secs(3);
/// How often a waiting request's queue position is refreshed.
const POSITION_EVERY: Duration = Duration::from_secs(5);
/// How long a finished file may take to reach Telegram through errors and 429s before it is given up.
const SEND_BUDGET: Duration = Duration::from_secs(30 * 60);
const EDIT_BUDGET: Duration = Duration::from_secs(60);

/// Starts following `request` in the background.
pub fn start(bot: Bot, ctx: Arc<Ctx>, request: Request, watch: Watch, position: Option<u32>) {
    let (cancel_tx, cancel) = oneshot::channel();
    ctx.cancels.lock().unwrap().insert(request.id, cancel_tx);
    tokio::spawn(async move {
        let id = request.id;
        follow(&bot, &ctx, &request, watch, cancel, position).await;
        ctx.cancels.lock().unwrap().remove(&id);
    });
}

/// After a restart: follow again every request whose task is still queued or running.
pub async fn resume(bot: &Bot, ctx: &Arc<Ctx>) {
    let requests = match ctx.database.call(|c| store::waiting_in_flight(c)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return warn!(error = %e, "cannot read the requests to resume"),
        Err(e) => return warn!(error = %e, "cannot read the requests to resume"),
    };
    if !requests.is_empty() {
        info!(requests = requests.len(), "following requests from before the restart");
    }
    for request in requests {
        let watch = ctx.downloads.hub.watch(request.task_id);
        start(bot.clone(), ctx.clone(), request, watch, None);
    }
    let orphans = match ctx.database.call(|c| store::close_orphans(c, crate::now_ms())).await {
        Ok(Ok(o)) => o,
        _ => return warn!("cannot close the requests interrupted by a restart"),
    };
    for request in orphans {
        let mut status = Status::new(bot, &request);
        status.show(texts::INTERRUPTED.to_string(), false, true).await;
    }
}

struct Status<'a> {
    bot: &'a Bot,
    chat: ChatId,
    message: Option<MessageId>,
    request: i64,
    last_text: String,
    last_edit: Option<Instant>,
}

impl<'a> Status<'a> {
    fn new(bot: &'a Bot, request: &Request) -> Status<'a> {
        Status {
            bot,
            chat: ChatId(request.chat_id),
            message: request.status_message_id.map(MessageId),
            request: request.id,
            last_text: String::new(),
            last_edit: None,
        }
    }

    /// Edits the status message unless the text is unchanged or the last edit was too recent (`force` skips that).
    async fn show(&mut self, text: String, with_cancel: bool, force: bool) {
        let Some(message) = self.message else { return };
        if text == self.last_text || (!force && self.last_edit.is_some_and(|t| t.elapsed() < EDIT_EVERY)) {
            return;
        }
        self.last_edit = Some(Instant::now());
        self.last_text = text.clone();
        let result = retry::retrying("editMessageText", EDIT_BUDGET, || {
            let edit = self.bot.edit_message_text(self.chat, message, text.clone());
            if with_cancel {
                edit.reply_markup(keyboards::cancel(self.request)).send()
            } else {
                edit.send()
            }
        })
        .await;
        if let Err(e) = result {
            warn!(request = self.request, error = %e, "could not update the status message");
        }
    }

    async fn remove(&self) {
        let Some(message) = self.message else { return };
        if let Err(e) = retry::retrying("deleteMessage", EDIT_BUDGET, || {
            self.bot.delete_message(self.chat, message).send()
        })
        .await
        {
            warn!(request = self.request, error = %e, "could not remove the status message");
        }
    }
}

async fn follow(
    bot: &Bot,
    ctx: &Ctx,
    request: &Request,
    mut watch: Watch,
    mut cancel: oneshot::Receiver<()>,
    position: Option<u32>,
) {
    let mut status = Status::new(bot, request);
    if let Some(p) = position {
        status.show(texts::queued(p), true, true).await;
    }
    let mut poll = tokio::time::interval(POSITION_EVERY);
    let mut downloading = false;
    let mut progress_open = true;
    let outcome = loop {
        tokio::select! {
            changed = watch.progress.changed(), if progress_open => {
                if changed.is_err() {
                    progress_open = false;
                    continue;
                }
                let p = *watch.progress.borrow_and_update();
                if let Some(p) = p {
                    downloading = true;
                    status.show(texts::progress(p.percent), true, false).await;
                }
            }
            _ = poll.tick(), if !downloading => {
                let task = request.task_id;
                if let Ok(Ok(Some(p))) = ctx.database.call(move |c| queue::position(c, task)).await {
                    status.show(texts::queued(p), true, false).await;
                }
            }
            outcome = &mut watch.done => break outcome,
            _ = &mut cancel => {
                finish(ctx, request.id, RequestState::Cancelled, Some(ErrorType::Cancelled)).await;
                status.show(texts::failure(ErrorType::Cancelled, ctx.max_file_mb), false, true).await;
                return;
            }
        }
    };
    match outcome {
        Ok(Outcome::Done(file)) => {
            status.show(texts::SENDING.to_string(), false, true).await;
            match send_file(bot, request, &file).await {
                Ok(()) => {
                    info!(request = request.id, task = request.task_id, "file delivered");
                    finish(ctx, request.id, RequestState::Delivered, None).await;
                    let (db, user) = (ctx.database.clone(), request.user_id);
                    let _ = db
                        .call(move |c| crate::users::record_activity(c, user, 0, 1, crate::now_ms() / 1000))
                        .await;
                    status.remove().await;
                }
                Err(e) => {
                    warn!(request = request.id, error = %e, "the file could not be sent");
                    finish(ctx, request.id, RequestState::Failed, Some(ErrorType::Unknown)).await;
                    status.show(texts::SEND_FAILED.to_string(), false, true).await;
                }
            }
        }
        Ok(Outcome::Failed { error, .. }) => {
            let state = if error == ErrorType::Cancelled {
                RequestState::Cancelled
            } else {
                RequestState::Failed
            };
            finish(ctx, request.id, state, Some(error)).await;
            status.show(texts::failure(error, ctx.max_file_mb), false, true).await;
        }
        // The daemon is stopping: the request stays waiting and is followed again after the restart.
        Err(_) => {}
    }
}

async fn finish(ctx: &Ctx, id: i64, state: RequestState, error: Option<ErrorType>) {
    let result = ctx
        .database
        .call(move |c| store::finish_request(c, id, state, error.map(ErrorType::as_str), crate::now_ms()))
        .await;
    if !matches!(result, Ok(Ok(_))) {
        warn!(request = id, "could not record the end of a request");
    }
}

/// Sends the file the way its format asks for: audio, video or document.
async fn send_file(bot: &Bot, request: &Request, file: &Arc<SpoolFile>) -> Result<(), RequestError> {
    let chat = ChatId(request.chat_id);
    let bytes = std::fs::metadata(&file.path).map(|m| m.len()).unwrap_or(0);
    let caption = texts::caption(&file.title, file.media_duration_s, bytes);
    let duration = file.media_duration_s.round().max(0.0) as u32;
    let reply = request
        .reply_to
        .map(|id| ReplyParameters::new(MessageId(id)).allow_sending_without_reply());
    let format = request.format;
    let input = || InputFile::file(file.path.clone());
    let started = Instant::now();
    let kind = match format {
        Format::Mp3 => SendKind::Audio,
        Format::Mp4 => SendKind::Video,
        Format::Srt => SendKind::Document,
    };
    let sent = retry::retrying("send file", SEND_BUDGET, || async {
        match format {
            Format::Mp3 => {
                let mut r = bot
                    .send_audio(chat, input())
                    .caption(caption.clone())
                    .duration(duration);
                if !file.title.is_empty() {
                    r = r.title(file.title.clone());
                }
                if let Some(p) = reply.clone() {
                    r = r.reply_parameters(p);
                }
                r.send().await.map(drop)
            }
            Format::Mp4 => {
                let mut r = bot
                    .send_video(chat, input())
                    .caption(caption.clone())
                    .duration(duration)
                    .supports_streaming(true);
                if let Some(p) = reply.clone() {
                    r = r.reply_parameters(p);
                }
                r.send().await.map(drop)
            }
            Format::Srt => {
                let mut r = bot.send_document(chat, input()).caption(caption.clone());
                if let Some(p) = reply.clone() {
                    r = r.reply_parameters(p);
                }
                r.send().await.map(drop)
            }
        }
    })
    .await;
    if sent.is_ok()
        && let Some(m) = retry::METRICS.get()
    {
        m.sent(kind, started.elapsed().as_secs_f64());
    }
    sent
}
