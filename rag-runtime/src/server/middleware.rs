//! Middleware: request metrics and `Server-Timing`, JSON bodies for every error, bearer-token
//! authentication and the per-client rate limit.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};

use crate::error::ApiError;
use crate::state::{AppState, digest};

/// Keyed limiters keep one entry per client; past this many, idle ones are dropped.
const LIMITER_MAX_KEYS: usize = 10_000;

/// Counts requests by route and code, times them, tracks in-flight requests, and tells the
/// client how long the server spent (`Server-Timing: app;dur=<ms>`).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = req.method().as_str().to_string();
    let metrics = &state.rag.metrics;
    metrics.http_in_flight.inc();
    // Decrements even when the handler's future is dropped (client gone, timeout).
    let _in_flight = InFlight(metrics.http_in_flight.clone());
    let mut response = next.run(req).await;
    let elapsed = started.elapsed();
    metrics
        .http_requests
        .with_label_values(&[&route, &method, response.status().as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[&route])
        .observe(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={:.3}", elapsed.as_secs_f64() * 1000.0))
    {
        response.headers_mut().insert("server-timing", v);
    }
    response
}

struct InFlight(prometheus::IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Gives every 4xx/5xx that is not JSON yet (from tower layers: body limit, timeout) the
/// `{"error": {"code", "message"}}` body.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let mut error = ApiError::from_status(status);
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        error.message = "request body is larger than the limit".into();
    } else if status == StatusCode::GATEWAY_TIMEOUT {
        error.message = "the request took longer than the server's timeout".into();
    }
    let body = error.into_response();
    let (body_parts, body) = body.into_parts();
    parts.headers.extend(body_parts.headers);
    Response::from_parts(parts, body)
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Requires `Authorization: Bearer <key>` when keys are configured.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.api_keys.enabled() && !bearer(&req).is_some_and(|t| state.api_keys.accepts(t)) {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
        .into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(req).await
}

/// The client a rate limit applies to: its API key when authentication is on and the key is
/// accepted, else its address. Any other token is the client's to choose, so keying by it would
/// hand out a fresh quota per made-up token.
fn client_key(state: &AppState, req: &Request) -> String {
    let keys = &state.api_keys;
    if let Some(token) = bearer(req).filter(|t| keys.enabled() && keys.accepts(t)) {
        return format!("key:{}", hex::encode(&digest(token)[..16]));
    }
    match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => format!("ip:{}", addr.ip()),
        None => "unknown".into(),
    }
}

/// Answers 429 with `Retry-After` once a client exceeds its quota.
pub async fn rate_limit(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let Some(limiter) = &state.limiter else {
        return next.run(req).await;
    };
    let key = client_key(&state, &req);
    if let Err(not_until) = limiter.check_key(&key) {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; slow down",
        )
        .into_response();
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        return response;
    }
    if limiter.len() > LIMITER_MAX_KEYS {
        limiter.retain_recent();
    }
    next.run(req).await
}
