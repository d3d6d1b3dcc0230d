//! The accounts boundary: registering, checking a login, opening, refreshing
//! and ending sessions, changing passwords, admin actions. The HTML and JSON
//! handlers, the CLI and the web guard's implicit refresh all call these, so
//! no face of the app can drift from another, and nothing re-implements them.
//!
//! Inputs are plain values (`Client`, domain types, ids); outcomes are types
//! (`Login`, `RegisterError::UsernameTaken`, `AdminActionError::LastAdmin`),
//! never strings to match. Infrastructure failures stay `AppError`.

use std::sync::Arc;

use diesel::Connection;

use super::{
    Client, Identity, Method,
    audit::{Event, Note},
    password::{self, Hasher, HasherLoad},
    refresh::{self, Refused},
    throttle::{self, Limits, Refusal, Throttle},
    tokens::{Issuer, TokenError, TokenKeys, TokenPair, TokenType},
};
use crate::{
    clock::SharedClock,
    db::{self, Db, DbConn, models::User, sessions, users},
    domain::{Password, PasswordError, Role, SessionId, UserId, Username},
    error::AppError,
};

/// What the accounts need from the settings, read once at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bcrypt_cost: u32,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    pub reuse_grace: i64,
    pub login_max_failures: u32,
    pub login_failure_window: i64,
    pub login_max_failures_per_ip: u32,
    pub register_max_per_ip: u32,
    pub reauth_window: i64,
    pub session_max_lifetime: i64,
    pub audit_retention_days: i64,
    /// The passkey relying party and the site's origin (reference §8).
    pub webauthn_rp_id: String,
    pub public_origin: url::Url,
}

/// The one message for an unknown user, a wrong password and a disabled
/// account, so the answer does not tell them apart.
pub const LOGIN_FAILED: &str = "Invalid username or password.";

pub const REFRESH_FAILED: &str =
    "The refresh token is invalid, expired or revoked. Please log in again.";

/// The outcome of a login attempt.
pub enum Login {
    /// The password was right and no second factor is on.
    Success(User),
    /// The password was right; the second factor is on. `mfa_token` names
    /// the second step (`Accounts::complete_second_step`).
    SecondFactor { user: User, mfa_token: String },
    /// Wrong password, unknown user or disabled account: one answer for all.
    Failed,
    /// Too many failures for this (client, username) or this client: try
    /// again later.
    Locked(Refusal),
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The name is taken, in any spelling of its case.
    #[error("That username is already taken.")]
    UsernameTaken,
    /// Too many registrations from this client this hour.
    #[error("Too many new accounts from your network. Please try again later.")]
    TooMany(Refusal),
    #[error(transparent)]
    Failed(AppError),
}

/// A successful refresh: the new pair and who it is for.
#[derive(Debug)]
pub struct Refreshed {
    pub pair: TokenPair,
    pub identity: Identity,
}

#[derive(Debug)]
pub enum RefreshError {
    /// Unknown, expired, revoked or reused, or a user who may not log in:
    /// every refusal gets the same answer.
    Refused,
    Failed(AppError),
}

/// Why a password change was refused, field by field.
#[derive(Debug)]
pub enum PasswordChangeError {
    WrongCurrent,
    /// Too many wrong current passwords: they count as failed logins.
    Locked(Refusal),
    Invalid(PasswordError),
    /// The session the request came from has ended (or the user is gone).
    SessionEnded,
    Failed(AppError),
}

/// What an administrator can do to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    SetRole(Role),
    Disable,
    Enable,
    EndSessions,
    /// Turns the user's TOTP off (they lost it) and ends their sessions.
    DisableTotp,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminActionError {
    #[error("That user does not exist.")]
    NotFound,
    #[error("You cannot demote or disable your own account.")]
    OwnAccount,
    #[error("The last administrator cannot be removed.")]
    LastAdmin,
    /// The actor is no longer an enabled admin, or their session has ended.
    #[error("This action is for administrators only.")]
    NotAllowed,
    #[error(transparent)]
    Failed(AppError),
}

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("no user named {0}")]
    NoSuchUser(String),
    #[error(transparent)]
    Failed(AppError),
}

macro_rules! failed_from_app_error {
    ($($t:ty),*) => {$(
        impl From<AppError> for $t {
            fn from(e: AppError) -> Self {
                Self::Failed(e)
            }
        }
    )*};
}
failed_from_app_error!(
    RegisterError,
    RefreshError,
    PasswordChangeError,
    AdminActionError,
    PromoteError
);

