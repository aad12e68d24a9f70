//! The operator's HTTP endpoints: `/metrics`, `/healthz` (the process is alive) and `/readyz`
//! (every cache of both controllers has synced, and this replica leads: its leadership gate is
//! open, always so without leader election).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::leader::Gate;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct ServerState {
    pub metrics: Arc<Metrics>,
    /// One flag per controller, set once its caches have synced.
    pub synced: Vec<Arc<AtomicBool>>,
    pub leader: Gate,
}

pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(s): State<ServerState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn readyz(State(s): State<ServerState>) -> impl IntoResponse {
    if !s.leader.leading() {
        (StatusCode::SERVICE_UNAVAILABLE, "not leading")
    } else if !s.synced.iter().all(|f| f.load(Ordering::Relaxed)) {
        (StatusCode::SERVICE_UNAVAILABLE, "caches syncing")
    } else {
        (StatusCode::OK, "ok")
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get(router: &Router, path: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn ready_once_both_controllers_synced_while_leading_and_metrics_are_served() {
        let state = ServerState {
            metrics: Arc::default(),
            synced: vec![Arc::default(), Arc::default()],
            leader: Gate::closed(),
        };
        state
            .metrics
            .rollouts
            .with_label_values(&["promoted"])
            .inc();
        let router = router(state.clone());
        assert_eq!(get(&router, "/healthz").await.0, StatusCode::OK);
        let readyz = || async { get(&router, "/readyz").await };
        let unavailable = |why: &str| (StatusCode::SERVICE_UNAVAILABLE, why.to_string());
        assert_eq!(readyz().await, unavailable("not leading"));
        let lease_until = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        state.leader.open_until(lease_until);
        assert_eq!(readyz().await, unavailable("caches syncing"));
        state.synced[0].store(true, Ordering::Relaxed);
        assert_eq!(
            readyz().await,
            unavailable("caches syncing"),
            "the RagIndex caches too"
        );
        state.synced[1].store(true, Ordering::Relaxed);
        assert_eq!(readyz().await.0, StatusCode::OK);
        state.leader.close();
        assert_eq!(readyz().await, unavailable("not leading"));
        let (status, body) = get(&router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("ragops_rollouts_total"), "{body}");
    }
}
