//! Redirects: `303 See Other`, and which `next` targets may be followed.

use actix_web::{HttpResponse, http::header};

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The login page, coming back to `next` afterwards.
pub fn login_url(next: &str) -> String {
    format!("/login?next={}", encode_query_value(next))
}

/// The re-authentication page, coming back to `next` afterwards.
pub fn reauth_url(next: &str) -> String {
    format!("/reauth?next={}", encode_query_value(next))
}

/// Percent-encodes a value for a query string.
pub fn encode_query_value(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|s| s.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

/// `next` is followed only when it is a local path: it starts with `/`, the
/// next character is not `/` or `\` (which browsers read as another host),
/// and it has no control characters.
pub fn safe_next(next: Option<&str>) -> Option<&str> {
    let next = next?;
    let mut chars = next.chars();
    let local = chars.next() == Some('/') && !matches!(chars.next(), Some('/' | '\\'));
    (local && !next.chars().any(char::is_control)).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_safe_redirect_targets() {
        for ok in ["/", "/protected", "/account?tab=1", "/a/b//c"] {
            assert_eq!(safe_next(Some(ok)), Some(ok));
        }
        for bad in [
            "",
            "protected",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "/x\r\nLocation: //evil",
            "/\tx",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(safe_next(None), None);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query_value("/account?x=1&y"),
            "%2Faccount%3Fx%3D1%26y"
        );
        assert_eq!(login_url("/protected"), "/login?next=%2Fprotected");
    }
}
