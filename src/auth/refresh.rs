//! Refresh tokens: the session lifecycle (reference §4).
//!
//! A login starts a family (what the account page calls a session); every
//! refresh consumes the presented token and issues its successor in one
//! `BEGIN IMMEDIATE` transaction, so two concurrent uses are serialised by
//! SQLite's write lock. A retired token presented again within
//! `REFRESH_REUSE_GRACE` seconds (a second tab that raced the first) gets a
//! fresh access token and the family's *current* refresh token, so the family
//! still has exactly one live token. Presented later, it is reuse: the whole
//! family is revoked, which logs out both the thief and the victim's newest
//! token.
//!
//! All functions are synchronous and take a connection: `Accounts` calls them
//! inside the database runner.

use diesel::SqliteConnection;

use super::{
    Client,
    tokens::{Claims, Issuer, TokenPair},
};
use crate::{
    db::{
        models::{Family, RefreshTokenRow, User},
        refresh_tokens, users,
    },
    domain::{SessionId, UserId},
    error::AppError,
};

/// Starts a session (a new family) for a user who just proved who they are.
pub fn start(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    user: &User,
    client: &Client,
    now: i64,
) -> Result<TokenPair, AppError> {
    let row = conn.immediate_transaction(|conn| -> Result<_, AppError> {
        let family = Family {
            id: super::random_id(),
            user_id: user.id,
            created_at: now,
            last_used_at: now,
            user_agent: client.user_agent.clone(),
            ip: client.ip.map(|ip| ip.to_string()).unwrap_or_default(),
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

/// Exchanges a verified refresh token for a new pair. `reuse_grace` is
/// `REFRESH_REUSE_GRACE` in seconds.
pub fn rotate(
    conn: &mut SqliteConnection,
    issuer: &Issuer,
    reuse_grace: i64,
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
            if now - used_at < reuse_grace {
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
                metrics::counter!("portcullis_refresh_reuse_detected_total").increment(1);
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
    user: UserId,
    session: &SessionId,
    now: i64,
) -> Result<bool, AppError> {
    Ok(refresh_tokens::revoke_family(
        conn,
        session.as_str(),
        user.0,
        now,
    )?)
}

/// Ends every session of a user except `keep`; returns how many ended.
pub fn end_all(
    conn: &mut SqliteConnection,
    user: UserId,
    keep: Option<&SessionId>,
    now: i64,
) -> Result<usize, AppError> {
    Ok(refresh_tokens::revoke_user_families(
        conn,
        user.0,
        keep.map(SessionId::as_str),
        now,
    )?)
}

/// Whether `session` is still a live session of `user` (reference §4: the
/// re-checked routes).
pub fn is_live(
    conn: &mut SqliteConnection,
    user: UserId,
    session: &SessionId,
    now: i64,
) -> Result<bool, AppError> {
    Ok(refresh_tokens::is_live(
        conn,
        session.as_str(),
        user.0,
        now,
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
    use crate::{auth::tokens::TokenKeys, db, domain::Role};

    struct Fixture {
        _dir: tempfile::TempDir,
        pool: db::Pool,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&dir.path().join("t.db")).unwrap();
        Fixture { _dir: dir, pool }
    }

    fn issuer(refresh_ttl: i64) -> Issuer {
        let keys = TokenKeys::new(
            b"0123456789abcdef0123456789abcdef",
            std::sync::Arc::new(crate::clock::SystemClock),
        )
        .unwrap();
        Issuer::new(keys, 60, refresh_ttl)
    }

    fn device() -> Client {
        Client {
            user_agent: "test".into(),
            ip: Some([127, 0, 0, 1].into()),
            connection: None,
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
        start(conn, &issuer(10), &user, &device(), 1_000).unwrap();
        let now = 1_000_000;
        let live = start(conn, &issuer(3_600), &user, &device(), now).unwrap();
        assert_eq!(count(conn, "refresh_families"), 2);

        let removed = prune(conn, now).unwrap();
        assert_eq!(removed, 2, "one expired token and its family");
        assert_eq!(count(conn, "refresh_families"), 1);
        assert_eq!(count(conn, "refresh_tokens"), 1);
        assert!(
            refresh_tokens::live_token(conn, live.session_id.as_str(), now)
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
        start(conn, &issuer(30 * 24 * 3600), &user, &device(), now).unwrap();
        end_all(conn, UserId(user.id), None, now).unwrap();
        assert_eq!(prune(conn, now + 60).unwrap(), 0);
        assert_eq!(count(conn, "refresh_families"), 1);
        // A week later the revoked family goes, with its tokens (ON DELETE CASCADE).
        assert!(prune(conn, now + KEEP_REVOKED_SECONDS + 1).unwrap() >= 1);
        assert_eq!(count(conn, "refresh_families"), 0);
        assert_eq!(count(conn, "refresh_tokens"), 0);
    }
}
