//! The JSON face of paths that are pages only (reference §5): an error in
//! JSON, never HTML, a redirect or a cookie.

use crate::{error::AppError, web::guard::CurrentUser};

/// A public page (`/`, the login and registration forms).
pub async fn anyone() -> Result<&'static str, AppError> {
    Err(AppError::NoApi)
}

/// A page for logged-in users: 401 without a valid access token.
pub async fn signed_in(_: CurrentUser) -> Result<&'static str, AppError> {
    Err(AppError::NoApi)
}

/// The admin area: 401 without a valid access token, 403 for a non-admin.
pub async fn admin(CurrentUser(user): CurrentUser) -> Result<&'static str, AppError> {
    if !user.role.is_admin() {
        return Err(AppError::Forbidden(
            "This page is for administrators only.".into(),
        ));
    }
    Err(AppError::NoApi)
}
