//! A loopback HTTP proxy that yt-dlp (and the ffmpeg it starts) must use for every connection: the daemon checked
//! the link's own host, this checks everything after it, redirects and a page's media URLs included. A host is
//! resolved once, each address is checked, and the connection goes to the checked address (no second lookup
//! that could answer differently). `CONNECT host:port` tunnels (https) and absolute-form requests (http) are
//! served; anything private that the operator did not list is answered `403 Forbidden by doradura`.
//!
//! With `DOWNLOAD_PROXY` set, every connection is carried on through that upstream proxy as a tunnel (after the
//! check, to the checked address), so yt-dlp never sees the upstream's address or credentials.

use std::net::SocketAddr;
use std::time::Duration;

use doradura_proto::net;
use doradura_proto::proxy_url::{ProxyScheme, ProxyUrl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::upstream::{self, Stream};

/// The reason phrase yt-dlp prints; the stderr classifier knows it.
pub const REFUSED: &str = "Forbidden by doradura: private address";
const HEAD_LIMIT: usize = 16 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// A running proxy; stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where connections may go and how they get there.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Refuse private addresses (unless listed in `allowed`).
    pub check: bool,
    /// The operator's private hosts that may be reached anyway (`host` or `host:port`).
    pub allowed: Vec<String>,
    /// The operator's upstream proxy.
    pub upstream: Option<ProxyUrl>,
}

impl Proxy {
    /// Listens on a free loopback port.
    pub async fn start(rules: Rules) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let rules = std::sync::Arc::new(rules);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let rules = rules.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(client, &rules).await {
                        debug!(error = %e, "proxy connection ended");
                    }
                });
            }
        });
        Ok(Proxy { addr, task })
    }
}

/// Reads the request head: the bytes up to and including the blank line, and whatever came after it.
async fn read_head(client: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > HEAD_LIMIT {
            return Err(std::io::Error::other("request head too long"));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the request head ended"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `host` and `port` of `host:port`, `[v6]:port`, or the authority of an absolute URL.
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if tail.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((authority.to_string(), default_port)),
    }
    .filter(|(h, _)| !h.is_empty())
}

/// Where a connection goes once the rule let it: the one checked address, or (no check) the name as given.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    Checked(SocketAddr),
    Named(String, u16),
}

impl Destination {
    fn host_port(&self) -> (String, u16) {
        match self {
            Destination::Checked(a) => (a.ip().to_string(), a.port()),
            Destination::Named(h, p) => (h.clone(), *p),
        }
    }
}

/// Resolves `host` and picks the first address the rule lets through; `Err` says why none does, without naming
/// the address (an error text must not reveal what a private name resolves to).
async fn destination(host: &str, port: u16, rules: &Rules) -> Result<Destination, String> {
    if !rules.check {
        return Ok(Destination::Named(host.to_string(), port));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| format!("cannot resolve {host}"))?
        .collect();
    let listed = net::allowed(host, port, &rules.allowed);
    let ok: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| listed || net::is_public(a.ip()))
        .collect();
    // Every address must pass: a name with one private address among public ones is refused.
    match (ok.len() == addrs.len(), ok.first()) {
        (true, Some(a)) => Ok(Destination::Checked(*a)),
        _ => Err(format!("{host} resolves to a private address")),
    }
}

async fn refuse(client: &mut TcpStream, why: &str) -> std::io::Result<()> {
    warn!(why, "the download proxy refused a connection");
    let body = format!("{why}\n");
    let response = format!(
        "HTTP/1.1 403 {REFUSED}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await
}

/// A stream to `dest`: straight there, or tunnelled through the upstream proxy.
async fn open(dest: &Destination, rules: &Rules) -> std::io::Result<Stream> {
    if let Some(proxy) = &rules.upstream {
        let (host, port) = match (dest, proxy.scheme) {
            // socks5:// means names are resolved here (socks5h:// leaves them to the proxy).
            (Destination::Named(h, p), ProxyScheme::Socks5) => {
                let first = tokio::net::lookup_host((h.as_str(), *p)).await?.next();
                let addr = first.ok_or_else(|| std::io::Error::other(format!("cannot resolve {h}")))?;
                (addr.ip().to_string(), addr.port())
            }
            _ => dest.host_port(),
        };
        return upstream::tunnel(proxy, &host, port).await;
    }
    let connect = async {
        match dest {
            Destination::Checked(a) => TcpStream::connect(a).await,
            Destination::Named(h, p) => TcpStream::connect((h.as_str(), *p)).await,
        }
    };
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    Ok(Box::new(tcp))
}

/// A stream to `dest`, or `None` once the client was answered `502` with the reason (an upstream proxy that
/// refused, a connection that failed); the operator reads the reason in the worker's log.
async fn reach(client: &mut TcpStream, dest: &Destination, rules: &Rules) -> std::io::Result<Option<Stream>> {
    match open(dest, rules).await {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            let (host, port) = dest.host_port();
            warn!(host, port, error = %e, "the download proxy could not reach a destination");
            let body = format!("cannot reach {}: {e}\n", upstream::authority(&host, port));
            let response = format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(response.as_bytes()).await?;
            client.shutdown().await?;
            Ok(None)
        }
    }
}

