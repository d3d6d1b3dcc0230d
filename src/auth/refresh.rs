//! Refresh tokens: the session lifecycle (reference §4).
//!
//! A session is one row: a login and its current *generation*. A refresh
//! token names its session and generation; presenting the current one
//! rotates the row to the next generation in one conditional `UPDATE`, so of
//! two concurrent uses exactly one rotates. An older generation is a replay:
//! the one just before the current, within `REFRESH_REUSE_GRACE` seconds of
//! the rotation (a second tab that raced the first), gets a fresh access
//! token and the session's *current* refresh token, so the session still has
//! one live token. Any other replay is reuse: the whole session is revoked,
//! which logs out both the thief and the victim's newest token. Storage per
//! session is constant however often it is refreshed.
//!
//! All functions are synchronous and take a connection: `Accounts` calls them
//! through the database runner, inside a write transaction where they write.

use crate::db::DbConn;

use super::{
    Client, Method,
    tokens::{Claims, Issuer, TokenPair},
};
use crate::{
    db::{
        models::{Session, User},
        sessions, users,
    },
    domain::{SessionId, UserId},
    error::AppError,
};

/// Starts a session for a user who just proved who they are.
pub fn start(
    conn: &mut DbConn,
    issuer: &Issuer,
    user: &User,
    client: &Client,
    methods: &[Method],
    now: i64,
) -> Result<TokenPair, AppError> {
    let session = Session {
        id: super::random_id(),
        user_id: user.id,
        generation: 1,
        created_at: now,
        last_used_at: now,
        rotated_at: now,
        expires_at: now + issuer.refresh_ttl().min(issuer.max_lifetime()),
        user_agent: client.user_agent.clone(),
        ip: client.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        revoked_at: None,
        auth_time: now,
        amr: Method::join(methods),
    };
    sessions::insert(conn, &session)?;
    users::record_login(conn, user.id, now)?;
    issuer.pair(user, &session, now)
}

/// Why a refresh was refused. Every variant answers the client the same way.
#[derive(Debug)]
pub enum Refused {
    /// Unknown, expired or revoked session, or a user who may not log in.
    Invalid,
    /// An old generation presented after the grace window; the session is
    /// now revoked.
    Reused { user_id: i32, session_id: String },
}

/// The session and generation a verified refresh token is for.
fn generation_of(conn: &mut DbConn, presented: &Claims) -> Result<Option<(String, i64)>, AppError> {
    match presented.generation {
        Some(generation) => Ok(Some((presented.sid.clone(), generation))),
        // Issued before the upgrade to one row per session.
        None => Ok(sessions::legacy_token(conn, &presented.jti)?),
    }
}

/// The rotation a verified refresh token asks for, for the PostgreSQL lane
/// (`db::rotations`); `None` for a token from before sessions were one row
/// (its generation must be looked up first), which takes `rotate`.
pub fn rotation(issuer: &Issuer, presented: &Claims, now: i64) -> Option<sessions::Rotation> {
    Some(sessions::Rotation {
        session_id: presented.sid.clone(),
        user_id: presented.user_id()?,
        generation: presented.generation?,
        now,
        expires_at: now + issuer.refresh_ttl(),
        max_lifetime: issuer.max_lifetime(),
    })
}

/// Exchanges a verified refresh token for a new pair. `reuse_grace` is
/// `REFRESH_REUSE_GRACE` in seconds. A reuse revokes the session and is
/// returned as a value, so the revocation commits.
pub fn rotate(
    conn: &mut DbConn,
    issuer: &Issuer,
    reuse_grace: i64,
    presented: &Claims,
    now: i64,
) -> Result<Result<(TokenPair, User), Refused>, AppError> {
    let (Some(user_id), Some((session_id, generation))) =
        (presented.user_id(), generation_of(conn, presented)?)
    else {
        return Ok(Err(Refused::Invalid));
    };
    let expires_at = now + issuer.refresh_ttl();
    let rotated = sessions::rotate_with_user(
        conn,
        &session_id,
        user_id,
        generation,
        now,
        expires_at,
        issuer.max_lifetime(),
    )?;
    let (current, user) = match rotated {
        Some(rotated) => rotated,
        None => match replayed(conn, user_id, &session_id, generation, reuse_grace, now)? {
            Ok(current) => {
                // Re-read the user: a new role shows in the new token.
                let Some(user) = users::find(conn, user_id)?.filter(|u| !u.disabled) else {
                    return Ok(Err(Refused::Invalid));
                };
                (current, user)
            }
            Err(refused) => {
                if let Refused::Reused {
                    user_id,
                    session_id,
                } = &refused
                {
                    tracing::warn!(user_id, session_id = %session_id, "refresh token reuse detected; session revoked");
                    metrics::counter!("portcullis_refresh_reuse_detected_total").increment(1);
                }
                return Ok(Err(refused));
            }
        },
    };
    Ok(Ok((issuer.pair(&user, &current, now)?, user)))
}

