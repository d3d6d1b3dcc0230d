//! Logging: the subscriber, and one structured line per request (method,
//! path without the query string, status, latency, request id). Query
//! strings, headers, cookies and bodies are never logged: they can hold tokens.

use std::time::Instant;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. A bad filter is a settings error.
/// The server logs to stdout; the CLI's commands to stderr, so their stdout
/// is only their answer (`portcullis reset-link NAME` prints the link).
pub fn init(filter: &str, to_stderr: bool) -> Result<(), crate::config::ConfigError> {
    let filter = EnvFilter::try_new(filter).map_err(|e| crate::config::ConfigError {
        var: "RUST_LOG",
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // Colours only for a person at a terminal; a log file gets plain text.
    let _ = if to_stderr {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init()
    };
    Ok(())
}

pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = &crate::auth::random_id()[..12];
    let method = req.method().clone();
    let path = req.path().to_owned();
    let result = next.call(req).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(mut res) => {
            if let Ok(value) = HeaderValue::from_str(request_id) {
                res.headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), value);
            }
            tracing::info!(
                request_id,
                method = %method,
                path = %path,
                status = res.status().as_u16(),
                latency_ms = format!("{latency_ms:.2}"),
                "request"
            );
            Ok(res)
        }
        Err(e) => {
            tracing::error!(request_id, method = %method, path = %path, latency_ms, error = %e, "request failed");
            Err(e)
        }
    }
}