/// The destination of `host:port`, or `None` once the client was told why it may not be reached.
async fn checked(client: &mut TcpStream, host: &str, port: u16, rules: &Rules) -> std::io::Result<Option<Destination>> {
    match destination(host, port, rules).await {
        Ok(d) => Ok(Some(d)),
        Err(why) => refuse(client, &why).await.map(|()| None),
    }
}

async fn serve(mut client: TcpStream, rules: &Rules) -> std::io::Result<()> {
    let (head, rest) = read_head(&mut client).await?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    if method.eq_ignore_ascii_case("CONNECT") {
        let Some((host, port)) = split_host_port(target, 443) else {
            return refuse(&mut client, "a CONNECT without host:port").await;
        };
        let Some(dest) = checked(&mut client, &host, port, rules).await? else {
            return Ok(());
        };
        let Some(mut upstream) = reach(&mut client, &dest, rules).await? else {
            return Ok(());
        };
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await?;
        upstream.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    // An absolute-form request: `GET http://host:port/path HTTP/1.1`.
    let Some(after_scheme) = target.strip_prefix("http://") else {
        return refuse(&mut client, "only http:// requests and CONNECT tunnels are proxied").await;
    };
    let (authority, path) = match after_scheme.find('/') {
        Some(i) => (&after_scheme[..i], &after_scheme[i..]),
        None => (after_scheme, "/"),
    };
    let Some((host, port)) = split_host_port(authority, 80) else {
        return refuse(&mut client, "a request without a host").await;
    };
    let Some(dest) = checked(&mut client, &host, port, rules).await? else {
        return Ok(());
    };
    // One request per connection (a kept-alive proxy connection could name another host next), in origin form
    // over a connection to the checked address (through the upstream proxy, a tunnel to it: an absolute-form
    // request would let the upstream resolve the name again, or make it rewrite `Host` to the address).
    let Some(mut upstream) = reach(&mut client, &dest, rules).await? else {
        return Ok(());
    };
    let mut forwarded = format!("{method} {path} {version}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().to_ascii_lowercase();
        if !matches!(
            name.as_str(),
            "proxy-connection" | "connection" | "keep-alive" | "proxy-authorization"
        ) {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    upstream.write_all(forwarded.as_bytes()).await?;
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback server that answers every request with `hello` and counts its connections.
    async fn origin() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ = read_head(&mut s).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
                        .await;
                });
            }
        });
        (addr, hits)
    }

    async fn exchange(proxy: SocketAddr, request: String) -> String {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn private_destinations_are_refused_unless_listed() {
        let (origin, hits) = origin().await;
        let refusing = Proxy::start(Rules {
            check: true,
            ..Rules::default()
        })
        .await
        .unwrap();
        let get = format!("GET http://{origin}/clip.mp4 HTTP/1.1\r\nHost: {origin}\r\n\r\n");
        let answer = exchange(refusing.addr, get.clone()).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 403 {REFUSED}\r\n")), "{answer}");
        let connect = format!("CONNECT {origin} HTTP/1.1\r\nHost: {origin}\r\n\r\n");
        assert!(exchange(refusing.addr, connect).await.starts_with("HTTP/1.1 403"));
        for target in ["169.254.169.254:80", "[::1]:80", "localhost:80"] {
            let answer = exchange(refusing.addr, format!("CONNECT {target} HTTP/1.1\r\n\r\n")).await;
            assert!(answer.starts_with("HTTP/1.1 403"), "{target}: {answer}");
        }
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "nothing reached the private origin"
        );

        let listing = Proxy::start(Rules {
            check: true,
            allowed: vec![origin.to_string()],
            upstream: None,
        })
        .await
        .unwrap();
        let answer = exchange(listing.addr, get).await;
        assert!(
            answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("hello"),
            "{answer}"
        );
        let mut tunnel = TcpStream::connect(listing.addr).await.unwrap();
        tunnel
            .write_all(format!("CONNECT {origin} HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        tunnel.read_to_string(&mut out).await.unwrap();
        assert!(
            out.starts_with("HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK"),
            "{out}"
        );
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_upstream_proxy_carries_every_connection_to_the_checked_address() {
        let (origin, hits) = origin().await;
        for (upstream, scheme) in [
            (doradura_testkit::proxy::UpstreamProxy::http(), "http"),
            (doradura_testkit::proxy::UpstreamProxy::socks5(), "socks5"),
        ] {
            let before = hits.load(std::sync::atomic::Ordering::SeqCst);
            // The origin is named `localhost`: the check resolves it, and the upstream is told the address.
            let named = format!("localhost:{}", origin.port());
            let rules = Rules {
                check: true,
                allowed: vec![named.clone()],
                upstream: ProxyUrl::parse(&upstream.url(scheme)),
            };
            let proxy = Proxy::start(rules).await.unwrap();
            let get = format!("GET http://{named}/clip.mp4 HTTP/1.1\r\nHost: {named}\r\n\r\n");
            let answer = exchange(proxy.addr, get).await;
            assert!(answer.ends_with("hello"), "{scheme}: {answer}");
            let mut tunnel = TcpStream::connect(proxy.addr).await.unwrap();
            tunnel
                .write_all(format!("CONNECT {named} HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            tunnel.read_to_string(&mut out).await.unwrap();
            assert!(out.ends_with("hello"), "{scheme}: {out}");
            let checked = format!("127.0.0.1:{}", origin.port());
            let expected: Vec<String> = match scheme {
                "http" => vec![format!("CONNECT {checked}"), format!("CONNECT {checked}")],
                _ => vec![format!("SOCKS {checked}"), format!("SOCKS {checked}")],
            };
            assert_eq!(upstream.seen(), expected);
            assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), before + 2);
            // A private address that is not listed never reaches the upstream.
            let refused = exchange(proxy.addr, "CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n".into()).await;
            assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
            assert_eq!(upstream.seen().len(), 2);
        }
    }

    #[tokio::test]
    async fn an_upstream_that_refuses_is_answered_502_without_its_credentials() {
        let (origin, _) = origin().await;
        // Nothing listens on the upstream's port: every tunnel fails.
        let dead = TcpListener::bind(("127.0.0.1", 0)).await.unwrap().local_addr().unwrap();
        let proxy = Proxy::start(Rules {
            check: true,
            allowed: vec![origin.to_string()],
            upstream: ProxyUrl::parse(&format!("http://user:s3cret@{dead}")),
        })
        .await
        .unwrap();
        let answer = exchange(proxy.addr, format!("GET http://{origin}/x HTTP/1.1\r\n\r\n")).await;
        assert!(answer.starts_with("HTTP/1.1 502 Bad Gateway"), "{answer}");
        assert!(answer.contains(&format!("cannot reach {origin}")), "{answer}");
        assert!(!answer.contains("s3cret"), "{answer}");
    }

    #[tokio::test]
    async fn refusals_do_not_name_the_private_address() {
        let proxy = Proxy::start(Rules {
            check: true,
            ..Rules::default()
        })
        .await
        .unwrap();
        let answer = exchange(proxy.addr, "GET http://localhost:9/ HTTP/1.1\r\n\r\n".into()).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(!answer.contains("127.0.0.1") && !answer.contains("::1"), "{answer}");
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split_host_port("a.example:8443", 443), Some(("a.example".into(), 8443)));
        assert_eq!(split_host_port("a.example", 80), Some(("a.example".into(), 80)));
        assert_eq!(split_host_port("[::1]:9000", 443), Some(("::1".into(), 9000)));
        assert_eq!(split_host_port("[::1]", 443), Some(("::1".into(), 443)));
        assert_eq!(split_host_port(":80", 80), None);
        assert_eq!(split_host_port("a:b", 80), None);
    }
}