/// A token that did not rotate: a racing tab (the current session back), a
/// replay (the session revoked), or nothing of ours.
fn replayed(
    conn: &mut DbConn,
    user_id: i32,
    session_id: &str,
    generation: i64,
    reuse_grace: i64,
    now: i64,
) -> Result<Result<Session, Refused>, AppError> {
    let Some(session) = sessions::find(conn, session_id)? else {
        return Ok(Err(Refused::Invalid));
    };
    let enabled = users::find(conn, user_id)?.is_some_and(|u| !u.disabled);
    if session.user_id != user_id
        || session.revoked_at.is_some()
        || session.expires_at <= now
        || !enabled
        || generation >= session.generation
    {
        return Ok(Err(Refused::Invalid));
    }
    if generation == session.generation - 1 && now - session.rotated_at < reuse_grace {
        sessions::touch(conn, session_id, now)?;
        return Ok(Ok(session));
    }
    sessions::revoke(conn, session_id, user_id, now)?;
    Ok(Err(Refused::Reused {
        user_id,
        session_id: session_id.to_owned(),
    }))
}

/// Ends the session a refresh token belongs to (logout), whichever of its
/// generations the token is. Returns false when it is not one of ours.
pub fn end_by_token(conn: &mut DbConn, presented: &Claims, now: i64) -> Result<bool, AppError> {
    let (Some(user_id), Some((session_id, _))) =
        (presented.user_id(), generation_of(conn, presented)?)
    else {
        return Ok(false);
    };
    match sessions::find(conn, &session_id)? {
        Some(session) if session.user_id == user_id => {
            sessions::revoke(conn, &session_id, user_id, now)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Ends one of a user's sessions; returns whether it existed and was live.
pub fn end(
    conn: &mut DbConn,
    user: UserId,
    session: &SessionId,
    now: i64,
) -> Result<bool, AppError> {
    Ok(sessions::revoke(conn, session.as_str(), user.0, now)?)
}

/// Ends every session of a user except `keep`; returns how many ended.
pub fn end_all(
    conn: &mut DbConn,
    user: UserId,
    keep: Option<&SessionId>,
    now: i64,
) -> Result<usize, AppError> {
    Ok(sessions::revoke_all(
        conn,
        user.0,
        keep.map(SessionId::as_str),
        now,
    )?)
}

/// Whether `session` is still a live session of `user` (reference §4: the
/// re-checked routes).
pub fn is_live(
    conn: &mut DbConn,
    user: UserId,
    session: &SessionId,
    now: i64,
) -> Result<bool, AppError> {
    Ok(sessions::is_live(conn, session.as_str(), user.0, now)?)
}

/// How long ended sessions are kept, so a late replay is still recognised
/// (and logged) as reuse rather than as an unknown token.
pub const KEEP_ENDED_SECONDS: i64 = 7 * 24 * 60 * 60;

/// Deletes long-ended sessions and expired pre-upgrade tokens.
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize, AppError> {
    Ok(sessions::prune(conn, now, now - KEEP_ENDED_SECONDS)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth::tokens::TokenKeys, auth::tokens::TokenType, db, domain::Role};

    struct Fixture {
        _dir: tempfile::TempDir,
        pool: db::Pool,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&crate::config::DatabaseUrl::Sqlite(dir.path().join("t.db"))).unwrap();
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

    fn count(conn: &mut DbConn, table: &str) -> i64 {
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

    fn claims(issuer: &Issuer, pair: &TokenPair) -> Claims {
        issuer
            .keys()
            .verify(&pair.refresh_token, TokenType::Refresh)
            .unwrap()
    }

    #[test]
    fn a_thousand_rotations_keep_one_row_and_old_generations_stay_replays() {
        let f = fixture();
        let conn = &mut f.pool.get().unwrap();
        let issuer = issuer(3600);
        let user = users::create(conn, "alice", "x", Role::User, 0).unwrap();
        let now = chrono::Utc::now().timestamp();
        let first = start(conn, &issuer, &user, &device(), &[Method::Password], now).unwrap();
        let mut pair = first.clone();
        for _ in 0..1000 {
            let (next, _) = rotate(conn, &issuer, 0, &claims(&issuer, &pair), now)
                .unwrap()
                .unwrap();
            pair = next;
        }
        assert_eq!(count(conn, "sessions"), 1);
        // The first token, 1000 generations old: reuse, the session revoked.
        let replay = rotate(conn, &issuer, 0, &claims(&issuer, &first), now).unwrap();
        assert!(matches!(replay, Err(Refused::Reused { .. })));
        let newest = rotate(conn, &issuer, 0, &claims(&issuer, &pair), now).unwrap();
        assert!(matches!(newest, Err(Refused::Invalid)));
    }

    #[test]
    fn pruning_removes_long_ended_sessions_but_keeps_live_and_recent_ones() {
        let f = fixture();
        let conn = &mut f.pool.get().unwrap();
        let user = users::create(conn, "alice", "x", Role::User, 1_000).unwrap();
        // One session that expired long ago, one live one.
        start(
            conn,
            &issuer(10),
            &user,
            &device(),
            &[Method::Password],
            1_000,
        )
        .unwrap();
        let now = 10_000_000;
        let live = start(
            conn,
            &issuer(3_600),
            &user,
            &device(),
            &[Method::Password],
            now,
        )
        .unwrap();
        assert_eq!(count(conn, "sessions"), 2);
        assert_eq!(prune(conn, now).unwrap(), 1, "the long-expired session");
        assert_eq!(count(conn, "sessions"), 1);
        assert!(is_live(conn, UserId(user.id), &live.session_id, now).unwrap());
        // Revoked now: kept a week, so a replay is still recognised.
        end_all(conn, UserId(user.id), None, now).unwrap();
        assert_eq!(prune(conn, now + 60).unwrap(), 0);
        assert_eq!(prune(conn, now + KEEP_ENDED_SECONDS + 1).unwrap(), 1);
        assert_eq!(count(conn, "sessions"), 0);
    }
}
