//! `AppState`: the services every handler shares, built once at start-up.

use std::net::IpAddr;

use actix_web::HttpRequest;

use super::{request, session_cookies::CookiePolicy};
use crate::auth::{Accounts, Client};

pub struct AppState {
    pub accounts: Accounts,
    pub cookies: CookiePolicy,
    pub trusted_proxies: Vec<IpAddr>,
}

impl AppState {
    /// The client behind a request, with `TRUSTED_PROXIES` applied.
    pub fn client(&self, req: &HttpRequest) -> Client {
        request::client(req, &self.trusted_proxies)
    }
}
