//! `Username`: 3 to 32 ASCII letters, digits, `_`, `-` or `.`.
//!
//! Kept as entered (for display); uniqueness ignores case, which the database
//! enforces with `COLLATE NOCASE` on the column.

use std::fmt;

pub const MIN_LEN: usize = 3;
pub const MAX_LEN: usize = 32;

/// The most characters of a typed username that are ever kept for display
/// (re-rendered forms) or as a key (the login throttle): a longer one is
/// invalid anyway, and a 10 kB username must not make a 10 kB value.
pub const ECHO_MAX_CHARS: usize = 2 * MAX_LEN;

/// What was typed as a username, capped at `ECHO_MAX_CHARS` characters.
pub fn echo(raw: &str) -> String {
    raw.chars().take(ECHO_MAX_CHARS).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("Username must be at least {MIN_LEN} characters long.")]
    TooShort,
    #[error("Username must be at most {MAX_LEN} characters long.")]
    TooLong,
    #[error("Username may only contain letters, digits, '_', '-' and '.'.")]
    InvalidCharacter,
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        // Checked on bytes first so a 10 MB string is rejected without scanning it all.
        if raw.len() > MAX_LEN && raw.is_ascii() {
            return Err(UsernameError::TooLong);
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(UsernameError::InvalidCharacter);
        }
        match raw.len() {
            n if n < MIN_LEN => Err(UsernameError::TooShort),
            n if n > MAX_LEN => Err(UsernameError::TooLong),
            _ => Ok(Self(raw.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_and_the_three_punctuation_marks() {
        for ok in ["abc", "Alice", "bob_the-builder.2", "A.B", &"x".repeat(32)] {
            assert_eq!(Username::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn keeps_the_case_as_entered() {
        assert_eq!(Username::parse("AlIcE").unwrap().to_string(), "AlIcE");
    }

    #[test]
    fn rejects_too_short_and_too_long() {
        assert_eq!(Username::parse(""), Err(UsernameError::TooShort));
        assert_eq!(Username::parse("ab"), Err(UsernameError::TooShort));
        assert_eq!(
            Username::parse(&"a".repeat(33)),
            Err(UsernameError::TooLong)
        );
        assert_eq!(
            Username::parse(&"a".repeat(10_000)),
            Err(UsernameError::TooLong)
        );
    }

    #[test]
    fn rejects_anything_outside_the_allowed_ascii_set() {
        for bad in [
            "al ice", "alice!", "<script>", "al\0ice", "ålice",
            "аlice", // Cyrillic а, a confusable
            "alice'--", "a/b",
        ] {
            assert_eq!(
                Username::parse(bad),
                Err(UsernameError::InvalidCharacter),
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(raw in "\\PC*") {
            let _ = Username::parse(&raw);
        }

        #[test]
        fn any_allowed_name_parses_and_round_trips(raw in "[A-Za-z0-9_.-]{3,32}") {
            let parsed = Username::parse(&raw).unwrap();
            proptest::prop_assert_eq!(parsed.as_str(), raw.as_str());
        }

        #[test]
        fn whatever_parses_obeys_the_rules(raw in ".{0,40}") {
            if let Ok(name) = Username::parse(&raw) {
                proptest::prop_assert!((MIN_LEN..=MAX_LEN).contains(&name.as_str().len()));
                proptest::prop_assert!(name.as_str().chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)));
            }
        }
    }
}
