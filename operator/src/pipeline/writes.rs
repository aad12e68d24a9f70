//! The writes a reconciliation makes to the pipeline itself: its status (the record of the
//! decision, written before any child changes, under a precondition on what the decision read),
//! the tidying of request annotations already handled, and the wait for the cache to show both.

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use super::rollout::requests;
use super::{Context, KIND};
use crate::api::{HandledRequests, RagPipeline, RagPipelineStatus};
use crate::apply::FIELD_MANAGER;
use crate::client::Call;
use crate::crash;
use crate::error::Error;

/// How long a reconciliation waits for the pipeline cache to show what it wrote to the pipeline.
const OWN_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes the status when it changed, or always when `confirm` (the decision moves traffic or
/// scales a colour to zero); returns the pipeline as stored when it wrote.
///
/// The patch carries the `resourceVersion` the decision was made on: a decision made on a cached
/// pipeline older than the stored one (a stale cache, another replica's write) fails with a
/// conflict, retried at once on fresh state, instead of undoing a newer decision. Because this is
/// the first write of a reconciliation, a stale decision changes nothing at all.
pub async fn status(
    p: &RagPipeline,
    ctx: &Context,
    status: &RagPipelineStatus,
    confirm: bool,
) -> Result<Option<RagPipeline>, Error> {
    if !confirm && p.status.as_ref() == Some(status) {
        return Ok(None);
    }
    let mut patch =
        json!({ "apiVersion": RagPipeline::api_version(&()), "kind": KIND, "status": status });
    if let Some(version) = p.resource_version() {
        patch["metadata"] = json!({ "resourceVersion": version });
    }
    let (params, name) = (PatchParams::apply(FIELD_MANAGER).force(), p.name_any());
    let api = api(p, ctx);
    let patch = Patch::Apply(&patch);
    let request = api.patch_status(&name, &params, &patch);
    let call = Call {
        verb: "patch status of",
        kind: KIND,
        name: &name,
    };
    let stored = ctx.shared.call(call, request, Error::Status).await?;
    Ok(Some(stored))
}

/// Removes the annotations of requests recorded as handled from `p` (the pipeline as last read or
/// written); returns the pipeline as stored when it did. Best effort: the record already makes a
/// repeat harmless, so a failure is only logged. The removal is conditional on `p`'s
/// `resourceVersion`, so a request set meanwhile (a new id) is never removed unseen.
pub async fn tidy(
    p: &RagPipeline,
    ctx: &Context,
    handled: &HandledRequests,
) -> Option<RagPipeline> {
    let keys = requests::tidy(p.annotations(), handled);
    if keys.is_empty() {
        return None;
    }
    crash::point(crash::at::CHILDREN_APPLIED);
    let patch = removal(p.resource_version(), &keys);
    let (api, name) = (api(p, ctx), p.name_any());
    let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
    let request = api.patch(&name, &params, &patch);
    let call = Call {
        verb: "patch annotations of",
        kind: KIND,
        name: &name,
    };
    match ctx.shared.call(call, request, Error::Annotations).await {
        Ok(stored) => Some(stored),
        Err(error) => {
            warn!(%error, ?keys, "removing handled request annotations (harmless: their ids are recorded)");
            None
        }
    }
}

/// A merge patch removing `keys`, applied only to `version` of the object.
fn removal(version: Option<String>, keys: &[&str]) -> serde_json::Value {
    let remove: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|key| (key.to_string(), serde_json::Value::Null))
        .collect();
    json!({ "metadata": { "resourceVersion": version, "annotations": remove } })
}

/// Waits until the pipeline cache holds `latest` (this reconciliation's last write to the
/// pipeline): its status, and none of the `tidied` annotations. The next reconciliation of a
/// pipeline starts only after this one returns, so it then decides on what this one wrote (a
/// decision on an older status would fail its status write anyway, see [`status`]). Bounded: on
/// timeout it only logs.
pub async fn await_own(ctx: &Context, latest: &RagPipeline, tidied: &[&str]) {
    let key = ObjectRef::from_obj(latest);
    let deadline = tokio::time::Instant::now() + OWN_WRITES_TIMEOUT;
    loop {
        let caught_up = ctx.stores.pipelines.get(&key).is_none_or(|cached| {
            cached.status == latest.status
                && tidied
                    .iter()
                    .all(|a| !cached.annotations().contains_key(*a))
        });
        if caught_up {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            warn!(timeout = ?OWN_WRITES_TIMEOUT, "the pipeline cache does not show this reconciliation's writes yet");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn api(p: &RagPipeline, ctx: &Context) -> Api<RagPipeline> {
    Api::namespaced(
        ctx.shared.client.clone(),
        &p.namespace().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removal_is_conditional_on_the_version_read() {
        assert_eq!(
            removal(Some("42".into()), &["ragops.io/rollback"]),
            json!({ "metadata": {
                "resourceVersion": "42",
                "annotations": { "ragops.io/rollback": null }
            } })
        );
    }
}
