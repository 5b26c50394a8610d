//! A fake Telegram Bot API server speaking the real HTTP wire protocol: `/bot<token>/<Method>` (method names
//! case-insensitive), JSON and multipart bodies, `getUpdates` long polling with offsets. Tests inject updates
//! (messages, commands, callback queries), read every call the bot made with its parameters and uploaded bytes,
//! and program failures (429 with `retry_after`, 5xx, slow answers, an outage).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};

pub const BOT_ID: i64 = 7_000_000;
pub const BOT_USERNAME: &str = "doradura_test_bot";

/// A file the bot uploaded.
#[derive(Debug, Clone)]
pub struct Upload {
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

/// One request the bot made.
#[derive(Debug, Clone)]
pub struct Call {
    /// Lower case: `sendmessage`, `sendaudio`, ...
    pub method: String,
    pub token: String,
    pub params: Map<String, Value>,
    pub files: HashMap<String, Upload>,
    pub at: Instant,
    /// The message this call created or edited, if any.
    pub message_id: Option<i64>,
}

impl Call {
    /// A parameter as text, whether it came as JSON or as a multipart field.
    pub fn str(&self, key: &str) -> Option<String> {
        match self.params.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    pub fn i64(&self, key: &str) -> Option<i64> {
        self.str(key)?.parse().ok()
    }

    /// A parameter holding JSON (e.g. `reply_markup`), parsed whether it came as JSON or as a string.
    pub fn json(&self, key: &str) -> Option<Value> {
        match self.params.get(key)? {
            Value::String(s) => serde_json::from_str(s).ok(),
            other => Some(other.clone()),
        }
    }

    /// The callback data of every inline button in `reply_markup`.
    pub fn buttons(&self) -> Vec<(String, String)> {
        let Some(markup) = self.json("reply_markup") else {
            return vec![];
        };
        markup["inline_keyboard"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row.as_array().into_iter().flatten())
            .filter_map(|b| {
                Some((
                    b["text"].as_str()?.to_string(),
                    b["callback_data"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// The uploaded bytes of a media field (`audio`, `video`, `document`): the field holds `attach://<id>`.
    pub fn upload(&self, field: &str) -> Option<&Upload> {
        let value = self.str(field)?;
        let id = value.strip_prefix("attach://").unwrap_or(&value);
        self.files.get(id).or_else(|| self.files.get(field))
    }
}

/// A programmed failure for the next `remaining` calls of a method (`*` for any).
#[derive(Debug, Clone)]
pub enum Failure {
    RetryAfter(u32),
    Status(u16),
    Delay(Duration),
}

#[derive(Default)]
struct Inner {
    updates: Vec<Value>,
    next_update_id: i64,
    next_message_id: i64,
    calls: Vec<Call>,
    failures: Vec<(String, usize, Failure)>,
    /// Messages the bot sent, by id, for callback queries to refer to.
    bot_messages: HashMap<i64, Value>,
    down: bool,
    /// Requests received per method, counted on arrival (a call the client gave up on is counted too).
    received: HashMap<String, usize>,
}

#[derive(Clone, Default)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<tokio::sync::Notify>,
}

/// A test user.
#[derive(Debug, Clone)]
pub struct TgUser {
    pub id: i64,
    pub first_name: String,
}

impl TgUser {
    pub fn new(id: i64, first_name: &str) -> TgUser {
        TgUser {
            id,
            first_name: first_name.to_string(),
        }
    }

    fn json(&self) -> Value {
        json!({"id": self.id, "is_bot": false, "first_name": self.first_name,
               "username": format!("user{}", self.id), "language_code": "en"})
    }

    fn chat(&self) -> Value {
        json!({"id": self.id, "type": "private", "first_name": self.first_name, "username": format!("user{}", self.id)})
    }
}

/// The running fake; stops when dropped.
pub struct FakeTelegram {
    pub addr: SocketAddr,
    shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl FakeTelegram {
    pub fn start() -> FakeTelegram {
        let shared = Shared::default();
        {
            let mut inner = shared.inner.lock().unwrap();
            inner.next_update_id = 1;
            inner.next_message_id = 1000;
        }
        let app = Router::new()
            .route("/{bot}/{method}", any(api))
            .with_state(shared.clone());
        let (addr, stop) = crate::serve(app);
        FakeTelegram {
            addr,
            shared,
            stop: Some(stop),
        }
    }

    /// The value for `TELOXIDE_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn push_update(&self, kind: &str, payload: Value) {
        let mut inner = self.shared.inner.lock().unwrap();
        let id = inner.next_update_id;
        inner.next_update_id += 1;
        let mut update = json!({"update_id": id});
        update[kind] = payload;
        inner.updates.push(update);
        drop(inner);
        self.shared.changed.notify_waiters();
    }

    fn next_message_id(&self) -> i64 {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.next_message_id += 1;
        inner.next_message_id
    }

    /// The user sends a text message (a command if it starts with `/`); returns its message id.
    pub fn send_text(&self, user: &TgUser, text: &str) -> i64 {
        let id = self.next_message_id();
        let mut msg =
            json!({"message_id": id, "date": now_secs(), "chat": user.chat(), "from": user.json(), "text": text});
        if text.starts_with('/') {
            let len = text.split_whitespace().next().unwrap().encode_utf16().count();
            msg["entities"] = json!([{"type": "bot_command", "offset": 0, "length": len}]);
        }
        self.push_update("message", msg);
        id
    }

    /// The user presses an inline button with `data` on the bot's message `message_id`; returns the query id.
    pub fn press(&self, user: &TgUser, message_id: i64, data: &str) -> String {
        let message = self
            .shared
            .inner
            .lock()
            .unwrap()
            .bot_messages
            .get(&message_id)
            .cloned()
            .unwrap_or_else(|| json!({"message_id": message_id, "date": now_secs(), "chat": user.chat(), "text": "?"}));
        let query_id = format!("cbq-{}", self.next_message_id());
        self.push_update(
            "callback_query",
            json!({"id": query_id, "from": user.json(), "message": message, "chat_instance": "ci-1", "data": data}),
        );
        query_id
    }

    /// Telegram asks the bot to confirm a checkout; returns the query id.
    pub fn pre_checkout(&self, user: &TgUser, payload: &str, currency: &str, amount: u32) -> String {
        let id = format!("pcq-{}", self.next_message_id());
        self.push_update(
            "pre_checkout_query",
            json!({"id": id, "from": user.json(), "currency": currency, "total_amount": amount, "invoice_payload": payload}),
        );
        id
    }

    /// A `successful_payment` service message from the user.
    pub fn successful_payment(&self, user: &TgUser, payload: &str, amount: u32, charge_id: &str) {
        let id = self.next_message_id();
        let payment = json!({"currency": "XTR", "total_amount": amount, "invoice_payload": payload,
                             "telegram_payment_charge_id": charge_id, "provider_payment_charge_id": "",
                             "order_info": {}});
        self.push_update(
            "message",
            json!({"message_id": id, "date": now_secs(), "chat": user.chat(), "from": user.json(),
                   "successful_payment": payment}),
        );
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.inner.lock().unwrap().calls.clone()
    }

    /// Requests of one method (lower case) that arrived, finished or not: a request the client timed out on and
    /// sent again counts twice.
    pub fn received(&self, method: &str) -> usize {
        self.shared
            .inner
            .lock()
            .unwrap()
            .received
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// Calls of one method (lower case).
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// Waits for a call matching `f` (among all calls so far, in order).
    pub fn wait_call(&self, timeout: Duration, what: &str, f: impl Fn(&Call) -> bool) -> Call {
        crate::wait_for(timeout, what, || self.calls().into_iter().find(|c| f(c)))
    }

    /// Fails the next `times` calls of `method` (lower case, or `*`).
    pub fn fail(&self, method: &str, times: usize, failure: Failure) {
        self.shared
            .inner
            .lock()
            .unwrap()
            .failures
            .push((method.to_string(), times, failure));
    }

    /// Forgets the failures programmed with `fail` that have not happened yet.
    pub fn clear_failures(&self) {
        self.shared.inner.lock().unwrap().failures.clear();
    }

    /// While down, every call is answered 502 Bad Gateway.
    pub fn set_down(&self, down: bool) {
        self.shared.inner.lock().unwrap().down = down;
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

fn error(status: u16, description: &str, retry_after: Option<u32>) -> Response {
    let mut body = json!({"ok": false, "error_code": status, "description": description});
    if let Some(s) = retry_after {
        body["parameters"] = json!({"retry_after": s});
    }
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

async fn parse_body(headers: &HeaderMap, body: Bytes) -> (Map<String, Value>, HashMap<String, Upload>) {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Ok(boundary) = multer::parse_boundary(content_type) {
        let mut params = Map::new();
        let mut files = HashMap::new();
        let stream = futures_stream(body);
        let mut multipart = multer::Multipart::new(stream, boundary);
        while let Ok(Some(field)) = multipart.next_field().await {
            let name = field.name().unwrap_or("").to_string();
            let file_name = field.file_name().map(str::to_string);
            let bytes = field.bytes().await.unwrap_or_default().to_vec();
            if file_name.is_some() {
                files.insert(name, Upload { file_name, bytes });
            } else {
                params.insert(name, Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
        (params, files)
    } else {
        let params = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        (params, HashMap::new())
    }
}

fn futures_stream(body: Bytes) -> impl tokio_stream::Stream<Item = Result<Bytes, std::io::Error>> {
    tokio_stream::once(Ok(body))
}

async fn api(
    State(shared): State<Shared>,
    Path((bot, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = bot.strip_prefix("bot").map(str::to_string) else {
        return error(404, "Not Found", None);
    };
    let method = method.to_ascii_lowercase();
    let (params, files) = parse_body(&headers, body).await;

    let failure = {
        let mut inner = shared.inner.lock().unwrap();
        *inner.received.entry(method.clone()).or_default() += 1;
        if inner.down {
            return error(502, "Bad Gateway", None);
        }
        let found = inner
            .failures
            .iter_mut()
            .find(|(m, remaining, _)| (m == &method || m == "*") && *remaining > 0);
        found.map(|(_, remaining, f)| {
            *remaining -= 1;
            f.clone()
        })
    };
    match failure {
        Some(Failure::RetryAfter(s)) => {
            record(&shared, &method, &token, params, files, None);
            return error(429, &format!("Too Many Requests: retry after {s}"), Some(s));
        }
        Some(Failure::Status(code)) => {
            record(&shared, &method, &token, params, files, None);
            return error(code, "Bad Gateway", None);
        }
        Some(Failure::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }

    if method == "getupdates" {
        record(&shared, &method, &token, params.clone(), files, None);
        return get_updates(&shared, &params).await;
    }
    let result = respond(&shared, &method, &params);
    let message_id = result.get("message_id").and_then(Value::as_i64);
    record(&shared, &method, &token, params, files, message_id);
    match result {
        Value::Null => error(404, "Not Found: method not found", None),
        r => ok(r),
    }
}

fn record(
    shared: &Shared,
    method: &str,
    token: &str,
    params: Map<String, Value>,
    files: HashMap<String, Upload>,
    message_id: Option<i64>,
) {
    shared.inner.lock().unwrap().calls.push(Call {
        method: method.to_string(),
        token: token.to_string(),
        params,
        files,
        at: Instant::now(),
        message_id,
    });
    shared.changed.notify_waiters();
}

async fn get_updates(shared: &Shared, params: &Map<String, Value>) -> Response {
    let as_i64 = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.parse().ok(),
        Some(v) => v.as_i64(),
        None => None,
    };
    let offset = as_i64(params.get("offset")).unwrap_or(0);
    // Long polling, answered early (an empty list after a second at most) to keep tests quick.
    let timeout = Duration::from_secs(as_i64(params.get("timeout")).unwrap_or(0).clamp(0, 1) as u64);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = shared.changed.notified();
        {
            let mut inner = shared.inner.lock().unwrap();
            inner.updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            if !inner.updates.is_empty() {
                return ok(Value::Array(inner.updates.clone()));
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return ok(json!([]));
        }
    }
}

fn bot_user() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": "doradura", "username": BOT_USERNAME})
}

fn chat_of(params: &Map<String, Value>) -> Value {
    let id = match params.get("chat_id") {
        Some(Value::String(s)) => s.parse::<i64>().unwrap_or(0),
        Some(v) => v.as_i64().unwrap_or(0),
        None => 0,
    };
    json!({"id": id, "type": "private", "first_name": "User"})
}

/// The answer to a method, recording messages the bot sends so that callbacks can refer to them.
fn respond(shared: &Shared, method: &str, params: &Map<String, Value>) -> Value {
    let new_message = |extra: Value| -> Value {
        let mut inner = shared.inner.lock().unwrap();
        inner.next_message_id += 1;
        let id = inner.next_message_id;
        let mut msg = json!({"message_id": id, "date": now_secs(), "chat": chat_of(params), "from": bot_user()});
        for (k, v) in extra.as_object().unwrap() {
            msg[k] = v.clone();
        }
        if let Some(markup) = params.get("reply_markup") {
            msg["reply_markup"] = match markup {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                v => v.clone(),
            };
        }
        inner.bot_messages.insert(id, msg.clone());
        msg
    };
    let text = || params.get("text").and_then(Value::as_str).unwrap_or("").to_string();
    let caption = params.get("caption").cloned().unwrap_or(Value::Null);
    let file = |kind: &str| json!({"file_id": format!("{kind}-file"), "file_unique_id": format!("{kind}-u")});
    match method {
        "getme" => json!({"id": BOT_ID, "is_bot": true, "first_name": "doradura", "username": BOT_USERNAME,
                          "can_join_groups": false, "can_read_all_group_messages": false,
                          "supports_inline_queries": false, "can_connect_to_business": false,
                          "has_main_web_app": false}),
        "getwebhookinfo" => json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0}),
        "deletewebhook"
        | "setmycommands"
        | "deletemycommands"
        | "answercallbackquery"
        | "deletemessage"
        | "sendchataction"
        | "answerprecheckoutquery"
        | "setchatmenubutton"
        | "refundstarpayment" => json!(true),
        "sendinvoice" => new_message(json!({"invoice": {
            "title": params.get("title").cloned().unwrap_or(Value::Null),
            "description": params.get("description").cloned().unwrap_or(Value::Null),
            "start_parameter": "", "currency": params.get("currency").cloned().unwrap_or(Value::Null),
            "total_amount": params.get("prices").and_then(|p| p[0]["amount"].as_i64()).unwrap_or(0)}})),
        "sendmessage" => new_message(json!({"text": text()})),
        "editmessagetext" | "editmessagereplymarkup" => {
            let id = params
                .get("message_id")
                .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
                .unwrap_or(0);
            let mut inner = shared.inner.lock().unwrap();
            let mut msg = inner
                .bot_messages
                .get(&id)
                .cloned()
                .unwrap_or_else(|| json!({"message_id": id, "date": now_secs(), "chat": chat_of(params)}));
            if method == "editmessagetext" {
                msg["text"] = json!(text());
            }
            match params.get("reply_markup") {
                Some(Value::String(s)) => msg["reply_markup"] = serde_json::from_str(s).unwrap_or(Value::Null),
                Some(v) => msg["reply_markup"] = v.clone(),
                None => {
                    msg.as_object_mut().unwrap().remove("reply_markup");
                }
            }
            inner.bot_messages.insert(id, msg.clone());
            msg
        }
        "sendaudio" => {
            let mut audio = file("audio");
            audio["duration"] = params.get("duration").cloned().unwrap_or(json!(0));
            if let Some(Value::String(d)) = params.get("duration") {
                audio["duration"] = json!(d.parse::<u64>().unwrap_or(0));
            }
            new_message(json!({"audio": audio, "caption": caption}))
        }
        "sendvideo" => {
            let mut video = file("video");
            video["width"] = json!(320);
            video["height"] = json!(240);
            video["duration"] = json!(3);
            new_message(json!({"video": video, "caption": caption}))
        }
        "senddocument" => new_message(json!({"document": file("document"), "caption": caption})),
        "sendphoto" => {
            let mut photo = file("photo");
            photo["width"] = json!(800);
            photo["height"] = json!(400);
            new_message(json!({"photo": [photo], "caption": caption}))
        }
        _ => Value::Null,
    }
}
