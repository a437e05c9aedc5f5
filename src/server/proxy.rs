//! Who is on the other end of the connection, and whether they reached us over TLS.
//!
//! The TCP peer is the only address we know for sure. A load balancer in front of the nodes
//! tells us the client's address (`X-Forwarded-For`) and scheme (`X-Forwarded-Proto`), but
//! anyone can send those headers, so they are believed only when the peer is listed in
//! `server.trusted_proxies`. This module never trusts a header from any other peer.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

/// An IP network such as `10.0.0.0/8` or a single address (`127.0.0.1` = `/32`): an
/// [`ipnet::IpNet`], parsed here and only here, by `config validate` and the running node
/// alike, so an entry that validates is an entry that is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl Cidr {
    /// Parse `addr` or `addr/prefix`, saying what is wrong otherwise.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        if let Some((addr, _)) = text.split_once('/') {
            // ipnet reads `010.0.0.0` as 10.0.0.0; other tools read it as octal. Refuse it, as
            // the standard address parser does.
            return match (addr.parse::<IpAddr>(), text.parse::<IpNet>()) {
                (Ok(_), Ok(net)) => Ok(Cidr(net)),
                _ => Err(format!(
                    "`{text}` is not a CIDR block (address/prefix length, e.g. 10.0.0.0/8)"
                )),
            };
        }
        text.parse::<IpAddr>()
            .map(|ip| Cidr(IpNet::from(ip)))
            .map_err(|_| format!("`{text}` is not an IP address"))
    }

    pub fn prefix(&self) -> u8 {
        self.0.prefix_len()
    }

    /// Whether `ip` is inside this network. IPv4-mapped IPv6 peers (`::ffff:10.0.0.1`, what a
    /// dual-stack listener reports) match IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

/// `server.trusted_proxies`, parsed once.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Every entry, or the first that does not parse (`config validate` has refused such a
    /// config already, with its line and column).
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|e| Cidr::parse(e))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Like [`TrustedProxies::parse`]; an entry that does not parse is logged and trusts
    /// nobody (never more than the operator wrote).
    pub fn from_config(entries: &[String]) -> TrustedProxies {
        TrustedProxies(
            entries
                .iter()
                .filter_map(|e| {
                    Cidr::parse(e)
                        .inspect_err(|why| {
                            tracing::error!("server.trusted_proxies: {why}; entry ignored")
                        })
                        .ok()
                })
                .collect(),
        )
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
}

/// What we believe about the client of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address: the TCP peer, or — when the peer is a trusted proxy — the
    /// nearest untrusted address in `X-Forwarded-For`. `None` only for in-process requests
    /// that carry no connection info.
    pub ip: Option<IpAddr>,
    /// The client reached us over TLS: we terminate TLS ourselves, or a trusted proxy says
    /// `X-Forwarded-Proto: https`.
    pub secure: bool,
}

impl ClientInfo {
    /// Judge one request. `tls` is whether this node itself serves TLS.
    pub fn of(parts: &Parts, proxies: &TrustedProxies, tls: bool) -> ClientInfo {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Self::judge(peer, &parts.headers, proxies, tls)
    }

    pub fn judge(
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        proxies: &TrustedProxies,
        tls: bool,
    ) -> ClientInfo {
        let Some(peer) = peer.filter(|p| proxies.contains(*p)) else {
            return ClientInfo {
                ip: peer,
                secure: tls,
            };
        };
        // Each proxy appends the address it saw, so read right to left and stop at the first
        // hop we do not trust: everything left of it may be made up by the client.
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .map(|s| s.parse::<IpAddr>().ok())
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        let ip = forwarded
            .iter()
            .rev()
            .copied()
            .find(|ip| !proxies.contains(*ip))
            .or_else(|| forwarded.first().copied())
            .unwrap_or(peer);
        let forwarded_https = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            // A chain of proxies may list several; the one nearest the client comes first.
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        ClientInfo {
            ip: Some(ip),
            secure: tls || forwarded_https,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parses_addresses_and_blocks() {
        assert_eq!(Cidr::parse("127.0.0.1").unwrap().prefix(), 32);
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().prefix(), 8);
        assert_eq!(Cidr::parse("::1").unwrap().prefix(), 128);
        assert_eq!(Cidr::parse("fd00::/8").unwrap().prefix(), 8);
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/-8",
            "10.0.0.0/ 8",
            "010.0.0.0/8",
            "x/8",
            "10.0.0.0/8/8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
            assert!(TrustedProxies::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_matches_by_prefix() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.0.0")));
        assert!(net.contains(ip("10.1.255.255")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(!net.contains(ip("::1")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("203.0.113.9"))
        );
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        let host = Cidr::parse("192.168.1.7").unwrap();
        assert!(host.contains(ip("192.168.1.7")));
        assert!(!host.contains(ip("192.168.1.8")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        // A dual-stack listener reports IPv4 peers as IPv4-mapped IPv6.
        assert!(net.contains(ip("::ffff:10.1.2.3")));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_peers() {
        let proxies = TrustedProxies::from_config(&["127.0.0.1/32".into(), "10.0.0.0/8".into()]);
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1, 203.0.113.5, 10.0.0.2"),
            ("x-forwarded-proto", "https"),
        ]);
        // From a trusted proxy: the nearest untrusted hop, and the scheme it reports.
        let c = ClientInfo::judge(Some(ip("127.0.0.1")), &h, &proxies, false);
        assert_eq!(c.ip, Some(ip("203.0.113.5")));
        assert!(c.secure);
        // From anyone else: the headers are ignored.
        let c = ClientInfo::judge(Some(ip("192.0.2.1")), &h, &proxies, false);
        assert_eq!(c.ip, Some(ip("192.0.2.1")));
        assert!(!c.secure);
        // TLS on this node is secure whatever the headers say.
        let c = ClientInfo::judge(Some(ip("192.0.2.1")), &HeaderMap::new(), &proxies, true);
        assert!(c.secure);
        // A trusted proxy without the headers: the proxy is the client.
        let c = ClientInfo::judge(Some(ip("10.9.9.9")), &HeaderMap::new(), &proxies, false);
        assert_eq!(c.ip, Some(ip("10.9.9.9")));
        assert!(!c.secure);
        // Garbage in X-Forwarded-For is not believed.
        let h = headers(&[("x-forwarded-for", "not-an-ip")]);
        let c = ClientInfo::judge(Some(ip("127.0.0.1")), &h, &proxies, false);
        assert_eq!(c.ip, Some(ip("127.0.0.1")));
        // No connection info (in-process call): nothing trusted.
        let c = ClientInfo::judge(
            None,
            &headers(&[("x-forwarded-proto", "https")]),
            &proxies,
            false,
        );
        assert_eq!(
            c,
            ClientInfo {
                ip: None,
                secure: false
            }
        );
    }
}
