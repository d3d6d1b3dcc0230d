//! API or browser, decided once per request (reference §5).
//!
//! A request is an API request when its body is JSON, it asks for JSON
//! (`Accept: application/json`) or it carries `Authorization: Bearer`. The
//! `decide` middleware runs before every other layer of ours and leaves the
//! answer in the request extensions; everything else reads it from there.
//! API requests are answered in JSON, never redirected, never authenticated
//! by cookies and never given one.

use actix_web::{
    HttpMessage, HttpRequest,
    body::MessageBody,
    dev::{RequestHead, ServiceRequest, ServiceResponse},
    guard::{Guard, GuardContext},
    http::header::{ACCEPT, HeaderMap},
    middleware::Next,
};

use super::request::{bearer_token, has_json_body};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Browser,
    Api,
}

impl Face {
    fn decide(headers: &HeaderMap) -> Self {
        let wants_json = headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        if has_json_body(headers) || wants_json || bearer_token(headers).is_some() {
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
            .unwrap_or_else(|| Self::decide(&head.headers))
    }

    pub fn is_api(self) -> bool {
        self == Face::Api
    }
}

pub async fn decide(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let face = Face::decide(req.headers());
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
            .unwrap_or_else(|| Face::decide(&ctx.head().headers))
            .is_api()
    }
}
