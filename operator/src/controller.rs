//! What every controller of the manager does around its reconcile function, written once: how it
//! is driven (bounded concurrency, stopped by a shutdown signal), the metrics and Event of each
//! reconciliation, the backoff of a failed one, and the report of an object of our kinds that
//! does not deserialize.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::Controller;
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tracing::{Instrument, field, info_span, warn};

use crate::context::{Backoff, Note, Shared};
use crate::error::Error;

/// Runs `controller` with at most `concurrency` reconciliations at once until a shutdown signal;
/// a failure of the loop itself (not of a reconciliation) is logged with `kind`.
pub async fn drive<K, C, F>(
    kind: &'static str,
    controller: Controller<K>,
    concurrency: u16,
    reconcile: impl FnMut(Arc<K>, Arc<C>) -> F,
    error_policy: impl Fn(Arc<K>, &Error, Arc<C>) -> Action,
    ctx: Arc<C>,
) where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    C: Send + Sync + 'static,
    F: Future<Output = Result<Action, Error>> + Send + 'static,
{
    controller
        .with_config(Config::default().concurrency(concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(kind, error = %e, "reconcile loop");
            }
        })
        .await;
}

/// `namespace/name`: the backoff's key.
fn key<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

/// Runs one reconciliation of `o` (kind `kind`) with its span, duration and outcome metrics, a
/// Warning Event when it fails, and the backoff reset when it succeeds.
pub async fn instrumented<K>(
    kind: &'static str,
    o: &K,
    shared: &Shared,
    backoff: &Backoff,
    reconcile: impl Future<Output = Result<Action, Error>>,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
{
    let span = info_span!("reconcile", kind, namespace = field::display(o.namespace().unwrap_or_default()), name = %o.name_any());
    let metrics = &shared.metrics;
    let timer = metrics.duration.with_label_values(&[kind]).start_timer();
    let result = reconcile.instrument(span).await;
    timer.observe_duration();
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics
        .reconciliations
        .with_label_values(&[kind, outcome])
        .inc();
    match &result {
        Ok(_) => backoff.reset(&key(o)),
        Err(e) => {
            let note = Note {
                warning: true,
                reason: e.reason(),
                action: e.category(),
                message: e.to_string(),
            };
            shared.publish(&o.object_ref(&()), note).await;
        }
    }
    result
}

/// When to retry a failed reconciliation of `o`: at once after a conflict (fresh state resolves
/// it), else with the per-object backoff (pruned of objects `store` no longer holds).
pub fn retry<K>(
    kind: &'static str,
    o: &K,
    error: &Error,
    shared: &Shared,
    backoff: &Backoff,
    store: &Store<K>,
) -> Action
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    shared
        .metrics
        .failures
        .with_label_values(&[kind, error.category()])
        .inc();
    let exists = |k: &str| {
        k.split_once('/')
            .is_some_and(|(ns, name)| store.get(&ObjectRef::new(name).within(ns)).is_some())
    };
    let delay = if error.is_conflict() {
        Duration::from_secs(1)
    } else {
        backoff.next(&key(o), exists)
    };
    warn!(kind, object = %key(o), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// An object of kind `K` the API server holds but this operator cannot read (e.g. written
/// against an older schema): skipped, logged, counted, and told to its owner as an Event.
pub fn report_invalid<K>(shared: &Arc<Shared>, o: &DynamicObject, error: &str)
where
    K: Resource<DynamicType = ()>,
{
    let kind = K::kind(&());
    let (name, ns) = (o.name_any(), o.namespace().unwrap_or_default());
    warn!(%kind, namespace = %ns, %name, %error, "skipping an object that does not deserialize");
    shared
        .metrics
        .invalid_objects
        .with_label_values(&[&kind])
        .inc();
    let regarding = o.object_ref(&ApiResource::erase::<K>(&()));
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
