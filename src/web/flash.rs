//! Flash messages: one-shot notices kept in the actix-session cookie between a
//! redirect and the page it leads to.

use actix_session::Session;

pub use crate::views::{Flash, Level};

const KEY: &str = "flash";

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
