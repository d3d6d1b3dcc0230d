//! One Askama struct per page. Each holds data only; the template decides
//! how it looks.

use askama::Template;

use super::{
    forms::{FormErrors, Limits},
    layout::Chrome,
    rows::{AdminUserRow, PasskeyRow, SessionRow},
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
    pub errors: FormErrors,
    pub passkeys: Vec<PasskeyRow>,
}

#[derive(Template)]
#[template(path = "errors/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub status: u16,
    pub title: String,
    pub message: String,
}
