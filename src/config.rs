//! Settings (reference §1): the only reader of the environment and `.env`.
//!
//! `Config::from_lookup` is a pure function of a key lookup so tests build
//! configurations without touching the process environment. Secrets are
//! redacted in `Debug` so a config can be logged.

use std::{fmt, net::SocketAddr, path::PathBuf};

use crate::domain::IpNet;

/// Shortest HMAC key accepted: HS256 wants at least the hash size.
pub const MIN_SECRET_BYTES: usize = 32;
/// Shortest `SESSION_KEY`: the cookie session signs and encrypts with it
/// (actix's `Key` wants 64 bytes).
pub const MIN_SESSION_KEY_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Clone)]
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

/// `DATABASE_URL`: a PostgreSQL server, or else the path of a SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    /// The libpq URL as given (it may hold a password: shown only masked).
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(value: &str) -> Self {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            DatabaseUrl::Postgres(value.to_owned())
        } else {
            DatabaseUrl::Sqlite(PathBuf::from(value))
        }
    }
}

/// The URL with any password replaced by `***`, for messages and logs.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "{}", path.display()),
            DatabaseUrl::Postgres(url) => f.write_str(&mask_password(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`; also masks
/// a `password=` query parameter.
fn mask_password(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some(scheme_end) = shown.find("://") {
        let rest = scheme_end + 3;
        let authority_end = shown[rest..]
            .find(['/', '?'])
            .map_or(shown.len(), |i| rest + i);
        if let Some(at) = shown[rest..authority_end].rfind('@') {
            let userinfo = &shown[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                shown.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    if let Some(query) = shown.find('?') {
        let (head, params) = shown.split_at(query + 1);
        let params: Vec<String> = params
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        shown = format!("{head}{}", params.join("&"));
    }
    shown
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind_addr: SocketAddr,
    /// Where the Prometheus metrics are served; `None`: metrics are off.
    pub metrics_bind_addr: Option<SocketAddr>,
    pub database_url: DatabaseUrl,
    pub app_env: AppEnv,
    /// `None` in development when unset: startup generates and keeps one.
    pub jwt_secret: Option<JwtSecret>,
    /// Earlier JWT keys that still verify (`JWT_PREVIOUS_KEYS`).
    pub jwt_previous_keys: Vec<JwtSecret>,
    /// The cookie session's key (`SESSION_KEY`); `None` in development when
    /// unset: startup generates and keeps one.
    pub session_key: Option<JwtSecret>,
    /// Seconds after its login when a session ends, however often it is
    /// refreshed (`SESSION_MAX_LIFETIME`).
    pub session_max_lifetime: i64,
    /// Days audit events are kept (`AUDIT_RETENTION_DAYS`).
    pub audit_retention_days: i64,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub refresh_reuse_grace: i64,
    pub cookie_secure: bool,
    pub bcrypt_cost: u32,
    pub login_max_failures: u32,
    pub login_failure_window: i64,
    pub login_max_failures_per_ip: u32,
    pub register_max_per_ip: u32,
    /// Addresses and CIDR ranges whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Seconds after an authentication during which sensitive actions need
    /// no new one (`REAUTH_WINDOW`).
    pub reauth_window: i64,
    /// The passkey relying party (`WEBAUTHN_RP_ID`): the site's domain.
    pub webauthn_rp_id: String,
    /// The origin browsers use for the site (`PUBLIC_ORIGIN`), checked in
    /// passkey ceremonies; no path, no trailing slash.
    pub public_origin: url::Url,
    pub log_filter: String,
    /// Not a user setting: tests run small servers.
    pub workers: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn bad(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

impl Config {
    /// Reads the process environment, after loading `.env` from the working
    /// directory (never a parent's: a stray `.env` above the checkout must not
    /// configure the app), which never overrides a variable already set.
    pub fn from_env() -> Result<Self, ConfigError> {
        match dotenvy::from_path(".env") {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(bad("(.env file)", e.to_string())),
        }
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // An empty value counts as unset, as `.env` templates usually leave them.
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());

        let app_env = match get("APP_ENV").as_deref().map(str::trim) {
            None | Some("development") => AppEnv::Development,
            Some("production") => AppEnv::Production,
            Some(other) => {
                return Err(bad(
                    "APP_ENV",
                    format!("expected 'development' or 'production', got {other:?}"),
                ));
            }
        };
        let production = app_env == AppEnv::Production;

        let jwt_secret = match get("JWT_SECRET_KEY") {
            Some(key) if key.len() >= MIN_SECRET_BYTES => Some(JwtSecret(key.into_bytes())),
            Some(_) if production => {
                return Err(bad(
                    "JWT_SECRET_KEY",
                    format!("must be at least {MIN_SECRET_BYTES} bytes in production"),
                ));
            }
            Some(_) => {
                return Err(bad(
                    "JWT_SECRET_KEY",
                    format!("must be at least {MIN_SECRET_BYTES} bytes (or unset in development)"),
                ));
            }
            None if production => {
                return Err(bad(
                    "JWT_SECRET_KEY",
                    "must be set in production (at least 32 random bytes)",
                ));
            }
            None => None,
        };

        let jwt_previous_keys = match get("JWT_PREVIOUS_KEYS") {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| {
                    if k.len() < MIN_SECRET_BYTES {
                        Err(bad(
                            "JWT_PREVIOUS_KEYS",
                            format!("every key must be at least {MIN_SECRET_BYTES} bytes"),
                        ))
                    } else {
                        Ok(JwtSecret(k.as_bytes().to_vec()))
                    }
                })
                .collect::<Result<_, _>>()?,
        };

        let session_key = match get("SESSION_KEY") {
            Some(key) if key.len() >= MIN_SESSION_KEY_BYTES => Some(JwtSecret(key.into_bytes())),
            Some(_) => {
                return Err(bad(
                    "SESSION_KEY",
                    format!("must be at least {MIN_SESSION_KEY_BYTES} bytes"),
                ));
            }
            None if production => {
                return Err(bad(
                    "SESSION_KEY",
                    format!(
                        "must be set in production (at least {MIN_SESSION_KEY_BYTES} random bytes, not the JWT key)"
                    ),
                ));
            }
            None => None,
        };
        if let (Some(session), Some(jwt)) = (&session_key, &jwt_secret)
            && session.bytes() == jwt.bytes()
        {
            return Err(bad(
                "SESSION_KEY",
                "must differ from JWT_SECRET_KEY, so the two can be rotated apart",
            ));
        }

        let number =
            |key: &'static str, default: i64, min: i64, max: i64| -> Result<i64, ConfigError> {
                match get(key) {
                    None => Ok(default),
                    Some(raw) => match raw.trim().parse::<i64>() {
                        Ok(n) if (min..=max).contains(&n) => Ok(n),
                        _ => Err(bad(
                            key,
                            format!("expected a whole number from {min} to {max}, got {raw:?}"),
                        )),
                    },
                }
            };

        let bind_addr = match get("BIND_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(raw) => raw.trim().parse().map_err(|_| {
                bad(
                    "BIND_ADDR",
                    format!("expected HOST:PORT such as 127.0.0.1:8080, got {raw:?}"),
                )
            })?,
        };

        let metrics_bind_addr = match get("METRICS_BIND_ADDR") {
            None => None,
            Some(raw) => Some(raw.trim().parse().map_err(|_| {
                bad(
                    "METRICS_BIND_ADDR",
                    format!("expected HOST:PORT such as 127.0.0.1:9100, got {raw:?}"),
                )
            })?),
        };

        let cookie_secure = match get("COOKIE_SECURE").as_deref().map(str::trim) {
            None => production,
            Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(other) => {
                return Err(bad(
                    "COOKIE_SECURE",
                    format!("expected true or false, got {other:?}"),
                ));
            }
        };

        let trusted_proxies = match get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpNet>().map_err(|e| {
                        bad("TRUSTED_PROXIES", format!("{e} (a comma-separated list)"))
                    })
                })
                .collect::<Result<_, _>>()?,
        };

        let webauthn_rp_id = get("WEBAUTHN_RP_ID")
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "localhost".into());
        if webauthn_rp_id.contains(['/', ':', ' ']) {
            return Err(bad(
                "WEBAUTHN_RP_ID",
                format!("expected a domain such as example.com, got {webauthn_rp_id:?}"),
            ));
        }
        let public_origin = public_origin(
            get("PUBLIC_ORIGIN")
                .as_deref()
                .unwrap_or("http://localhost:8080"),
            &webauthn_rp_id,
        )?;

        let day = 24 * 60 * 60;
        Ok(Config {
            bind_addr,
            metrics_bind_addr,
            database_url: DatabaseUrl::parse(
                &get("DATABASE_URL").unwrap_or_else(|| "portcullis.db".into()),
            ),
            app_env,
            jwt_secret,
            jwt_previous_keys,
            session_key,
            session_max_lifetime: number("SESSION_MAX_LIFETIME", 30 * day, 60, 3650 * day)?,
            audit_retention_days: number("AUDIT_RETENTION_DAYS", 365, 1, 36500)?,
            access_token_ttl: number("ACCESS_TOKEN_TTL", 900, 1, day)?,
            refresh_token_ttl: number("REFRESH_TOKEN_TTL", 14 * day, 1, 365 * day)?,
            refresh_reuse_grace: number("REFRESH_REUSE_GRACE", 10, 0, 300)?,
            cookie_secure,
            bcrypt_cost: number("BCRYPT_COST", 12, 4, 31)? as u32,
            login_max_failures: number("LOGIN_MAX_FAILURES", 10, 1, 1_000_000)? as u32,
            login_failure_window: number("LOGIN_FAILURE_WINDOW", 900, 1, day)?,
            login_max_failures_per_ip: number("LOGIN_MAX_FAILURES_PER_IP", 100, 1, 1_000_000_000)?
                as u32,
            register_max_per_ip: number("REGISTER_MAX_PER_IP", 20, 1, 1_000_000_000)? as u32,
            trusted_proxies,
            reauth_window: number("REAUTH_WINDOW", 600, 1, day)?,
            webauthn_rp_id,
            public_origin,
            log_filter: get("RUST_LOG").unwrap_or_else(|| "info".into()),
            workers: None,
        })
    }
}

/// `PUBLIC_ORIGIN`: `scheme://host[:port]`, http or https, whose host is the
/// relying party or one of its subdomains (what browsers require).
fn public_origin(raw: &str, rp_id: &str) -> Result<url::Url, ConfigError> {
    let raw = raw.trim().trim_end_matches('/');
    let parsed = url::Url::parse(raw).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some()
            && u.path() == "/"
            && u.query().is_none()
            && u.username().is_empty()
    });
    let Some(origin) = parsed else {
        return Err(bad(
            "PUBLIC_ORIGIN",
            format!("expected an origin such as https://example.com, got {raw:?}"),
        ));
    };
    let host = origin.host_str().unwrap_or_default().to_ascii_lowercase();
    if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
        return Err(bad(
            "PUBLIC_ORIGIN",
            format!("its host {host:?} is not WEBAUTHN_RP_ID ({rp_id:?}) or a subdomain of it"),
        ));
    }
    Ok(origin)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn database_url_chooses_the_backend_and_masks_the_password() {
        let pg = DatabaseUrl::parse("postgres://app:s3cret@db.internal:5432/portcullis");
        assert!(matches!(pg, DatabaseUrl::Postgres(_)));
        assert_eq!(
            pg.to_string(),
            "postgres://app:***@db.internal:5432/portcullis"
        );
        assert!(!format!("{pg:?}").contains("s3cret"));
        let q = DatabaseUrl::parse("postgresql://app@h/db?sslmode=disable&password=s3cret");
        assert_eq!(
            q.to_string(),
            "postgresql://app@h/db?sslmode=disable&password=***"
        );
        let no_password = DatabaseUrl::parse("postgres://app@h/db");
        assert_eq!(no_password.to_string(), "postgres://app@h/db");
        assert_eq!(
            DatabaseUrl::parse("data/app.db"),
            DatabaseUrl::Sqlite(PathBuf::from("data/app.db"))
        );
    }

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let c = config(&[]).unwrap();
        assert_eq!(c.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.database_url,
            DatabaseUrl::Sqlite(PathBuf::from("portcullis.db"))
        );
        assert_eq!(c.app_env, AppEnv::Development);
        assert!(c.jwt_secret.is_none());
        assert_eq!((c.access_token_ttl, c.refresh_token_ttl), (900, 1_209_600));
        assert_eq!(c.refresh_reuse_grace, 10);
        assert!(!c.cookie_secure);
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!((c.login_max_failures, c.login_failure_window), (10, 900));
        assert_eq!(
            (c.login_max_failures_per_ip, c.register_max_per_ip),
            (100, 20)
        );
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.log_filter, "info");
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (var, value) in [
            ("BIND_ADDR", "nowhere"),
            ("METRICS_BIND_ADDR", "9100"),
            ("APP_ENV", "staging"),
            ("JWT_SECRET_KEY", "short"),
            ("ACCESS_TOKEN_TTL", "-1"),
            ("ACCESS_TOKEN_TTL", "15m"),
            ("REFRESH_TOKEN_TTL", "0"),
            ("REFRESH_REUSE_GRACE", "x"),
            ("COOKIE_SECURE", "maybe"),
            ("BCRYPT_COST", "3"),
            ("BCRYPT_COST", "32"),
            ("LOGIN_MAX_FAILURES", "0"),
            ("LOGIN_FAILURE_WINDOW", "soon"),
            ("LOGIN_MAX_FAILURES_PER_IP", "0"),
            ("REGISTER_MAX_PER_IP", "many"),
            ("TRUSTED_PROXIES", "10.0.0.1,proxy.local"),
            ("TRUSTED_PROXIES", "10.0.0.0/40"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}");
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn production_refuses_a_missing_or_short_secret() {
        let err = config(&[("APP_ENV", "production")]).unwrap_err();
        assert_eq!(err.var, "JWT_SECRET_KEY");
        let err = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET_KEY", &"k".repeat(31)),
        ])
        .unwrap_err();
        assert_eq!(err.var, "JWT_SECRET_KEY");
        let err = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET_KEY", &"k".repeat(32)),
        ])
        .unwrap_err();
        assert_eq!(
            err.var, "SESSION_KEY",
            "production needs its own session key"
        );
        let err = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET_KEY", &"k".repeat(32)),
            ("SESSION_KEY", &"s".repeat(63)),
        ])
        .unwrap_err();
        assert_eq!(err.var, "SESSION_KEY");
        let err = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET_KEY", &"k".repeat(64)),
            ("SESSION_KEY", &"k".repeat(64)),
        ])
        .unwrap_err();
        assert_eq!(err.var, "SESSION_KEY", "not the JWT key again");
        let ok = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET_KEY", &"k".repeat(32)),
            ("SESSION_KEY", &"s".repeat(64)),
        ])
        .unwrap();
        assert!(ok.cookie_secure, "production defaults to Secure cookies");
    }

    #[test]
    fn previous_keys_and_the_origin_are_checked() {
        let c = config(&[(
            "JWT_PREVIOUS_KEYS",
            &format!("{}, {}", "a".repeat(32), "b".repeat(40)),
        )])
        .unwrap();
        assert_eq!(c.jwt_previous_keys.len(), 2);
        let err = config(&[("JWT_PREVIOUS_KEYS", "short")]).unwrap_err();
        assert_eq!(err.var, "JWT_PREVIOUS_KEYS");
        let c = config(&[]).unwrap();
        assert_eq!(c.public_origin.as_str(), "http://localhost:8080/");
        assert_eq!(c.webauthn_rp_id, "localhost");
        assert_eq!(c.session_max_lifetime, 30 * 24 * 3600);
        let err = config(&[("PUBLIC_ORIGIN", "https://evil.example")]).unwrap_err();
        assert_eq!(err.var, "PUBLIC_ORIGIN", "not the relying party's domain");
        let err = config(&[("PUBLIC_ORIGIN", "localhost:8080")]).unwrap_err();
        assert_eq!(err.var, "PUBLIC_ORIGIN");
        let ok = config(&[
            ("WEBAUTHN_RP_ID", "example.com"),
            ("PUBLIC_ORIGIN", "https://app.example.com/"),
        ])
        .unwrap();
        assert_eq!(ok.public_origin.as_str(), "https://app.example.com/");
    }

    #[test]
    fn parses_lists_and_booleans() {
        let c = config(&[
            ("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1, ::1"),
            ("COOKIE_SECURE", "true"),
        ])
        .unwrap();
        assert_eq!(c.trusted_proxies.len(), 3);
        assert!(c.trusted_proxies[0].contains("10.20.30.40".parse().unwrap()));
        assert!(c.cookie_secure);
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let c = config(&[("JWT_SECRET_KEY", "a-very-secret-key-of-32-bytes-min!")]).unwrap();
        assert!(!format!("{c:?}").contains("a-very-secret"));
    }
}