/// A user whose session is live, as the database has them now.
#[derive(Debug, Clone)]
pub struct Live {
    pub user: User,
    /// When the session last authenticated (reference §8).
    pub auth_time: i64,
}

/// One of a user's live sessions, for the account page.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: SessionId,
    pub user_agent: String,
    /// Empty when the client IP was unknown.
    pub ip: String,
    pub started: i64,
    pub last_used: i64,
}

/// The accounts service: built once at start-up and shared.
pub struct Accounts {
    pub(super) db: Db,
    pub(super) hasher: Hasher,
    pub(super) issuer: Arc<Issuer>,
    pub(super) throttle: Throttle,
    /// The passkey relying party (`auth::passkeys`).
    pub(super) webauthn: webauthn_rs::Webauthn,
    reuse_grace: i64,
    reauth_window: i64,
    /// `PUBLIC_ORIGIN`, for links shown to people (reset links).
    origin: url::Url,
    /// Seconds audit events are kept.
    audit_retention: i64,
    /// Events of failed and refused logins, written in batches.
    pub(super) audit_queue: super::audit::AuditQueue,
}

impl Accounts {
    /// Fails when bcrypt cannot hash at the configured cost (measured here,
    /// on the dummy hash): a start-up error, not a surprise at first login.
    pub fn new(
        db: Db,
        keys: TokenKeys,
        clock: SharedClock,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        let hasher = Hasher::new(settings.bcrypt_cost)
            .map_err(|e| anyhow::anyhow!("invalid setting BCRYPT_COST: {e}"))?;
        let limits = Limits {
            max_failures: settings.login_max_failures,
            max_failures_per_ip: settings.login_max_failures_per_ip,
            failure_window: settings.login_failure_window,
            max_registrations: settings.register_max_per_ip,
        };
        let webauthn =
            super::passkeys::relying_party(&settings.webauthn_rp_id, &settings.public_origin)?;
        Ok(Self {
            throttle: Throttle::new(limits, clock, db.clone()),
            audit_queue: super::audit::AuditQueue::start(db.clone()),
            webauthn,
            db,
            hasher,
            issuer: Arc::new(
                Issuer::new(keys, settings.access_ttl, settings.refresh_ttl)
                    .with_max_lifetime(settings.session_max_lifetime),
            ),
            reuse_grace: settings.reuse_grace,
            reauth_window: settings.reauth_window,
            origin: settings.public_origin.clone(),
            audit_retention: settings.audit_retention_days * 24 * 60 * 60,
        })
    }

    /// The hasher's queue, for metrics.
    pub fn hasher_load(&self) -> HasherLoad {
        self.hasher.load()
    }

    pub(super) fn now(&self) -> i64 {
        self.issuer.now()
    }

    /// Verifies an access token (no database look-up).
    pub fn verify_access(&self, token: &str) -> Result<Identity, TokenError> {
        let claims = self.issuer.keys().verify(token, TokenType::Access)?;
        claims.identity().ok_or(TokenError::Invalid)
    }

    /// Creates a user with a new bcrypt hash. `client` is `None` for the
    /// operator (the CLI), whom the registration limit does not apply to.
    pub async fn register(
        &self,
        client: Option<&Client>,
        username: Username,
        password: Password,
        role: Role,
    ) -> Result<User, RegisterError> {
        let reservation = match client {
            Some(client) => Some(
                self.throttle
                    .reserve_registration(client_ip(client))
                    .await?
                    .map_err(|refusal| {
                        tracing::warn!(client_ip = %client_ip(client), "registration refused: too many from this client");
                        count_refusal(refusal);
                        RegisterError::TooMany(refusal)
                    })?,
            ),
            None => None,
        };
        // A taken name is answered before the hash: it would cost a hash for
        // nothing (the 409 says the name exists either way).
        let name = username.as_str().to_owned();
        let taken = self
            .db
            .read(move |conn| Ok(users::find_by_username(conn, &name)?.is_some()))
            .await?;
        if taken {
            if let Some(r) = reservation {
                r.done();
            }
            return Err(RegisterError::UsernameTaken);
        }
        let hash = self
            .hasher
            .hash(password, client.and_then(|c| c.connection))
            .await?;
        if let Some(r) = reservation {
            r.done();
        }
        let now = self.now();
        let created = self
            .db
            .write(move |conn| Ok(users::create(conn, username.as_str(), &hash, role, now)))
            .await?;
        match created {
            Ok(user) => {
                tracing::info!(user_id = user.id, role = %role, "user registered");
                Ok(user)
            }
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => Err(RegisterError::UsernameTaken),
            Err(other) => Err(RegisterError::Failed(other.into())),
        }
    }

