//! The RagIndex controller: resolve the sources → revision → the revision's ingest Job →
//! decide → act → status. A Qdrant-backed index is filled by a Job per revision into its own
//! collection `<alias>-<revision>`; pipelines serve the collection of the index's status, so a
//! re-index reaches traffic only through a pipeline's gated blue-green rollout. An embedded
//! index has nothing to run: its pipelines' pods ingest, and its status carries the revision.

mod backup;
pub mod cache;
mod cleanup;
pub mod config;
pub mod decide;
mod finalizer;
pub mod job;
pub mod observe;
mod qdrant;
mod reconcile;
pub mod revision;
pub mod schedule;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{Instrument, field, info, info_span, warn};

use self::cache::Stores;
use crate::api::RagIndex;
use crate::context::{Backoff, Note, Shared};
use crate::error::Error;

pub use finalizer::FINALIZER;

const KIND: &str = "RagIndex";
/// `app.kubernetes.io/component` of the ingest Jobs, their pods and ConfigMaps.
pub const COMPONENT: &str = "ingest";
/// Label naming the index on its Jobs and their pods.
pub const INDEX_LABEL: &str = "ragops.io/index";
/// Label with the index revision a Job ingests.
pub const REVISION_LABEL: &str = "ragops.io/index-revision";
/// Annotation on a pipeline Deployment naming the Qdrant collection its pods query.
pub const COLLECTION_ANNOTATION: &str = "ragops.io/collection";

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub namespace: Option<String>,
    pub resync: Duration,
    /// The rag-runtime image of ingest Jobs whose index names none.
    pub runtime_image: String,
}

pub struct Context {
    pub shared: Arc<Shared>,
    pub stores: Stores,
    pub backoff: Backoff,
    pub settings: Settings,
}

/// Runs the controller until a shutdown signal.
pub async fn run(shared: Arc<Shared>, settings: Settings) {
    let reporter = shared.clone();
    let invalid = move |o: &DynamicObject, error: &str| report_invalid(&reporter, o, error);
    let (controller, stores, synced) =
        cache::controller(&shared.client, settings.namespace.as_deref(), invalid);
    let caches = stores.clone();
    let signal_ready = async move {
        caches.sync(synced).await;
        info!("RagIndex caches synced");
    };
    let ctx = Arc::new(Context {
        shared,
        stores,
        backoff: Backoff::default(),
        settings,
    });
    let reconciling = controller
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(error = %e, "RagIndex reconcile loop");
            }
        });
    futures::future::join(reconciling, signal_ready).await;
}

fn report_invalid(shared: &Arc<Shared>, o: &DynamicObject, error: &str) {
    let (name, ns) = (o.name_any(), o.namespace().unwrap_or_default());
    warn!(namespace = %ns, %name, %error, "skipping a RagIndex that does not deserialize");
    shared
        .metrics
        .invalid_objects
        .with_label_values(&[KIND])
        .inc();
    let regarding = o.object_ref(&ApiResource::erase::<RagIndex>(&()));
    let (shared, message) = (
        shared.clone(),
        format!("the operator cannot read this object: {error}"),
    );
    tokio::spawn(async move {
        let note = Note {
            warning: true,
            reason: "InvalidSpec",
            action: "Skip",
            message,
        };
        shared.publish(&regarding, note).await;
    });
}

fn key(i: &RagIndex) -> String {
    format!("{}/{}", i.namespace().unwrap_or_default(), i.name_any())
}

fn error_policy(i: Arc<RagIndex>, error: &Error, ctx: Arc<Context>) -> Action {
    let metrics = &ctx.shared.metrics;
    metrics
        .failures
        .with_label_values(&[KIND, error.category()])
        .inc();
    let indexes = &ctx.stores.indexes;
    let exists = |k: &str| {
        k.split_once('/')
            .is_some_and(|(ns, name)| indexes.get(&ObjectRef::new(name).within(ns)).is_some())
    };
    let delay = if error.is_conflict() {
        Duration::from_secs(1)
    } else {
        ctx.backoff.next(&key(&i), exists)
    };
    warn!(index = %key(&i), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn reconcile(i: Arc<RagIndex>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = info_span!("reconcile", kind = KIND, namespace = field::display(i.namespace().unwrap_or_default()), name = %i.name_any());
    let metrics = &ctx.shared.metrics;
    let timer = metrics.duration.with_label_values(&[KIND]).start_timer();
    let result = reconcile::reconcile(&i, &ctx).instrument(span).await;
    timer.observe_duration();
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics
        .reconciliations
        .with_label_values(&[KIND, outcome])
        .inc();
    match &result {
        Ok(_) => ctx.backoff.reset(&key(&i)),
        Err(e) => {
            let note = Note {
                warning: true,
                reason: e.reason(),
                action: e.category(),
                message: e.to_string(),
            };
            ctx.shared.publish(&i.object_ref(&()), note).await;
        }
    }
    result
}
