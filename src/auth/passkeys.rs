//! Passkeys (WebAuthn, reference §8): adding them to an account, signing in
//! with one (discoverable credentials, user verification required) and
//! re-authenticating with one. The ceremony state webauthn-rs hands out at
//! a start stays in the database (`webauthn_ceremonies`) until its finish:
//! used once, for `CEREMONY_TTL` seconds, and only by the kind and user it
//! was started for.
//!
//! Never log a credential, a challenge or a ceremony's state: ids and
//! outcomes only. Every refusal of a presented credential is the one
//! `PasskeyError::Refused`, whatever was wrong with it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, DiscoverableAuthentication, Passkey,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::{ResidentKeyRequirement, UserVerificationPolicy};

use super::{
    Accounts, Client, Identity,
    audit::{Event, Note},
};
use crate::{
    db::{
        models::User,
        passkeys::{self, Ceremony, NewPasskey},
        users,
    },
    domain::UserId,
    error::AppError,
};

/// How long a ceremony may take between its start and its finish.
pub const CEREMONY_TTL: i64 = 300;

/// The longest passkey name, in characters.
pub const NAME_MAX: usize = 64;

/// The relying party of every ceremony, built once at start-up: a
/// `WEBAUTHN_RP_ID` that is not the domain of `PUBLIC_ORIGIN` is a
/// configuration error there, not a surprise at the first passkey.
pub fn relying_party(rp_id: &str, origin: &Url) -> anyhow::Result<Webauthn> {
    WebauthnBuilder::new(rp_id, origin)
        .and_then(|b| b.rp_name("Portcullis").build())
        .map_err(|e| {
            anyhow::anyhow!("invalid setting WEBAUTHN_RP_ID or PUBLIC_ORIGIN for passkeys: {e}")
        })
}

/// A passkey's name as the user gave it: trimmed, 1 to `NAME_MAX`
/// characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyNameError {
    #[error("Please give the passkey a name.")]
    Empty,
    #[error("The name can be at most {NAME_MAX} characters long.")]
    TooLong,
    #[error("The name cannot contain control characters.")]
    Control,
}

impl PasskeyName {
    pub fn parse(raw: &str) -> Result<Self, PasskeyNameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(PasskeyNameError::Empty);
        }
        if name.chars().count() > NAME_MAX {
            return Err(PasskeyNameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(PasskeyNameError::Control);
        }
        Ok(PasskeyName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A started ceremony, as the browser's script gets it:
/// `{"ceremony": id, "publicKey": {...}}`.
#[derive(Debug, Serialize)]
pub struct Challenge<T> {
    pub ceremony: String,
    #[serde(flatten)]
    pub options: T,
}

/// Why a finish did not succeed.
#[derive(Debug)]
pub enum PasskeyError {
    /// Unknown, used or expired ceremony, a credential that does not verify,
    /// belongs to no one (or someone else), or a user who may not log in:
    /// one answer for all.
    Refused,
    Failed(AppError),
}

impl From<AppError> for PasskeyError {
    fn from(e: AppError) -> Self {
        PasskeyError::Failed(e)
    }
}

/// One of a user's passkeys, for the account page.
#[derive(Debug, Clone)]
pub struct PasskeyInfo {
    pub id: i32,
    pub name: String,
    pub created: i64,
    pub last_used: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Register,
    Login,
    Reauth,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::Login => "login",
            Kind::Reauth => "reauth",
        }
    }
}

/// A registration's state, with the user handle it was started with.
#[derive(Serialize, Deserialize)]
struct Registering {
    user_handle: Uuid,
    state: PasskeyRegistration,
}

