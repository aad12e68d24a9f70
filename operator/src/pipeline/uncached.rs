//! The reads of a reconciliation that the caches cannot hold: a Secret value (never cached) and
//! the content of a source ConfigMap copied into a snapshot. Each runs under the API timeout.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::Api;

use super::Context;
use super::build::{self, Validated};
use super::desired::snapshots_in_use;
use super::observe::Snapshot;
use crate::api::RagPipeline;
use crate::client::Call;
use crate::error::Error;
use crate::watch::trim;

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
    let api: Api<Secret> = Api::namespaced(
        ctx.shared.client.clone(),
        &p.namespace().unwrap_or_default(),
    );
    let call = Call {
        verb: "get",
        kind: "Secret",
        name: &r.name,
    };
    let secret = ctx
        .shared
        .call(call, api.get(&r.name), |source| Error::Read {
            what: format!("Secret {}", r.name),
            source,
        })
        .await?;
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
        let api: Api<ConfigMap> = Api::namespaced(ctx.shared.client.clone(), &ns);
        let call = Call {
            verb: "get",
            kind: "ConfigMap",
            name: &source.name,
        };
        let request = api.get(&source.name);
        let content = ctx
            .shared
            .call(call, request, |e| Error::Read {
                what: format!("ConfigMap {}", source.name),
                source: e,
            })
            .await?;
        if trim::config_map_digest(&content) != source.digest {
            return Ok(None);
        }
        out.push(build::snapshot(v, source, &content));
    }
    Ok(Some(out))
}
