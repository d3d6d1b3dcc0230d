//! bcrypt hashing and verification. These functions are CPU-bound on purpose
//! and must only be called from the blocking pool (`AppState::bcrypt`).

use std::{collections::HashMap, sync::Mutex, sync::OnceLock};

use crate::domain::Password;

pub fn hash(password: &Password, cost: u32) -> Result<String, bcrypt::BcryptError> {
    // `Password` is at most 72 bytes, so bcrypt uses all of it. (The
    // `non_truncating_*` variants count bcrypt's trailing NUL and would refuse
    // a 72-byte password the contract accepts.)
    bcrypt::hash(password.expose(), cost)
}

/// Checks a login attempt. `hash` is `None` for an unknown user: we still pay
/// for a full bcrypt verification against a dummy hash of the same cost, so
/// response time does not reveal whether the username exists.
pub fn verify(attempt: &str, hash: Option<&str>, cost: u32) -> bool {
    let Some(hash) = hash else {
        let _ = bcrypt::verify(attempt.as_bytes(), &dummy_hash(cost));
        return false;
    };
    // A login attempt over 72 bytes cannot match a password we accepted;
    // refusing it here keeps bcrypt from comparing a truncated prefix.
    if attempt.len() > crate::domain::PASSWORD_MAX_BYTES {
        let _ = bcrypt::verify(b"", hash);
        return false;
    }
    bcrypt::verify(attempt.as_bytes(), hash).unwrap_or(false)
}

fn dummy_hash(cost: u32) -> String {
    static DUMMIES: OnceLock<Mutex<HashMap<u32, String>>> = OnceLock::new();
    let map = DUMMIES.get_or_init(Default::default);
    if let Some(hash) = map.lock().ok().and_then(|m| m.get(&cost).cloned()) {
        return hash;
    }
    let fresh = bcrypt::hash(crate::auth::random_id(), cost).unwrap_or_default();
    if let Ok(mut m) = map.lock() {
        m.entry(cost).or_insert_with(|| fresh.clone());
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let pw = Password::parse("xK9#mQ2v-long", "alice").unwrap();
        let h = hash(&pw, 4).unwrap();
        assert!(verify("xK9#mQ2v-long", Some(&h), 4));
        assert!(!verify("xK9#mQ2v-lonG", Some(&h), 4));
        assert!(!verify("", Some(&h), 4));
    }

    #[test]
    fn unknown_users_never_verify() {
        assert!(!verify("anything", None, 4));
    }

    #[test]
    fn an_attempt_longer_than_72_bytes_never_matches_its_prefix() {
        let exactly_72 = "k3".repeat(36);
        let pw = Password::parse(&exactly_72, "alice").unwrap();
        let h = hash(&pw, 4).unwrap();
        assert!(verify(&exactly_72, Some(&h), 4));
        assert!(!verify(&format!("{exactly_72}extra"), Some(&h), 4));
    }
}
