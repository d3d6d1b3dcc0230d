//! Queries on `sessions` (one row per login) and `legacy_refresh_tokens`
//! (refresh tokens issued before sessions became one row). What a row means
//! for a presented token is decided in `auth::refresh`.

use diesel::{dsl::case_when, prelude::*};

use super::DbConn;

use super::{
    models::{Session, User},
    schema::{legacy_refresh_tokens as legacy, sessions as s, users},
};

pub fn insert(conn: &mut DbConn, session: &Session) -> QueryResult<()> {
    diesel::insert_into(s::table)
        .values(session)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Session>> {
    s::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .optional()
}

/// The rotation: moves `id` from `generation` to the next one, if that is
/// still its generation, it is live and its user is enabled. One statement,
/// so of two concurrent uses of one token exactly one rotates. The new
/// expiry is `expires_at`, but never later than `max_lifetime` seconds after
/// the session's login (`SESSION_MAX_LIFETIME`).
pub fn rotate(
    conn: &mut DbConn,
    id: &str,
    user_id: i32,
    generation: i64,
    now: i64,
    expires_at: i64,
    max_lifetime: i64,
) -> QueryResult<Option<Session>> {
    // Every refresh runs this: on the concrete connection (`db::concrete`).
    super::concrete!(conn, c => {
        let enabled = users::table
            .filter(users::id.eq(user_id))
            .filter(users::disabled.eq(false));
        diesel::update(
            s::table
                .filter(s::id.eq(id))
                .filter(s::user_id.eq(user_id))
                .filter(s::generation.eq(generation))
                .filter(s::revoked_at.is_null())
                .filter(s::expires_at.gt(now))
                .filter(diesel::dsl::exists(enabled)),
        )
        .set((
            s::generation.eq(s::generation + 1),
            s::last_used_at.eq(now),
            s::rotated_at.eq(now),
            s::expires_at.eq(case_when(
                (s::created_at + max_lifetime).lt(expires_at),
                s::created_at + max_lifetime,
            )
            .otherwise(expires_at)),
        ))
        .returning(Session::as_returning())
        .get_result(c)
        .optional()
    })
}

/// What both PostgreSQL rotation statements return: a `Rotated` row.
macro_rules! rotated_columns {
    () => {
        "s.id, s.user_id, s.generation, s.created_at, s.last_used_at, s.rotated_at, \
         s.expires_at, s.user_agent, s.ip, s.revoked_at, s.auth_time, s.amr, \
         u.username, u.password_hash, u.role, u.disabled, u.created_at AS user_created_at, \
         u.last_login_at"
    };
}

/// `rotate`, and the user it belongs to (re-read: a new role shows in the new
/// token). On PostgreSQL one statement (`UPDATE … FROM users … RETURNING`):
/// one round trip instead of two, and no transaction around it is needed.
/// On SQLite the same two statements as before, inside the writer's batch.
pub fn rotate_with_user(
    conn: &mut DbConn,
    id: &str,
    user_id: i32,
    generation: i64,
    now: i64,
    expires_at: i64,
    max_lifetime: i64,
) -> QueryResult<Option<(Session, User)>> {
    let DbConn::Pg(pg) = conn else {
        let Some(session) = rotate(conn, id, user_id, generation, now, expires_at, max_lifetime)?
        else {
            return Ok(None);
        };
        return Ok(super::users::find(conn, user_id)?.map(|user| (session, user)));
    };
    use diesel::sql_types::{BigInt, Integer, Text};
    let row: Option<Rotated> = diesel::sql_query(concat!(
        "UPDATE sessions AS s \
            SET generation = s.generation + 1, last_used_at = $4, rotated_at = $4, \
                expires_at = LEAST($5, s.created_at + $6) \
           FROM users AS u \
          WHERE s.id = $1 AND s.user_id = $2 AND s.generation = $3 AND s.revoked_at IS NULL \
            AND s.expires_at > $4 AND u.id = s.user_id AND NOT u.disabled \
      RETURNING ",
        rotated_columns!()
    ))
    .bind::<Text, _>(id)
    .bind::<Integer, _>(user_id)
    .bind::<BigInt, _>(generation)
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(expires_at)
    .bind::<BigInt, _>(max_lifetime)
    .get_result(pg)
    .optional()?;
    Ok(row.map(Rotated::split))
}

/// One rotation, as `rotate_with_user` takes it: for `rotate_many`.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub session_id: String,
    pub user_id: i32,
    pub generation: i64,
    pub now: i64,
    pub expires_at: i64,
    pub max_lifetime: i64,
}

