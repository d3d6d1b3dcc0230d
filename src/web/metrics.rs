//! Metrics for operators (reference §6): Prometheus text format on a
//! listener of its own (`METRICS_BIND_ADDR`; unset, metrics are off and cost
//! nothing). Requests by route and status with latency histograms come from
//! `record_requests`; logins, throttle and admission refusals, hashing and
//! refresh rotations are counted where they happen (`auth`), through the
//! `metrics` facade. Labels are route patterns and outcomes, never a value a
//! client chose, and never a secret.

use std::{net::SocketAddr, sync::OnceLock, time::Instant};

use actix_web::{
    App, HttpResponse, HttpServer,
    body::MessageBody,
    dev::{Server, ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::state::AppState;

/// Latency buckets, in seconds: pages take microseconds to milliseconds,
/// hashing hundreds of milliseconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed on first use (one per process: several
/// apps in one test process share it).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    // Another thread may have won the race: then its recorder is the one.
    if metrics::set_global_recorder(recorder).is_err() {
        return HANDLE
            .get()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("another metrics recorder is installed"));
    }
    describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "portcullis_http_requests_total",
        "HTTP requests by route, method and status"
    );
    describe_histogram!(
        "portcullis_http_request_duration_seconds",
        "HTTP request latency by route"
    );
    describe_counter!("portcullis_logins_total", "Login attempts by outcome");
    describe_counter!(
        "portcullis_throttle_refusals_total",
        "Attempts refused by a limit, by kind"
    );
    describe_counter!(
        "portcullis_hash_refusals_total",
        "Password hashes refused: the queue was full"
    );
    describe_counter!(
        "portcullis_hash_skipped_total",
        "Queued hashes skipped: the client had gone"
    );
    describe_histogram!(
        "portcullis_hash_duration_seconds",
        "Time bcrypt took per hash"
    );
    describe_gauge!(
        "portcullis_hash_queue_depth",
        "Password hashes queued or running"
    );
    describe_gauge!(
        "portcullis_hash_queue_capacity",
        "Most password hashes admitted at once"
    );
    describe_counter!(
        "portcullis_refresh_total",
        "Refresh-token presentations by outcome"
    );
    describe_counter!(
        "portcullis_refresh_reuse_detected_total",
        "Replays after the grace window (sessions revoked)"
    );
}

/// Counts every request by its route pattern (not its path: `/static/{path}`
/// is one route), method and status, with its latency.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = res.status().as_u16().to_string();
    metrics::counter!(
        "portcullis_http_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status
    )
    .increment(1);
    metrics::histogram!("portcullis_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(res)
}

/// The metrics listener: `GET /metrics` (any path) in the Prometheus text format.
pub fn serve(
    addr: SocketAddr,
    handle: PrometheusHandle,
    state: web::Data<AppState>,
) -> anyhow::Result<(Server, u16)> {
    let server = HttpServer::new(move || {
        let (handle, state) = (handle.clone(), state.clone());
        App::new().default_service(web::to(move || {
            let (handle, state) = (handle.clone(), state.clone());
            async move {
                let load = state.accounts.hasher_load();
                metrics::gauge!("portcullis_hash_queue_depth").set(load.in_queue as f64);
                metrics::gauge!("portcullis_hash_queue_capacity").set(load.capacity as f64);
                handle.run_upkeep();
                HttpResponse::Ok()
                    .content_type("text/plain; version=0.0.4; charset=utf-8")
                    .body(handle.render())
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(addr)
    .map_err(|e| anyhow::anyhow!("invalid setting METRICS_BIND_ADDR ({addr}): {e}"))?;
    let port = server.addrs().first().map_or(0, |a| a.port());
    Ok((server.run(), port))
}
