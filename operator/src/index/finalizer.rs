//! `deletionPolicy: Delete`: a finalizer keeps a Qdrant-backed RagIndex until the collections it
//! created (and its alias) are dropped. With `Retain` (or an embedded store) there is no
//! finalizer, and one left from an earlier policy is removed. When Qdrant cannot be reached the
//! deletion waits, says why in a condition and an Event, and tries again: it never blocks
//! silently, and it never drops a collection some other index or tool created.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::info;

use super::qdrant::Admin;
use super::status::{self, At};
use super::{Context, config};
use crate::api::{DeletionPolicy, RagIndex};
use crate::client::Call;
use crate::context::Note;
use crate::error::Error;

pub const FINALIZER: &str = "ragops.io/collections";
/// How soon a deletion that could not reach Qdrant tries again.
const DELETE_RETRY: Duration = Duration::from_secs(30);

/// Whether `index` should carry the finalizer.
pub fn wanted(index: &RagIndex) -> bool {
    index.spec.vector_store.qdrant.is_some() && index.spec.deletion_policy == DeletionPolicy::Delete
}

/// Adds or removes the finalizer as the policy asks, and runs it on deletion. `Some` ends the
/// reconciliation there.
pub async fn handle(index: &RagIndex, ctx: &Context) -> Result<Option<Action>, Error> {
    let has = index.finalizers().iter().any(|f| f == FINALIZER);
    if index.meta().deletion_timestamp.is_none() {
        if wanted(index) != has {
            set(index, ctx, !has).await?;
        }
        return Ok(None);
    }
    if !has {
        return Ok(Some(Action::await_change()));
    }
    if wanted(index)
        && let Err(message) = drop_all(index, ctx).await
    {
        report(index, ctx, &message).await?;
        return Ok(Some(Action::requeue(DELETE_RETRY)));
    }
    set(index, ctx, false).await?;
    Ok(Some(Action::await_change()))
}

/// Drops every collection named `<alias>-<revision>` and the alias.
async fn drop_all(index: &RagIndex, ctx: &Context) -> Result<(), String> {
    let alias = config::alias(index);
    let admin = admin(index, ctx).await?;
    admin.drop_alias(&alias).await?;
    for name in admin.revisions_of(&alias).await? {
        admin.drop(&name).await?;
        info!(collection = %name, "dropped (deletionPolicy: Delete)");
    }
    Ok(())
}

async fn report(index: &RagIndex, ctx: &Context, message: &str) -> Result<(), Error> {
    let message =
        format!("cannot drop the collections yet, retrying in {DELETE_RETRY:?}: {message}");
    let at = At {
        revision: "",
        job: "",
        indexed_with: None,
        generation: index.meta().generation,
        now: Timestamp::now(),
    };
    let next = status::after_user_error(index.status.as_ref(), "DeleteFailed", &message, &at);
    super::reconcile::write_status(index, ctx, &next).await?;
    let note = Note {
        warning: true,
        reason: "DeleteFailed",
        action: "DropCollections",
        message,
    };
    ctx.shared.publish(&index.object_ref(&()), note).await;
    Ok(())
}

async fn set(index: &RagIndex, ctx: &Context, present: bool) -> Result<(), Error> {
    let mut finalizers: Vec<String> = index
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.into());
    }
    // The resourceVersion makes this a compare-and-swap: a concurrent change of the list fails
    // with a conflict and is retried on fresh state, never overwritten.
    let patch = json!({ "metadata": {
        "finalizers": finalizers,
        "resourceVersion": index.resource_version(),
    }});
    let api: Api<RagIndex> = Api::namespaced(
        ctx.shared.client.clone(),
        &index.namespace().unwrap_or_default(),
    );
    let name = index.name_any();
    let call = Call {
        verb: "patch finalizers of",
        kind: super::KIND,
        name: &name,
    };
    let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
    let request = api.patch(&name, &params, &patch);
    ctx.shared.call(call, request, Error::Finalizer).await?;
    Ok(())
}

/// A Qdrant client for the index's server, with its API key read from the referenced Secret
/// (read when needed, never cached).
pub async fn admin(index: &RagIndex, ctx: &Context) -> Result<Admin, String> {
    let Some(q) = &index.spec.vector_store.qdrant else {
        return Err("the index has no Qdrant server".into());
    };
    let api_key = match &q.api_key_secret_ref {
        None => None,
        Some(r) => {
            let api: Api<Secret> = Api::namespaced(
                ctx.shared.client.clone(),
                &index.namespace().unwrap_or_default(),
            );
            let call = Call {
                verb: "get",
                kind: "Secret",
                name: &r.name,
            };
            let read = |source| Error::Read {
                what: format!("Secret {}", r.name),
                source,
            };
            let secret = ctx
                .shared
                .call(call, api.get(&r.name), read)
                .await
                .map_err(|e| e.to_string())?;
            let value = secret.data.and_then(|d| d.get(&r.key).cloned());
            let value = value.ok_or_else(|| format!("Secret {} has no key {}", r.name, r.key))?;
            Some(String::from_utf8_lossy(&value.0).trim().to_string())
        }
    };
    Admin::connect(&q.url, api_key, ctx.shared.leader.clone())
}
