//! `AppState`: the services every handler shares, built once at start-up.

use actix_web::HttpRequest;

use super::{request, session_cookies::CookiePolicy};
use crate::{
    auth::{Accounts, Client},
    domain::IpNet,
};

pub struct AppState {
    pub accounts: Accounts,
    pub cookies: CookiePolicy,
    pub trusted_proxies: Vec<IpNet>,
    /// `PUBLIC_ORIGIN` as browsers write it (`location.origin`): where the
    /// passkey buttons show.
    pub public_origin: String,
}

impl AppState {
    /// The client behind a request, with `TRUSTED_PROXIES` applied.
    pub fn client(&self, req: &HttpRequest) -> Client {
        request::client(req, &self.trusted_proxies)
    }
}
