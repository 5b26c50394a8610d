//! A media site on loopback: files generated with ffmpeg at test time, plus URLs that misbehave on purpose.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tower_http::services::ServeDir;

/// Bytes per second of `/slow.mp4`.
pub const SLOW_RATE: usize = 16 * 1024;
/// The cookie `/gated/clip.mp4` wants: `sid=<GATE_COOKIE>`.
pub const GATE_COOKIE: &str = "doradura-test-session";

/// Generates the site's files in `dir`: a 3-second H.264/AAC clip, WebVTT subtitles and a page that embeds both,
/// a page without media, and a 3 MiB `big.mp4` for size limits.
pub fn generate(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let clip = dir.join("clip.mp4");
    let out = Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=320x240:rate=25",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=3"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
        .arg(&clip)
        .output()
        .expect("ffmpeg is required to generate test media (.ci/run installs it)");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        dir.join("clip.vtt"),
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello from doradura\n\n00:00:01.500 --> 00:00:03.000\nSecond cue\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("page.html"),
        "<!DOCTYPE html><html><head><title>Test clip</title></head><body>\
         <video src=\"clip.mp4\" controls><track kind=\"subtitles\" src=\"clip.vtt\" srclang=\"en\" label=\"English\">\
         </video></body></html>",
    )
    .unwrap();
    std::fs::write(
        dir.join("about.html"),
        "<!DOCTYPE html><html><head><title>About</title></head><body><p>No media here.</p></body></html>",
    )
    .unwrap();
    let mut big = std::fs::read(&clip).unwrap();
    big.resize(3 * 1024 * 1024, 0);
    std::fs::write(dir.join("big.mp4"), big).unwrap();
}

/// The real yt-dlp: `DORADURA_TEST_YTDLP`, else the virtualenv `.ci/run` makes in the checkout.
pub fn ytdlp() -> PathBuf {
    let path = std::env::var_os("DORADURA_TEST_YTDLP")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/yt-dlp"));
    assert!(
        path.exists(),
        "yt-dlp not found at {}: run `bash .ci/run` once (it installs yt-dlp into .venv), or set DORADURA_TEST_YTDLP",
        path.display()
    );
    path
}

/// A yt-dlp that answers `--version`, records its pid (`ytdlp.pid`) and its child's (`child.pid`) in `dir`, and
/// hangs: for timeouts, cancels and queues that must stay busy.
pub fn hanging_ytdlp(dir: &Path) -> PathBuf {
    let path = dir.join("hanging-yt-dlp");
    crate::script(
        &path,
        &format!(
            "[ \"$1\" = --version ] && {{ echo 2099.01.01; exit 0; }}\n\
             echo $$ > {d}/ytdlp.pid\n\
             sleep 1000 &\n\
             echo $! > {d}/child.pid\n\
             wait",
            d = dir.display()
        ),
    );
    path
}

#[derive(Clone)]
struct Site {
    dir: PathBuf,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

/// A running media site; stops when dropped.
pub struct MediaSite {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl MediaSite {
    /// Generates the media in `dir` and serves it on a free loopback port.
    pub fn start(dir: &Path) -> MediaSite {
        generate(dir);
        let site = Site {
            dir: dir.to_path_buf(),
            hits: Arc::default(),
        };
        let hits = site.hits.clone();
        let app = Router::new()
            .route("/stall.mp4", get(stall))
            .route("/slow.mp4", get(slow))
            .route("/live.mp4", get(live))
            .route("/gated/clip.mp4", get(gated))
            .route("/flaky/{name}", get(flaky))
            .route("/redirect", get(redirect))
            .fallback_service(ServeDir::new(dir))
            .layer(middleware::from_fn_with_state(site.clone(), count))
            .with_state(site);
        let (addr, stop) = crate::serve(app);
        MediaSite {
            addr,
            dir: dir.to_path_buf(),
            hits,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for MediaSite {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn count(State(site): State<Site>, req: Request, next: Next) -> Response {
    *site
        .hits
        .lock()
        .unwrap()
        .entry(req.uri().path().to_string())
        .or_default() += 1;
    next.run(req).await
}

fn video(body: Body, len: usize) -> Response {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// Announces 512 KiB, sends 64 KiB, then nothing ever again.
async fn stall() -> Response {
    let stream = async_stream(|tx| async move {
        let _ = tx.send(bytes::Bytes::from(vec![0u8; 64 * 1024])).await;
        std::future::pending::<()>().await;
    });
    video(Body::from_stream(stream), 512 * 1024)
}

/// `/redirect?to=<url>`: a 302 to that URL.
async fn redirect(uri: axum::http::Uri) -> Response {
    let to = uri.query().and_then(|q| q.strip_prefix("to=")).unwrap_or("/");
    let mut r = Response::new(Body::empty());
    *r.status_mut() = axum::http::StatusCode::FOUND;
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
    );
    r
}

/// `/flaky/<anything>`: the first request for each name gets a 503, every later one the clip.
async fn flaky(State(site): State<Site>, uri: axum::http::Uri) -> Response {
    // The counting middleware has already counted this request.
    if site.hits.lock().unwrap().get(uri.path()).copied().unwrap_or(0) <= 1 {
        let mut r = Response::new(Body::from("try again"));
        *r.status_mut() = axum::http::StatusCode::SERVICE_UNAVAILABLE;
        return r;
    }
    let data = tokio::fs::read(site.dir.join("clip.mp4")).await.unwrap();
    let len = data.len();
    video(Body::from(data), len)
}

/// The clip at `SLOW_RATE` bytes per second.
async fn slow(State(site): State<Site>) -> Response {
    let data = tokio::fs::read(site.dir.join("clip.mp4")).await.unwrap();
    let len = data.len();
    let stream = async_stream(move |tx| async move {
        let step = SLOW_RATE / 10;
        for chunk in data.chunks(step) {
            if tx.send(bytes::Bytes::copy_from_slice(chunk)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    video(Body::from_stream(stream), len)
}

/// A live stream that never ends: chunked, no `Content-Length`, 64 KiB chunks for as long as the client reads.
async fn live() -> Response {
    let stream = async_stream(|tx| async move {
        let chunk = bytes::Bytes::from(vec![0u8; 64 * 1024]);
        while tx.send(chunk.clone()).await.is_ok() {}
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    r
}

/// The clip for a request carrying the session cookie, else `403` as a site behind a login answers.
async fn gated(State(site): State<Site>, headers: axum::http::HeaderMap) -> Response {
    let wanted = format!("sid={GATE_COOKIE}");
    let has_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(';').any(|c| c.trim() == wanted));
    if !has_cookie {
        let mut r = Response::new(Body::from("Sign in to confirm you're not a bot"));
        *r.status_mut() = axum::http::StatusCode::FORBIDDEN;
        return r;
    }
    let data = tokio::fs::read(site.dir.join("clip.mp4")).await.unwrap();
    let len = data.len();
    video(Body::from(data), len)
}

/// A body stream fed by `produce` through a channel.
fn async_stream<F, Fut>(produce: F) -> impl tokio_stream::Stream<Item = Result<bytes::Bytes, std::io::Error>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<bytes::Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(produce(tx));
    tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), Ok)
}
