//! Sessions: the refresh-token lifecycle (CONTRACT section 4).
//!
//! A login starts a family; every refresh consumes the presented token and
//! issues its successor in one `BEGIN IMMEDIATE` transaction, so two
//! concurrent uses are serialised by SQLite's write lock. A retired token
//! presented again within `REFRESH_REUSE_GRACE` seconds (a second tab that
//! raced the first) gets a fresh access token and the family's *current*
//! refresh token, so the family still has exactly one live token. Presented
//! later, it is reuse: the whole family is revoked, which logs out both the
//! thief and the victim's newest token.
//!
//! All functions are synchronous and take a connection: call them inside
//! `AppState::db`.

use diesel::SqliteConnection;

use super::{
    random_id,
    tokens::{Claims, TokenKeys, TokenType},
};
use crate::{
    config::Config,
    db::{
        models::{Family, RefreshTokenRow, User},
        refresh_tokens, users,
    },
    error::AppError,
};

/// A freshly issued access and refresh token.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub session_id: String,
}

/// Token lifetimes and signing key: what issuing needs from the settings.
#[derive(Clone, Copy)]
pub struct Issuer<'a> {
    pub keys: &'a TokenKeys,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    pub reuse_grace: i64,
}

impl<'a> Issuer<'a> {
    pub fn new(keys: &'a TokenKeys, config: &Config) -> Self {
        Self {
            keys,
            access_ttl: config.access_token_ttl,
            refresh_ttl: config.refresh_token_ttl,
            reuse_grace: config.refresh_reuse_grace,
        }
    }

    fn claims(
        &self,
        user: &User,
        token_type: TokenType,
        jti: String,
        sid: &str,
        iat: i64,
        exp: i64,
    ) -> Claims {
        Claims {
            sub: user.id.to_string(),
            username: user.username.clone(),
            role: user.role,
            token_type,
            iat,
            exp,
            jti,
            sid: sid.to_owned(),
            nbf: None,
        }
    }

    /// A new access token plus the refresh token for an existing row.
    fn pair(&self, user: &User, row: &RefreshTokenRow, now: i64) -> Result<TokenPair, AppError> {
        let access = self.claims(
            user,
            TokenType::Access,
            random_id(),
            &row.family_id,
            now,
            now + self.access_ttl,
        );
        // Re-signing a row's claims yields a token equivalent to the one first
        // issued for it: validity is decided by the row, found by `jti`.
        let refresh = self.claims(
            user,
            TokenType::Refresh,
            row.jti.clone(),
            &row.family_id,
            row.issued_at,
            row.expires_at,
        );
        Ok(TokenPair {
            access_token: self.keys.encode(&access).map_err(AppError::internal)?,
            refresh_token: self.keys.encode(&refresh).map_err(AppError::internal)?,
            expires_in: self.access_ttl,
            session_id: row.family_id.clone(),
        })
    }

    fn new_row(&self, user: &User, family_id: &str, now: i64) -> RefreshTokenRow {
        RefreshTokenRow {
            jti: random_id(),
            family_id: family_id.to_owned(),
            user_id: user.id,
            issued_at: now,
            expires_at: now + self.refresh_ttl,
            used_at: None,
        }
    }
}

/// Where a session was started from, for the sessions list.
#[derive(Debug, Clone)]
pub struct Device {
    pub user_agent: String,
    pub ip: String,
}

/// Starts a session (a new family) for a user who just proved who they are.
pub fn start(
    conn: &mut SqliteConnection,
    issuer: Issuer<'_>,
    user: &User,
    device: Device,
    now: i64,
) -> Result<TokenPair, AppError> {
    let row = conn.immediate_transaction(|conn| -> Result<_, AppError> {
        let family = Family {
            id: random_id(),
            user_id: user.id,
            created_at: now,
            last_used_at: now,
            user_agent: device.user_agent,
            ip: device.ip,
            revoked_at: None,
        };
        refresh_tokens::insert_family(conn, &family)?;
        let row = issuer.new_row(user, &family.id, now);
        refresh_tokens::insert_token(conn, &row)?;
        users::record_login(conn, user.id, now)?;
        Ok(row)
    })?;
    // Signing happens after the commit: the write lock is held only for SQL.
    issuer.pair(user, &row, now)
}

