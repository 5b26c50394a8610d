//! Connections through the operator's upstream proxy (`DOWNLOAD_PROXY`): HTTP `CONNECT` or SOCKS5 tunnels, for
//! https and plain http alike. The worker's own proxy decides where a connection may go; this only carries it
//! there.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use doradura_proto::proxy_url::{ProxyScheme, ProxyUrl};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// A byte stream of any kind: plain TCP, TLS to the proxy, or a SOCKS tunnel.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub type Stream = Box<dyn Io>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const HEAD_LIMIT: usize = 16 * 1024;

fn timeout_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the upstream proxy did not answer in time",
    )
}

/// A connection to the proxy itself (TLS for `https://`).
async fn connect_proxy(proxy: &ProxyUrl) -> std::io::Result<Stream> {
    let tcp = TcpStream::connect((proxy.host.as_str(), proxy.port)).await?;
    if proxy.scheme != ProxyScheme::Https {
        return Ok(Box::new(tcp));
    }
    let name = rustls::pki_types::ServerName::try_from(proxy.host.clone())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let tls = tokio_rustls::TlsConnector::from(tls_config())
        .connect(name, tcp)
        .await?;
    Ok(Box::new(tls))
}

/// TLS to an `https://` proxy, verified against the Mozilla roots (built once).
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default protocol versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// `Proxy-Authorization: Basic …\r\n`, or nothing.
fn authorization(proxy: &ProxyUrl) -> String {
    match &proxy.credentials {
        Some((user, password)) => format!(
            "Proxy-Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ),
        None => String::new(),
    }
}

/// A stream to `host:port` through the proxy; the whole handshake (TCP, TLS, CONNECT or SOCKS) within 20 s.
pub async fn tunnel(proxy: &ProxyUrl, host: &str, port: u16) -> std::io::Result<Stream> {
    tokio::time::timeout(CONNECT_TIMEOUT, handshake(proxy, host, port))
        .await
        .map_err(|_| timeout_error())?
}

async fn handshake(proxy: &ProxyUrl, host: &str, port: u16) -> std::io::Result<Stream> {
    match proxy.scheme {
        ProxyScheme::Http | ProxyScheme::Https => {
            let mut s = connect_proxy(proxy).await?;
            let authority = authority(host, port);
            let request = format!(
                "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{}\r\n",
                authorization(proxy)
            );
            s.write_all(request.as_bytes()).await?;
            let head = read_response_head(&mut s).await?;
            let status = head.split(' ').nth(1).unwrap_or("");
            if status != "200" {
                let line = head.lines().next().unwrap_or("").to_string();
                return Err(std::io::Error::other(format!(
                    "the upstream proxy refused the tunnel: {line}"
                )));
            }
            Ok(s)
        }
        ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
            let tcp = TcpStream::connect((proxy.host.as_str(), proxy.port)).await?;
            let target = (host, port);
            let socks = match &proxy.credentials {
                Some((user, password)) => {
                    tokio_socks::tcp::Socks5Stream::connect_with_password_and_socket(tcp, target, user, password).await
                }
                None => tokio_socks::tcp::Socks5Stream::connect_with_socket(tcp, target).await,
            }
            .map_err(|e| std::io::Error::other(format!("the upstream SOCKS proxy refused: {e}")))?;
            Ok(Box::new(socks))
        }
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Reads a response head byte by byte, so nothing after it is consumed.
async fn read_response_head(s: &mut Stream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > HEAD_LIMIT {
            return Err(std::io::Error::other("the upstream proxy's answer is too long"));
        }
        if s.read(&mut byte).await? == 0 {
            return Err(std::io::Error::other("the upstream proxy closed the connection"));
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