/// PostgreSQL: many rotations in one statement, each row exactly the
/// conditions and changes of `rotate_with_user`'s statement (`UPDATE …
/// FROM unnest(…)`). Returns, for each rotation that matched, its index in
/// `rotations` with the rotated session and its user. A session must not be
/// given twice (only one of its rows could match). One statement: it commits
/// by itself before it returns.
pub fn rotate_many(
    pg: &mut diesel::PgConnection,
    rotations: &[Rotation],
) -> QueryResult<Vec<(usize, Session, User)>> {
    use diesel::sql_types::{Array, BigInt, Integer, Text};
    let column = |f: fn(&Rotation) -> i64| rotations.iter().map(f).collect::<Vec<i64>>();
    let index: Vec<i32> = (0..rotations.len())
        .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
        .collect();
    let rows: Vec<RotatedAt> = diesel::sql_query(concat!(
        "UPDATE sessions AS s \
            SET generation = s.generation + 1, last_used_at = v.now, rotated_at = v.now, \
                expires_at = LEAST(v.expires_at, s.created_at + v.max_lifetime) \
           FROM unnest($1::int4[], $2::text[], $3::int4[], $4::int8[], $5::int8[], $6::int8[], \
                       $7::int8[]) AS v(i, id, user_id, generation, now, expires_at, max_lifetime), \
                users AS u \
          WHERE s.id = v.id AND s.user_id = v.user_id AND s.generation = v.generation \
            AND s.revoked_at IS NULL AND s.expires_at > v.now \
            AND u.id = s.user_id AND NOT u.disabled \
      RETURNING v.i, ",
        rotated_columns!()
    ))
    .bind::<Array<Integer>, _>(index)
    .bind::<Array<Text>, _>(rotations.iter().map(|r| r.session_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(rotations.iter().map(|r| r.user_id).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(column(|r| r.generation))
    .bind::<Array<BigInt>, _>(column(|r| r.now))
    .bind::<Array<BigInt>, _>(column(|r| r.expires_at))
    .bind::<Array<BigInt>, _>(column(|r| r.max_lifetime))
    .load(pg)?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let i = usize::try_from(row.i).ok()?;
            let (session, user) = row.rotated.split();
            Some((i, session, user))
        })
        .collect())
}

/// A row of `rotate_many`: which rotation, and its result.
#[derive(QueryableByName)]
struct RotatedAt {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    i: i32,
    #[diesel(embed)]
    rotated: Rotated,
}

/// A row of `rotate_with_user`'s PostgreSQL statement.
#[derive(QueryableByName)]
struct Rotated {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    user_id: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    generation: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    created_at: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last_used_at: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rotated_at: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    expires_at: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    user_agent: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    ip: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    revoked_at: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    auth_time: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    amr: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    username: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    password_hash: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    role: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    disabled: bool,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    user_created_at: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    last_login_at: Option<i64>,
}

impl Rotated {
    fn split(self) -> (Session, User) {
        let user = User {
            id: self.user_id,
            username: self.username,
            password_hash: self.password_hash,
            // As `models::RoleColumn` reads it: anything else is a plain user.
            role: self.role.parse().unwrap_or(crate::domain::Role::User),
            disabled: self.disabled,
            created_at: self.user_created_at,
            last_login_at: self.last_login_at,
        };
        let session = Session {
            id: self.id,
            user_id: self.user_id,
            generation: self.generation,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            rotated_at: self.rotated_at,
            expires_at: self.expires_at,
            user_agent: self.user_agent,
            ip: self.ip,
            revoked_at: self.revoked_at,
            auth_time: self.auth_time,
            amr: self.amr,
        };
        (session, user)
    }
}

pub fn touch(conn: &mut DbConn, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(s::table.find(id))
        .set(s::last_used_at.eq(now))
        .execute(conn)
        .map(drop)
}

/// The session and generation a pre-upgrade refresh token (by `jti`) had.
pub fn legacy_token(conn: &mut DbConn, jti: &str) -> QueryResult<Option<(String, i64)>> {
    legacy::table
        .find(jti)
        .select((legacy::session_id, legacy::generation))
        .first(conn)
        .optional()
}