/// Why a refresh was refused. Every variant answers the client the same way.
#[derive(Debug)]
pub enum Refused {
    /// Unknown, expired or revoked token, or a user who may not log in.
    Invalid,
    /// A retired token presented after the grace window; the family is now revoked.
    Reused { user_id: i32, family_id: String },
}

enum Outcome {
    /// The refresh-token row to hand out, and the user as the database has them.
    Issued(RefreshTokenRow, User),
    Refused(Refused),
}

/// Exchanges a verified refresh token for a new pair.
pub fn refresh(
    conn: &mut SqliteConnection,
    issuer: Issuer<'_>,
    presented: &Claims,
    now: i64,
) -> Result<Result<(TokenPair, User), Refused>, AppError> {
    // The reuse branch must commit its revocation, so refusals are values
    // inside the transaction, not errors that would roll it back.
    let outcome = conn.immediate_transaction(|conn| -> Result<Outcome, AppError> {
        let refuse = |r| Ok(Outcome::Refused(r));
        let Some((row, family)) = refresh_tokens::find_token(conn, &presented.jti)? else {
            return refuse(Refused::Invalid);
        };
        if Some(row.user_id) != presented.user_id()
            || family.revoked_at.is_some()
            || row.expires_at <= now
        {
            return refuse(Refused::Invalid);
        }
        // Re-read the user: a new role shows in the new token; a disabled or
        // deleted user gets nothing.
        let Some(user) = users::find(conn, row.user_id)? else {
            return refuse(Refused::Invalid);
        };
        if user.disabled {
            return refuse(Refused::Invalid);
        }

        if let Some(used_at) = row.used_at {
            if now - used_at < issuer.reuse_grace {
                // A parallel tab: hand out the family's current token.
                return match refresh_tokens::live_token(conn, &family.id, now)? {
                    Some(current) => {
                        refresh_tokens::touch_family(conn, &family.id, now)?;
                        Ok(Outcome::Issued(current, user))
                    }
                    None => refuse(Refused::Invalid),
                };
            }
            refresh_tokens::revoke_family(conn, &family.id, user.id, now)?;
            return refuse(Refused::Reused {
                user_id: user.id,
                family_id: family.id,
            });
        }

        if !refresh_tokens::mark_used(conn, &row.jti, now)? {
            // Cannot happen under BEGIN IMMEDIATE; refuse rather than fork the family.
            return refuse(Refused::Invalid);
        }
        let next = issuer.new_row(&user, &family.id, now);
        refresh_tokens::insert_token(conn, &next)?;
        refresh_tokens::touch_family(conn, &family.id, now)?;
        Ok(Outcome::Issued(next, user))
    })?;

    Ok(match outcome {
        Outcome::Issued(row, user) => Ok((issuer.pair(&user, &row, now)?, user)),
        Outcome::Refused(refused) => {
            if let Refused::Reused { user_id, family_id } = &refused {
                tracing::warn!(user_id, family_id = %family_id, "refresh token reuse detected; session revoked");
            }
            Err(refused)
        }
    })
}

/// Ends the session a refresh token belongs to (logout). Returns false when
/// the token is unknown or belongs to someone else.
pub fn end_by_token(
    conn: &mut SqliteConnection,
    presented: &Claims,
    now: i64,
) -> Result<bool, AppError> {
    let Some((row, family)) = refresh_tokens::find_token(conn, &presented.jti)? else {
        return Ok(false);
    };
    if Some(row.user_id) != presented.user_id() {
        return Ok(false);
    }
    refresh_tokens::revoke_family(conn, &family.id, row.user_id, now)?;
    Ok(true)
}

