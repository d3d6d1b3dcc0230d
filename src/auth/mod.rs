//! Everything that touches a secret: password hashing, JWTs, the token
//! cookies, CSRF, the guard and the session (refresh-token) lifecycle.
//! Handlers ask this module questions; they never call bcrypt or
//! jsonwebtoken themselves.

pub mod accounts;
pub mod cookies;
pub mod csrf;
pub mod guard;
pub mod password;
pub mod sessions;
pub mod throttle;
pub mod tokens;

/// A random value for token ids, family ids and CSRF tokens: 128 bits, hex.
pub fn random_id() -> String {
    use rand::RngExt;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}
