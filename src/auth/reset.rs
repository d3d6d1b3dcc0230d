//! Password reset without email (reference §9): an administrator (or the
//! CLI) creates a one-time link `/reset/<token>`, valid for 24 hours; only
//! the token's SHA-256 is kept, and a new link retires the previous one.
//! Using it sets the password and ends every session of the user.

use sha2::{Digest, Sha256};

use super::{
    Client, Identity,
    accounts::Accounts,
    audit::{Event, Note},
    random_id, refresh,
};
use crate::{
    db::{reset_links, users},
    domain::{Password, PasswordError, UserId},
    error::AppError,
};

/// How long a reset link works.
pub const RESET_TTL: i64 = 24 * 60 * 60;

/// A new link's token, shown once (`/reset/<token>`).
pub struct ResetToken(pub String);

impl std::fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetToken(<redacted>)")
    }
}

#[derive(Debug)]
pub enum ResetError {
    /// Wrong, used or expired: one answer for all.
    NotFound,
    Invalid(PasswordError),
    Failed(AppError),
}

impl From<AppError> for ResetError {
    fn from(e: AppError) -> Self {
        ResetError::Failed(e)
    }
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Accounts {
    /// A new reset link for the user named `name` (the CLI, the operator);
    /// `None` when there is no such user.
    pub async fn reset_link_for_name(
        &self,
        name: &str,
    ) -> Result<Option<(String, ResetToken)>, AppError> {
        let name = name.to_owned();
        let user = self
            .db
            .read(move |conn| Ok(users::find_by_username(conn, &name)?))
            .await?;
        let Some(user) = user else {
            return Ok(None);
        };
        let note = Note::new(Event::PasswordResetLinkCreated, self.now())
            .target(user.id, &user.username)
            .detail("by the command line");
        let token = self.new_reset_link(user.id, note).await?;
        Ok(Some((user.username, token)))
    }

    /// A new reset link for a user, by an administrator (the web layer
    /// checks the role and a recent authentication); `None`: no such user.
    pub async fn reset_link_by_admin(
        &self,
        client: &Client,
        admin: &Identity,
        target: UserId,
    ) -> Result<Option<(String, ResetToken)>, AppError> {
        let user = self
            .db
            .read(move |conn| Ok(users::find(conn, target.0)?))
            .await?;
        let Some(user) = user else {
            return Ok(None);
        };
        let note = Note::new(Event::PasswordResetLinkCreated, self.now())
            .from(client)
            .by(admin)
            .target(user.id, &user.username);
        let token = self.new_reset_link(user.id, note).await?;
        tracing::info!(admin_id = %admin.user_id, target_id = user.id, "password reset link created");
        Ok(Some((user.username, token)))
    }

    async fn new_reset_link(&self, user_id: i32, note: Note) -> Result<ResetToken, AppError> {
        let token = random_id();
        let (hashed, now) = (hash(&token), self.now());
        self.db
            .write(move |conn| {
                reset_links::replace(conn, user_id, &hashed, now, now + RESET_TTL)?;
                note.write(conn)
            })
            .await?;
        Ok(ResetToken(token))
    }

    /// The username a live link is for (the form shows it); `None` for a
    /// wrong, used or expired token.
    pub async fn reset_link_user(&self, token: &str) -> Result<Option<String>, AppError> {
        let (hashed, now) = (hash(token), self.now());
        self.db
            .read(move |conn| {
                let Some(user_id) = reset_links::user_of(conn, &hashed, now)? else {
                    return Ok(None);
                };
                Ok(users::find(conn, user_id)?.map(|u| u.username))
            })
            .await
    }

    /// Sets a new password through a link: validated like registration, the
    /// link used up and every session of the user ended, in one transaction.
    pub async fn reset_password(
        &self,
        client: &Client,
        token: &str,
        new: &str,
    ) -> Result<String, ResetError> {
        let Some(username) = self.reset_link_user(token).await? else {
            return Err(ResetError::NotFound);
        };
        let password = Password::parse(new, &username).map_err(ResetError::Invalid)?;
        let new_hash = self.hasher.hash(password, None).await?;
        let (hashed, now) = (hash(token), self.now());
        let (note, name) = (
            Note::new(Event::PasswordReset, now).from(client),
            username.clone(),
        );
        let user_id = self
            .db
            .write(move |conn| {
                let Some(user_id) = reset_links::user_of(conn, &hashed, now)? else {
                    return Ok(None);
                };
                if !reset_links::take(conn, &hashed, now)? {
                    return Ok(None);
                }
                users::set_password_hash(conn, user_id, &new_hash)?;
                refresh::end_all(conn, UserId(user_id), None, now)?;
                note.user(user_id, &name).write(conn)?;
                Ok(Some(user_id))
            })
            .await?;
        let Some(user_id) = user_id else {
            return Err(ResetError::NotFound);
        };
        tracing::info!(
            user_id,
            "password reset through a link; every session ended"
        );
        Ok(username)
    }
}