    /// Checks a username and password for a client. A locked-out pair is
    /// refused before the hash; otherwise one bcrypt verification always runs,
    /// against a dummy hash when the user does not exist, so timing does not
    /// reveal which usernames exist.
    pub async fn check_login(
        &self,
        client: &Client,
        username: &str,
        attempt: &str,
    ) -> Result<Login, AppError> {
        let ip = client_ip(client);
        // The hash's place first: a refusal (503) costs no database work.
        let place = match self.hasher.admit() {
            Ok(place) => place,
            Err(e) => {
                metrics::counter!("portcullis_logins_total", "outcome" => "unavailable")
                    .increment(1);
                return Err(e);
            }
        };
        let reserved = match self.throttle.reserve_login(ip, username).await? {
            Ok(reserved) => reserved,
            Err(refusal) => {
                tracing::warn!(client_ip = %ip, limit = refusal.kind(), "login refused: too many failures");
                count_refusal(refusal);
                metrics::counter!("portcullis_logins_total", "outcome" => "locked").increment(1);
                self.note_detached(
                    Note::new(Event::LoginLocked, self.now())
                        .from(client)
                        .detail(username),
                );
                return Ok(Login::Locked(refusal));
            }
        };
        let name = username.to_owned();
        let user = self
            .db
            .read(move |conn| Ok(users::find_by_username(conn, &name)?))
            .await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        // Refused (503) or abandoned here, the reservation is refunded.
        let valid = match self
            .hasher
            .verify(place, attempt, hash, client.connection)
            .await
        {
            Ok(valid) => valid,
            Err(e) => {
                metrics::counter!("portcullis_logins_total", "outcome" => "unavailable")
                    .increment(1);
                return Err(e);
            }
        };
        match user {
            Some(user) if valid && !user.disabled => {
                self.follow_cost(&user, attempt).await;
                if self.second_factor_on(user.id).await? {
                    reserved.deferred().await;
                    return self.begin_second_step(user).await;
                }
                reserved.succeeded().await;
                tracing::info!(user_id = user.id, client_ip = %ip, "login succeeded");
                metrics::counter!("portcullis_logins_total", "outcome" => "success").increment(1);
                Ok(Login::Success(user))
            }
            known => {
                reserved.failed();
                metrics::counter!("portcullis_logins_total", "outcome" => "failed").increment(1);
                let mut note = Note::new(Event::LoginFailed, self.now())
                    .from(client)
                    .detail(username);
                if let Some(u) = &known {
                    note = note.target(u.id, &u.username);
                }
                self.note_detached(note);
                match known {
                    Some(u) => {
                        tracing::info!(user_id = u.id, disabled = u.disabled, client_ip = %ip, "login failed")
                    }
                    None => tracing::info!(client_ip = %ip, "login failed: unknown user"),
                }
                Ok(Login::Failed)
            }
        }
    }

    /// A hash of another cost than `BCRYPT_COST` is replaced, now that the
    /// password is at hand. Best effort: a busy hasher leaves it for the
    /// next login.
    async fn follow_cost(&self, user: &User, verified: &str) {
        if password::cost_of(&user.password_hash) == Some(self.hasher.cost()) {
            return;
        }
        let Ok(hash) = self.hasher.rehash(verified).await else {
            return;
        };
        let (user_id, old) = (user.id, user.password_hash.clone());
        let result = self
            .db
            .write(move |conn| Ok(users::replace_password_hash(conn, user_id, &old, &hash)?))
            .await;
        match result {
            Ok(true) => tracing::info!(
                user_id,
                cost = self.hasher.cost(),
                "password re-hashed at the configured cost"
            ),
            Ok(false) => {} // changed meanwhile: keep the newer hash
            Err(e) => tracing::warn!(user_id, error = %e, "re-hashing the password failed"),
        }
    }

