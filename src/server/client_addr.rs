//! Who a request comes from: the client's address (the peer's, or the one a
//! trusted reverse proxy reports in `Forwarded` / `X-Forwarded-For`) and
//! whether it reached the proxy over https, plus the key every per-address
//! limit counts against (IPv6 clients by their /64, since one host commonly
//! holds a whole /64).
//!
//! Forwarding headers are believed only from peers in `--trusted-proxy`
//! networks: from anyone else they are a client's claim and ignored.

use axum::{
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
    middleware::Next,
    response::Response,
};
use ipnet::IpNet;
use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

/// The client behind a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr {
    pub ip: IpAddr,
    /// The client used https (as far as a trusted proxy says).
    pub https: bool,
}

impl ClientAddr {
    /// The key per-address limits count against.
    pub fn key(&self) -> IpAddr {
        limit_key(self.ip)
    }
}

/// IPv4 addresses as they are; IPv6 addresses by their /64 network (IPv4
/// mapped into IPv6 as IPv4).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(network))
            }
        },
    }
}

/// The proxies whose forwarding headers are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    pub fn new(networks: &[IpNet]) -> Self {
        Self(networks.into())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|network| network.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with `headers`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddr {
        let direct = ClientAddr {
            ip: peer,
            https: false,
        };
        if !self.trusts(peer) {
            return direct;
        }
        let (chain, proto) = match forwarded(headers) {
            Some(found) => found,
            None => (x_forwarded_for(headers), x_forwarded_proto(headers)),
        };
        // The nearest hop a trusted proxy did not add is the client; every
        // address left of it could have been written by the client itself.
        let ip = chain
            .iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or(chain.first())
            .copied()
            .unwrap_or(peer);
        ClientAddr {
            ip,
            https: proto.is_some_and(|p| p.eq_ignore_ascii_case("https")),
        }
    }
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    header_values(headers, "x-forwarded-for")
        .filter_map(parse_node)
        .collect()
}

fn x_forwarded_proto(headers: &HeaderMap) -> Option<String> {
    header_values(headers, "x-forwarded-proto")
        .next()
        .map(str::to_owned)
}

/// RFC 7239 `Forwarded`: the `for=` addresses in order, and the first `proto=`.
fn forwarded(headers: &HeaderMap) -> Option<(Vec<IpAddr>, Option<String>)> {
    headers.get("forwarded")?;
    let mut chain = Vec::new();
    let mut proto = None;
    for element in header_values(headers, "forwarded") {
        for pair in element.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "for" => chain.extend(parse_node(value)),
                "proto" if proto.is_none() => proto = Some(value.to_owned()),
                _ => {}
            }
        }
    }
    Some((chain, proto))
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|inner| inner.parse().ok())
}

/// Middleware: works out each request's [`ClientAddr`] and adds it to the
/// request's extensions, where handlers take it from.
pub async fn resolve(
    State(trusted): State<TrustedProxies>,
    request: Request,
    next: Next,
) -> Response {
    let mut request = request;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let client = trusted.resolve(peer, request.headers());
    request.extensions_mut().insert(client);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_from_untrusted_peers_are_ignored() {
        let trusted = TrustedProxies::new(&[]);
        let client = trusted.resolve(
            ip("203.0.113.9"),
            &headers(&[
                ("x-forwarded-for", "1.1.1.1"),
                ("x-forwarded-proto", "https"),
            ]),
        );
        assert_eq!(
            client,
            ClientAddr {
                ip: ip("203.0.113.9"),
                https: false
            }
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_its_scheme() {
        let trusted = TrustedProxies::new(&["10.0.0.0/8".parse().unwrap()]);
        let client = trusted.resolve(
            ip("10.0.0.2"),
            &headers(&[
                // The client wrote the first address itself; 10.0.0.3 is a second proxy.
                ("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.3"),
                ("x-forwarded-proto", "https"),
            ]),
        );
        assert_eq!(
            client,
            ClientAddr {
                ip: ip("198.51.100.7"),
                https: true
            }
        );
        let rfc = trusted.resolve(
            ip("10.0.0.2"),
            &headers(&[(
                "forwarded",
                r#"for="[2001:db8::17]:4711";proto=https, for=10.0.0.3"#,
            )]),
        );
        assert_eq!(
            rfc,
            ClientAddr {
                ip: ip("2001:db8::17"),
                https: true
            }
        );
        // No header: the proxy itself is the client.
        assert_eq!(
            trusted.resolve(ip("10.0.0.2"), &HeaderMap::new()).ip,
            ip("10.0.0.2")
        );
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64_network() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            limit_key(ip("2001:db8:1:2:ffff::9")),
            limit_key(ip("2001:db8:1:2::5"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:3::1")),
            limit_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }
}
