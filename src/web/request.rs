//! Facts about an incoming request: its Bearer token, whether its body is
//! JSON, and who the client is (`auth::Client`), with `TRUSTED_PROXIES`.

use std::net::IpAddr;

use actix_web::{
    HttpRequest,
    http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, USER_AGENT},
};

use crate::{
    auth::{Client, Connection},
    domain::{IpNet, canonical_ip},
};

/// `TRUSTED_PROXIES`, as app data for the layers that only need this.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

pub fn has_json_body(headers: &HeaderMap) -> bool {
    header_str(headers, CONTENT_TYPE).is_some_and(|v| {
        v.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
    })
}

/// The token from `Authorization: Bearer <token>` (scheme case-insensitive;
/// `Some("")` when the token is missing). Other schemes (a proxy's Basic
/// auth, say) are not ours and leave the request a browser request.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.as_bytes().trim_ascii();
    let scheme_len = value.iter().position(|b| *b == b' ').unwrap_or(value.len());
    if !value[..scheme_len].eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    // A token that is not even UTF-8 is still a Bearer attempt: it must fail
    // as one, not fall back to cookies.
    Some(std::str::from_utf8(&value[scheme_len..]).map_or("\u{fffd}", str::trim))
}

fn header_str(headers: &HeaderMap, name: actix_web::http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The client as the accounts see it.
pub fn client(req: &HttpRequest, trusted: &[IpNet]) -> Client {
    Client {
        ip: client_ip(req, trusted),
        user_agent: user_agent(req),
        connection: req.conn_data::<Connection>().copied(),
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in
/// which case the right-most `X-Forwarded-For` entry that is not itself a
/// trusted proxy. Untrusted peers cannot change the answer with headers.
/// IPv4-mapped IPv6 addresses are their IPv4 address throughout.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = canonical_ip(req.peer_addr()?.ip());
    if !is_trusted(peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>().map(canonical_ip) {
            Ok(ip) if is_trusted(ip) => continue,
            Ok(ip) => return Some(ip),
            Err(_) => break,
        }
    }
    Some(peer)
}

/// A short, printable user agent for the sessions list (never trusted for anything).
fn user_agent(req: &HttpRequest) -> String {
    let raw = header_str(req.headers(), USER_AGENT).unwrap_or("");
    raw.chars().filter(|c| !c.is_control()).take(256).collect()
}
