//! Tokens made by hand for the tests that forge them: any `alg` in the
//! header, an HMAC of the SHA-2 family for the signature. The app itself
//! can compute HS256 alone (`auth::hs256`), so forgeries are built here.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};

/// `header.claims.signature` with the signature an HMAC of `mac` ("HS256",
/// "HS384" or "HS512") under `key`, whatever the header says.
pub fn hmac_token(mac: &str, header: &Value, claims: &Value, key: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let tag = match mac {
        "HS256" => sign::<Hmac<Sha256>>(&input, key),
        "HS384" => sign::<Hmac<Sha384>>(&input, key),
        "HS512" => sign::<Hmac<Sha512>>(&input, key),
        other => panic!("no HMAC named {other}"),
    };
    format!("{input}.{}", B64.encode(tag))
}

/// A token signed as the header says: `{"alg": mac, "typ": "JWT"}`.
pub fn signed(mac: &str, claims: &Value, key: &[u8]) -> String {
    hmac_token(
        mac,
        &serde_json::json!({"alg": mac, "typ": "JWT"}),
        claims,
        key,
    )
}

fn sign<M: Mac + hmac::digest::KeyInit>(input: &str, key: &[u8]) -> Vec<u8> {
    let mut mac = <M as Mac>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}
