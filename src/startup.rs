//! Building the application: the services (database runner, accounts, cookie
//! policy), the middleware stack and the routes. `main` and the tests both go
//! through `Application::build_with`, so the tests exercise exactly the app
//! that ships, middleware included.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_session::{
    SessionMiddleware, config::CookieContentSecurity, storage::CookieSessionStore,
};
use actix_web::{
    App, HttpServer,
    cookie::{Key, SameSite},
    dev::Server,
    middleware::{Condition, from_fn},
    web,
};

use crate::{
    auth::{Accounts, accounts::Settings, tokens::TokenKeys},
    clock::{SharedClock, SkewedClock, SystemClock},
    config::{Config, JwtSecret},
    db::{self, Db},
    error::AppError,
    routes,
    web::{
        browser_only::BrowserOnly, csrf, error_pages, face, form, guard, headers,
        metrics as web_metrics, request::TrustedProxies, request_log,
        session_cookies::CookiePolicy, state::AppState,
    },
};

/// Name of the actix-session cookie (CSRF token, flash messages).
pub const SESSION_COOKIE: &str = "portcullis_session";
/// Its name with `COOKIE_SECURE` on (reference §3).
pub const HOST_SESSION_COOKIE: &str = "__Host-portcullis_session";

/// How often expired refresh tokens are pruned while the server runs.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// What tests may change about the app besides its settings.
pub struct Options {
    /// Where time comes from (tests move it instead of sleeping).
    pub clock: SharedClock,
    /// Extra routes, registered after the app's own and served through the
    /// same middleware stack (a test adds a route that panics, say).
    pub extra_routes: Option<fn(&mut web::ServiceConfig)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            extra_routes: None,
        }
    }
}

pub struct Application {
    server: Server,
    port: u16,
    metrics_port: Option<u16>,
}

impl Application {
    /// Opens the database, resolves the signing key and binds the listener.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Options::default())
    }

    pub fn build_with(config: Config, options: Options) -> anyhow::Result<Self> {
        let Options {
            clock,
            extra_routes,
        } = options;
        let db = Db::open(&config.database_url)?;
        // Every instance of one database counts time by the database
        // server's clock (reference §7): its offset from ours, measured now
        // and again at every pruning.
        let skewed = SkewedClock::new(clock);
        measure_skew(&db, &skewed);
        let clock: SharedClock = skewed.clone();
        let secret = resolve_secret(&config, &db)?;
        let previous: Vec<&[u8]> = config.jwt_previous_keys.iter().map(|k| k.bytes()).collect();
        let keys = TokenKeys::with_previous(secret.bytes(), &previous, clock.clone())?;
        let session_key = resolve_session_key(&config, &db)?;

        let listener = TcpListener::bind(config.bind_addr).map_err(|e| {
            anyhow::anyhow!("invalid setting BIND_ADDR ({}): {e}", config.bind_addr)
        })?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            accounts: Accounts::new(db.clone(), keys, clock.clone(), &settings(&config))?,
            cookies: CookiePolicy {
                secure: config.cookie_secure,
                access_ttl: config.access_token_ttl,
                refresh_ttl: config.refresh_token_ttl,
            },
            trusted_proxies: config.trusted_proxies.clone(),
            public_origin: config.public_origin.origin().ascii_serialization(),
        });
        log_pruned(state.accounts.prune_now());
        spawn_pruner(state.clone(), db.clone(), skewed);

        let metrics = match config.metrics_bind_addr {
            Some(addr) => {
                let (server, port) =
                    web_metrics::serve(addr, web_metrics::install()?, state.clone())?;
                actix_web::rt::spawn(server);
                tracing::info!("metrics on http://{}:{port}/metrics", addr.ip());
                Some(port)
            }
            None => None,
        };
        let record_metrics = metrics.is_some();

        let secure = config.cookie_secure;
        let server = HttpServer::new(move || {
            let session =
                SessionMiddleware::builder(CookieSessionStore::default(), session_key.clone())
                    .cookie_name(
                        if secure {
                            HOST_SESSION_COOKIE
                        } else {
                            SESSION_COOKIE
                        }
                        .into(),
                    )
                    .cookie_path("/".into())
                    .cookie_domain(None)
                    .cookie_secure(secure)
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Lax)
                    .cookie_content_security(CookieContentSecurity::Private)
                    .build();

            // `wrap` order: the last one added runs first. Outermost to
            // innermost: request log, security headers, the cookie session,
            // the request's face, error pages, CSRF, the guard (which owns
            // the token cookies), then the handler.
            App::new()
                .app_data(state.clone())
                .app_data(web::Data::new(state.cookies.clone()))
                .app_data(TrustedProxies(state.trusted_proxies.clone()))
                .app_data(
                    web::JsonConfig::default()
                        .limit(form::BODY_LIMIT)
                        .error_handler(|e, _| {
                            let too_large = matches!(
                                e,
                                actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
                                    | actix_web::error::JsonPayloadError::Overflow { .. }
                            );
                            body_error(e.to_string(), too_large)
                        }),
                )
                .app_data(
                    web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()),
                )
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|e, _| AppError::BadRequest(e.to_string()).into()),
                )
                .configure(routes::configure)
                .configure(|cfg| {
                    if let Some(extra) = extra_routes {
                        extra(cfg);
                    }
                })
                .wrap(from_fn(guard::authenticate))
                .wrap(from_fn(csrf::protect))
                .wrap(from_fn(error_pages::render_errors))
                .wrap(from_fn(face::decide))
                .wrap(BrowserOnly(session))
                .wrap(headers::middleware(secure))
                .wrap(from_fn(request_log::log_requests))
                .wrap(Condition::new(
                    record_metrics,
                    from_fn(web_metrics::record_requests),
                ))
        })
        // The socket of each connection, so the hasher can tell whether a
        // client is still there (`auth::Connection`).
        .on_connect(|conn, ext| {
            #[cfg(unix)]
            if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
                use std::os::fd::AsRawFd;
                ext.insert(crate::auth::Connection(tcp.as_raw_fd()));
            }
        })
        .listen(listener)?
        // Signals are ours (see `run_until_stopped`): actix treats Ctrl-C as a
        // forced stop that drops requests in flight.
        .disable_signals()
        .shutdown_timeout(30);
        let server = match config.workers {
            Some(n) => server.workers(n),
            None => server,
        }
        .run();
        Ok(Self {
            server,
            port,
            metrics_port: metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics listener's port, when `METRICS_BIND_ADDR` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Serves until SIGTERM or Ctrl-C, then stops accepting, finishes the
    /// requests in flight (up to 30 s) and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        actix_web::rt::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing requests in flight");
            handle.stop(true).await;
        });
        self.server.await
    }

    /// For tests: the server future without signal handling.
    pub fn into_server(self) -> Server {
        self.server
    }
}

