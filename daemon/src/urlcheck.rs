//! What may be downloaded: http(s) URLs of public hosts, checked on the addresses the host resolves to, before
//! anything is queued.

use std::net::IpAddr;
use std::time::Duration;

/// Longer URLs are refused outright.
pub const MAX_URL_LEN: usize = 2048;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("that is not a link: send an http:// or https:// URL")]
    Empty,
    #[error("the link is too long ({len} characters; at most {MAX_URL_LEN})")]
    TooLong { len: usize },
    #[error("that is not a valid link ({0})")]
    Invalid(String),
    #[error("only http:// and https:// links can be downloaded, not {0}:")]
    Scheme(String),
    #[error("links with a user name or password are not accepted")]
    Credentials,
    #[error("the link has no host")]
    NoHost,
    /// The address itself is never named: the message would tell a user what a private name resolves to.
    #[error("{host} points to a private or local address; such links are refused")]
    Private { host: String },
    #[error("the host {host} could not be found")]
    Unresolvable { host: String },
}

/// Validates `raw` and returns it normalised. Unless `allow_private` or the host is in `allowed` (the operator's
/// `DOWNLOAD_ALLOWED_HOSTS`), every address the host resolves to must be public.
pub async fn check(raw: &str, allow_private: bool, allowed: &[String]) -> Result<String, UrlError> {
    let url = parse(raw)?;
    let port = url.port_or_known_default().unwrap_or(443);
    if allow_private
        || url
            .host_str()
            .is_some_and(|h| doradura_proto::net::allowed(h, port, allowed))
    {
        return Ok(url.to_string());
    }
    let host = url.host().ok_or(UrlError::NoHost)?;
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => {
            let lookup = tokio::net::lookup_host((name, port));
            match tokio::time::timeout(Duration::from_secs(10), lookup).await {
                Ok(Ok(it)) => it.map(|sa| sa.ip()).collect(),
                _ => vec![],
            }
        }
    };
    let host = host.to_string();
    if addrs.is_empty() {
        return Err(UrlError::Unresolvable { host });
    }
    if addrs.into_iter().any(|a| !is_public(a)) {
        return Err(UrlError::Private { host });
    }
    Ok(url.to_string())
}

/// The syntactic checks: length, scheme, no credentials, a host.
pub fn parse(raw: &str) -> Result<url::Url, UrlError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(UrlError::Empty);
    }
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong { len: raw.len() });
    }
    let url = url::Url::parse(raw).map_err(|e| UrlError::Invalid(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(UrlError::Scheme(other.chars().take(20).collect())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    match url.host() {
        None => Err(UrlError::NoHost),
        Some(url::Host::Domain("")) => Err(UrlError::NoHost),
        Some(_) => Ok(url),
    }
}

pub use doradura_proto::net::is_public;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_classified() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private} should be refused");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public} should be allowed");
        }
    }

    #[test]
    fn syntax_is_checked_before_anything_resolves() {
        assert_eq!(parse("  ").unwrap_err(), UrlError::Empty);
        assert_eq!(
            parse("file:///etc/passwd").unwrap_err(),
            UrlError::Scheme("file".into())
        );
        assert_eq!(
            parse("ftp://example.com/x").unwrap_err(),
            UrlError::Scheme("ftp".into())
        );
        assert_eq!(
            parse("https://user:pw@example.com/").unwrap_err(),
            UrlError::Credentials
        );
        assert!(matches!(parse("not a url").unwrap_err(), UrlError::Invalid(_)));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(parse(&long).unwrap_err(), UrlError::TooLong { .. }));
        assert!(parse("https://example.com/watch?v=1").is_ok());
    }

    #[tokio::test]
    async fn private_hosts_are_refused_unless_allowed() {
        let err = check("http://127.0.0.1:8080/clip.mp4", false, &[]).await.unwrap_err();
        assert!(err.to_string().contains("private or local address;"), "{err}");
        // A name's private address is never told: it would map the operator's network for the asker.
        let named = check("http://localhost:1/", false, &[]).await.unwrap_err().to_string();
        assert!(!named.contains("127.0.0.1") && !named.contains("::1"), "{named}");
        // Decimal and hex spellings of loopback are normalised by the URL parser first.
        assert!(matches!(
            check("http://2130706433/", false, &[]).await,
            Err(UrlError::Private { .. })
        ));
        assert!(matches!(
            check("http://0x7f.1/", false, &[]).await,
            Err(UrlError::Private { .. })
        ));
        assert!(matches!(
            check("http://[::1]/", false, &[]).await,
            Err(UrlError::Private { .. })
        ));
        assert!(matches!(
            check("http://localhost:1/", false, &[]).await,
            Err(UrlError::Private { .. })
        ));
        assert!(matches!(
            check("http://169.254.169.254/latest/meta-data", false, &[]).await,
            Err(UrlError::Private { .. })
        ));
        assert_eq!(
            check("http://127.0.0.1:8080/clip.mp4", true, &[]).await.unwrap(),
            "http://127.0.0.1:8080/clip.mp4"
        );
    }

    mod properties {
        use std::net::Ipv4Addr;

        use proptest::prelude::*;

        use super::super::*;

        fn check_now(url: &str) -> Result<String, UrlError> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(check(url, false, &[]))
        }

        proptest! {
            /// Anything at all: never a panic, and what passes is an http(s) URL with a host and no credentials.
            #[test]
            fn whatever_passes_the_syntax_check_is_a_plain_web_link(raw in ".{0,300}") {
                if let Ok(url) = parse(&raw) {
                    prop_assert!(matches!(url.scheme(), "http" | "https"));
                    prop_assert!(url.username().is_empty() && url.password().is_none());
                    prop_assert!(url.host_str().is_some_and(|h| !h.is_empty()));
                    prop_assert!(raw.trim().len() <= MAX_URL_LEN);
                }
            }

            /// An IPv4 host in any spelling the URL parser accepts (here: one decimal number) is let through
            /// exactly when the address is public.
            #[test]
            fn a_decimal_host_is_judged_by_the_address_it_means(n in any::<u32>()) {
                let got = check_now(&format!("http://{n}/v"));
                prop_assert_eq!(got.is_ok(), is_public(IpAddr::V4(Ipv4Addr::from(n))), "{:?}", got);
            }

            /// Every address in the private, loopback, link-local and carrier-grade NAT ranges is refused,
            /// also written as an IPv4-mapped IPv6 address.
            #[test]
            fn private_ranges_are_refused_in_both_families(
                range in prop::sample::select(vec![(10u32 << 24, 8u32), (127 << 24, 8), (0xAC10 << 16, 12),
                                                    (0xC0A8 << 16, 16), (0xA9FE << 16, 16), (0x6440 << 16, 10)]),
                host in any::<u32>(),
            ) {
                let (base, prefix) = range;
                let ip = Ipv4Addr::from(base | (host >> prefix));
                let v4 = check_now(&format!("http://{ip}/"));
                prop_assert!(matches!(v4, Err(UrlError::Private { .. })), "{}: {:?}", ip, v4);
                let v6 = check_now(&format!("http://[::ffff:{ip}]/"));
                prop_assert!(matches!(v6, Err(UrlError::Private { .. })), "{}: {:?}", ip, v6);
            }
        }
    }
}
