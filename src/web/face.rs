//! API or browser, decided once per request (reference §5).
//!
//! A request is an API request when its body is JSON, it asks for JSON
//! (`Accept: application/json`) or it carries `Authorization: Bearer`. The
//! `decide` middleware runs before every other layer of ours and leaves the
//! answer in the request extensions; everything else reads it from there.
//! API requests are answered in JSON, never redirected, never authenticated
//! by cookies and never given one.
//!
//! The one exception is the site's own script (reference §5, §8): a JSON
//! body without `Authorization` to one of the passkey endpoints (`SCRIPT_PATHS`,
//! exact paths) is `Face::Script`. It belongs to the browser: its cookies are
//! honoured and set, and it must carry the CSRF token (`X-CSRF-Token`); its
//! answers, errors included, are JSON. No other request can be `Script`.

use actix_web::{
    HttpMessage, HttpRequest,
    body::MessageBody,
    dev::{RequestHead, ServiceRequest, ServiceResponse},
    guard::{Guard, GuardContext},
    http::header::{ACCEPT, HeaderMap},
    middleware::Next,
};

use super::request::{bearer_token, has_json_body};

/// The endpoints the passkey script talks JSON to, with the browser's cookies.
pub const SCRIPT_PATHS: &[&str] = &[
    "/account/passkeys/register/start",
    "/account/passkeys/register/finish",
    "/login/passkey/start",
    "/login/passkey/finish",
    "/reauth/passkey/start",
    "/reauth/passkey/finish",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Browser,
    Api,
    /// The site's passkey script: cookies and CSRF as a browser, JSON answers.
    Script,
}

impl Face {
    fn decide(path: &str, headers: &HeaderMap) -> Self {
        let wants_json = headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        let bearer = bearer_token(headers).is_some();
        // `Authorization` always wins: such a request is the API's, and
        // the script's paths have no API face.
        if has_json_body(headers) && !bearer && SCRIPT_PATHS.contains(&path) {
            Face::Script
        } else if has_json_body(headers) || wants_json || bearer {
            Face::Api
        } else {
            Face::Browser
        }
    }

    /// The face decided for this request. Outside the `decide` middleware
    /// (it runs first, so only in unit tests) it is decided on the spot.
    pub fn of(req: &HttpRequest) -> Self {
        Self::from_parts(&req.extensions(), req.head())
    }

    pub fn of_service(req: &ServiceRequest) -> Self {
        Self::from_parts(&req.extensions(), req.head())
    }

    fn from_parts(ext: &actix_web::dev::Extensions, head: &RequestHead) -> Self {
        ext.get::<Face>()
            .copied()
            .unwrap_or_else(|| Self::decide(head.uri.path(), &head.headers))
    }

    /// The JSON API proper: authenticated by `Authorization` only.
    pub fn is_api(self) -> bool {
        self == Face::Api
    }

    /// Answered in JSON, errors included (the API and the script).
    pub fn answers_json(self) -> bool {
        matches!(self, Face::Api | Face::Script)
    }

    /// Authenticated by the token cookies, and may be given new ones.
    pub fn uses_cookies(self) -> bool {
        matches!(self, Face::Browser | Face::Script)
    }
}

pub async fn decide(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let face = Face::decide(req.path(), req.headers());
    req.extensions_mut().insert(face);
    next.call(req).await
}

/// Route guard for the JSON face of a path (the route table lists it first).
pub struct Api;

impl Guard for Api {
    fn check(&self, ctx: &GuardContext<'_>) -> bool {
        ctx.req_data()
            .get::<Face>()
            .copied()
            .unwrap_or_else(|| Face::decide(ctx.head().uri.path(), &ctx.head().headers))
            .is_api()
    }
}

/// Route guard for the passkey script's face of a path.
pub struct Script;

impl Guard for Script {
    fn check(&self, ctx: &GuardContext<'_>) -> bool {
        ctx.req_data()
            .get::<Face>()
            .copied()
            .unwrap_or_else(|| Face::decide(ctx.head().uri.path(), &ctx.head().headers))
            == Face::Script
    }
}