/// What the accounts need from the settings.
pub fn settings(config: &Config) -> Settings {
    Settings {
        bcrypt_cost: config.bcrypt_cost,
        access_ttl: config.access_token_ttl,
        refresh_ttl: config.refresh_token_ttl,
        reuse_grace: config.refresh_reuse_grace,
        login_max_failures: config.login_max_failures,
        login_failure_window: config.login_failure_window,
        login_max_failures_per_ip: config.login_max_failures_per_ip,
        register_max_per_ip: config.register_max_per_ip,
        reauth_window: config.reauth_window,
        session_max_lifetime: config.session_max_lifetime,
        audit_retention_days: config.audit_retention_days,
        webauthn_rp_id: config.webauthn_rp_id.clone(),
        public_origin: config.public_origin.clone(),
    }
}

fn body_error(message: String, too_large: bool) -> actix_web::Error {
    if too_large {
        AppError::PayloadTooLarge.into()
    } else {
        AppError::BadRequest(format!("The request body is malformed: {message}")).into()
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A development key kept in the database (generated on first start, 64
/// random bytes): every instance and every restart use the same one.
fn stored_key(config: &Config, db: &Db, name: &'static str, min: usize) -> anyhow::Result<Vec<u8>> {
    let key = db.blocking(|conn| {
        if let Some(key) = db::secrets::get(conn, name)? {
            return Ok(key);
        }
        use rand::RngExt;
        let candidate: [u8; 64] = rand::rng().random();
        Ok(db::secrets::get_or_insert(conn, name, &candidate)?)
    })?;
    if key.len() < min {
        anyhow::bail!(
            "invalid setting DATABASE_URL ({}): the stored development key {name} is too short",
            config.database_url
        );
    }
    Ok(key)
}

/// The cookie session's key: `SESSION_KEY`, or in development one generated
/// on first start and kept in the database, like the JWT key. Independent of
/// the JWT key, so either can be rotated alone.
pub fn resolve_session_key(config: &Config, db: &Db) -> anyhow::Result<Key> {
    let bytes = match &config.session_key {
        Some(key) => key.bytes().to_vec(),
        None => stored_key(
            config,
            db,
            "session_key",
            crate::config::MIN_SESSION_KEY_BYTES,
        )?,
    };
    Key::try_from(bytes.as_slice()).map_err(|e| anyhow::anyhow!("invalid setting SESSION_KEY: {e}"))
}

/// The JWT key: `JWT_SECRET_KEY`, or in development one generated on first
/// start and kept in the database so a restart logs nobody out.
pub fn resolve_secret(config: &Config, db: &Db) -> anyhow::Result<JwtSecret> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.clone());
    }
    let key = stored_key(
        config,
        db,
        "jwt_secret_key",
        crate::config::MIN_SECRET_BYTES,
    )?;
    tracing::warn!(
        "JWT_SECRET_KEY is not set: using a generated development key stored in {}. \
         Set JWT_SECRET_KEY (32+ random bytes) before going to production.",
        config.database_url
    );
    Ok(JwtSecret::new(key))
}

fn log_pruned(pruned: Result<Option<usize>, AppError>) {
    match pruned {
        Ok(Some(0)) => {}
        Ok(Some(n)) => tracing::info!(
            rows = n,
            "pruned ended sessions and finished limit counters"
        ),
        Ok(None) => tracing::debug!("pruning skipped: another instance is pruning"),
        Err(e) => tracing::warn!(error = %e, "pruning failed"),
    }
}

fn measure_skew(db: &Db, clock: &SkewedClock) {
    match db.blocking(|conn| Ok(db::clock_skew(conn)?)) {
        Ok(skew) => {
            if skew != clock.skew() {
                tracing::info!(
                    seconds = skew,
                    "the database server's clock differs from ours"
                );
            }
            clock.set_skew(skew);
        }
        Err(e) => tracing::warn!(error = %e, "reading the database server's clock failed"),
    }
}

fn spawn_pruner(state: web::Data<AppState>, db: Db, clock: Arc<SkewedClock>) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(PRUNE_EVERY);
        tick.tick().await; // the first tick fires at once; start-up already pruned
        loop {
            tick.tick().await;
            let (db, clock) = (db.clone(), clock.clone());
            let _ = actix_web::rt::task::spawn_blocking(move || measure_skew(&db, &clock)).await;
            log_pruned(state.accounts.prune().await);
        }
    });
}