    /// Starts a session for a user who just logged in or registered. A
    /// browser passes the refresh token it still carries as `replacing`:
    /// that session ends (whoever it belonged to), so logging in again
    /// replaces it instead of leaving it orphaned in the sessions list.
    pub async fn open_session(
        &self,
        client: &Client,
        user: &User,
        methods: &[Method],
        replacing: Option<&str>,
    ) -> Result<TokenPair, AppError> {
        if let Some(old) = replacing {
            self.logout(client, old).await?;
        }
        let (user, client, now) = (user.clone(), client.clone(), self.now());
        let (issuer, methods) = (self.issuer.clone(), methods.to_vec());
        self.db
            .write(move |conn| {
                let pair = refresh::start(conn, &issuer, &user, &client, &methods, now)?;
                // "A new device logged in" is a login from a user agent this
                // user never logged in from before.
                let agent = super::audit::stored_user_agent(&client.user_agent);
                let known = crate::db::audit::known_device(conn, user.id, &agent)?;
                let how = Method::join(&methods);
                Note::new(Event::LoginSucceeded, now)
                    .from(&client)
                    .user(user.id, &user.username)
                    .session(pair.session_id.as_str())
                    .detail(&if known {
                        how
                    } else {
                        format!("{how}; new device")
                    })
                    .write(conn)?;
                Ok(pair)
            })
            .await
    }

    /// Verifies a refresh token and rotates it.
    pub async fn refresh(&self, client: &Client, token: &str) -> Result<Refreshed, RefreshError> {
        let claims = self
            .issuer
            .keys()
            .verify(token, TokenType::Refresh)
            .map_err(|_| RefreshError::Refused)?;
        let (issuer, grace, now) = (self.issuer.clone(), self.reuse_grace, self.now());
        // PostgreSQL: concurrent rotations share one statement (the lane);
        // whatever it did not rotate takes the full path below.
        let batched = match (
            self.db.rotations(),
            refresh::rotation(&issuer, &claims, now),
        ) {
            (Some(lane), Some(rotation)) => lane.rotate(rotation).await?,
            _ => None,
        };
        if let Some((session, user)) = batched {
            let pair = issuer.pair(&user, &session, now)?;
            return Self::refreshed(Ok((pair, user)));
        }
        let note = Note::new(Event::RefreshReuseDetected, now).from(client);
        // One statement when it rotates; a replay's look-ups and its
        // revocation each stand alone (`write_each`).
        let outcome = self
            .db
            .write_each(move |conn| {
                let outcome = refresh::rotate(conn, &issuer, grace, &claims, now)?;
                if let Err(Refused::Reused {
                    user_id,
                    session_id,
                }) = &outcome
                {
                    note.target(*user_id, &claims.username)
                        .session(session_id)
                        .write(conn)?;
                }
                Ok(outcome)
            })
            .await?;
        Self::refreshed(outcome)
    }

    /// A refresh's outcome, counted, as the caller sees it.
    fn refreshed(outcome: Result<(TokenPair, User), Refused>) -> Result<Refreshed, RefreshError> {
        let label = if outcome.is_ok() {
            "rotated"
        } else {
            "refused"
        };
        metrics::counter!("portcullis_refresh_total", "outcome" => label).increment(1);
        match outcome {
            Ok((pair, user)) => Ok(Refreshed {
                identity: Identity {
                    user_id: UserId(user.id),
                    username: user.username,
                    role: user.role,
                    session_id: pair.session_id.clone(),
                },
                pair,
            }),
            // `refresh::rotate` has already logged a reuse.
            Err(Refused::Invalid | Refused::Reused { .. }) => Err(RefreshError::Refused),
        }
    }

    /// Ends the session a refresh token belongs to. `Ok(false)` when the
    /// token is not one of ours (invalid, expired, unknown).
    pub async fn logout(&self, client: &Client, token: &str) -> Result<bool, AppError> {
        let Ok(claims) = self.issuer.keys().verify(token, TokenType::Refresh) else {
            return Ok(false);
        };
        let (now, user_id) = (self.now(), claims.sub.clone());
        let note = Note::new(Event::Logout, now).from(client);
        let ended = self
            .db
            .write(move |conn| {
                let ended = refresh::end_by_token(conn, &claims, now)?;
                if ended && let Some(identity) = claims.identity() {
                    note.by(&identity)
                        .target(identity.user_id.0, &identity.username)
                        .write(conn)?;
                }
                Ok(ended)
            })
            .await?;
        if ended {
            tracing::info!(user_id = %user_id, "logged out");
        }
        Ok(ended)
    }

