//! One Askama struct per page. Each holds data only; the template decides
//! how it looks.

use askama::Template;

use super::{
    forms::{FormErrors, Limits},
    layout::Chrome,
    rows::{AdminUserRow, AuditRow, PasskeyRow, SessionRow},
};
use crate::domain::Role;

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub chrome: Chrome,
}

#[derive(Template)]
#[template(path = "protected.html")]
pub struct ProtectedPage {
    pub chrome: Chrome,
    pub username: String,
    pub role: Role,
}

#[derive(Template)]
#[template(path = "auth/register.html")]
pub struct RegisterPage {
    pub chrome: Chrome,
    pub username: String,
    pub errors: FormErrors,
}

#[derive(Template)]
#[template(path = "auth/login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub username: String,
    pub next: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct AdminPage {
    pub chrome: Chrome,
    pub users: Vec<AdminUserRow>,
}

#[derive(Template)]
#[template(path = "account/account.html")]
pub struct AccountPage {
    pub chrome: Chrome,
    pub username: String,
    pub role: Role,
    pub sessions: Vec<SessionRow>,
    pub totp: TotpView,
    pub errors: FormErrors,
    pub passkeys: Vec<PasskeyRow>,
}

/// The two-factor section of the account page.
pub enum TotpView {
    Off,
    /// Enrolment started: the secret to type (the QR code is its own route).
    Pending {
        secret: String,
    },
    On {
        recovery_codes_left: i64,
    },
}

/// New recovery codes, shown once.
#[derive(Template)]
#[template(path = "account/recovery_codes.html")]
pub struct RecoveryCodesPage {
    pub chrome: Chrome,
    pub codes: Vec<String>,
    /// True right after TOTP was turned on.
    pub first: bool,
}

/// Setting a new password through a reset link.
#[derive(Template)]
#[template(path = "auth/reset.html")]
pub struct ResetPage {
    pub chrome: Chrome,
    pub username: String,
    pub token: String,
    pub errors: FormErrors,
}

/// A new reset link, shown once to the admin who made it.
#[derive(Template)]
#[template(path = "admin/reset_link.html")]
pub struct ResetLinkPage {
    pub chrome: Chrome,
    pub username: String,
    pub link: String,
}

/// Every audit event, filtered and paged (admins).
#[derive(Template)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub rows: Vec<AuditRow>,
    /// The filters as given, for the form and the next page's link.
    pub user: String,
    pub event: String,
    pub events: Vec<&'static str>,
    /// The query string of the next (older) page, if there is one.
    pub older: Option<String>,
}

/// The user's own events.
#[derive(Template)]
#[template(path = "account/activity.html")]
pub struct ActivityPage {
    pub chrome: Chrome,
    pub rows: Vec<AuditRow>,
    pub older: Option<String>,
}

/// The second step of a login.
#[derive(Template)]
#[template(path = "auth/mfa.html")]
pub struct MfaPage {
    pub chrome: Chrome,
    pub error: Option<String>,
}

/// Re-authentication before a sensitive action.
#[derive(Template)]
#[template(path = "auth/reauth.html")]
pub struct ReauthPage {
    pub chrome: Chrome,
    pub username: String,
    pub next: String,
    pub second_factor: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "errors/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub status: u16,
    pub title: String,
    pub message: String,
}
