//! The HTTP service: routes, the middleware every request passes through, and serving with a
//! graceful drain. A request flows metrics → JSON errors → CORS → body limit → (for `/v1`) auth →
//! rate limit → per-route timeout → handler. The document routes answer 405 unless
//! `server.allowWrites` is on.

mod chat;
mod health;
mod json;
mod middleware;
mod query;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::ALLOW;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Storing documents embeds them, which takes longer than answering a question.
const DOCUMENTS_TIMEOUT_FACTOR: u32 = 5;
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the store is checked for `rag_vector_store_up` while serving.
const STORE_CHECK_PERIOD: Duration = Duration::from_secs(10);

fn timeout(duration: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, duration)
}

/// The document routes: served when `server.allowWrites` is on, else 405 naming the setting.
fn documents(allow_writes: bool, request_timeout: Duration) -> Router<AppState> {
    let layer = timeout(request_timeout * DOCUMENTS_TIMEOUT_FACTOR);
    if allow_writes {
        return Router::new()
            .route("/v1/documents", post(query::add_documents).layer(layer))
            .route(
                "/v1/documents/{*id}",
                delete(query::delete_document).layer(layer),
            );
    }
    Router::new()
        .route("/v1/documents", any(writes_off))
        .route("/v1/documents/{*id}", any(writes_off))
}

/// 405 with an empty `Allow`: no method writes while writes are off.
async fn writes_off() -> Response {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "writes_disabled",
        "document writes are off; set server.allowWrites: true in the runtime config \
         (RagPipeline spec.server.allowWrites)",
    )
    .into_response();
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(""));
    response
}

/// The whole service as a router, for `serve` and for tests.
pub fn router(state: AppState) -> Router {
    let server = &state.rag.config.server;
    let request_timeout = Duration::from_secs(server.request_timeout_seconds.max(1));
    let api = Router::new()
        .route(
            "/v1/query",
            post(query::query).layer(timeout(request_timeout)),
        )
        .route(
            "/v1/chat/completions",
            post(chat::completions).layer(timeout(request_timeout)),
        )
        .merge(documents(server.allow_writes, request_timeout))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::rate_limit,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ));
    let open = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/readyz/store", get(health::readyz_store))
        .route("/metrics", get(health::metrics))
        .layer(timeout(PROBE_TIMEOUT));
    let cors = if server.cors {
        CorsLayer::permissive()
    } else {
        CorsLayer::new()
    };
    Router::new()
        .merge(api)
        .merge(open)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        // Extractors would otherwise apply axum's own 2 MB cap instead of the configured one.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(server.max_body_bytes))
        .layer(cors)
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::track,
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting, marks itself not ready and lets
/// in-flight requests finish for up to `server.shutdownGraceSeconds`.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = Duration::from_secs(state.rag.config.server.shutdown_grace_seconds);
    let draining = state.draining.clone();
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        draining.store(true, Ordering::Relaxed);
        tracing::info!("shutting down: draining in-flight requests");
        let _ = signalled_tx.send(());
    };
    let store_check = tokio::spawn(health::watch_store(state.clone(), STORE_CHECK_PERIOD));
    let _stop_store_check = AbortOnDrop(store_check);
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let mut server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .into_future(),
    );
    let deadline = async move {
        if signalled_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = &mut server => result.map_err(std::io::Error::other)?,
        () = deadline => {
            tracing::warn!(grace_seconds = grace.as_secs(), "requests still in flight after the grace period; exiting");
            server.abort();
            Ok(())
        }
    }
}

/// Aborts a background task when the server it serves stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
