//! What the layout shows around every page.

use serde::{Deserialize, Serialize};

use crate::{auth::Identity, domain::Role};

/// The layout data: who is logged in, the CSRF token for its forms and
/// `<meta>`, and pending flash messages.
pub struct Chrome {
    pub user: Option<NavUser>,
    pub csrf_token: String,
    pub flashes: Vec<Flash>,
    /// `PUBLIC_ORIGIN`: the passkey script shows its buttons only there.
    pub public_origin: String,
}

pub struct NavUser {
    pub username: String,
    pub role: Role,
}

impl Chrome {
    pub fn new(user: Option<&Identity>, csrf_token: String, flashes: Vec<Flash>) -> Self {
        Chrome {
            user: user.map(|id| NavUser {
                username: id.username.clone(),
                role: id.role,
            }),
            csrf_token,
            flashes,
            public_origin: String::new(),
        }
    }

    /// Layout data for a page rendered without a request (the panic page).
    pub fn anonymous() -> Self {
        Chrome {
            user: None,
            csrf_token: String::new(),
            flashes: Vec::new(),
            public_origin: String::new(),
        }
    }
}

/// A one-shot notice shown on the next page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub level: Level,
    pub text: String,
}

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
