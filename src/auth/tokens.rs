//! JWT encoding and verification (reference §4).
//!
//! Verification accepts HS256 only, allows at most 5 s of clock skew, checks
//! `nbf` when present, requires `exp`, and checks the token's `type`, so a
//! refresh token is never accepted as an access token nor the reverse. The
//! `alg` allow-list is what stops `none` and RS/ES key-confusion tokens.
//! Time comes from the injected clock. `Issuer` mints the pair for a session.

use std::{collections::HashMap, fmt, sync::Mutex};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use super::{Identity, random_id};
use crate::{
    clock::SharedClock,
    db::models::{Session, User},
    domain::{Role, SessionId, UserId},
    error::AppError,
};

pub const LEEWAY_SECONDS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

/// The claims of both token types. `sid` (an extension to the contract's
/// claims) names the session, i.e. the refresh-token family, so the account
/// page can mark the current session without a database look-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub username: String,
    pub role: Role,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sid: String,
    /// Not before (optional); checked against the clock like `exp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Refresh tokens: the session's generation this token is for. Tokens
    /// from before sessions were one row have none (their `jti` is looked
    /// up instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Access tokens: when the user last authenticated in this session
    /// (Unix seconds), and how (`pwd`, `otp`, `rec`, `hwk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
}

impl Claims {
    /// The user id in `sub`. A token with a non-numeric `sub` was not minted here.
    pub fn user_id(&self) -> Option<i32> {
        self.sub.parse().ok()
    }

    /// Who the token names (`None` for a `sub` that was not minted here).
    pub fn identity(&self) -> Option<Identity> {
        Some(Identity {
            user_id: UserId(self.user_id()?),
            username: self.username.clone(),
            role: self.role,
            session_id: SessionId(self.sid.clone()),
        })
    }
}

/// A freshly issued access and refresh token for one session.
#[derive(Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub session_id: SessionId,
}

/// The tokens themselves stay out of logs and panics.
impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("session_id", &self.session_id)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The signing key plus the token lifetimes: everything issuing needs, built
/// once at start-up.
pub struct Issuer {
    keys: TokenKeys,
    access_ttl: i64,
    refresh_ttl: i64,
    max_lifetime: i64,
}

impl Issuer {
    pub fn new(keys: TokenKeys, access_ttl: i64, refresh_ttl: i64) -> Self {
        Self {
            keys,
            access_ttl,
            refresh_ttl,
            max_lifetime: i64::MAX / 4,
        }
    }

    /// Sessions end `seconds` after their login, however often they are
    /// refreshed (`SESSION_MAX_LIFETIME`).
    pub fn with_max_lifetime(self, seconds: i64) -> Self {
        Self {
            max_lifetime: seconds,
            ..self
        }
    }

    pub fn max_lifetime(&self) -> i64 {
        self.max_lifetime
    }

    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    pub fn now(&self) -> i64 {
        self.keys.clock.now()
    }

    fn claims(&self, user: &User, token_type: TokenType, jti: String, sid: &str) -> Claims {
        Claims {
            sub: user.id.to_string(),
            username: user.username.clone(),
            role: user.role,
            token_type,
            iat: 0,
            exp: 0,
            jti,
            sid: sid.to_owned(),
            nbf: None,
            generation: None,
            auth_time: None,
            amr: None,
        }
    }

    pub fn refresh_ttl(&self) -> i64 {
        self.refresh_ttl
    }

