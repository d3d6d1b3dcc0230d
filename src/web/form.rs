//! Form bodies, decoded strictly (reference §6): `Form<T>` replaces actix's
//! extractor, which decodes invalid UTF-8 lossily. A body that is not valid
//! `application/x-www-form-urlencoded` UTF-8, is not a form, or is over
//! `BODY_LIMIT` never reaches a handler: it is a 400 (413 for the size).

use std::{future::Future, pin::Pin};

use actix_web::{
    FromRequest, HttpRequest,
    dev::Payload,
    http::header::{CONTENT_TYPE, HeaderMap},
    web::{Bytes, BytesMut},
};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Form and JSON bodies larger than this are refused before any handler sees them.
pub const BODY_LIMIT: usize = 16 * 1024;

pub fn is_urlencoded(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// Reads a whole body, refusing one over `BODY_LIMIT`.
pub async fn read_body(mut payload: Payload) -> Result<Bytes, AppError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| AppError::BadRequest(format!("Could not read the request body: {e}")))?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn malformed() -> AppError {
    AppError::BadRequest("The form data is malformed.".into())
}

/// Every (name, value) pair of an urlencoded body, strictly decoded.
pub fn pairs(body: &[u8]) -> Result<Vec<(String, String)>, AppError> {
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut kv = pair.splitn(2, |b| *b == b'=');
            let key = percent_decode(kv.next().unwrap_or_default()).ok_or_else(malformed)?;
            let value = percent_decode(kv.next().unwrap_or_default()).ok_or_else(malformed)?;
            Ok((key, value))
        })
        .collect()
}

/// The first value of one field. The whole body must decode.
pub fn field(body: &[u8], name: &str) -> Result<Option<String>, AppError> {
    Ok(pairs(body)?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v))
}

/// `application/x-www-form-urlencoded` decoding; `None` for a bad escape or invalid UTF-8.
fn percent_decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A form body parsed into `T`, after strict decoding.
pub struct Form<T>(pub T);

impl<T> Form<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Form<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_form = is_urlencoded(req.headers());
        let payload = payload.take();
        Box::pin(async move {
            if !is_form {
                return Err(AppError::BadRequest(
                    "Expected a form (application/x-www-form-urlencoded).".into(),
                ));
            }
            let body = read_body(payload).await?;
            // Strict first: the lenient parser below would have replaced
            // invalid UTF-8; once this passes, both read the same values.
            pairs(&body)?;
            serde_urlencoded::from_bytes(&body)
                .map(Form)
                .map_err(|e| AppError::BadRequest(format!("The form data is malformed: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_one_field_among_others() {
        let body = b"username=alice&csrf_token=abc123&password=x";
        assert_eq!(
            field(body, "csrf_token").unwrap().as_deref(),
            Some("abc123")
        );
        assert_eq!(field(b"username=alice", "csrf_token").unwrap(), None);
    }

    #[test]
    fn decodes_escapes_and_plus_signs() {
        let body = b"csrf_token=a%2Bb+c%C3%A9";
        assert_eq!(
            field(body, "csrf_token").unwrap().as_deref(),
            Some("a+b c\u{e9}")
        );
    }

    #[test]
    fn malformed_form_bodies_are_bad_requests() {
        let bad: [&[u8]; 5] = [
            b"a=%ff%fe",
            b"a=%zz",
            b"a=%4",
            b"csrf_token=\xff",
            b"ok=1&name=caf\xe9",
        ];
        for body in bad {
            assert!(
                matches!(pairs(body), Err(AppError::BadRequest(_))),
                "{body:?}"
            );
        }
    }
}
