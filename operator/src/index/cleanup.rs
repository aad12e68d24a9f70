//! What an index leaves behind and no longer needs: the Jobs (and their ConfigMaps) of other
//! revisions, and the Qdrant collections it recorded as its own that no pipeline serves beyond
//! the retention. Only recorded collections are ever dropped (see `ownership`).

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams};
use kube::{Resource, ResourceExt};
use tracing::info;

use super::cache::Stores;
use super::qdrant::Removal;
use super::revision::collection_name;
use super::{Context, REVISION_LABEL, config, finalizer, observe, ownership};
use crate::api::{RagIndex, RagIndexStatus};
use crate::apply;
use crate::client::Call;
use crate::context::Note;
use crate::error::Error;

fn client(ctx: &Context) -> kube::Client {
    ctx.shared.client.clone()
}

/// The index's ingest Jobs in the cache (those it controls).
pub fn jobs_of(index: &RagIndex, stores: &Stores) -> Vec<Arc<Job>> {
    let ns = index.namespace();
    let uid = index.uid().unwrap_or_default();
    stores
        .jobs
        .state()
        .into_iter()
        .filter(|j| j.namespace() == ns)
        .filter(|j| crate::meta::controlled_by(&j.metadata, &uid))
        .collect()
}

/// Deletes the Job `name` and its ConfigMap. The Job goes in the foreground: it stays (and in
/// the cache) until its pods are gone, so "no Job" means no ingest can still write.
pub async fn delete_job(ctx: &Context, ns: &str, name: &str) -> Result<(), Error> {
    let sweep = |kind: &'static str| {
        move |source| Error::Sweep {
            kind,
            name: name.into(),
            source,
        }
    };
    let (jobs, config_maps) = (
        Api::<Job>::namespaced(client(ctx), ns),
        Api::<ConfigMap>::namespaced(client(ctx), ns),
    );
    let call = |kind| Call {
        verb: "delete",
        kind,
        name,
    };
    info!(kind = "Job", %name, "deleting");
    let request = async {
        match jobs.delete(name, &DeleteParams::foreground()).await {
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            other => other.map(drop),
        }
    };
    ctx.shared.call(call("Job"), request, sweep("Job")).await?;
    let request = apply::delete(&config_maps, name);
    let step = sweep("ConfigMap");
    ctx.shared.call(call("ConfigMap"), request, step).await
}

/// Deletes the Jobs (and their ConfigMaps) of this index except those in `keep`: only the
/// wanted revision's Job (and one of an earlier tick still running) tells anything the status
/// does not already hold. A Job already being deleted is left to finish going.
pub async fn sweep_jobs(index: &RagIndex, ctx: &Context, keep: &[&str]) -> Result<(), Error> {
    let ns = index.namespace().unwrap_or_default();
    let stale: Vec<String> = jobs_of(index, &ctx.stores)
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .map(|j| j.name_any())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    for name in stale {
        delete_job(ctx, &ns, &name).await?;
    }
    Ok(())
}

/// The collections an ingest may still write to: the wanted revision's, and those of the
/// index's Jobs that have not ended (or are being deleted: their pods may still run).
pub fn in_flight(index: &RagIndex, stores: &Stores, wanted: &str) -> BTreeSet<String> {
    let alias = config::alias(index);
    let mut out = BTreeSet::from([wanted.to_string()]);
    for j in jobs_of(index, stores) {
        let ended = observe::finished(&j).is_some() && j.metadata.deletion_timestamp.is_none();
        if let (false, Some(revision)) = (ended, j.labels().get(REVISION_LABEL)) {
            out.insert(collection_name(&alias, revision));
        }
    }
    out
}

/// Drops the recorded collections no pipeline serves, no ingest may write and the retention
/// does not keep, including partial ones of superseded or killed Jobs. Runs on every
/// reconciliation but calls Qdrant only when there is something to drop. Failures are told,
/// never fatal: the next reconciliation tries again.
pub async fn collect_garbage(
    index: &RagIndex,
    ctx: &Context,
    next: &mut RagIndexStatus,
    in_flight: &BTreeSet<String>,
) {
    let in_use = collections_in_use(&ctx.stores, &index.namespace().unwrap_or_default());
    let retain = usize::try_from(index.spec.retain_collections).unwrap_or(0);
    let drop = ownership::collections_to_drop(
        &next.collections,
        next.active_collection.as_deref(),
        in_flight,
        &in_use,
        retain,
    );
    if drop.is_empty() {
        return;
    }
    let result = async {
        let admin = finalizer::admin(index, ctx)
            .await
            .map_err(|e| e.to_string())?;
        for name in &drop {
            let owner = index.uid().unwrap_or_default();
            admin
                .remove(Removal::Collection {
                    name,
                    owner: &owner,
                })
                .await?;
            next.collections.retain(|c| c != name);
            info!(collection = %name, "dropped a superseded collection");
        }
        Ok::<_, String>(())
    }
    .await;
    if let Err(message) = result {
        let note = Note {
            warning: true,
            reason: "CollectionCleanupFailed",
            action: "DropCollections",
            message,
        };
        ctx.shared.publish(&index.object_ref(&()), note).await;
    }
}

/// Every collection a pipeline Deployment in `ns` names (either colour, scaled down or not).
pub fn collections_in_use(stores: &Stores, ns: &str) -> BTreeSet<String> {
    stores
        .deployments
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(ns))
        .filter_map(|d| d.annotations().get(super::COLLECTION_ANNOTATION).cloned())
        .collect()
}
