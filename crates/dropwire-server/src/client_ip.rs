//! The client's address behind a proxy: `Forwarded` (RFC 7239) or `X-Forwarded-For`, read
//! only when the connection comes from a trusted proxy (`--trusted-proxies`). Anyone else
//! could write any address there, so from an untrusted peer the peer's own address counts.
//!
//! The list is read from the right (the entry the nearest proxy added) and every trusted
//! hop is skipped: the first address that is not a trusted proxy is the client. A list
//! that cannot be read stops the walk at the last address known for sure.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn none() -> Self {
        TrustedProxies(Vec::new())
    }

    /// `10.0.0.0/8,127.0.0.1` (a bare address is one host).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = IpNet::from_str(part)
                .or_else(|_| IpAddr::from_str(part).map(IpNet::from))
                .map_err(|_| format!("{part:?} is not an address or a CIDR block"))?;
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that reached us from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        // RFC 7239 first: a proxy that sends both means the same hops.
        let hops = forwarded_for(headers).or_else(|| x_forwarded_for(headers));
        for hop in hops.unwrap_or_default().into_iter().rev() {
            let Some(ip) = hop else { break };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 (a dual-stack socket) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Every `X-Forwarded-For` header's entries, in order; `None` for an entry that is no address.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let value = value.to_str().ok()?;
        hops.extend(value.split(',').map(|h| parse_hop(h.trim())));
    }
    (!hops.is_empty()).then_some(hops)
}

/// The `for=` parameter of every `Forwarded` element, in order.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("forwarded") {
        let value = value.to_str().ok()?;
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (key, val) = pair.trim().split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then(|| val.trim())
            });
            if let Some(node) = node {
                hops.push(parse_hop(node.trim_matches('"')));
            }
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// `203.0.113.7`, `203.0.113.7:4711`, `[2001:db8::1]:4711` or `2001:db8::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return IpAddr::from_str(rest.split(']').next()?).ok();
    }
    let (host, _port) = hop.rsplit_once(':')?;
    IpAddr::from_str(host).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(trusted.client_ip(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::none().client_ip(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.1.2.3")]);
        // 6.6.6.6 was written by the client itself: the first untrusted hop from the
        // right is the address our own proxies saw.
        assert_eq!(trusted.client_ip(ip("127.0.0.1"), &h), ip("198.51.100.4"));
        let two = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        assert_eq!(trusted.client_ip(ip("10.9.9.9"), &two), ip("198.51.100.4"));
        let all_trusted = headers(&[("x-forwarded-for", "10.0.0.2, 10.0.0.3")]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &all_trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn forwarded_wins_and_reads_ports_quotes_and_ipv6() {
        let trusted = TrustedProxies::parse("127.0.0.1/32").unwrap();
        let h = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8:cafe::17]:4711\"",
            ),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &h),
            ip("2001:db8:cafe::17")
        );
        let v4_port = headers(&[("forwarded", "For=\"192.0.2.60:80\"")]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &v4_port),
            ip("192.0.2.60")
        );
    }

    #[test]
    fn garbage_stops_at_the_last_address_known() {
        let trusted = TrustedProxies::parse("127.0.0.1").unwrap();
        let h = headers(&[("x-forwarded-for", "198.51.100.4, not-an-ip")]);
        assert_eq!(trusted.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        let obfuscated = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &obfuscated),
            ip("127.0.0.1")
        );
        assert_eq!(
            trusted.client_ip(ip("::ffff:127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn bad_blocks_are_refused_by_name() {
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/33").unwrap_err(),
            "\"10.0.0.0/33\" is not an address or a CIDR block"
        );
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }
}