    /// The user behind `identity` as the database has them, if the account
    /// still exists, is enabled and the token's session is still live: the
    /// re-check of the admin area and `/account` (reference §4).
    pub async fn live_user(&self, identity: &Identity) -> Result<Option<Live>, AppError> {
        let (user_id, session, now) = (identity.user_id, identity.session_id.clone(), self.now());
        self.db
            .read(move |conn| {
                let Some(user) = users::find(conn, user_id.0)?.filter(|u| !u.disabled) else {
                    return Ok(None);
                };
                let auth_time = sessions::auth_time_if_live(conn, &session.0, user_id.0, now)?;
                Ok(auth_time.map(|auth_time| Live { user, auth_time }))
            })
            .await
    }

    /// The absolute URL of a path of this site, under `PUBLIC_ORIGIN`.
    pub fn public_url(&self, path: &str) -> String {
        format!("{}{}", self.origin.as_str().trim_end_matches('/'), path)
    }

    /// Whether an authentication at `auth_time` is recent enough for a
    /// sensitive action (`REAUTH_WINDOW`, reference §8).
    pub fn is_recent(&self, auth_time: i64) -> bool {
        self.now() - auth_time <= self.reauth_window
    }

    /// Records that the user of `identity` just proved who they are again
    /// (`methods`) in the same session, and issues its tokens anew: the access
    /// token carries the new `auth_time` and `amr`. `None` when the session
    /// has ended meanwhile.
    pub async fn reauthenticated(
        &self,
        identity: &Identity,
        methods: &[Method],
    ) -> Result<Option<TokenPair>, AppError> {
        let (user_id, session, now) = (identity.user_id, identity.session_id.clone(), self.now());
        let (issuer, amr) = (self.issuer.clone(), Method::join(methods));
        let pair = self
            .db
            .write(move |conn| {
                let Some(user) = users::find(conn, user_id.0)?.filter(|u| !u.disabled) else {
                    return Ok(None);
                };
                let Some(row) = sessions::reauthenticate(conn, &session.0, user_id.0, &amr, now)?
                else {
                    return Ok(None);
                };
                issuer.pair(&user, &row, now).map(Some)
            })
            .await?;
        if pair.is_some() {
            tracing::info!(user_id = %user_id, methods = %Method::join(methods), "re-authenticated");
        }
        Ok(pair)
    }

    /// The user's live sessions, most recently used first.
    pub async fn sessions_of(&self, user: UserId) -> Result<Vec<SessionInfo>, AppError> {
        let now = self.now();
        let rows = self
            .db
            .read(move |conn| Ok(sessions::active(conn, user.0, now)?))
            .await?;
        Ok(rows
            .into_iter()
            .map(|s| SessionInfo {
                id: SessionId(s.id),
                user_agent: s.user_agent,
                ip: s.ip,
                started: s.created_at,
                last_used: s.last_used_at,
            })
            .collect())
    }

    /// Ends one of the user's own sessions; `false` if it was not a live
    /// session of theirs.
    pub async fn end_session(
        &self,
        client: &Client,
        who: &Identity,
        session: SessionId,
    ) -> Result<bool, AppError> {
        let (user, now) = (who.user_id, self.now());
        let note = Note::new(Event::SessionEnded, now)
            .from(client)
            .by(who)
            .target(user.0, &who.username)
            .detail(&format!("session {}", session.as_str()));
        let ended = self
            .db
            .write(move |conn| {
                let ended = refresh::end(conn, user, &session, now)?;
                if ended {
                    note.write(conn)?;
                }
                Ok(ended)
            })
            .await?;
        if ended {
            tracing::info!(user_id = %user, "session ended from the account page");
        }
        Ok(ended)
    }

    /// Ends every session of the user ("log out everywhere").
    pub async fn end_all_sessions(
        &self,
        client: &Client,
        who: &Identity,
    ) -> Result<usize, AppError> {
        let (user, now) = (who.user_id, self.now());
        let note = Note::new(Event::LogoutEverywhere, now)
            .from(client)
            .by(who)
            .target(user.0, &who.username);
        let ended = self
            .db
            .write(move |conn| {
                let ended = refresh::end_all(conn, user, None, now)?;
                note.write(conn)?;
                Ok(ended)
            })
            .await?;
        tracing::info!(user_id = %user, sessions = ended, "logged out everywhere");
        Ok(ended)
    }

