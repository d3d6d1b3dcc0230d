//! The second factor (reference §8): TOTP (RFC 6238: SHA-1, 6 digits, 30 s
//! steps, one step of drift either way), recovery codes, the second step of
//! a login, and re-authentication with a password.
//!
//! "Once" is the database's job: an accepted TOTP step is recorded with a
//! conditional `UPDATE … WHERE last_step < step`, a recovery code and a
//! login challenge are used with `… WHERE used_at IS NULL`, so of two
//! requests with the same code exactly one succeeds, on any instance.
//! Wrong codes count as failed logins of the user (`throttle`).

use std::fmt;

use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret};

use super::{
    Client, Identity, Method,
    accounts::{Accounts, Login},
    audit::{Event, Note},
    random_id,
    throttle::Refusal,
    tokens::TokenPair,
};
use crate::{
    db::{DbConn, models::User, second_factor as sf, users},
    error::AppError,
};

/// The issuer authenticator apps show next to the account name.
pub const TOTP_ISSUER: &str = "Portcullis";
/// Seconds a login's second step may take (`mfa_token`).
pub const CHALLENGE_TTL: i64 = 300;
/// The one answer for a wrong, reused or malformed code.
pub const CODE_WRONG: &str = "That code is not valid. Please try again.";
/// An `mfa_token` that is unknown, used or older than `CHALLENGE_TTL`.
pub const MFA_EXPIRED: &str = "This login has expired. Please log in again.";
/// How many recovery codes a set has.
pub const RECOVERY_CODES: usize = 10;
/// Random bytes of a TOTP secret (160 bits, RFC 4226's recommendation).
const SECRET_BYTES: usize = 20;

/// A pending enrolment, as the account page shows it.
#[derive(Clone)]
pub struct Enrolment {
    /// Base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://` URI, for the QR code.
    pub uri: String,
}

impl fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Enrolment(<redacted>)")
    }
}

/// Where a user's TOTP stands.
#[derive(Debug, Clone)]
pub enum TotpState {
    Off,
    /// Waiting for the first valid code.
    Pending(Enrolment),
    On {
        recovery_codes_left: i64,
    },
}

/// A new set of recovery codes, shown once; only their hashes are kept.
pub struct RecoveryCodes(pub Vec<String>);

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes(<{} redacted>)", self.0.len())
    }
}

/// Why a code was not accepted.
#[derive(Debug)]
pub enum CodeRefused {
    /// Wrong, reused or malformed: one answer for all.
    Wrong,
    /// Too many failed attempts for this user from this client.
    Locked(Refusal),
    /// No enrolment is waiting (or TOTP is on already).
    NotPending,
}

/// The outcome of the second step of a login.
#[derive(Debug)]
pub enum SecondStep {
    /// The login is complete: open a session with these methods.
    Success {
        user: User,
        methods: Vec<Method>,
    },
    Wrong,
    Locked(Refusal),
    /// Unknown, used or expired `mfa_token`: log in again.
    Expired,
}

/// The outcome of a re-authentication.
#[derive(Debug)]
pub enum Reauth {
    /// The session's tokens, issued anew with the new `auth_time`.
    Done(TokenPair),
    WrongPassword,
    /// The password was right; the second factor is on and its code was
    /// missing or wrong.
    WrongCode,
    Locked(Refusal),
    SessionEnded,
}

fn totp(secret: &str, username: &str) -> Result<totp_rs::Totp, AppError> {
    let bytes = Secret::try_from_base32(secret)
        .map_err(|_| AppError::internal(anyhow::anyhow!("a stored TOTP secret is not base32")))?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(bytes)
        .with_account_name(username)
        .with_issuer(Some(TOTP_ISSUER))
        .build()
        .map_err(|e| AppError::internal(anyhow::anyhow!("TOTP: {e}")))
}

fn enrolment(secret: String, username: &str) -> Result<Enrolment, AppError> {
    let uri = totp(&secret, username)?
        .to_url()
        .map_err(|e| AppError::internal(anyhow::anyhow!("TOTP URI: {e}")))?;
    Ok(Enrolment { secret, uri })
}

