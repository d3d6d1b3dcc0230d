//! Presentation: one Askama struct per page (`pages`), the layout every page
//! shares (`layout`), form errors and limits (`forms`), and how rows of data
//! are shown (`rows`: device names, timestamps, "never"). Handlers pass data;
//! formatting happens here. Askama escapes every value; no template uses
//! `|safe`. Nothing here reads a request: the web layer builds the `Chrome`.

mod forms;
mod layout;
mod pages;
mod rows;

use actix_web::{HttpResponse, http::StatusCode};
use askama::Template;

pub use forms::{FieldError, FormErrors, Limits, locked_out_text, wait_text};
pub use layout::{Chrome, Flash, Level, NavUser};
pub use pages::*;
pub use rows::{AdminUserRow, AuditRow, PasskeyRow, SessionRow, device_name, timestamp};

use crate::error::AppError;

/// Marks a response whose body is final (a rendered form with its 422, an
/// error page); the error-page middleware leaves those alone.
#[derive(Clone, Copy)]
pub struct Rendered;

/// A QR code of `text` as an SVG document (the TOTP enrolment's
/// `otpauth://` URI), black on white with the standard quiet zone.
pub fn qr_svg(text: &str) -> Result<String, AppError> {
    use qrcode::{QrCode, render::svg};
    let code = QrCode::new(text.as_bytes()).map_err(AppError::internal)?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

/// Renders a page with a status, marked final.
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
pub fn error_page(chrome: Chrome, status: StatusCode, message: &str) -> HttpResponse {
    let page = ErrorPage {
        chrome,
        status: status.as_u16(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        message: message.to_owned(),
    };
    let mut res = match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(message.to_owned())
        }
    };
    res.extensions_mut().insert(Rendered);
    res
}
