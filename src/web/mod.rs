//! The web layer: actix adapters between HTTP and the auth core. Middleware
//! (request log, security headers, the request's `Face`, error pages, CSRF,
//! the guard), extractors, the one owner of the token cookies, and the
//! helpers handlers use to answer (redirects, flash, the page chrome).
//!
//! Policy lives in `auth`; this layer only translates: a request into plain
//! values, a typed outcome into a response.

pub mod browser_only;
pub mod chrome;
pub mod csrf;
pub mod error_pages;
pub mod face;
pub mod flash;
pub mod form;
pub mod guard;
pub mod headers;
pub mod metrics;
pub mod redirect;
pub mod request;
pub mod request_log;
pub mod session_cookies;
pub mod state;
