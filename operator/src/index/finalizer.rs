//! `deletionPolicy: Delete`: a finalizer keeps a Qdrant-backed RagIndex until the collections it
//! recorded as its own (and its alias, when it points at one of them) are dropped. With `Retain`
//! (or an embedded store) there is no finalizer, and one left from an earlier policy is removed.
//!
//! A deletion waits (condition `InUse`) while a pipeline Deployment names one of the
//! collections, then deletes the index's Jobs and waits until they and their pods are gone, then
//! drops. It never holds forever: when the credentials Secret is gone or the namespace is
//! terminating, it lets go with a Warning Event naming what it left on the server. What to do is
//! decided in `ownership`; this file observes and acts.
//!
//! kube-runtime's `finalizer()` is not used: it puts the finalizer on every object, and this one
//! is wanted only for the `Delete` policy of a Qdrant store (an embedded index, or `Retain`, must
//! never wait on an operator to be deleted).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use super::ownership::{self, Deleting, DeletionStep, DropFailure};
use super::qdrant::{Admin, Removal};
use super::{Context, cleanup, config};
use crate::api::{DeletionPolicy, RagIndex};
use crate::client::Call;
use crate::context::Note;
use crate::error::Error;

pub const FINALIZER: &str = "ragops.io/collections";
/// How soon a deletion that could not reach Qdrant tries again.
const DELETE_RETRY: Duration = Duration::from_secs(30);
/// How often a deletion waiting on a pipeline or a Job looks again (the Deployments that name
/// collections are cached but do not wake the index).
const WAIT_RECHECK: Duration = Duration::from_secs(5);

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
    if !wanted(index) {
        set(index, ctx, false).await?;
        return Ok(Some(Action::await_change()));
    }
    ctx.stores.ready().await;
    let ns = index.namespace().unwrap_or_default();
    let owned = ownership::owned(index.status.as_ref());
    let serving = cleanup::collections_in_use(&ctx.stores, &ns);
    let jobs = cleanup::jobs_of(index, &ctx.stores);
    let in_use: Vec<String> = owned
        .iter()
        .filter(|c| serving.contains(*c))
        .cloned()
        .collect();
    let deleting = Deleting {
        // Read only when a pipeline is in the way (the namespace's own deletion removes it).
        namespace_terminating: !in_use.is_empty() && namespace_terminating(ctx, &ns).await,
        in_use,
        jobs: jobs.len(),
    };
    match ownership::deletion_step(&deleting) {
        DeletionStep::WaitInUse(names) => {
            let message = format!(
                "a pipeline Deployment in this namespace serves {}; the deletion waits until none does",
                names.join(", ")
            );
            tell(index, ctx, "InUse", &message).await?;
            Ok(Some(Action::requeue(WAIT_RECHECK)))
        }
        DeletionStep::StopJobs => {
            for j in jobs
                .iter()
                .filter(|j| j.metadata.deletion_timestamp.is_none())
            {
                cleanup::delete_job(ctx, &ns, &j.name_any()).await?;
            }
            Ok(Some(Action::requeue(WAIT_RECHECK)))
        }
        DeletionStep::Drop => match drop_owned(index, ctx, &owned).await {
            Ok(()) => release(index, ctx).await,
            Err(failure)
                if ownership::release_after(&failure, terminating(&failure, ctx, &ns).await) =>
            {
                let why = match &failure {
                    DropFailure::CredentialsGone(m) => m.clone(),
                    DropFailure::Server(m) => format!("the namespace is terminating ({m})"),
                };
                let message = format!(
                    "released without dropping: {why}; left on the Qdrant server: {}",
                    leftovers(index, &owned)
                );
                warn!(index = %index.name_any(), %message);
                let note = Note {
                    warning: true,
                    reason: "CollectionsLeft",
                    action: "DropCollections",
                    message,
                };
                ctx.shared.publish(&index.object_ref(&()), note).await;
                release(index, ctx).await
            }
            Err(failure) => {
                let url = index
                    .spec
                    .vector_store
                    .qdrant
                    .as_ref()
                    .map(|q| q.url.as_str());
                let message = format!(
                    "cannot drop the collections on {} yet, retrying in {DELETE_RETRY:?}: {failure}",
                    url.unwrap_or_default()
                );
                tell(index, ctx, "DeleteFailed", &message).await?;
                Ok(Some(Action::requeue(DELETE_RETRY)))
            }
        },
    }
}

