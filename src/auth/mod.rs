//! The auth core: who someone is and what they may do. Password hashing,
//! JWTs, refresh rotation, login throttling and `accounts`, the one boundary
//! that routes, the CLI and the web guard call.
//!
//! No actix types live here, and nothing here builds a response or a cookie:
//! callers pass plain values (`Client`, domain types, ids) and get typed
//! outcomes back. What those outcomes do to a response is decided in `web`.

pub mod accounts;
pub mod password;
pub mod refresh;
pub mod throttle;
pub mod tokens;

use std::net::IpAddr;

pub use accounts::Accounts;

use crate::domain::{Role, SessionId, UserId};

/// Who is on the other end of a request, as far as the accounts care: the
/// client IP (after `TRUSTED_PROXIES`) and a printable user agent.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub user_agent: String,
}

/// The authenticated user, as a verified access token describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: UserId,
    pub username: String,
    pub role: Role,
    /// The session (refresh-token family) the token was issued for.
    pub session_id: SessionId,
}

/// A random value for token ids, family ids and CSRF tokens: 128 bits, hex.
pub fn random_id() -> String {
    use rand::RngExt;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}
