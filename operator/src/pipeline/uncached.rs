//! The reads of a reconciliation that the caches cannot hold: a Secret value (never cached) and
//! the content of a source ConfigMap copied into a snapshot. Each runs under the API timeout.

use std::fmt::Debug;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::{NamespaceResourceScope, Resource};
use kube::ResourceExt;
use kube::api::Api;
use serde::de::DeserializeOwned;

use super::Context;
use super::build::{self, Validated};
use super::desired::snapshots_in_use;
use super::observe::Snapshot;
use crate::api::RagPipeline;
use crate::client::Call;
use crate::error::Error;
use crate::watch::trim;

/// Reads `name` of kind `K` in `namespace` from the API server, under the API timeout.
pub(super) async fn get<K>(ctx: &Context, namespace: &str, name: &str) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    K: Clone + DeserializeOwned + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.shared.client.clone(), namespace);
    let call = Call {
        verb: "get",
        kind: K::KIND,
        name,
    };
    let read = |source| Error::Read {
        what: format!("{} {name}", K::KIND),
        source,
    };
    ctx.shared.call(call, api.get(name), read).await
}

/// A token the runtime accepts, when it requires one: the first line of the pipeline's API keys
/// Secret. Read when needed, so the caches never hold a Secret value.
pub(super) async fn gate_token(p: &RagPipeline, ctx: &Context) -> Result<Option<String>, Error> {
    let Some(r) = p
        .spec
        .server
        .as_ref()
        .and_then(|s| s.api_keys_secret_ref.as_ref())
    else {
        return Ok(None);
    };
    let ns = p.namespace().unwrap_or_default();
    let secret: Secret = get(ctx, &ns, &r.name).await?;
    let value = secret.data.as_ref().and_then(|d| d.get(&r.key));
    let text = value.map(|v| String::from_utf8_lossy(&v.0).into_owned());
    Ok(text.and_then(|t| {
        t.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(String::from)
    }))
}

/// The source snapshots the pods mount: those the caches hold, and copies of the sources made
/// now for a new content version. `None` when a source has changed since the caches saw it.
pub(super) async fn sources(
    ctx: &Context,
    v: &Validated,
    observed: &Snapshot,
) -> Result<Option<Vec<ConfigMap>>, Error> {
    let ns = v.namespace();
    let mut out = vec![];
    for name in snapshots_in_use(v, observed) {
        if let Some(existing) = crate::watch::get(&ctx.stores.config_maps, &ns, &name) {
            out.push((*existing).clone());
            continue;
        }
        let pipeline = v.name();
        let Some(source) = v
            .inputs
            .sources
            .iter()
            .find(|s| build::snapshot_name(&pipeline, s) == name)
        else {
            // Mounted by an old Deployment and deleted by hand: its content is gone.
            continue;
        };
        let content: ConfigMap = get(ctx, &ns, &source.name).await?;
        if trim::config_map_digest(&content) != source.digest {
            return Ok(None);
        }
        out.push(build::snapshot(v, source, &content));
    }
    Ok(Some(out))
}