    /// Changes the password after checking the current one, then ends every
    /// other session: whoever else knew the old password is logged out. The
    /// session the request came from must still be live when it commits.
    /// A wrong current password counts as a failed login of the user.
    pub async fn change_password(
        &self,
        client: &Client,
        who: &Identity,
        current: &str,
        new: &str,
    ) -> Result<(), PasswordChangeError> {
        let user_id = who.user_id;
        let user = self
            .db
            .read(move |conn| Ok(users::find(conn, user_id.0)?))
            .await?
            .ok_or(PasswordChangeError::SessionEnded)?;
        let new = Password::parse(new, &user.username).map_err(PasswordChangeError::Invalid)?;
        let reserved = self
            .throttle
            .reserve_login(client_ip(client), &user.username)
            .await?
            .map_err(|refusal| {
                tracing::warn!(user_id = %user_id, client_ip = %client_ip(client), "password change refused: too many failures");
                count_refusal(refusal);
                PasswordChangeError::Locked(refusal)
            })?;
        let place = self.hasher.admit()?;
        if !self
            .hasher
            .verify(
                place,
                current,
                Some(user.password_hash.clone()),
                client.connection,
            )
            .await?
        {
            reserved.failed();
            tracing::info!(user_id = %user_id, client_ip = %client_ip(client), "password change refused: wrong current password");
            return Err(PasswordChangeError::WrongCurrent);
        }
        reserved.succeeded().await;
        let new_hash = self.hasher.hash(new, client.connection).await?;
        let (keep, now) = (who.session_id.clone(), self.now());
        let note = Note::new(Event::PasswordChanged, now)
            .from(client)
            .by(who)
            .target(user_id.0, &user.username);
        let changed = self
            .db
            // One write transaction: the session is still live when it commits.
            .write(move |conn| {
                if !refresh::is_live(conn, user_id, &keep, now)? {
                    return Ok(false);
                }
                users::set_password_hash(conn, user_id.0, &new_hash)?;
                refresh::end_all(conn, user_id, Some(&keep), now)?;
                note.write(conn)?;
                Ok(true)
            })
            .await?;
        if !changed {
            return Err(PasswordChangeError::SessionEnded);
        }
        tracing::info!(user_id = %user_id, "password changed; other sessions ended");
        Ok(())
    }

    /// Applies an admin action in one transaction that also re-checks the
    /// actor (still an enabled admin, session still live), so neither the
    /// "last admin" rule nor a just-ended session can be raced. Returns the
    /// target's username.
    pub async fn admin_act(
        &self,
        client: &Client,
        actor: &Identity,
        target: UserId,
        action: AdminAction,
    ) -> Result<String, AdminActionError> {
        let (actor_id, actor_session, now) = (actor.user_id, actor.session_id.clone(), self.now());
        let event = match action {
            AdminAction::SetRole(_) => Event::RoleChanged,
            AdminAction::Disable => Event::UserDisabled,
            AdminAction::Enable => Event::UserEnabled,
            AdminAction::EndSessions => Event::SessionsTerminated,
            AdminAction::DisableTotp => Event::TotpDisabled,
        };
        let note = Note::new(event, now).from(client).by(actor);
        let outcome = self
            .db
            .write(move |conn| {
                let done = apply_admin_action(conn, actor_id, &actor_session, target, action, now);
                // Refusals are values: only an applied action is an event.
                if let Ok(username) = &done {
                    let note = note.target(target.0, username);
                    match action {
                        AdminAction::SetRole(role) => note.detail(&format!("role {role}")),
                        _ => note,
                    }
                    .write(conn)?;
                }
                Ok(done)
            })
            .await?;
        match &outcome {
            Ok(_) => {
                tracing::info!(admin_id = %actor_id, target_id = %target, action = ?action, "admin action")
            }
            Err(e) => {
                tracing::warn!(admin_id = %actor_id, target_id = %target, action = ?action, refused = %e, "admin action refused")
            }
        }
        outcome
    }

    /// Every user, for the admin page.
    pub async fn all_users(&self) -> Result<Vec<User>, AppError> {
        self.db.read(|conn| Ok(users::list(conn)?)).await
    }

    /// Gives an existing user the admin role (the CLI's `promote`).
    pub async fn promote(&self, name: &str) -> Result<User, PromoteError> {
        let name = name.to_owned();
        self.db
            .write(move |conn| {
                let Some(user) = users::find_by_username(conn, &name)? else {
                    return Ok(Err(PromoteError::NoSuchUser(name)));
                };
                users::set_role(conn, user.id, Role::Admin)?;
                Ok(Ok(User {
                    role: Role::Admin,
                    ..user
                }))
            })
            .await?
    }

