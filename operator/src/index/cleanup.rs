//! What an index leaves behind and no longer needs: the Jobs (and their ConfigMaps) of other
//! revisions, and the Qdrant collections no pipeline serves beyond the retention.

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use tracing::info;

use super::cache::Stores;
use super::{Context, INDEX_LABEL, config, decide, finalizer};
use crate::api::{RagIndex, RagIndexStatus};
use crate::apply;
use crate::client::Call;
use crate::context::Note;
use crate::error::Error;

fn client(ctx: &Context) -> kube::Client {
    ctx.shared.client.clone()
}

/// Deletes the Job `name` and its ConfigMap.
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
    let request = apply::delete(&jobs, name);
    ctx.shared.call(call("Job"), request, sweep("Job")).await?;
    let request = apply::delete(&config_maps, name);
    let step = sweep("ConfigMap");
    ctx.shared.call(call("ConfigMap"), request, step).await
}

/// Deletes the Jobs (and their ConfigMaps) of every other revision of this index: only the
/// wanted revision's Job tells anything the status does not already hold.
pub async fn sweep_jobs(index: &RagIndex, ctx: &Context, keep: &str) -> Result<(), Error> {
    let ns = index.namespace().unwrap_or_default();
    let uid = index.uid().unwrap_or_default();
    let stale: Vec<String> = ctx
        .stores
        .jobs
        .state()
        .into_iter()
        .filter(|j| j.namespace().as_deref() == Some(ns.as_str()))
        .filter(|j| j.labels().get(INDEX_LABEL) == Some(&index.name_any()))
        .filter(|j| crate::meta::controlled_by(&j.metadata, &uid))
        .map(|j| j.name_any())
        .filter(|n| n != keep)
        .collect();
    for name in stale {
        delete_job(ctx, &ns, &name).await?;
    }
    Ok(())
}

/// Drops the collections no pipeline serves and the retention does not keep, including ones a
/// crashed or superseded Job left behind. Failures are told, never fatal: the next completed
/// ingest tries again.
pub async fn collect_garbage(index: &RagIndex, ctx: &Context, next: &mut RagIndexStatus) {
    let alias = config::alias(index);
    let result = async {
        let admin = finalizer::admin(index, ctx).await?;
        let mut created = next.collections.clone();
        for orphan in admin.revisions_of(&alias).await? {
            if !created.contains(&orphan) {
                created.push(orphan);
            }
        }
        let in_use = collections_in_use(&ctx.stores, &index.namespace().unwrap_or_default());
        let retain = usize::try_from(index.spec.retain_collections).unwrap_or(0);
        let drop = decide::collections_to_drop(
            &created,
            next.active_collection.as_deref(),
            &in_use,
            retain,
        );
        for name in &drop {
            admin.drop(name).await?;
            info!(collection = %name, "dropped a superseded collection");
        }
        next.collections.retain(|c| !drop.contains(c));
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
fn collections_in_use(stores: &Stores, ns: &str) -> BTreeSet<String> {
    stores
        .deployments
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(ns))
        .filter_map(|d| d.annotations().get(super::COLLECTION_ANNOTATION).cloned())
        .collect()
}