/// Revokes one session if it belongs to `user_id` and is not revoked yet;
/// returns whether it did.
pub fn revoke(conn: &mut DbConn, id: &str, user_id: i32, now: i64) -> QueryResult<bool> {
    diesel::update(
        s::table
            .filter(s::id.eq(id))
            .filter(s::user_id.eq(user_id))
            .filter(s::revoked_at.is_null()),
    )
    .set(s::revoked_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

/// Revokes every live session of a user, except `keep` if given; returns how many.
pub fn revoke_all(
    conn: &mut DbConn,
    user_id: i32,
    keep: Option<&str>,
    now: i64,
) -> QueryResult<usize> {
    let query = s::table
        .filter(s::user_id.eq(user_id))
        .filter(s::revoked_at.is_null());
    match keep {
        Some(keep) => diesel::update(query.filter(s::id.ne(keep)))
            .set(s::revoked_at.eq(now))
            .execute(conn),
        None => diesel::update(query)
            .set(s::revoked_at.eq(now))
            .execute(conn),
    }
}

/// Whether `id` is a live session of `user_id`: not revoked, not expired.
pub fn is_live(conn: &mut DbConn, id: &str, user_id: i32, now: i64) -> QueryResult<bool> {
    // Every re-checked page asks: on the concrete connection (`db::concrete`).
    super::concrete!(conn, c => s::table
        .filter(s::id.eq(id))
        .filter(s::user_id.eq(user_id))
        .filter(s::revoked_at.is_null())
        .filter(s::expires_at.gt(now))
        .count()
        .get_result::<i64>(c)
        .map(|n| n == 1))
}

/// When `id`, a live session of `user_id`, last authenticated; `None` when it
/// is not live.
pub fn auth_time_if_live(
    conn: &mut DbConn,
    id: &str,
    user_id: i32,
    now: i64,
) -> QueryResult<Option<i64>> {
    // Every re-checked page asks: on the concrete connection (`db::concrete`).
    super::concrete!(conn, c => s::table
        .filter(s::id.eq(id))
        .filter(s::user_id.eq(user_id))
        .filter(s::revoked_at.is_null())
        .filter(s::expires_at.gt(now))
        .select(s::auth_time)
        .first::<i64>(c)
        .optional())
}

/// Records a new authentication in a live session; `None` when it is not
/// live (the updated row otherwise).
pub fn reauthenticate(
    conn: &mut DbConn,
    id: &str,
    user_id: i32,
    amr: &str,
    now: i64,
) -> QueryResult<Option<Session>> {
    // RETURNING needs the concrete connection (`db::concrete`).
    super::concrete!(conn, c => diesel::update(
        s::table
            .filter(s::id.eq(id))
            .filter(s::user_id.eq(user_id))
            .filter(s::revoked_at.is_null())
            .filter(s::expires_at.gt(now)),
    )
    .set((s::auth_time.eq(now), s::amr.eq(amr), s::last_used_at.eq(now)))
    .returning(Session::as_returning())
    .get_result(c)
    .optional())
}

/// The user's live sessions, most recently used first.
pub fn active(conn: &mut DbConn, user_id: i32, now: i64) -> QueryResult<Vec<Session>> {
    s::table
        .filter(s::user_id.eq(user_id))
        .filter(s::revoked_at.is_null())
        .filter(s::expires_at.gt(now))
        .order(s::last_used_at.desc())
        .select(Session::as_select())
        .load(conn)
}

/// Deletes sessions that ended (revoked or expired) before `ended_before`,
/// and pre-upgrade tokens past their expiry. Recently ended sessions are
/// kept so a replayed token is still recognised as reuse (and logged)
/// rather than as an unknown token.
pub fn prune(conn: &mut DbConn, now: i64, ended_before: i64) -> QueryResult<usize> {
    let tokens = diesel::delete(legacy::table.filter(legacy::expires_at.le(now))).execute(conn)?;
    let sessions = diesel::delete(
        s::table.filter(
            s::revoked_at
                .le(ended_before)
                .or(s::expires_at.le(ended_before)),
        ),
    )
    .execute(conn)?;
    Ok(tokens + sessions)
}