fn credential_text(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn refused(why: &str) -> PasskeyError {
    tracing::info!(reason = why, "passkey refused");
    PasskeyError::Refused
}

impl Accounts {
    /// Starts adding a passkey named `name` for `user` (whose session the
    /// caller has checked). The options require a discoverable credential
    /// and user verification: the login names no user.
    pub async fn start_passkey_registration(
        &self,
        user: &User,
        name: PasskeyName,
    ) -> Result<Challenge<CreationChallengeResponse>, AppError> {
        let user_id = user.id;
        let existing = self
            .db
            .read(move |conn| Ok(passkeys::of_user(conn, user_id)?))
            .await?;
        let user_handle = match existing.first() {
            Some(row) => Uuid::parse_str(&row.user_handle).map_err(AppError::internal)?,
            None => Uuid::new_v4(),
        };
        let exclude: Vec<CredentialID> = existing
            .iter()
            .filter_map(|row| URL_SAFE_NO_PAD.decode(&row.credential_id).ok())
            .collect();
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(user_handle, &user.username, &user.username, Some(exclude))
            .map_err(AppError::internal)?;
        // webauthn-rs asks for a non-resident key; a passkey login finds the
        // credential by itself, so it must be stored on the authenticator.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
            selection.user_verification = UserVerificationPolicy::Required;
        }
        let state = serde_json::to_string(&Registering { user_handle, state })
            .map_err(AppError::internal)?;
        let ceremony = self
            .store_ceremony(Kind::Register, Some(user_id), state, name.0)
            .await?;
        Ok(Challenge { ceremony, options })
    }

    /// Finishes adding a passkey: the ceremony must be a live registration
    /// of this user's, and the credential must verify against it.
    pub async fn finish_passkey_registration(
        &self,
        client: &Client,
        who: &Identity,
        ceremony: &str,
        credential: serde_json::Value,
    ) -> Result<PasskeyInfo, PasskeyError> {
        let user = who.user_id;
        let Some(taken) = self
            .take_ceremony(Kind::Register, Some(user), ceremony)
            .await?
        else {
            return Err(refused("no such registration"));
        };
        let Ok(credential) = serde_json::from_value::<RegisterPublicKeyCredential>(credential)
        else {
            return Err(refused("malformed registration"));
        };
        let registering: Registering =
            serde_json::from_str(&taken.state).map_err(AppError::internal)?;
        let passkey = match self
            .webauthn
            .finish_passkey_registration(&credential, &registering.state)
        {
            Ok(passkey) => passkey,
            Err(e) => {
                tracing::info!(user_id = %user, error = %e, "passkey registration refused");
                return Err(PasskeyError::Refused);
            }
        };
        let credential_id = credential_text(passkey.cred_id());
        let stored = serde_json::to_string(&passkey).map_err(AppError::internal)?;
        let (handle, name, now) = (
            registering.user_handle.to_string(),
            taken.name,
            self.issuer.now(),
        );
        let info_name = name.clone();
        let note = Note::new(Event::PasskeyAdded, now)
            .from(client)
            .by(who)
            .target(user.0, &who.username)
            .detail(&name);
        let added = self
            .db
            .write(move |conn| {
                if passkeys::find_by_credential(conn, &credential_id)?.is_some() {
                    return Ok(None);
                }
                note.write(conn)?;
                passkeys::insert(
                    conn,
                    &NewPasskey {
                        user_id: user.0,
                        credential_id: &credential_id,
                        user_handle: &handle,
                        name: &name,
                        passkey: &stored,
                        created_at: now,
                    },
                )?;
                Ok(passkeys::find_by_credential(conn, &credential_id)?)
            })
            .await?;
        let Some(row) = added else {
            return Err(refused("credential already registered"));
        };
        tracing::info!(user_id = %user, passkey = row.id, "passkey added");
        Ok(PasskeyInfo {
            id: row.id,
            name: info_name,
            created: row.created_at,
            last_used: None,
        })
    }

    /// Starts a passkey login: the authenticator offers its own credentials
    /// for this site (no user is named).
    pub async fn start_passkey_login(
        &self,
    ) -> Result<Challenge<RequestChallengeResponse>, AppError> {
        self.start_discoverable(Kind::Login, None).await
    }

    /// Finishes a passkey login: the user to open a session for.
    pub async fn finish_passkey_login(
        &self,
        ceremony: &str,
        credential: serde_json::Value,
    ) -> Result<User, PasskeyError> {
        let user = self
            .finish_discoverable(Kind::Login, None, ceremony, credential)
            .await?;
        tracing::info!(user_id = user.id, "passkey login succeeded");
        metrics::counter!("portcullis_logins_total", "outcome" => "passkey").increment(1);
        Ok(user)
    }

    /// Starts a re-authentication of `user` with a passkey.
    pub async fn start_passkey_reauth(
        &self,
        user: UserId,
    ) -> Result<Challenge<RequestChallengeResponse>, AppError> {
        self.start_discoverable(Kind::Reauth, Some(user)).await
    }

    /// Finishes a re-authentication: the passkey must be one of `user`'s.
    /// The caller records it in the session (`reauthenticated`).
    pub async fn finish_passkey_reauth(
        &self,
        user: UserId,
        ceremony: &str,
        credential: serde_json::Value,
    ) -> Result<(), PasskeyError> {
        self.finish_discoverable(Kind::Reauth, Some(user), ceremony, credential)
            .await
            .map(drop)
    }

    /// The user's passkeys, oldest first.
    pub async fn passkeys_of(&self, user: UserId) -> Result<Vec<PasskeyInfo>, AppError> {
        let rows = self
            .db
            .read(move |conn| Ok(passkeys::of_user(conn, user.0)?))
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| PasskeyInfo {
                id: row.id,
                name: row.name,
                created: row.created_at,
                last_used: row.last_used_at,
            })
            .collect())
    }

    /// Renames one of the user's passkeys; `false` if it is not theirs.
    pub async fn rename_passkey(
        &self,
        user: UserId,
        id: i32,
        name: PasskeyName,
    ) -> Result<bool, AppError> {
        self.db
            .write(move |conn| Ok(passkeys::rename(conn, user.0, id, name.as_str())?))
            .await
    }

    /// Removes one of the user's passkeys; `false` if it is not theirs.
    pub async fn remove_passkey(
        &self,
        client: &Client,
        who: &Identity,
        id: i32,
    ) -> Result<bool, AppError> {
        let user = who.user_id;
        let note = Note::new(Event::PasskeyRemoved, self.issuer.now())
            .from(client)
            .by(who)
            .target(user.0, &who.username);
        let removed = self
            .db
            .write(move |conn| {
                let name = passkeys::name_of(conn, user.0, id)?;
                let removed = passkeys::remove(conn, user.0, id)?;
                if removed {
                    note.detail(&name.unwrap_or_default()).write(conn)?;
                }
                Ok(removed)
            })
            .await?;
        if removed {
            tracing::info!(user_id = %user, passkey = id, "passkey removed");
        }
        Ok(removed)
    }

    async fn start_discoverable(
        &self,
        kind: Kind,
        user: Option<UserId>,
    ) -> Result<Challenge<RequestChallengeResponse>, AppError> {
        let (mut options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(AppError::internal)?;
        // A button starts the ceremony, not the username field's autofill.
        options.mediation = None;
        let state = serde_json::to_string(&state).map_err(AppError::internal)?;
        let ceremony = self
            .store_ceremony(kind, user.map(|u| u.0), state, String::new())
            .await?;
        Ok(Challenge { ceremony, options })
    }

    /// The discoverable finish of a login or re-authentication: the
    /// credential is found by its id, must carry the user handle it was
    /// registered with, verify against the ceremony (user verified), and
    /// belong to an enabled user (`user`, when given). Its counter is kept.
    async fn finish_discoverable(
        &self,
        kind: Kind,
        user: Option<UserId>,
        ceremony: &str,
        credential: serde_json::Value,
    ) -> Result<User, PasskeyError> {
        let Some(taken) = self.take_ceremony(kind, user, ceremony).await? else {
            return Err(refused("no such ceremony"));
        };
        let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(credential) else {
            return Err(refused("malformed credential"));
        };
        let state: DiscoverableAuthentication =
            serde_json::from_str(&taken.state).map_err(AppError::internal)?;
        let Ok((handle, credential_id)) = self
            .webauthn
            .identify_discoverable_authentication(&credential)
        else {
            return Err(refused("no user handle"));
        };
        let credential_id = credential_text(credential_id);
        let row = self
            .db
            .read(move |conn| Ok(passkeys::find_by_credential(conn, &credential_id)?))
            .await?;
        let Some(row) = row else {
            return Err(refused("unknown credential"));
        };
        if row.user_handle != handle.to_string() {
            return Err(refused("user handle mismatch"));
        }
        if user.is_some_and(|u| u.0 != row.user_id) {
            return Err(refused("another user's passkey"));
        }
        let mut passkey: Passkey =
            serde_json::from_str(&row.passkey).map_err(AppError::internal)?;
        let result =
            match self
                .webauthn
                .finish_discoverable_authentication_v2(&credential, state, &passkey)
            {
                Ok(result) => result,
                Err(e) => {
                    tracing::info!(user_id = row.user_id, error = %e, "passkey assertion refused");
                    return Err(PasskeyError::Refused);
                }
            };
        passkey.update_credential(&result);
        let stored = serde_json::to_string(&passkey).map_err(AppError::internal)?;
        let (id, user_id, now) = (row.id, row.user_id, self.issuer.now());
        let found = self
            .db
            .write(move |conn| {
                passkeys::record_use(conn, id, &stored, now)?;
                Ok(users::find(conn, user_id)?)
            })
            .await?;
        match found {
            Some(user) if !user.disabled => Ok(user),
            _ => Err(refused("user missing or disabled")),
        }
    }

    async fn store_ceremony(
        &self,
        kind: Kind,
        user_id: Option<i32>,
        state: String,
        name: String,
    ) -> Result<String, AppError> {
        let now = self.issuer.now();
        let ceremony = Ceremony {
            id: super::random_id(),
            user_id,
            kind: kind.as_str().to_owned(),
            state,
            name,
            expires_at: now + CEREMONY_TTL,
        };
        let id = ceremony.id.clone();
        self.db
            .write(move |conn| {
                // Abandoned ceremonies go as new ones come.
                passkeys::prune_ceremonies(conn, now)?;
                passkeys::insert_ceremony(conn, &ceremony)?;
                Ok(())
            })
            .await?;
        Ok(id)
    }

    async fn take_ceremony(
        &self,
        kind: Kind,
        user: Option<UserId>,
        id: &str,
    ) -> Result<Option<Ceremony>, AppError> {
        let (id, now) = (id.to_owned(), self.issuer.now());
        self.db
            .write(move |conn| {
                Ok(passkeys::take_ceremony(
                    conn,
                    &id,
                    kind.as_str(),
                    user.map(|u| u.0),
                    now,
                )?)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PasskeyName::parse("  Laptop ").unwrap().as_str(), "Laptop");
        assert_eq!(PasskeyName::parse("   "), Err(PasskeyNameError::Empty));
        assert!(PasskeyName::parse(&"é".repeat(NAME_MAX)).is_ok());
        assert_eq!(
            PasskeyName::parse(&"é".repeat(NAME_MAX + 1)),
            Err(PasskeyNameError::TooLong)
        );
        assert_eq!(
            PasskeyName::parse("a\u{7}b"),
            Err(PasskeyNameError::Control)
        );
    }

    #[test]
    fn the_relying_party_must_be_the_origins_domain() {
        let origin = Url::parse("https://example.com").unwrap();
        assert!(relying_party("example.com", &origin).is_ok());
        assert!(relying_party("other.org", &origin).is_err());
    }
}
