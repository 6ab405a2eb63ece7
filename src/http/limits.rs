//! Who the client is, and its traffic limit.
//!
//! The client is the socket's peer, unless that peer is one of `USERGRAPH_TRUSTED_PROXIES`:
//! then the forwarding chain (`Forwarded`, else `X-Forwarded-For`) is read from the right,
//! past every trusted proxy, and the first address no trusted proxy vouches for is the
//! client. Whatever a client writes into those headers itself sits to the left of that and
//! is never read.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use super::HttpState;
use crate::config::TrustedProxies;
use crate::error::AppError;
use crate::ratelimit::Refusal;
use crate::services::Services;

/// The client's address, as resolved for the request (an extension every handler can read).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Resolves the client's address and takes one cell of its traffic bucket; answers 429 when
/// it is empty. Health and readiness probes are not counted (load balancers call them).
pub async fn admit(State(state): State<HttpState>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let config = state.services.config();
    let addr = resolve(request.headers(), peer, &config.trusted_proxies);
    request.extensions_mut().insert(ClientAddr(addr));
    if matches!(request.uri().path(), "/health" | "/ready" | "/metrics") {
        return next.run(request).await;
    }
    if let Err(refusal) = state.services.limit_traffic(addr, 1).await {
        return too_many_requests(&state.services, refusal, request.headers());
    }
    next.run(request).await
}

/// The address of the client behind `peer`.
pub fn resolve(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let chain = forwarded_for(headers);
    let mut client = peer;
    for hop in chain.iter().rev() {
        // A hop that is no address (`unknown`, an obfuscated name) ends what can be known.
        let Some(hop) = parse_hop(hop) else {
            break;
        };
        client = hop;
        if !trusted.contains(hop) {
            break;
        }
    }
    Some(client)
}

/// The forwarding chain, oldest first: the `for=` of every `Forwarded` element when the
/// header is there, else the entries of `X-Forwarded-For`.
fn forwarded_for(headers: &HeaderMap) -> Vec<String> {
    let values = |name| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let forwarded = values(header::FORWARDED);
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| value.trim().to_owned())
                })
            })
            .collect();
    }
    values(HeaderName::from_static("x-forwarded-for"))
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `"[2001:db8::1]:4711"`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (host, _port) = hop.rsplit_once(':')?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The headers of a refusal by `limit`: `Retry-After`, and the IETF `RateLimit-Policy` and
/// `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers) for the limit that refused.
pub fn refusal_headers(
    services: &Services,
    limit: &str,
    retry_after: u64,
    headers: &mut HeaderMap,
) {
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    let Some(rate) = services.rate_limit(limit) else {
        return;
    };
    let policy = format!(
        "\"{limit}\";q={};w={}",
        rate.count,
        rate.period.as_secs().max(1)
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(RATELIMIT_POLICY, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("\"{limit}\";r=0;t={retry_after}")) {
        headers.insert(RATELIMIT, value);
    }
}

/// 429 with a GraphQL error body (`RATE_LIMITED`, `retryAfter`, `limit`) in the media type
/// the client accepts.
pub fn too_many_requests(services: &Services, refusal: Refusal, request: &HeaderMap) -> Response {
    let Refusal { limit, retry_after } = refusal;
    metrics::counter!(crate::instruments::RATE_LIMITED, "limit" => limit).increment(1);
    metrics::counter!(crate::instruments::ERRORS, "code" => "RATE_LIMITED").increment(1);
    let error = AppError::RateLimited { retry_after, limit };
    let body = json!({ "errors": [{
        "message": error.to_string(),
        "extensions": { "code": error.code().as_str(), "retryAfter": retry_after, "limit": limit },
    }]});
    let graphql_response = request
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/graphql-response+json"));
    let content_type = if graphql_response {
        "application/graphql-response+json; charset=utf-8"
    } else {
        "application/json"
    };
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    refusal_headers(services, limit, retry_after, headers);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let trusted = TrustedProxies(vec!["10.0.0.0/8".parse().unwrap()]);
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        // Straight from a client: its own header is ignored.
        assert_eq!(
            resolve(&spoofed, Some(ip("198.51.100.7")), &trusted),
            Some(ip("198.51.100.7"))
        );
        // Through two trusted proxies: the first untrusted hop from the right.
        let chained = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            resolve(&chained, Some(ip("10.0.0.1")), &trusted),
            Some(ip("198.51.100.7"))
        );
        // Split over several header lines, in order.
        let split = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.8"),
        ]);
        assert_eq!(
            resolve(&split, Some(ip("10.0.0.1")), &trusted),
            Some(ip("198.51.100.8"))
        );
        // A trusted proxy that forwarded nothing is the client.
        assert_eq!(
            resolve(&HeaderMap::new(), Some(ip("10.0.0.1")), &trusted),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(resolve(&HeaderMap::new(), None, &trusted), None);
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_takes_its_forms() {
        let trusted = TrustedProxies(vec!["10.0.0.0/8".parse().unwrap()]);
        let both = headers(&[
            (
                "forwarded",
                "for=198.51.100.1;proto=https, for=\"[2001:db8:cafe::17]:4711\"",
            ),
            ("x-forwarded-for", "203.0.113.50"),
        ]);
        assert_eq!(
            resolve(&both, Some(ip("10.1.1.1")), &trusted),
            Some(ip("2001:db8:cafe::17"))
        );
        let with_port = headers(&[("forwarded", "For=\"192.0.2.43:47011\"")]);
        assert_eq!(
            resolve(&with_port, Some(ip("10.1.1.1")), &trusted),
            Some(ip("192.0.2.43"))
        );
        let hidden = headers(&[("forwarded", "for=198.51.100.1, for=_hidden")]);
        assert_eq!(
            resolve(&hidden, Some(ip("10.1.1.1")), &trusted),
            Some(ip("10.1.1.1")),
            "an obfuscated hop ends the chain at the proxy that wrote it"
        );
    }
}