/// Whether the namespace is terminating, read only when it decides something: after a drop
/// that failed on the server (a Secret that is gone releases anyway).
async fn terminating(failure: &DropFailure, ctx: &Context, ns: &str) -> bool {
    matches!(failure, DropFailure::Server(_)) && namespace_terminating(ctx, ns).await
}

async fn release(index: &RagIndex, ctx: &Context) -> Result<Option<Action>, Error> {
    set(index, ctx, false).await?;
    Ok(Some(Action::await_change()))
}

fn leftovers(index: &RagIndex, owned: &[String]) -> String {
    let mut left = owned.to_vec();
    left.push(format!("alias {}", config::alias(index)));
    left.join(", ")
}

/// Drops every collection the index owns, and its alias when it points at one of them.
async fn drop_owned(index: &RagIndex, ctx: &Context, owned: &[String]) -> Result<(), DropFailure> {
    let admin = admin(index, ctx).await?;
    let alias = config::alias(index);
    let target = admin
        .alias_target(&alias)
        .await
        .map_err(DropFailure::Server)?;
    if ownership::drops_alias(target.as_deref(), owned) {
        admin
            .remove(Removal::Alias(&alias))
            .await
            .map_err(DropFailure::Server)?;
    }
    let uid = index.uid().unwrap_or_default();
    for name in owned {
        admin
            .remove(Removal::Collection { name, owner: &uid })
            .await
            .map_err(DropFailure::Server)?;
        info!(collection = %name, "dropped (deletionPolicy: Delete)");
    }
    Ok(())
}

/// Whether the namespace is being deleted. Unknown (not readable) counts as not: the deletion
/// then waits as it would anyway.
async fn namespace_terminating(ctx: &Context, ns: &str) -> bool {
    let api: Api<Namespace> = Api::all(ctx.shared.client.clone());
    let call = Call {
        verb: "get",
        kind: "Namespace",
        name: ns,
    };
    let read = |source| Error::Read {
        what: format!("Namespace {ns}"),
        source,
    };
    match ctx.shared.call(call, api.get_opt(ns), read).await {
        Ok(found) => found.is_none_or(|n| n.metadata.deletion_timestamp.is_some()),
        Err(e) => {
            warn!(namespace = %ns, error = %e, "cannot tell whether the namespace is terminating");
            false
        }
    }
}

/// A condition (Degraded, with `reason`) and a Warning Event about a deletion that waits; the
/// Event only when the condition changed, so a long wait writes nothing more.
async fn tell(index: &RagIndex, ctx: &Context, reason: &str, message: &str) -> Result<(), Error> {
    let at = super::status::At {
        revision: "",
        job: "",
        collection: "",
        indexed_with: None,
        generation: index.meta().generation,
        now: k8s_openapi::jiff::Timestamp::now(),
    };
    let next = super::status::after_user_error(index.status.as_ref(), reason, message, &at);
    if !super::reconcile::write_status(index, ctx, &next).await? {
        return Ok(());
    }
    let note = Note {
        warning: true,
        reason,
        action: "DropCollections",
        message: message.into(),
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
/// (read when needed, never cached). A Secret that is gone (or lacks the key) is
/// `CredentialsGone`: it will not come back by retrying.
pub async fn admin(index: &RagIndex, ctx: &Context) -> Result<Admin, DropFailure> {
    let Some(q) = &index.spec.vector_store.qdrant else {
        return Err(DropFailure::Server("the index has no Qdrant server".into()));
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
                .call(call, api.get_opt(&r.name), read)
                .await
                .map_err(|e| DropFailure::Server(e.to_string()))?;
            let gone = || {
                format!(
                    "Secret {} (key {}) with the Qdrant API key is gone",
                    r.name, r.key
                )
            };
            let value = secret
                .and_then(|s| s.data)
                .and_then(|d| d.get(&r.key).cloned())
                .ok_or_else(|| DropFailure::CredentialsGone(gone()))?;
            Some(String::from_utf8_lossy(&value.0).trim().to_string())
        }
    };
    Admin::connect(&q.url, api_key, ctx.shared.leader.clone()).map_err(DropFailure::Server)
}
