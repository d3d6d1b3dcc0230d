//! `Password`: a new password that satisfies the rules of reference §2.
//!
//! 8 characters (Unicode scalar values) to 72 bytes: bcrypt ignores every byte
//! after the 72nd, so a longer password is refused rather than silently cut.
//! Not the username, not a common password. The value never appears in `Debug`.

use std::fmt;

pub const MIN_CHARS: usize = 8;
pub const MAX_BYTES: usize = 72;

#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("Password must be at least {MIN_CHARS} characters long.")]
    TooShort,
    #[error("Password must be at most {MAX_BYTES} bytes long (bcrypt's limit).")]
    TooLong,
    #[error("Password must not contain control characters.")]
    ControlCharacter,
    #[error("Password must not be the same as the username.")]
    SameAsUsername,
    #[error("This password is too common; choose one that is harder to guess.")]
    TooCommon,
}

impl Password {
    /// Parses a password chosen for `username` (registration, password change, CLI).
    pub fn parse(raw: &str, username: &str) -> Result<Self, PasswordError> {
        if raw.len() > MAX_BYTES {
            return Err(PasswordError::TooLong);
        }
        if raw.chars().count() < MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        // A NUL byte would end the C string bcrypt hashes; other controls are
        // almost always a paste accident and cannot be typed at a login form.
        if raw.chars().any(char::is_control) {
            return Err(PasswordError::ControlCharacter);
        }
        if raw.eq_ignore_ascii_case(username) {
            return Err(PasswordError::SameAsUsername);
        }
        if is_common(raw) {
            return Err(PasswordError::TooCommon);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The bundled list (about 100,000 leaked passwords) is mostly lower case;
/// `Password123` is no harder to guess than `password123`.
fn is_common(raw: &str) -> bool {
    passwords::analyzer::is_common_password(raw)
        || passwords::analyzer::is_common_password(raw.to_lowercase())
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> &'static str {
        "alice"
    }

    #[test]
    fn accepts_an_uncommon_password_of_eight_characters() {
        assert!(Password::parse("xK9#mQ2v", alice()).is_ok());
        assert!(Password::parse("correct horse battery staple", alice()).is_ok());
    }

    #[test]
    fn counts_characters_not_bytes_for_the_minimum() {
        // 8 characters, 16 bytes: long enough.
        assert!(Password::parse("ééééééé9", alice()).is_ok());
        // 7 characters, 14 bytes: too short even though it has 14 bytes.
        assert_eq!(
            Password::parse("éééééé9", alice()).unwrap_err(),
            PasswordError::TooShort
        );
    }

    #[test]
    fn refuses_more_than_72_bytes_instead_of_truncating() {
        let exactly_72 = format!("{}Zq", "k3".repeat(35));
        assert_eq!(exactly_72.len(), 72);
        assert!(Password::parse(&exactly_72, alice()).is_ok());
        let too_long = format!("{exactly_72}x");
        assert_eq!(
            Password::parse(&too_long, alice()).unwrap_err(),
            PasswordError::TooLong
        );
        // 37 two-byte characters: 37 characters but 74 bytes.
        assert_eq!(
            Password::parse(&"é".repeat(37), alice()).unwrap_err(),
            PasswordError::TooLong
        );
    }

    #[test]
    fn refuses_the_username_in_any_case() {
        assert_eq!(
            Password::parse("bartholomew", "Bartholomew").unwrap_err(),
            PasswordError::SameAsUsername
        );
    }

    #[test]
    fn refuses_common_passwords() {
        for common in [
            "password123",
            "qwertyuiop",
            "Password123",
            "iloveyou",
            "12345678",
        ] {
            assert_eq!(
                Password::parse(common, alice()).unwrap_err(),
                PasswordError::TooCommon,
                "{common}"
            );
        }
    }

    #[test]
    fn refuses_control_characters() {
        assert_eq!(
            Password::parse("abc\0defghij", alice()).unwrap_err(),
            PasswordError::ControlCharacter
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let p = Password::parse("xK9#mQ2v", alice()).unwrap();
        assert!(!format!("{p:?}").contains("xK9"));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(raw in "\\PC*", user in "\\PC{0,40}") {
            let _ = Password::parse(&raw, &user);
        }

        #[test]
        fn whatever_parses_obeys_the_rules_and_round_trips(raw in "\\PC{0,80}") {
            if let Ok(p) = Password::parse(&raw, "alice") {
                proptest::prop_assert_eq!(p.expose(), raw.as_str());
                proptest::prop_assert!(raw.len() <= MAX_BYTES);
                proptest::prop_assert!(raw.chars().count() >= MIN_CHARS);
            }
        }

        #[test]
        fn long_random_passwords_are_accepted(raw in "[a-zA-Z0-9]{24,40}[#!]") {
            proptest::prop_assert!(Password::parse(&raw, "alice").is_ok());
        }
    }
}