    /// Deletes long-dead sessions, expired pre-upgrade tokens and finished
    /// limit counters; returns the rows removed, or `None` when another
    /// instance of this database is pruning at this moment.
    pub async fn prune(&self) -> Result<Option<usize>, AppError> {
        let now = self.now();
        let (longest, keep_audit) = (self.throttle.longest_window(), self.audit_retention);
        self.db
            .write(move |conn| prune_in(conn, now, longest, keep_audit))
            .await
    }

    /// `prune` on this thread (start-up, before any request).
    pub fn prune_now(&self) -> Result<Option<usize>, AppError> {
        let now = self.now();
        let (longest, keep_audit) = (self.throttle.longest_window(), self.audit_retention);
        self.db
            .blocking(move |conn| conn.transaction(|conn| prune_in(conn, now, longest, keep_audit)))
    }
}

/// Advisory lock key of admin actions.
const ADMIN_LOCK: i64 = 0x706f_7274_6164_6d6e;

/// Advisory lock key of the pruning (any fixed number; "portcull" in ASCII).
pub const PRUNE_LOCK: i64 = 0x706f_7274_6375_6c6c;

fn prune_in(
    conn: &mut DbConn,
    now: i64,
    longest_window: i64,
    keep_audit: i64,
) -> Result<Option<usize>, AppError> {
    db::exclusively(conn, PRUNE_LOCK, |conn| {
        Ok(refresh::prune(conn, now)?
            + throttle::prune(conn, now, longest_window)?
            + Accounts::prune_challenges(conn, now)?
            + crate::db::reset_links::prune(conn, now)?
            + crate::db::audit::prune(conn, now - keep_audit)?)
    })
}

fn count_refusal(refusal: Refusal) {
    metrics::counter!("portcullis_throttle_refusals_total", "kind" => refusal.kind()).increment(1);
}

/// The address the limits count a client by (unknown: all unknowns together).
fn client_ip(client: &Client) -> std::net::IpAddr {
    client
        .ip
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// The body of `Accounts::admin_act`, inside its transaction. Refusals are
/// values, not errors, so nothing is half-done: the transaction commits only
/// what an accepted action wrote.
fn apply_admin_action(
    conn: &mut crate::db::DbConn,
    actor_id: UserId,
    actor_session: &SessionId,
    target_id: UserId,
    action: AdminAction,
    now: i64,
) -> Result<String, AdminActionError> {
    // One admin action at a time across instances: two admins demoting each
    // other at once must not both see the other still an admin.
    db::serialize(conn, ADMIN_LOCK)?;
    let actor = users::find(conn, actor_id.0)?;
    let actor_ok = actor.is_some_and(|a| a.role.is_admin() && !a.disabled)
        && refresh::is_live(conn, actor_id, actor_session, now)?;
    if !actor_ok {
        return Err(AdminActionError::NotAllowed);
    }
    let target = users::find(conn, target_id.0)?.ok_or(AdminActionError::NotFound)?;
    let removes_admin = target.role.is_admin()
        && !target.disabled
        && matches!(
            action,
            AdminAction::SetRole(Role::User) | AdminAction::Disable
        );
    let own = target_id == actor_id;
    if own && (removes_admin || action == AdminAction::Disable) {
        return Err(AdminActionError::OwnAccount);
    }
    if removes_admin && users::count_active_admins(conn)? <= 1 {
        return Err(AdminActionError::LastAdmin);
    }
    match action {
        AdminAction::SetRole(role) => {
            users::set_role(conn, target_id.0, role)?;
        }
        AdminAction::Disable => {
            users::set_disabled(conn, target_id.0, true)?;
            refresh::end_all(conn, target_id, None, now)?;
        }
        AdminAction::Enable => {
            users::set_disabled(conn, target_id.0, false)?;
        }
        AdminAction::EndSessions => {
            refresh::end_all(conn, target_id, None, now)?;
        }
        AdminAction::DisableTotp => {
            crate::db::second_factor::remove_totp(conn, target_id.0)?;
            refresh::end_all(conn, target_id, None, now)?;
        }
    }
    Ok(target.username)
}

impl From<diesel::result::Error> for AdminActionError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Failed(e.into())
    }
}
