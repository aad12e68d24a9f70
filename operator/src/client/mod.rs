//! The Kubernetes client the controllers share, and how each request of a reconciliation is
//! bounded: kube's default stack (auth, its retry of 429/503/504, tracing) under a client-side
//! rate limit ([`rate_limit`]), and a deadline per call ([`deadline`]).

pub mod deadline;
pub mod rate_limit;

use std::num::NonZeroU32;

use anyhow::Context as _;
use kube::client::ClientBuilder;

pub use self::deadline::{Call, bounded};
pub use self::rate_limit::RateLimitLayer;

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

/// A client for the cluster in KUBECONFIG (or the one the pod runs in), rate limited.
pub async fn connect(limits: Limits) -> anyhow::Result<kube::Client> {
    let config = kube::Config::infer()
        .await
        .context("connecting to the Kubernetes API (KUBECONFIG or in-cluster)")?;
    let builder = ClientBuilder::try_from(config).context("building the Kubernetes client")?;
    Ok(builder
        .with_layer(&RateLimitLayer::new(limits.qps, limits.burst))
        .build())
}
