//! The forwarded headers the upstream receives, and whose word the gate takes for the client's address.
//!
//! The gate states what it saw itself: `X-Forwarded-For` (the peer address), `X-Forwarded-Proto`
//! (whether the gate terminated TLS) and `X-Forwarded-Host` (the host the client addressed). What a
//! client sends in these headers, and in `Forwarded` (RFC 7239) and `X-Real-IP`, is believed only
//! from a peer in `TRUSTED_PROXIES` (a front proxy the operator runs): then the gate appends its peer
//! to that proxy's `X-Forwarded-For` and keeps its `-Proto`, `-Host`, `Forwarded` and `X-Real-IP`.
//! From anyone else they are dropped, so no client can tell the upstream it came over http, from
//! another address or for another host. The gate does not write `Forwarded` itself: `X-Forwarded-*`
//! is what MCP SDK servers and their frameworks read.
//!
//! The same rule gives the access log's client address: the right-most address in `X-Forwarded-For`
//! that is not a trusted proxy when the peer is one, else the peer.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// The networks whose forwarded headers are believed (`TRUSTED_PROXIES`); empty trusts nobody.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

/// What the gate itself saw of a request, to be stated upstream.
pub struct Seen {
    /// The TCP peer.
    pub peer: IpAddr,
    /// `https` when the gate terminated TLS, else `http`.
    pub proto: &'static str,
    /// The host the client addressed (see [`crate::http::target::original_host`]).
    pub host: Option<HeaderValue>,
}

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    /// Whether `ip` is a trusted proxy. An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`, a dual-stack
    /// listener) is matched as the IPv4 address it is.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer, unless the peer is a trusted proxy; then the right-most
    /// `X-Forwarded-For` entry that is not itself trusted (entries to its left were written by
    /// whoever the client is and prove nothing). An entry that is not an address ends the walk at
    /// the last good one.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.0.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let fields: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let mut client = peer;
        for entry in fields.iter().rev().flat_map(|f| f.rsplit(',')) {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }

    /// Replaces the request's forwarded headers with what the gate saw, keeping (appending to) a
    /// trusted proxy's.
    pub fn apply(&self, headers: &mut HeaderMap, seen: Seen) {
        let trusted = !self.0.is_empty() && self.trusts(seen.peer);
        let peer = seen.peer.to_canonical().to_string();
        let for_value = if trusted {
            let earlier: Vec<&str> = headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect();
            if earlier.is_empty() {
                peer
            } else {
                format!("{}, {peer}", earlier.join(", "))
            }
        } else {
            for name in [
                &X_FORWARDED_PROTO,
                &X_FORWARDED_HOST,
                &X_FORWARDED_PORT,
                &X_FORWARDED_PREFIX,
                &X_REAL_IP,
                &FORWARDED,
            ] {
                headers.remove(name);
            }
            peer
        };
        if let Ok(v) = HeaderValue::try_from(for_value) {
            headers.insert(X_FORWARDED_FOR.clone(), v);
        }
        if !(trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
            headers.insert(
                X_FORWARDED_PROTO.clone(),
                HeaderValue::from_static(seen.proto),
            );
        }
        if !(trusted && headers.contains_key(&X_FORWARDED_HOST)) {
            match seen.host {
                Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host),
                None => headers.remove(&X_FORWARDED_HOST),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn headers(fields: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in fields {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const SPOOFED: &[(&str, &str)] = &[
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-port", "80"),
        ("x-forwarded-prefix", "/admin"),
        ("x-real-ip", "6.6.6.6"),
        ("forwarded", "for=6.6.6.6;proto=http"),
    ];

    #[test]
    fn an_untrusted_peer_cannot_set_any_forwarded_header() {
        for proxies in [trusted(&[]), trusted(&["10.0.0.0/8"])] {
            let mut h = headers(SPOOFED);
            let seen = Seen {
                peer: ip("192.0.2.7"),
                proto: "https",
                host: Some(HeaderValue::from_static("mcp.example.com")),
            };
            proxies.apply(&mut h, seen);
            let mut left: Vec<_> = h
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
                .collect();
            left.sort();
            assert_eq!(
                left,
                [
                    "x-forwarded-for: 192.0.2.7",
                    "x-forwarded-host: mcp.example.com",
                    "x-forwarded-proto: https",
                ]
            );
        }
    }

    #[test]
    fn a_trusted_peer_is_appended_to_and_its_proto_and_host_are_kept() {
        let proxies = trusted(&["10.0.0.0/8", "127.0.0.1/32"]);
        let mut h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "10.1.1.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "mcp.example.com"),
            ("x-real-ip", "198.51.100.1"),
            ("forwarded", "for=198.51.100.1"),
        ]);
        let seen = Seen {
            peer: ip("10.0.0.2"),
            proto: "http",
            host: Some(HeaderValue::from_static("gate.internal")),
        };
        proxies.apply(&mut h, seen);
        assert_eq!(h[&X_FORWARDED_FOR], "198.51.100.1, 10.1.1.1, 10.0.0.2");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_HOST], "mcp.example.com");
        assert_eq!(h[&X_REAL_IP], "198.51.100.1");
        assert_eq!(h[&FORWARDED], "for=198.51.100.1");

        // A trusted proxy that sent none of them gets the gate's view.
        let mut h = HeaderMap::new();
        let seen = Seen {
            peer: ip("127.0.0.1"),
            proto: "http",
            host: Some(HeaderValue::from_static("gate.internal")),
        };
        proxies.apply(&mut h, seen);
        assert_eq!(h[&X_FORWARDED_FOR], "127.0.0.1");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(h[&X_FORWARDED_HOST], "gate.internal");
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_address() {
        let proxies = trusted(&["10.0.0.0/8", "127.0.0.1/32"]);
        for (peer, xff, expect) in [
            // Untrusted peers are the client whatever they claim.
            ("192.0.2.7", &["6.6.6.6"][..], "192.0.2.7"),
            // A trusted peer's list is walked from the right past trusted hops.
            ("10.0.0.2", &["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
            (
                "10.0.0.2",
                &["6.6.6.6, 198.51.100.1, 10.9.9.9"],
                "198.51.100.1",
            ),
            (
                "10.0.0.2",
                &["6.6.6.6", "198.51.100.1", "10.9.9.9"],
                "198.51.100.1",
            ),
            // Nothing forwarded: the proxy itself.
            ("127.0.0.1", &[], "127.0.0.1"),
            // Only trusted hops: the left-most of them.
            ("10.0.0.2", &["10.0.0.5, 10.0.0.9"], "10.0.0.5"),
            // Garbage stops the walk at the last address that parsed.
            ("10.0.0.2", &["198.51.100.1, unknown, 10.0.0.4"], "10.0.0.4"),
            ("10.0.0.2", &["not-an-ip"], "10.0.0.2"),
            // An IPv4-mapped peer is the IPv4 address.
            ("::ffff:10.0.0.2", &["198.51.100.1"], "198.51.100.1"),
        ] {
            let h = headers(
                &xff.iter()
                    .map(|v| ("x-forwarded-for", *v))
                    .collect::<Vec<_>>(),
            );
            assert_eq!(
                proxies.client_ip(ip(peer), &h),
                ip(expect),
                "{peer} {xff:?}"
            );
        }
        let h = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(trusted(&[]).client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }
}
