//! Who is calling: the client IP (from the peer, or from a trusted proxy's header) and the
//! user agent.

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use auth_core::model::ClientInfo;

/// How to find the client address behind a reverse proxy.
#[derive(Clone, Debug, Default)]
pub struct ClientIpPolicy {
    /// Header carrying the client address (e.g. `X-Forwarded-For`), if any.
    pub header: Option<String>,
    /// Peers whose header is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

impl ClientIpPolicy {
    /// The client address: the peer, unless the peer is a trusted proxy that sent the header,
    /// in which case the right-most address across every line of the header that is not
    /// itself a trusted proxy. Entries may carry a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
    /// An entry that does not parse ends the walk at the last trusted hop: what lies to its
    /// left was written by someone we cannot vouch for, so it never becomes the key.
    #[must_use]
    pub fn client_ip(&self, request: &HttpRequest) -> Option<IpAddr> {
        let peer = request.peer_addr().map(|a| a.ip());
        let (Some(header), Some(mut client)) = (&self.header, peer) else {
            return peer;
        };
        if !self.is_trusted(client) {
            return peer;
        }
        let lines: Vec<&str> = request
            .headers()
            .get_all(header.as_str())
            .filter_map(|v| v.to_str().ok())
            .collect();
        for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
            let Some(hop) = parse_forwarded_entry(entry) else {
                break;
            };
            client = hop;
            if !self.is_trusted(hop) {
                break;
            }
        }
        Some(client)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.contains(&ip.to_canonical())
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port, v6 optionally bracketed.
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(socket.ip().to_canonical());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

/// Extracts the caller's [`ClientInfo`].
pub struct Client(pub ClientInfo);

impl FromRequest for Client {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let policy = request.app_data::<web::Data<ClientIpPolicy>>();
        let ip = policy.map_or_else(
            || request.peer_addr().map(|a| a.ip()),
            |p| p.client_ip(request),
        );
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        ready(Ok(Self(ClientInfo {
            user_agent,
            ip_address: ip.map(|ip| ip.to_string()),
        })))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn policy() -> ClientIpPolicy {
        ClientIpPolicy {
            header: Some("x-forwarded-for".into()),
            trusted_proxies: vec!["127.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))],
        }
    }

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    fn via_proxy(lines: &[&str]) -> HttpRequest {
        let mut request = TestRequest::default()
            .peer_addr("127.0.0.1:9000".parse().unwrap_or_else(|e| panic!("{e}")));
        for line in lines {
            request = request.append_header(("X-Forwarded-For", *line));
        }
        request.to_http_request()
    }

    #[test]
    fn every_header_line_is_read_and_the_right_most_untrusted_entry_wins() {
        let request = via_proxy(&["198.51.100.1", "203.0.113.9, 127.0.0.1"]);
        assert_eq!(policy().client_ip(&request), ip("203.0.113.9"));
    }

    #[test]
    fn entries_with_ports_are_understood_so_a_client_cannot_pick_its_key() {
        // The client forges the first entry; the proxy appends the real address with a port.
        for (appended, expected) in [
            ("203.0.113.9:51234", "203.0.113.9"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"),
        ] {
            let request = via_proxy(&["6.6.6.6", appended]);
            assert_eq!(policy().client_ip(&request), ip(expected), "{appended}");
        }
    }

    #[test]
    fn an_unparsable_entry_stops_the_walk_instead_of_being_skipped() {
        let request = via_proxy(&["6.6.6.6, garbage"]);
        assert_eq!(
            policy().client_ip(&request),
            ip("127.0.0.1"),
            "nothing left of an entry we cannot read is believed"
        );
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_proxy() {
        let via_proxy = TestRequest::default()
            .peer_addr("127.0.0.1:9000".parse().unwrap_or_else(|e| panic!("{e}")))
            .insert_header(("X-Forwarded-For", "198.51.100.1, 203.0.113.9"))
            .to_http_request();
        assert_eq!(policy().client_ip(&via_proxy), "203.0.113.9".parse().ok());
        let direct = TestRequest::default()
            .peer_addr("192.0.2.5:9000".parse().unwrap_or_else(|e| panic!("{e}")))
            .insert_header(("X-Forwarded-For", "198.51.100.1"))
            .to_http_request();
        assert_eq!(
            policy().client_ip(&direct),
            "192.0.2.5".parse().ok(),
            "a spoofed header from a stranger is ignored"
        );
    }
}
