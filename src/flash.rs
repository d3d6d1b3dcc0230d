//! Flash messages: one-shot notices kept in the actix-session cookie between a
//! redirect and the page it leads to.

use actix_session::Session;
use serde::{Deserialize, Serialize};

const KEY: &str = "flash";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Success,
    Info,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Success => "success",
            Level::Info => "info",
            Level::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub level: Level,
    pub text: String,
}

pub fn push(session: &Session, level: Level, text: impl Into<String>) {
    let mut all = session
        .get::<Vec<Flash>>(KEY)
        .ok()
        .flatten()
        .unwrap_or_default();
    // Bounded so a client replaying a redirect cannot grow the cookie.
    if all.len() < 5 {
        all.push(Flash {
            level,
            text: text.into(),
        });
    }
    // A session that cannot be written only loses the notice, never the action.
    let _ = session.insert(KEY, all);
}

/// Returns the pending messages and clears them.
pub fn take(session: &Session) -> Vec<Flash> {
    // `remove` marks the session changed even when the key is absent, which
    // would re-encrypt and re-send the session cookie on every page.
    if !session.contains_key(KEY) {
        return Vec::new();
    }
    match session.remove_as::<Vec<Flash>>(KEY) {
        Some(Ok(all)) => all,
        _ => Vec::new(),
    }
}
