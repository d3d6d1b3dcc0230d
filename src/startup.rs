//! Building the application: database, keys, middleware and routes. `main`
//! and the tests both go through `Application::build`, so the tests exercise
//! exactly the app that ships.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_session::{
    SessionMiddleware, config::CookieContentSecurity, storage::CookieSessionStore,
};
use actix_web::{
    App, HttpServer,
    cookie::{Key, SameSite},
    dev::Server,
    middleware::{DefaultHeaders, from_fn},
    web,
};

use crate::{
    auth::{csrf, guard, sessions, tokens::TokenKeys},
    clock::{SharedClock, SystemClock},
    config::{Config, JwtSecret},
    db::{self, Pool},
    error::{self, AppError},
    logging, routes,
    state::AppState,
};

/// Name of the actix-session cookie (CSRF token, flash messages).
pub const SESSION_COOKIE: &str = "portcullis_session";

/// How often expired refresh tokens are pruned while the server runs.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Sent with every response (CONTRACT section 6). No inline script or style
/// is allowed; pages show who is logged in, so nothing is cached (static
/// files set their own `Cache-Control`, which takes precedence).
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    ),
    ("cache-control", "no-store"),
];

pub struct Application {
    server: Server,
    port: u16,
}

impl Application {
    /// Opens the database, resolves the signing key and binds the listener.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Arc::new(SystemClock))
    }

    /// `build` with another clock (tests move time instead of sleeping).
    pub fn build_with(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let pool = db::open(&config.database_url)?;
        let secret = resolve_secret(&config, &pool)?;
        let keys = TokenKeys::new(secret.bytes(), clock.clone())?;
        let session_key = Key::derive_from(secret.bytes());
        prune_now(&pool, clock.now());

        let listener = TcpListener::bind(config.bind_addr).map_err(|e| {
            anyhow::anyhow!("invalid setting BIND_ADDR ({}): {e}", config.bind_addr)
        })?;
        let port = listener.local_addr()?.port();
        let workers = config.workers;
        let state = web::Data::new(AppState::new(config, pool, keys, clock));
        spawn_pruner(state.clone());

        let server = HttpServer::new(move || {
            let config = &state.config;
            let mut headers = SECURITY_HEADERS
                .iter()
                .fold(DefaultHeaders::new(), |h, &pair| h.add(pair));
            if config.cookie_secure {
                headers = headers.add((
                    "Strict-Transport-Security",
                    "max-age=31536000; includeSubDomains",
                ));
            }
            let session =
                SessionMiddleware::builder(CookieSessionStore::default(), session_key.clone())
                    .cookie_name(SESSION_COOKIE.into())
                    .cookie_secure(config.cookie_secure)
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Lax)
                    .cookie_content_security(CookieContentSecurity::Private)
                    .build();

            // `wrap` order: the last one added runs first.
            App::new()
                .app_data(state.clone())
                .app_data(
                    web::FormConfig::default()
                        .limit(csrf::BODY_LIMIT)
                        .error_handler(|e, _| {
                            body_error(
                                e.to_string(),
                                matches!(e, actix_web::error::UrlencodedError::Overflow { .. }),
                            )
                        }),
                )
                .app_data(
                    web::JsonConfig::default()
                        .limit(csrf::BODY_LIMIT)
                        .error_handler(|e, _| {
                            body_error(
                                e.to_string(),
                                matches!(
                                    e,
                                    actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
                                        | actix_web::error::JsonPayloadError::Overflow { .. }
                                ),
                            )
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
                .wrap(from_fn(csrf::protect))
                .wrap(from_fn(guard::authenticate))
                .wrap(from_fn(error::render_errors))
                .wrap(session)
                .wrap(headers)
                .wrap(from_fn(logging::log_requests))
        })
        .listen(listener)?
        // Signals are ours (see `run_until_stopped`): actix treats Ctrl-C as a
        // forced stop that drops requests in flight.
        .disable_signals()
        .shutdown_timeout(30);
        let server = match workers {
            Some(n) => server.workers(n),
            None => server,
        }
        .run();
        Ok(Self { server, port })
    }

    pub fn port(&self) -> u16 {
        self.port
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

/// The JWT key: `JWT_SECRET_KEY`, or in development one generated on first
/// start and kept in the database so a restart logs nobody out.
fn resolve_secret(config: &Config, pool: &Pool) -> anyhow::Result<JwtSecret> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.clone());
    }
    let mut conn = pool.get()?;
    const NAME: &str = "jwt_secret_key";
    let existing = db::secrets::get(&mut conn, NAME)?;
    let key = match existing {
        Some(key) => key,
        None => {
            use rand::RngExt;
            let candidate: [u8; 64] = rand::rng().random();
            db::secrets::get_or_insert(&mut conn, NAME, &candidate)?
        }
    };
    tracing::warn!(
        "JWT_SECRET_KEY is not set: using a generated development key stored in {}. \
         Set JWT_SECRET_KEY (32+ random bytes) before going to production.",
        config.database_url.display()
    );
    Ok(JwtSecret::new(key))
}

fn prune_now(pool: &Pool, now: i64) {
    match pool
        .get()
        .map_err(AppError::from)
        .and_then(|mut c| sessions::prune(&mut c, now))
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "pruned expired refresh tokens"),
        Err(e) => tracing::warn!(error = %e, "pruning refresh tokens failed"),
    }
}

fn spawn_pruner(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(PRUNE_EVERY);
        tick.tick().await; // the first tick fires at once; start-up already pruned
        loop {
            tick.tick().await;
            let pool = state.pool.clone();
            let now = state.clock.now();
            let _ = web::block(move || prune_now(&pool, now)).await;
        }
    });
}
