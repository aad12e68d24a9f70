//! The RagIndex controller: resolve the sources → revision → the revision's ingest Job →
//! decide → act → status. A Qdrant-backed index is filled by a Job per revision into its own
//! collection `<alias>-<revision>`; pipelines serve the collection of the index's status, so a
//! re-index reaches traffic only through a pipeline's gated blue-green rollout. An embedded
//! index has nothing to run: its pipelines' pods ingest, and its status carries the revision.

mod act;
mod backup;
pub mod cache;
mod cleanup;
pub mod config;
pub mod decide;
mod finalizer;
pub mod image;
pub mod job;
pub mod observe;
pub mod ownership;
mod qdrant;
mod reconcile;
pub mod revision;
pub mod schedule;
pub mod status;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use tracing::info;

use self::cache::Stores;
use crate::api::RagIndex;
use crate::context::{Backoff, Shared};
use crate::controller;
use crate::error::Error;
use crate::watch::{Feed, Scope};

pub use finalizer::FINALIZER;

const KIND: &str = "RagIndex";
/// `app.kubernetes.io/component` of the ingest Jobs, their pods and ConfigMaps.
pub const COMPONENT: &str = "ingest";
/// Label naming the index on its Jobs and their pods.
pub const INDEX_LABEL: &str = "ragops.io/index";
/// Label with the index revision a Job ingests.
pub const REVISION_LABEL: &str = "ragops.io/index-revision";
/// Annotation on an ingest Job: its revision without the schedule tick, so a Job of an earlier
/// tick is recognised and left to finish.
pub const SPEC_REVISION_ANNOTATION: &str = "ragops.io/index-spec-revision";
/// Annotation on a pipeline Deployment naming the Qdrant collection its pods query.
pub const COLLECTION_ANNOTATION: &str = "ragops.io/collection";

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The namespaces served.
    pub scope: Scope,
    pub resync: Duration,
    /// The rag-runtime image of ingest Jobs whose index names none.
    pub runtime_image: String,
    /// The images an index may name in `spec.ingest.image` (`--ingest-image-allow`).
    pub ingest_image_allow: image::AllowList,
    /// Reconciliations run at once.
    pub concurrency: u16,
    /// The cluster's pod and service networks, refused to `url` sources of ingest Jobs.
    pub cluster_cidrs: Vec<ipnet::IpNet>,
}

pub struct Context {
    pub shared: Arc<Shared>,
    pub stores: Stores,
    pub backoff: Backoff,
    pub settings: Settings,
}

/// Runs the controller until a shutdown signal; `synced_flag` turns true once its caches have
/// synced (the operator's `/readyz` waits for it).
pub async fn run(
    shared: Arc<Shared>,
    settings: Settings,
    config_maps: Feed<Store<ConfigMap>, ConfigMap>,
    synced_flag: Arc<AtomicBool>,
) {
    let reporter = shared.clone();
    let invalid = move |o: &DynamicObject, error: &str| {
        controller::report_invalid::<RagIndex>(&reporter, o, error)
    };
    let (controller, stores, synced) =
        cache::controller(&shared.client, &settings.scope, config_maps, invalid);
    let caches = stores.clone();
    let signal_ready = async move {
        caches.sync(synced).await;
        synced_flag.store(true, Ordering::Relaxed);
        info!("RagIndex caches synced");
    };
    let ctx = Arc::new(Context {
        shared,
        stores,
        backoff: Backoff::default(),
        settings,
    });
    let concurrency = ctx.settings.concurrency;
    let reconciling =
        controller::drive(KIND, controller, concurrency, reconcile, error_policy, ctx);
    futures::future::join(reconciling, signal_ready).await;
}

fn error_policy(i: Arc<RagIndex>, error: &Error, ctx: Arc<Context>) -> Action {
    let store = &ctx.stores.indexes;
    controller::retry(KIND, &*i, error, &ctx.shared, &ctx.backoff, store)
}

async fn reconcile(i: Arc<RagIndex>, ctx: Arc<Context>) -> Result<Action, Error> {
    let run = reconcile::reconcile(&i, &ctx);
    controller::instrumented(KIND, &*i, &ctx.shared, &ctx.backoff, run).await
}
