//! One Askama struct per page, the layout data every page shares (`Chrome`),
//! and the helpers that turn a page into a response. Askama escapes every
//! value; no template uses `|safe`.

use actix_session::SessionExt;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, http::StatusCode};
use askama::Template;

use crate::{
    auth::{csrf, guard::Identity},
    domain::{PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS, USERNAME_MAX_LEN, USERNAME_MIN_LEN},
    error::{AppError, Rendered},
    flash::{self, Flash},
};

/// What the layout shows around every page: who is logged in, the CSRF token
/// for its forms and `<meta>`, and pending flash messages.
pub struct Chrome {
    pub user: Option<NavUser>,
    pub csrf_token: String,
    pub flashes: Vec<Flash>,
}

pub struct NavUser {
    pub username: String,
    pub role: String,
    pub is_admin: bool,
}

impl Chrome {
    /// Builds the layout data, consuming the flash messages: call it only
    /// when a page is about to be rendered.
    pub fn for_request(req: &HttpRequest) -> Self {
        let session = req.get_session();
        let user = req.extensions().get::<Identity>().map(|id| NavUser {
            username: id.username.clone(),
            role: id.role.as_str().to_owned(),
            is_admin: id.role.is_admin(),
        });
        Chrome {
            user,
            csrf_token: csrf::token(&session),
            flashes: flash::take(&session),
        }
    }
}

impl Chrome {
    /// Layout data for a page rendered without a request (the panic page).
    pub fn anonymous() -> Self {
        Chrome {
            user: None,
            csrf_token: String::new(),
            flashes: Vec::new(),
        }
    }
}

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
    pub role: String,
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

pub struct AdminUserRow {
    pub id: i32,
    pub username: String,
    pub role: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created: String,
    pub last_login: String,
    pub is_me: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct AdminPage {
    pub chrome: Chrome,
    pub users: Vec<AdminUserRow>,
}

pub struct SessionRow {
    pub id: String,
    pub device: String,
    pub ip: String,
    pub started: String,
    pub last_used: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "account/account.html")]
pub struct AccountPage {
    pub chrome: Chrome,
    pub username: String,
    pub role: String,
    pub sessions: Vec<SessionRow>,
    pub errors: FormErrors,
}

#[derive(Template)]
#[template(path = "errors/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub status: u16,
    pub title: String,
    pub message: String,
}

/// Renders a page with a status. The response is marked final so the error
/// middleware does not replace a form re-rendered with its 422.
pub fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, AppError> {
    let body = page.render()?;
    let mut res = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body);
    res.extensions_mut().insert(Rendered);
    Ok(res)
}

pub fn ok(page: &impl Template) -> Result<HttpResponse, AppError> {
    render(StatusCode::OK, page)
}

/// The error page in the site's layout. Rendering it must not fail into
/// another error, so a template failure falls back to plain text.
pub fn error_page(req: &HttpRequest, status: StatusCode, message: &str) -> HttpResponse {
    error_page_with(Chrome::for_request(req), status, message)
}

/// The error page when the request is no longer available.
pub fn bare_error_page(status: StatusCode, message: &str) -> HttpResponse {
    error_page_with(Chrome::anonymous(), status, message)
}

fn error_page_with(chrome: Chrome, status: StatusCode, message: &str) -> HttpResponse {
    let page = ErrorPage {
        chrome,
        status: status.as_u16(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        message: message.to_owned(),
    };
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(message.to_owned())
        }
    }
}

/// Unix seconds as shown on pages (UTC).
pub fn timestamp(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// A rough, human name for a user agent: enough to tell sessions apart.
pub fn device_name(user_agent: &str) -> String {
    if user_agent.is_empty() {
        return "Unknown device".into();
    }
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("reqwest", "reqwest"),
    ]
    .iter()
    .find(|(needle, _)| user_agent.contains(needle))
    .map(|(_, name)| *name);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| user_agent.contains(needle))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => o.to_owned(),
        (None, None) => user_agent.chars().take(60).collect(),
    }
}
