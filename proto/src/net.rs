//! Which network addresses downloads may reach: public ones, and the hosts an operator allowed by name. Shared by
//! the daemon (the link's own host, before queueing) and the worker (every connection yt-dlp makes, through its
//! proxy), so both apply one rule.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether an address is on the public internet (not loopback, private, link-local, metadata, reserved...).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let seg = v6.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address.
            if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
                let [a, b] = seg[6].to_be_bytes();
                let [c, d] = seg[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] & 0xffc0) == 0xfec0 // site-local
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]) // discard
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
                || seg[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes 169.254.169.254, the cloud metadata service
        || ip.is_broadcast()
        || ip.is_multicast()
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113))
}

/// Whether `host` (a name or an address, IPv6 without brackets) on `port` is in the operator's list
/// (`DOWNLOAD_ALLOWED_HOSTS`): entries are `host` (any port) or `host:port`, IPv6 as `[::1]` or `[::1]:8080`,
/// names compared without case.
pub fn allowed(host: &str, port: u16, list: &[String]) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    list.iter().any(|entry| {
        let entry = entry.trim();
        let (h, p) = match entry.rsplit_once(':') {
            Some((h, p)) if (!h.contains(':') || h.ends_with(']')) && p.parse::<u16>().is_ok() => {
                (h, p.parse::<u16>().ok())
            }
            _ => (entry, None),
        };
        let h = h.trim_start_matches('[').trim_end_matches(']');
        h.eq_ignore_ascii_case(host) && p.is_none_or(|p| p == port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_list_matches_host_and_port() {
        let list = [
            "127.0.0.1:8080".to_string(),
            "Media.LAN".into(),
            "[::1]:9000".into(),
            "10.0.0.5".into(),
        ];
        assert!(allowed("127.0.0.1", 8080, &list));
        assert!(!allowed("127.0.0.1", 8081, &list));
        assert!(allowed("media.lan", 443, &list));
        assert!(allowed("::1", 9000, &list));
        assert!(allowed("[::1]", 9000, &list));
        assert!(!allowed("::1", 9001, &list));
        assert!(allowed("10.0.0.5", 1, &list));
        assert!(!allowed("10.0.0.6", 1, &list));
        assert!(!allowed("127.0.0.1", 8080, &[]));
    }

    #[test]
    fn public_and_private_addresses() {
        assert!(is_public("93.184.216.34".parse().unwrap()));
        assert!(!is_public("169.254.169.254".parse().unwrap()));
        assert!(!is_public("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_public("64:ff9b::a00:1".parse().unwrap()));
    }
}
