//! The layout data of a page, read from the request: who is logged in, the
//! CSRF token, the pending flash messages.

use actix_session::SessionExt;
use actix_web::{HttpMessage, HttpRequest};

use super::{csrf, flash};
use crate::{auth::Identity, views::Chrome};

/// Builds the layout data, consuming the flash messages: call it only when a
/// page is about to be rendered.
pub fn chrome(req: &HttpRequest) -> Chrome {
    let session = req.get_session();
    let identity = req.extensions().get::<Identity>().cloned();
    Chrome::new(
        identity.as_ref(),
        csrf::token(&session),
        flash::take(&session),
    )
}
