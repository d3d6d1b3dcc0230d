//! `/static/...`: CSS, images and the passkey script, compiled into the binary so it serves them
//! from any working directory.

use actix_web::{HttpResponse, http::header, web};

use crate::error::AppError;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "css/site.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/css/site.css"),
    },
    Asset {
        path: "img/portcullis.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../static/img/portcullis.svg"),
    },
    Asset {
        path: "js/passkeys.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/js/passkeys.js"),
    },
];

pub async fn serve(path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.path == path.as_str())
        .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(asset.body))
}
