//! The layout data of a page, read from the request: who is logged in, the
//! CSRF token, the pending flash messages, the site's public origin.

use actix_session::SessionExt;
use actix_web::{HttpMessage, HttpRequest, web};

use super::{csrf, flash, state::AppState};
use crate::{auth::Identity, views::Chrome};

/// Builds the layout data, consuming the flash messages: call it only when a
/// page is about to be rendered.
pub fn chrome(req: &HttpRequest) -> Chrome {
    let session = req.get_session();
    let identity = req.extensions().get::<Identity>().cloned();
    let mut chrome = Chrome::new(
        identity.as_ref(),
        csrf::token(&session),
        flash::take(&session),
    );
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        chrome.public_origin = state.public_origin.clone();
    }
    chrome
}