/// The TOTP step `code` matches at `now`, if any (the code as typed:
/// spaces allowed, exactly 6 digits).
fn matching_step(
    secret: &str,
    username: &str,
    code: &str,
    now: i64,
) -> Result<Option<i64>, AppError> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let now = u64::try_from(now).unwrap_or(0);
    Ok(totp(secret, username)?
        .check(&digits, now)
        .and_then(|step| i64::try_from(step).ok()))
}

/// A recovery code as stored: SHA-256 of its normalised form (no dashes or
/// spaces, lower case). The codes carry 80 random bits, so a fast hash is
/// enough: there is nothing to guess from it.
fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

fn challenge_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Ten codes of 16 base32 characters (80 bits), shown as `abcd-efgh-…`.
fn new_recovery_codes() -> RecoveryCodes {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    let codes = (0..RECOVERY_CODES)
        .map(|_| {
            let chars: Vec<char> = (0..16)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect();
    RecoveryCodes(codes)
}

fn new_secret() -> String {
    use rand::RngExt;
    let bytes: [u8; SECRET_BYTES] = rand::rng().random();
    Secret::from(bytes.to_vec()).to_base32()
}

/// Checks a second-factor code (TOTP or recovery) of a user with TOTP on,
/// and uses it: `Some(method)` once per code.
fn use_code(
    conn: &mut DbConn,
    user: &User,
    code: &str,
    now: i64,
) -> Result<Option<Method>, AppError> {
    let Some(stored) = sf::totp(conn, user.id)?.filter(|t| t.enabled_at.is_some()) else {
        return Ok(None);
    };
    if let Some(step) = matching_step(&stored.secret, &user.username, code, now)? {
        return Ok(sf::accept_step(conn, user.id, step)?.then_some(Method::Otp));
    }
    let used = sf::use_recovery_code(conn, user.id, &recovery_hash(code), now)?;
    if used {
        let left = sf::recovery_codes_left(conn, user.id)?;
        tracing::info!(user_id = user.id, left, "recovery code used");
    }
    Ok(used.then_some(Method::RecoveryCode))
}

impl Accounts {
    /// Whether the user must give a second factor after the password.
    pub(super) async fn second_factor_on(&self, user_id: i32) -> Result<bool, AppError> {
        self.db
            .read(move |conn| Ok(sf::totp_enabled(conn, user_id)?))
            .await
    }

    /// A correct password for a user with TOTP on: the second step's token
    /// (single use, `CHALLENGE_TTL` seconds, this user only).
    pub(super) async fn begin_second_step(&self, user: User) -> Result<Login, AppError> {
        let token = random_id();
        let (hash, user_id, now) = (challenge_hash(&token), user.id, self.now());
        self.db
            .write(move |conn| {
                Ok(sf::create_challenge(
                    conn,
                    &hash,
                    user_id,
                    now,
                    now + CHALLENGE_TTL,
                )?)
            })
            .await?;
        tracing::info!(user_id, "password accepted; second factor required");
        Ok(Login::SecondFactor {
            user,
            mfa_token: token,
        })
    }

    /// The second step of a login: a TOTP or recovery code for the user the
    /// `mfa_token` was made for. A wrong code counts as a failed login.
    pub async fn complete_second_step(
        &self,
        client: &Client,
        mfa_token: &str,
        code: &str,
    ) -> Result<SecondStep, AppError> {
        let (hash, now) = (challenge_hash(mfa_token), self.now());
        let user = {
            let hash = hash.clone();
            self.db
                .read(move |conn| {
                    let Some(user_id) = sf::challenge_user(conn, &hash, now)? else {
                        return Ok(None);
                    };
                    Ok(users::find(conn, user_id)?)
                })
                .await?
        };
        let Some(user) = user.filter(|u| !u.disabled) else {
            return Ok(SecondStep::Expired);
        };
        let reserved = match self
            .throttle
            .reserve_login(client_ip(client), &user.username)
            .await?
        {
            Ok(reserved) => reserved,
            Err(refusal) => {
                tracing::warn!(
                    user_id = user.id,
                    "second factor refused: too many failures"
                );
                return Ok(SecondStep::Locked(refusal));
            }
        };
        let code = code.to_owned();
        let used_recovery = Note::new(Event::RecoveryCodeUsed, now)
            .from(client)
            .user(user.id, &user.username);
        let checked = {
            let user = user.clone();
            self.db
                .write(move |conn| {
                    let Some(method) = use_code(conn, &user, &code, now)? else {
                        return Ok(Some(None));
                    };
                    if method == Method::RecoveryCode {
                        used_recovery.write(conn)?;
                    }
                    // The challenge goes with the code, in one transaction.
                    if !sf::use_challenge(conn, &hash, now)? {
                        return Ok(None);
                    }
                    Ok(Some(Some(method)))
                })
                .await?
        };
        match checked {
            None => {
                // A concurrent request completed this login first (with
                // another valid code): this one is spent.
                reserved.deferred().await;
                Ok(SecondStep::Expired)
            }
            Some(None) => {
                reserved.failed();
                self.note_detached(
                    Note::new(Event::MfaFailed, now)
                        .from(client)
                        .target(user.id, &user.username),
                );
                tracing::info!(user_id = user.id, client_ip = %client_ip(client), "second factor failed");
                metrics::counter!("portcullis_logins_total", "outcome" => "mfa_failed")
                    .increment(1);
                Ok(SecondStep::Wrong)
            }
            Some(Some(method)) => {
                reserved.succeeded().await;
                tracing::info!(
                    user_id = user.id,
                    method = method.code(),
                    "login completed with a second factor"
                );
                metrics::counter!("portcullis_logins_total", "outcome" => "success").increment(1);
                Ok(SecondStep::Success {
                    user,
                    methods: vec![Method::Password, method],
                })
            }
        }
    }

    /// Where the user's TOTP stands (pending enrolments included).
    pub async fn totp_state(&self, user_id: i32, username: &str) -> Result<TotpState, AppError> {
        let (stored, left) = self
            .db
            .read(move |conn| {
                let stored = sf::totp(conn, user_id)?;
                let left = sf::recovery_codes_left(conn, user_id)?;
                Ok((stored, left))
            })
            .await?;
        Ok(match stored {
            None => TotpState::Off,
            Some(t) if t.enabled_at.is_some() => TotpState::On {
                recovery_codes_left: left,
            },
            Some(t) => TotpState::Pending(enrolment(t.secret, username)?),
        })
    }

    /// Starts an enrolment with a new secret; `None` when TOTP is on already.
    pub async fn start_totp(&self, user: &User) -> Result<Option<Enrolment>, AppError> {
        let (secret, user_id, now) = (new_secret(), user.id, self.now());
        let stored = secret.clone();
        let started = self
            .db
            .write(move |conn| Ok(sf::start_enrolment(conn, user_id, &stored, now)?))
            .await?;
        if !started {
            return Ok(None);
        }
        tracing::info!(user_id, "TOTP enrolment started");
        enrolment(secret, &user.username).map(Some)
    }

    /// Turns TOTP on with the first valid code of the pending secret, and
    /// returns the first set of recovery codes. A wrong code counts as a
    /// failed login.
    pub async fn confirm_totp(
        &self,
        client: &Client,
        user: &User,
        code: &str,
    ) -> Result<Result<RecoveryCodes, CodeRefused>, AppError> {
        let user_id = user.id;
        let Some(pending) = self
            .db
            .read(move |conn| Ok(sf::totp(conn, user_id)?))
            .await?
            .filter(|t| t.enabled_at.is_none())
        else {
            return Ok(Err(CodeRefused::NotPending));
        };
        let reserved = match self
            .throttle
            .reserve_login(client_ip(client), &user.username)
            .await?
        {
            Ok(reserved) => reserved,
            Err(refusal) => return Ok(Err(CodeRefused::Locked(refusal))),
        };
        let now = self.now();
        let Some(step) = matching_step(&pending.secret, &user.username, code, now)? else {
            reserved.failed();
            return Ok(Err(CodeRefused::Wrong));
        };
        let codes = new_recovery_codes();
        let hashes: Vec<String> = codes.0.iter().map(|c| recovery_hash(c)).collect();
        let secret = pending.secret;
        let note = Note::new(Event::TotpEnabled, now)
            .from(client)
            .user(user_id, &user.username);
        let enabled = self
            .db
            .write(move |conn| {
                // The secret confirmed must still be the pending one.
                let current = sf::totp(conn, user_id)?;
                if current.is_none_or(|t| t.secret != secret) {
                    return Ok(false);
                }
                if !sf::enable(conn, user_id, step, now)? {
                    return Ok(false);
                }
                sf::replace_recovery_codes(conn, user_id, &hashes, now)?;
                note.write(conn)?;
                Ok(true)
            })
            .await?;
        if !enabled {
            reserved.deferred().await;
            return Ok(Err(CodeRefused::NotPending));
        }
        reserved.succeeded().await;
        tracing::info!(user_id, "TOTP turned on");
        Ok(Ok(codes))
    }

    /// Turns the user's own TOTP off (the web layer requires a recent
    /// authentication); `false` when it was off.
    pub async fn disable_totp(&self, client: &Client, who: &Identity) -> Result<bool, AppError> {
        let user_id = who.user_id.0;
        let note = Note::new(Event::TotpDisabled, self.now())
            .from(client)
            .by(who)
            .target(user_id, &who.username);
        let removed = self
            .db
            .write(move |conn| {
                let removed = sf::remove_totp(conn, user_id)?;
                if removed {
                    note.write(conn)?;
                }
                Ok(removed)
            })
            .await?;
        if removed {
            tracing::info!(user_id, "TOTP turned off by the user");
        }
        Ok(removed)
    }

    /// A new set of recovery codes, retiring the old; `None` when TOTP is off.
    pub async fn regenerate_recovery_codes(
        &self,
        client: &Client,
        who: &Identity,
    ) -> Result<Option<RecoveryCodes>, AppError> {
        let user_id = who.user_id.0;
        let codes = new_recovery_codes();
        let hashes: Vec<String> = codes.0.iter().map(|c| recovery_hash(c)).collect();
        let now = self.now();
        let note = Note::new(Event::RecoveryCodesRegenerated, now)
            .from(client)
            .by(who)
            .target(user_id, &who.username);
        let done = self
            .db
            .write(move |conn| {
                if !sf::totp_enabled(conn, user_id)? {
                    return Ok(false);
                }
                sf::replace_recovery_codes(conn, user_id, &hashes, now)?;
                note.write(conn)?;
                Ok(true)
            })
            .await?;
        if done {
            tracing::info!(user_id, "recovery codes regenerated");
        }
        Ok(done.then_some(codes))
    }

    /// The ids of users with TOTP on (for the admin page).
    pub async fn users_with_totp(&self) -> Result<std::collections::HashSet<i32>, AppError> {
        self.db
            .read(|conn| Ok(sf::users_with_totp(conn)?.into_iter().collect()))
            .await
    }

    /// Whether the user has TOTP on (for the re-authentication form).
    pub async fn has_second_factor(&self, user_id: i32) -> Result<bool, AppError> {
        self.second_factor_on(user_id).await
    }

    /// Re-authentication with the password, plus a code when TOTP is on.
    /// Wrong passwords and wrong codes count as failed logins.
    pub async fn reauth_with_password(
        &self,
        client: &Client,
        who: &Identity,
        password: &str,
        code: &str,
    ) -> Result<Reauth, AppError> {
        let user_id = who.user_id.0;
        let Some(user) = self
            .db
            .read(move |conn| Ok(users::find(conn, user_id)?))
            .await?
            .filter(|u| !u.disabled)
        else {
            return Ok(Reauth::SessionEnded);
        };
        let reserved = match self
            .throttle
            .reserve_login(client_ip(client), &user.username)
            .await?
        {
            Ok(reserved) => reserved,
            Err(refusal) => return Ok(Reauth::Locked(refusal)),
        };
        let place = self.hasher.admit()?;
        let valid = self
            .hasher
            .verify(
                place,
                password,
                Some(user.password_hash.clone()),
                client.connection,
            )
            .await?;
        if !valid {
            reserved.failed();
            tracing::info!(user_id, "re-authentication refused: wrong password");
            return Ok(Reauth::WrongPassword);
        }
        let mut methods = vec![Method::Password];
        if self.second_factor_on(user_id).await? {
            let (code, now, checked) = (code.to_owned(), self.now(), user.clone());
            let used_recovery = Note::new(Event::RecoveryCodeUsed, now).from(client).by(who);
            let method = self
                .db
                .write(move |conn| {
                    let method = use_code(conn, &checked, &code, now)?;
                    if method == Some(Method::RecoveryCode) {
                        used_recovery
                            .target(checked.id, &checked.username)
                            .write(conn)?;
                    }
                    Ok(method)
                })
                .await?;
            match method {
                Some(method) => methods.push(method),
                None => {
                    reserved.failed();
                    self.note_detached(
                        Note::new(Event::MfaFailed, now)
                            .from(client)
                            .by(who)
                            .target(user_id, &user.username),
                    );
                    tracing::info!(user_id, "re-authentication refused: wrong second factor");
                    return Ok(Reauth::WrongCode);
                }
            }
        }
        reserved.succeeded().await;
        Ok(match self.reauthenticated(who, &methods).await? {
            Some(pair) => Reauth::Done(pair),
            None => Reauth::SessionEnded,
        })
    }

    /// Deletes expired login challenges (part of the periodic pruning).
    pub(super) fn prune_challenges(conn: &mut DbConn, now: i64) -> Result<usize, AppError> {
        Ok(sf::prune_challenges(conn, now)?)
    }
}

fn client_ip(client: &Client) -> std::net::IpAddr {
    client
        .ip
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_its_step_and_one_step_of_drift_only() {
        let secret = new_secret();
        let t = totp(&secret, "alice").unwrap();
        let now = 1_800_000_000i64;
        let code = t.generate(now as u64).to_string();
        let step = now / 30;
        assert_eq!(
            matching_step(&secret, "alice", &code, now).unwrap(),
            Some(step)
        );
        assert_eq!(
            matching_step(&secret, "alice", &code, now + 30).unwrap(),
            Some(step),
            "one step late"
        );
        assert_eq!(
            matching_step(&secret, "alice", &code, now + 60).unwrap(),
            None
        );
        assert_eq!(
            matching_step(&secret, "alice", &code, now - 60).unwrap(),
            None
        );
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(
            matching_step(&secret, "alice", &spaced, now).unwrap(),
            Some(step)
        );
        assert_eq!(matching_step(&secret, "alice", "12345", now).unwrap(), None);
        assert_eq!(
            matching_step(&secret, "alice", "abcdef", now).unwrap(),
            None
        );
    }

    #[test]
    fn recovery_codes_are_random_and_typed_forgivingly() {
        let codes = new_recovery_codes().0;
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        assert_eq!(codes[0].len(), 19);
        assert_eq!(
            recovery_hash(&codes[0]),
            recovery_hash(&codes[0].to_uppercase().replace('-', " "))
        );
        assert_ne!(recovery_hash(&codes[0]), recovery_hash(&codes[1]));
    }

    #[test]
    fn the_uri_names_the_issuer_and_the_account() {
        let e = enrolment(new_secret(), "alice").unwrap();
        assert!(
            e.uri.starts_with("otpauth://totp/Portcullis:alice?"),
            "{}",
            e.uri
        );
        assert!(e.uri.contains(&format!("secret={}", e.secret)));
        assert!(!format!("{e:?}").contains(&e.secret));
    }
}
