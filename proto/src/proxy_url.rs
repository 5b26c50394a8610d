//! `DOWNLOAD_PROXY`: the operator's upstream proxy, parsed once by the daemon (to refuse a bad value at start-up)
//! and again by the worker that connects through it.

use std::fmt;

/// How the worker talks to the upstream proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyScheme {
    /// HTTP proxy: `CONNECT` for tunnels, absolute-form requests for plain http.
    Http,
    /// The same over TLS to the proxy.
    Https,
    /// SOCKS5, names resolved by the worker (and checked first when the address check is on).
    Socks5,
    /// SOCKS5 with names resolved by the proxy (when the address check is off; with it on, the checked address is
    /// sent).
    Socks5h,
}

impl ProxyScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub scheme: ProxyScheme,
    pub host: String,
    pub port: u16,
    /// User name and password, percent-decoded.
    pub credentials: Option<(String, String)>,
}

/// Prints the URL with the password replaced, for logs and `--check-config`.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{user}:<redacted>@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What `DOWNLOAD_PROXY` accepts, for error messages.
pub const EXPECTED: &str = "a proxy URL such as http://host:3128, https://user:pass@host:443 or socks5://host:1080";

impl ProxyUrl {
    /// Parses `scheme://[user:pass@]host[:port]`; `None` for anything else (a path or query is refused too).
    pub fn parse(text: &str) -> Option<ProxyUrl> {
        let url = url::Url::parse(text.trim()).ok()?;
        let scheme = match url.scheme() {
            "http" => ProxyScheme::Http,
            "https" => ProxyScheme::Https,
            "socks5" => ProxyScheme::Socks5,
            "socks5h" => ProxyScheme::Socks5h,
            _ => return None,
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return None;
        }
        let host = match url.host()? {
            url::Host::Domain(d) => d.to_string(),
            url::Host::Ipv4(a) => a.to_string(),
            url::Host::Ipv6(a) => a.to_string(),
        };
        let port = url.port_or_known_default().unwrap_or(1080);
        let decode = |s: &str| percent_decode(s);
        let credentials = (!url.username().is_empty())
            .then(|| Some((decode(url.username())?, decode(url.password().unwrap_or(""))?)))
            .flatten();
        if !url.username().is_empty() && credentials.is_none() {
            return None;
        }
        Some(ProxyUrl {
            scheme,
            host,
            port,
            credentials,
        })
    }
}

/// `%xx` escapes decoded as UTF-8; `None` for a broken escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scheme_parses_with_its_port_and_credentials() {
        let p = ProxyUrl::parse("http://proxy.example:3128").unwrap();
        assert_eq!(
            (p.scheme, p.host.as_str(), p.port, p.credentials),
            (ProxyScheme::Http, "proxy.example", 3128, None)
        );
        assert_eq!(ProxyUrl::parse("https://p.example").unwrap().port, 443);
        assert_eq!(ProxyUrl::parse("socks5://10.0.0.1").unwrap().port, 1080);
        let s = ProxyUrl::parse("socks5h://us%40r:p%3Ass@[::1]:9050/").unwrap();
        assert_eq!(s.scheme, ProxyScheme::Socks5h);
        assert_eq!(s.host, "::1");
        assert_eq!(s.credentials, Some(("us@r".into(), "p:ss".into())));
        assert_eq!(s.to_string(), "socks5h://us@r:<redacted>@[::1]:9050");
        assert!(!format!("{s:?}").contains("p:ss"));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "proxy:3128",
            "ftp://p:21",
            "socks4://p:1080",
            "http://p:3128/path",
            "http://p:3128?x=1",
            "http://:3128",
            "http://u:%zz@p:1",
        ] {
            assert!(ProxyUrl::parse(bad).is_none(), "{bad}");
        }
    }
}
