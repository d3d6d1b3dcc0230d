//! The security headers every response carries (reference §6).

use actix_web::{
    HttpResponse,
    http::header::{HeaderName, HeaderValue},
    middleware::DefaultHeaders,
};

/// No inline script or style is allowed; pages show who is logged in, so
/// nothing is cached (static files set their own `Cache-Control`, which
/// takes precedence).
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    ),
    ("cache-control", "no-store"),
];

/// Sent when `COOKIE_SECURE` is on: the site is HTTPS-only.
pub const HSTS: (&str, &str) = (
    "strict-transport-security",
    "max-age=31536000; includeSubDomains",
);

fn all(secure: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    SECURITY_HEADERS.into_iter().chain(secure.then_some(HSTS))
}

/// The middleware that adds them to every response it sees.
pub fn middleware(secure: bool) -> DefaultHeaders {
    all(secure).fold(DefaultHeaders::new(), |h, pair| h.add(pair))
}

/// A refusal's `Retry-After: <seconds>` (429 and 503 answers).
pub fn retry_after(mut res: HttpResponse, seconds: u64) -> HttpResponse {
    res.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        HeaderValue::from(seconds),
    );
    res
}

/// Adds them to a response that bypasses the middleware (the panic page).
pub fn insert_into(res: &mut HttpResponse, secure: bool) {
    for (name, value) in all(secure) {
        res.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
}
