//! The Kubernetes clients. The controllers share one: kube's stack (auth, tracing) with, from
//! the outside in, a client-side rate limit ([`rate_limit`]), kube's retry of 429/503/504, and the
//! leadership gate ([`gate`]) right before the wire; each request of a reconciliation also has a
//! deadline ([`deadline`]). The Lease has a client of its own ([`lease_client`]): no rate limit to
//! queue behind, no retries, and short timeouts, so a renewal is never held up by the
//! controllers' traffic and a stalled connection is noticed within the renew deadline.

pub mod deadline;
pub mod gate;
pub mod rate_limit;

use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::Context as _;
use kube::client::ClientBuilder;
use kube::client::retry::RetryPolicy;
use tower::buffer::BufferLayer;
use tower::retry::RetryLayer;

pub use self::deadline::{Call, bounded};
pub use self::gate::GateLayer;
pub use self::rate_limit::RateLimitLayer;
use crate::leader::Gate;

/// The client-side rate limit. The defaults (100 requests a second, bursts of 200) are
/// sized from `make bench-operator`: at 50 a second the limit, not the API server, set the pace
/// of a fleet created together (100 pipelines: 1,100 writes, 22 s instead of 13 s), while the
/// reconcile concurrency bound already keeps the API server from being flooded. One client
/// serves every kind here; Argo Rollouts runs three at 40/80 each.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub qps: NonZeroU32,
    pub burst: NonZeroU32,
}

async fn config() -> anyhow::Result<kube::Config> {
    kube::Config::infer()
        .await
        .context("connecting to the Kubernetes API (KUBECONFIG or in-cluster)")
}

/// The controllers' client for the cluster in KUBECONFIG (or the one the pod runs in): rate
/// limited, and writing only while `gate` is open.
pub async fn connect(limits: Limits, gate: Gate) -> anyhow::Result<kube::Client> {
    let mut config = config().await?;
    // kube's retry layer goes back in above the gate, so every retry passes the gate again; it
    // clones the service below it per request, hence the buffer (as kube's `Client` has one).
    config.default_retry = false;
    let builder = ClientBuilder::try_from(config).context("building the Kubernetes client")?;
    Ok(builder
        .with_layer(&GateLayer::new(gate))
        .with_layer(&BufferLayer::new(1024))
        .with_layer(&RetryLayer::new(RetryPolicy::server_retry()))
        .with_layer(&RateLimitLayer::new(limits.qps, limits.burst))
        .build())
}

/// The Lease's client: its own connections, `timeout` to connect, send and answer, no retries
/// (the election retries on its own clock) and no rate limit.
pub async fn lease_client(timeout: Duration) -> anyhow::Result<kube::Client> {
    let mut config = config().await?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    // The read timeout counts from the request, not from when a pooled connection went idle.
    config.reset_reader_on_write = true;
    config.default_retry = false;
    kube::Client::try_from(config).context("building the Lease client")
}

/// For tests: an API server stand-in that answers every request with ConfigMap `a`, and how
/// many requests reached it.
#[cfg(test)]
pub(crate) fn counting_wire() -> (
    tower::util::BoxCloneService<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
        std::convert::Infallible,
    >,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let wire = tower::service_fn(move |_: http::Request<kube::client::Body>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#;
            let body = kube::client::Body::from(body.as_bytes().to_vec());
            Ok(http::Response::new(body))
        }
    });
    (tower::util::BoxCloneService::new(wire), sent)
}
