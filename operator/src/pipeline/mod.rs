//! The RagPipeline controller, as a pipeline: dereference → validate → render → observe → decide
//! → build the desired children → apply → status. Every read comes from the watch caches; only
//! the writes, the health gate and the few reads the caches cannot hold touch the network.

pub mod apply;
pub mod build;
pub mod by_pipeline;
pub mod cache;
pub mod desired;
mod gauges;
pub mod golden_runs;
pub mod health;
pub mod measurements;
pub mod monitoring_status;
pub mod observe;
mod reconcile;
pub mod rollout;
pub mod route;
pub mod status;
mod uncached;
pub mod validate;
mod writes;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use tracing::info;

use self::by_pipeline::Indexed;
use self::cache::Stores;
use self::health::HealthChecker;
use self::measurements::Analyses;
use crate::analysis::prometheus::MetricSource;
use crate::api::RagPipeline;
use crate::context::{Backoff, Shared};
use crate::controller;
use crate::error::Error;
use crate::watch::{Feed, Scope};

pub use self::rollout::annotation;
const KIND: &str = "RagPipeline";

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The namespaces served.
    pub scope: Scope,
    /// Reconcile a steady pipeline this often, in case a watch event was missed; each pipeline
    /// is offset by up to a tenth of it so a fleet created together does not resync together.
    pub resync: Duration,
    /// How often to look for the Prometheus Operator's CRDs while a pipeline needs them.
    pub monitoring_recheck: Duration,
    /// Reconciliations run at once.
    pub concurrency: u16,
    /// The Prometheus analysis asks when a pipeline names none (`--prometheus-url`).
    pub prometheus_url: Option<String>,
}

/// What a pipeline reconciliation gets.
pub struct Context {
    pub shared: Arc<Shared>,
    pub stores: Stores,
    pub health: Arc<dyn HealthChecker>,
    /// Analysis: compiled specs and the queries in the background.
    pub analyses: Analyses,
    pub backoff: Backoff,
    pub settings: Settings,
    /// Golden sets: parsed sets and the runs in the background.
    pub goldens: golden_runs::GoldenRuns,
}

/// Runs the controller until a shutdown signal; `ready` turns true once every cache has synced.
pub async fn run(
    shared: Arc<Shared>,
    health: Arc<dyn HealthChecker>,
    metric_source: Arc<dyn MetricSource>,
    settings: Settings,
    config_maps: Feed<Indexed<ConfigMap>, ConfigMap>,
    ready: Arc<AtomicBool>,
) {
    let reporter = shared.clone();
    let invalid = move |o: &DynamicObject, error: &str| {
        controller::report_invalid::<RagPipeline>(&reporter, o, error)
    };
    // Finished analysis queries wake their pipeline through this channel.
    let (wake, woken) = tokio::sync::mpsc::unbounded_channel();
    let (controller, stores, synced) = cache::controller(
        &shared.client,
        &settings.scope,
        settings.monitoring_recheck,
        config_maps,
        woken,
        invalid,
    );
    let goldens = golden_runs::GoldenRuns::new(wake.clone(), shared.metrics.clone());
    let analyses = Analyses::new(
        metric_source,
        settings.prometheus_url.clone(),
        wake,
        shared.metrics.clone(),
    );
    shared
        .metrics
        .register(Box::new(gauges::Gauges::new(stores.clone())));
    let caches = stores.clone();
    let signal_ready = async move {
        caches.sync(synced).await;
        caches.ready().await;
        ready.store(true, Ordering::Relaxed);
        info!("caches synced; ready");
    };
    let ctx = Arc::new(Context {
        shared,
        stores,
        health,
        analyses,
        backoff: Backoff::default(),
        settings,
        goldens,
    });
    let concurrency = ctx.settings.concurrency;
    let reconciling =
        controller::drive(KIND, controller, concurrency, reconcile, error_policy, ctx);
    // Polled together in this task: the caches fill only while the controller runs.
    futures::future::join(reconciling, signal_ready).await;
}

fn error_policy(p: Arc<RagPipeline>, error: &Error, ctx: Arc<Context>) -> Action {
    let store = &ctx.stores.pipelines;
    controller::retry(KIND, &*p, error, &ctx.shared, &ctx.backoff, store)
}

async fn reconcile(p: Arc<RagPipeline>, ctx: Arc<Context>) -> Result<Action, Error> {
    let run = reconcile::reconcile(&p, &ctx);
    controller::instrumented(KIND, &*p, &ctx.shared, &ctx.backoff, run).await
}

/// When a steady pipeline is looked at again: `resync`, offset per pipeline by up to a tenth.
pub fn resync_after(resync: Duration, uid: &str) -> Duration {
    let spread = resync.as_millis() / 10;
    if spread == 0 {
        return resync;
    }
    let seed = u128::from_str_radix(&crate::digest::short_hex(uid.as_bytes(), 8), 16).unwrap_or(0);
    resync + Duration::from_millis(u64::try_from(seed % spread).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resyncs_are_spread_but_stable_per_pipeline() {
        let base = Duration::from_secs(300);
        let a = resync_after(base, "uid-a");
        assert_eq!(a, resync_after(base, "uid-a"));
        let all: std::collections::BTreeSet<_> = (0..20)
            .map(|i| resync_after(base, &format!("uid-{i}")))
            .collect();
        assert!(all.len() > 10, "{all:?}");
        assert!(
            all.iter()
                .all(|d| *d >= base && *d < base + Duration::from_secs(30))
        );
    }
}
