//! Form errors, and the limits forms show (`minlength`/`maxlength`, rules).

use crate::domain::{PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS, USERNAME_MAX_LEN, USERNAME_MIN_LEN};

/// Limits shown in forms (`minlength`/`maxlength`) and in the password rules.
pub struct Limits;

impl Limits {
    pub const USERNAME_MIN: usize = USERNAME_MIN_LEN;
    pub const USERNAME_MAX: usize = USERNAME_MAX_LEN;
    pub const PASSWORD_MIN: usize = PASSWORD_MIN_CHARS;
    pub const PASSWORD_MAX: usize = PASSWORD_MAX_BYTES;
}

/// A problem with one field of a submitted form.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct FormErrors(pub Vec<FieldError>);

impl FormErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn all(&self) -> &[FieldError] {
        &self.0
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }

    pub fn for_field(&self, field: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|e| e.field == field)
            .map(|e| e.message.as_str())
            .collect()
    }
}

/// The message of a login-like form refused by the limits (reference §6).
pub fn locked_out_text(seconds: u64) -> String {
    format!(
        "Too many failed attempts. Please try again in {}.",
        wait_text(seconds)
    )
}

/// How long to wait, in words, for a refusal's message.
pub fn wait_text(seconds: u64) -> String {
    match seconds {
        0..=1 => "a second".into(),
        2..=90 => format!("{seconds} seconds"),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}
