//! The auth core: who someone is and what they may do. Password hashing,
//! JWTs, refresh rotation, login throttling and `accounts`, the one boundary
//! that routes, the CLI and the web guard call.
//!
//! No actix types live here, and nothing here builds a response or a cookie:
//! callers pass plain values (`Client`, domain types, ids) and get typed
//! outcomes back. What those outcomes do to a response is decided in `web`.

pub mod accounts;
pub mod activity;
pub mod audit;
pub mod hs256;
pub mod mfa;
pub mod passkeys;
pub mod password;
pub mod refresh;
pub mod reset;
pub mod throttle;
pub mod tokens;

use std::net::IpAddr;

pub use accounts::Accounts;

use crate::domain::{Role, SessionId, UserId};

/// Who is on the other end of a request, as far as the accounts care: the
/// client IP (after `TRUSTED_PROXIES`), a printable user agent, and the
/// connection, to tell whether it is still there.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub user_agent: String,
    pub connection: Option<Connection>,
}

/// The client's TCP connection, as the operating system's socket.
///
/// actix does not drop a handler whose client disconnected, so before it
/// spends a password hash on a request, the hasher asks the socket itself:
/// a peek that reads 0 bytes means the client closed its end. The socket
/// stays open for as long as the request is in flight (its connection owns
/// it), which is as long as anyone can ask.
#[derive(Debug, Clone, Copy)]
pub struct Connection(pub i32);

impl Connection {
    /// True when the peer has closed the connection.
    pub fn gone(self) -> bool {
        #[cfg(unix)]
        {
            let mut byte = 0u8;
            // SAFETY: `byte` is a valid 1-byte buffer for the duration of the
            // call; MSG_PEEK leaves the data in the socket and MSG_DONTWAIT
            // never blocks. A descriptor that is not a socket just fails.
            let n = unsafe {
                libc::recv(
                    self.0,
                    (&mut byte as *mut u8).cast(),
                    1,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            };
            n == 0
        }
        #[cfg(not(unix))]
        {
            false
        }
    }
}

/// How a user proved who they are: the `amr` values of reference §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    Otp,
    RecoveryCode,
    Passkey,
}

impl Method {
    pub fn code(self) -> &'static str {
        match self {
            Method::Password => "pwd",
            Method::Otp => "otp",
            Method::RecoveryCode => "rec",
            Method::Passkey => "hwk",
        }
    }

    /// The `amr` column's text: the codes, space-separated.
    pub fn join(methods: &[Method]) -> String {
        methods
            .iter()
            .map(|m| m.code())
            .collect::<Vec<_>>()
            .join(" ")
    }
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
