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
    /// in which case the right-most address in the header that is not itself a trusted proxy.
    #[must_use]
    pub fn client_ip(&self, request: &HttpRequest) -> Option<IpAddr> {
        let peer = request.peer_addr().map(|a| a.ip());
        let (Some(header), Some(peer_ip)) = (&self.header, peer) else {
            return peer;
        };
        if !self.trusted_proxies.contains(&peer_ip) {
            return peer;
        }
        let forwarded = request
            .headers()
            .get(header.as_str())
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        forwarded
            .split(',')
            .rev()
            .filter_map(|part| part.trim().parse::<IpAddr>().ok())
            .find(|ip| !self.trusted_proxies.contains(ip))
            .or(peer)
    }
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