    /// A new access token plus the refresh token of the session's current
    /// generation.
    pub(crate) fn pair(
        &self,
        user: &User,
        session: &Session,
        now: i64,
    ) -> Result<TokenPair, AppError> {
        let access = Claims {
            iat: now,
            exp: now + self.access_ttl,
            auth_time: Some(session.auth_time),
            amr: Some(session.amr.split_whitespace().map(str::to_owned).collect()),
            ..self.claims(user, TokenType::Access, random_id(), &session.id)
        };
        // Everything in the refresh token comes from the row, so signing the
        // same generation again yields the same token (two tabs that raced
        // get one token, not two).
        let refresh = Claims {
            iat: session.rotated_at,
            exp: session.expires_at,
            generation: Some(session.generation),
            ..self.claims(
                user,
                TokenType::Refresh,
                format!("{}.{}", session.id, session.generation),
                &session.id,
            )
        };
        Ok(TokenPair {
            access_token: self.keys.encode(&access).map_err(AppError::internal)?,
            refresh_token: self.keys.encode(&refresh).map_err(AppError::internal)?,
            expires_in: self.access_ttl,
            session_id: SessionId(session.id.clone()),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is invalid")]
    Invalid,
    #[error("wrong token type")]
    WrongType,
}

/// How many verified access tokens are remembered (about 0.5 kB each).
const VERIFIED_CAPACITY: usize = 4096;

/// The HMAC key in both forms plus the validation rules, built once.
pub struct TokenKeys {
    /// The current key: the only one that signs; its id goes in `kid`.
    kid: String,
    encoding: EncodingKey,
    /// Every key that verifies, by id: the current one first, then
    /// `JWT_PREVIOUS_KEYS` (reference §4: key rotation).
    decoding: Vec<(String, DecodingKey)>,
    validation: Validation,
    clock: SharedClock,
    /// Access tokens that passed full verification with this key, by their
    /// exact text. A browser or API client presents the same access token on
    /// every request until it expires; remembering the verdict spares the
    /// HMAC and the JSON parsing on each of them. A hit still checks `exp`
    /// with the same leeway. Bounded: emptied when full.
    verified: Mutex<HashMap<String, Claims>>,
}

/// The `kid` of a key: an opaque id derived from it (the first 8 bytes of
/// HMAC-SHA256 under the key of a fixed label, in hex), which names the key
/// without revealing it.
pub fn key_id(secret: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return String::new(); // HMAC takes any key length
    };
    mac.update(b"portcullis key id");
    hex::encode(&mac.finalize().into_bytes()[..8])
}

impl TokenKeys {
    pub fn new(secret: &[u8], clock: SharedClock) -> Result<Self, jsonwebtoken::errors::Error> {
        Self::with_previous(secret, &[], clock)
    }

    /// The current key plus earlier ones that still verify (never sign).
    pub fn with_previous(
        secret: &[u8],
        previous: &[&[u8]],
        clock: SharedClock,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        super::hs256::install();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECONDS;
        // `exp` and `nbf` are checked against the injected clock below, not
        // jsonwebtoken's system time; `exp` must still be present.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let mut decoding = vec![(key_id(secret), DecodingKey::from_secret(secret)?)];
        for old in previous {
            let id = key_id(old);
            if decoding.iter().all(|(known, _)| *known != id) {
                decoding.push((id, DecodingKey::from_secret(old)?));
            }
        }
        Ok(Self {
            kid: key_id(secret),
            encoding: EncodingKey::from_secret(secret)?,
            decoding,
            validation,
            clock,
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn encode(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let header = Header {
            kid: Some(self.kid.clone()),
            ..Header::new(Algorithm::HS256)
        };
        encode(&header, claims, &self.encoding)
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key a token's header names: its `kid` among the known keys, or,
    /// for a token without one (issued before tokens carried `kid`), the
    /// current key. An unknown `kid` names none.
    fn key_for(&self, token: &str) -> Option<&DecodingKey> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        match header.kid {
            None => self.decoding.first().map(|(_, key)| key),
            Some(kid) => self
                .decoding
                .iter()
                .find(|(known, _)| *known == kid)
                .map(|(_, key)| key),
        }
    }

    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        if expected == TokenType::Access
            && let Some(verdict) = self.recall(token)
        {
            return verdict;
        }
        let claims = self.verify_fully(token, expected)?;
        if expected == TokenType::Access {
            self.remember(token, &claims);
        }
        Ok(claims)
    }

    fn recall(&self, token: &str) -> Option<Result<Claims, TokenError>> {
        let verified = self.verified.lock().ok()?;
        let claims = verified.get(token)?;
        // The same rule as jsonwebtoken's: expired once `exp` is more than
        // the leeway in the past.
        if claims.exp < self.clock.now() - LEEWAY_SECONDS as i64 {
            return Some(Err(TokenError::Expired));
        }
        Some(Ok(claims.clone()))
    }

    fn remember(&self, token: &str, claims: &Claims) {
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
            verified.insert(token.to_owned(), claims.clone());
        }
    }

    fn verify_fully(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        let key = self.key_for(token).ok_or(TokenError::Invalid)?;
        let data = decode::<Claims>(token, key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        let claims = data.claims;
        let now = self.clock.now();
        let leeway = LEEWAY_SECONDS as i64;
        if claims.exp < now - leeway {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(TokenError::Invalid);
        }
        if claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        if claims.user_id().is_none() {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn clock() -> SharedClock {
        std::sync::Arc::new(crate::clock::SystemClock)
    }

    fn claims(token_type: TokenType, exp_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: "7".into(),
            username: "alice".into(),
            role: Role::User,
            token_type,
            iat: now,
            exp: now + exp_offset,
            jti: "j1".into(),
            sid: "s1".into(),
            nbf: None,
            generation: None,
            auth_time: None,
            amr: None,
        }
    }

    #[test]
    fn round_trips_and_checks_the_type() {
        let keys = TokenKeys::new(KEY, clock()).unwrap();
        let access = keys.encode(&claims(TokenType::Access, 60)).unwrap();
        assert_eq!(
            keys.verify(&access, TokenType::Access).unwrap().user_id(),
            Some(7)
        );
        assert_eq!(
            keys.verify(&access, TokenType::Refresh),
            Err(TokenError::WrongType)
        );
        let refresh = keys.encode(&claims(TokenType::Refresh, 60)).unwrap();
        assert_eq!(
            keys.verify(&refresh, TokenType::Access),
            Err(TokenError::WrongType)
        );
    }

    #[test]
    fn refuses_another_key_and_expired_tokens() {
        let keys = TokenKeys::new(KEY, clock()).unwrap();
        let other = TokenKeys::new(b"another-key-another-key-another!!", clock()).unwrap();
        let token = other.encode(&claims(TokenType::Access, 60)).unwrap();
        assert_eq!(
            keys.verify(&token, TokenType::Access),
            Err(TokenError::Invalid)
        );
        let expired = keys.encode(&claims(TokenType::Access, -30)).unwrap();
        assert_eq!(
            keys.verify(&expired, TokenType::Access),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn allows_only_a_few_seconds_of_leeway() {
        let keys = TokenKeys::new(KEY, clock()).unwrap();
        let just_expired = keys.encode(&claims(TokenType::Access, -2)).unwrap();
        assert!(keys.verify(&just_expired, TokenType::Access).is_ok());
        let past_leeway = keys.encode(&claims(TokenType::Access, -7)).unwrap();
        assert!(keys.verify(&past_leeway, TokenType::Access).is_err());
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let keys = TokenKeys::new(KEY, clock()).unwrap();
        let token = keys.encode(&claims(TokenType::Access, 60)).unwrap();
        assert!(keys.verify(&token, TokenType::Access).is_ok());
        // Pretend time has passed: the remembered claims are now long expired.
        keys.remember(&token, &claims(TokenType::Access, -60));
        assert_eq!(
            keys.verify(&token, TokenType::Access),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn only_the_exact_verified_text_is_remembered() {
        let keys = TokenKeys::new(KEY, clock()).unwrap();
        let token = keys.encode(&claims(TokenType::Access, 60)).unwrap();
        assert!(keys.verify(&token, TokenType::Access).is_ok());
        let (head, sig) = token.rsplit_once('.').unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        let tampered = format!("{head}.{flipped}{}", &sig[1..]);
        assert_eq!(
            keys.verify(&tampered, TokenType::Access),
            Err(TokenError::Invalid)
        );
        // A remembered access token is still not a refresh token.
        assert_eq!(
            keys.verify(&token, TokenType::Refresh),
            Err(TokenError::WrongType)
        );
    }

    #[test]
    fn the_memory_is_bounded() {
        let keys = TokenKeys::new(KEY, clock()).unwrap();
        for i in 0..(VERIFIED_CAPACITY + 10) {
            let mut c = claims(TokenType::Access, 60);
            c.jti = i.to_string();
            keys.verify(&keys.encode(&c).unwrap(), TokenType::Access)
                .unwrap();
        }
        assert!(keys.verified.lock().unwrap().len() <= VERIFIED_CAPACITY);
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        let keys = TokenKeys::new(KEY, clock()).unwrap();
        for junk in [
            "",
            ".",
            "..",
            "a.b.c",
            "eyJhbGciOiJub25lIn0.e30.",
            "\u{0}.\u{0}.\u{0}",
        ] {
            assert!(keys.verify(junk, TokenType::Access).is_err(), "{junk:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn verifying_arbitrary_input_never_panics(raw in "\\PC*") {
            let keys = TokenKeys::new(KEY, clock()).unwrap();
            proptest::prop_assert!(keys.verify(&raw, TokenType::Access).is_err());
        }

        #[test]
        fn verifying_arbitrary_three_part_tokens_never_panics(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,60}") {
            let keys = TokenKeys::new(KEY, clock()).unwrap();
            let _ = keys.verify(&format!("{a}.{b}.{c}"), TokenType::Refresh);
        }

        #[test]
        fn any_claims_round_trip(sub in 1i32..i32::MAX, username in "[a-z]{3,12}", jti in "[0-9a-f]{32}", admin: bool) {
            let keys = TokenKeys::new(KEY, clock()).unwrap();
            let mut c = claims(TokenType::Access, 60);
            c.sub = sub.to_string();
            c.username = username;
            c.jti = jti;
            c.role = if admin { Role::Admin } else { Role::User };
            let token = keys.encode(&c).unwrap();
            proptest::prop_assert_eq!(keys.verify(&token, TokenType::Access).unwrap(), c);
        }
    }
}
