//! `AppState`: what every handler shares (settings, pool, keys), and the two
//! bridges from async handlers to blocking work: the database and bcrypt.

use actix_web::web;
use diesel::SqliteConnection;
use tokio::sync::Semaphore;

use crate::{
    auth::{throttle::LoginThrottle, tokens::TokenKeys},
    config::Config,
    db::Pool,
    error::AppError,
};

pub struct AppState {
    pub config: Config,
    pub pool: Pool,
    pub keys: TokenKeys,
    pub login_throttle: LoginThrottle,
    /// bcrypt runs at most this many at once, so a login flood queues here
    /// instead of taking every core from the workers that serve pages.
    bcrypt_slots: Semaphore,
}

impl AppState {
    pub fn new(config: Config, pool: Pool, keys: TokenKeys) -> Self {
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
        let login_throttle =
            LoginThrottle::new(config.login_max_failures, config.login_failure_window);
        Self {
            login_throttle,
            config,
            pool,
            keys,
            bcrypt_slots: Semaphore::new(slots),
        }
    }

    /// Runs Diesel work on the blocking pool (getting the connection included:
    /// it can wait for SQLite's lock).
    pub async fn db<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await?
    }

    /// Runs bcrypt on the blocking pool, bounded by `bcrypt_slots`.
    pub async fn bcrypt<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _slot = self
            .bcrypt_slots
            .acquire()
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        Ok(web::block(work).await?)
    }
}