/// Ends one of a user's sessions; returns whether it existed and was live.
pub fn end(
    conn: &mut SqliteConnection,
    user_id: i32,
    session_id: &str,
    now: i64,
) -> Result<bool, AppError> {
    Ok(refresh_tokens::revoke_family(
        conn, session_id, user_id, now,
    )?)
}

/// Ends every session of a user except `keep`; returns how many ended.
pub fn end_all(
    conn: &mut SqliteConnection,
    user_id: i32,
    keep: Option<&str>,
    now: i64,
) -> Result<usize, AppError> {
    Ok(refresh_tokens::revoke_user_families(
        conn, user_id, keep, now,
    )?)
}

/// How long revoked families are kept, so a late replay is still recognised
/// (and logged) as reuse rather than as an unknown token.
pub const KEEP_REVOKED_SECONDS: i64 = 7 * 24 * 60 * 60;

/// Deletes expired tokens and long-dead families.
pub fn prune(conn: &mut SqliteConnection, now: i64) -> Result<usize, AppError> {
    Ok(refresh_tokens::prune(
        conn,
        now,
        now - KEEP_REVOKED_SECONDS,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{db, domain::Role};

    struct Fixture {
        _dir: tempfile::TempDir,
        pool: db::Pool,
        keys: TokenKeys,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&dir.path().join("t.db")).unwrap();
        let keys = TokenKeys::new(
            b"0123456789abcdef0123456789abcdef",
            std::sync::Arc::new(crate::clock::SystemClock),
        )
        .unwrap();
        Fixture {
            _dir: dir,
            pool,
            keys,
        }
    }

    fn issuer(keys: &TokenKeys, refresh_ttl: i64) -> Issuer<'_> {
        Issuer {
            keys,
            access_ttl: 60,
            refresh_ttl,
            reuse_grace: 0,
        }
    }

    fn device() -> Device {
        Device {
            user_agent: "test".into(),
            ip: "127.0.0.1".into(),
        }
    }

    fn count(conn: &mut SqliteConnection, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::RunQueryDsl::get_result::<N>(
            diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}")),
            conn,
        )
        .unwrap()
        .n
    }

    #[test]
    fn pruning_removes_expired_tokens_and_dead_families_but_keeps_live_ones() {
        let f = fixture();
        let conn = &mut f.pool.get().unwrap();
        let user = users::create(conn, "alice", "x", Role::User, 1_000).unwrap();
        // One session that expired long ago, one live one.
        start(conn, issuer(&f.keys, 10), &user, device(), 1_000).unwrap();
        let now = 1_000_000;
        let live = start(conn, issuer(&f.keys, 3_600), &user, device(), now).unwrap();
        assert_eq!(count(conn, "refresh_families"), 2);

        let removed = prune(conn, now).unwrap();
        assert_eq!(removed, 2, "one expired token and its family");
        assert_eq!(count(conn, "refresh_families"), 1);
        assert_eq!(count(conn, "refresh_tokens"), 1);
        assert!(
            refresh_tokens::live_token(conn, &live.session_id, now)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn pruning_keeps_recently_revoked_families_so_a_replay_is_still_recognised() {
        let f = fixture();
        let conn = &mut f.pool.get().unwrap();
        let user = users::create(conn, "alice", "x", Role::User, 0).unwrap();
        let now = 1_000_000;
        start(conn, issuer(&f.keys, 30 * 24 * 3600), &user, device(), now).unwrap();
        end_all(conn, user.id, None, now).unwrap();
        assert_eq!(prune(conn, now + 60).unwrap(), 0);
        assert_eq!(count(conn, "refresh_families"), 1);
        // A week later the revoked family goes, with its tokens (ON DELETE CASCADE).
        assert!(prune(conn, now + KEEP_REVOKED_SECONDS + 1).unwrap() >= 1);
        assert_eq!(count(conn, "refresh_families"), 0);
        assert_eq!(count(conn, "refresh_tokens"), 0);
    }
}
