//! Writes to the API server, shared by every controller: server-side apply under one field
//! manager, skipped when the API server already holds what we want (so a steady object causes no
//! writes), scaling through the scale subresource, and deleting what is no longer wanted.

mod drift;

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::info;

pub use drift::{drift, first_difference, first_unset};

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "ragops";

/// What an apply did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The API server already had it.
    Unchanged,
    Created,
    /// It existed and differed; `field` is the first field that did.
    Updated {
        field: String,
    },
    /// It was no longer wanted.
    Deleted,
}

/// Whether `entry` records what the operator's server-side applies own (not its status, not
/// its scale): the one managed-fields entry drift detection reads.
pub fn is_own_apply(entry: &ManagedFieldsEntry) -> bool {
    own_apply(
        entry.manager.as_deref(),
        entry.operation.as_deref(),
        entry.subresource.as_deref(),
    )
}

fn own_apply(manager: Option<&str>, operation: Option<&str>, subresource: Option<&str>) -> bool {
    manager == Some(FIELD_MANAGER)
        && operation == Some("Apply")
        && subresource.unwrap_or_default().is_empty()
}

/// The `fieldsV1` the operator's server-side applies own in `obj`, an object as JSON (not its
/// status).
pub fn owned_fields(obj: &Value) -> Option<&Value> {
    let entries = obj.pointer("/metadata/managedFields")?.as_array()?;
    fn text<'a>(e: &'a Value, key: &str) -> Option<&'a str> {
        e.get(key).and_then(Value::as_str)
    }
    entries
        .iter()
        .find(|e| {
            own_apply(
                text(e, "manager"),
                text(e, "operation"),
                text(e, "subresource"),
            )
        })?
        .get("fieldsV1")
}

/// Why `observed` must be applied to become `desired`; none when it need not be. `observed` is
/// read as the API server stores it: from the text a trimmed cache kept, or as it is.
pub fn needs_apply<K: Resource + Serialize>(desired: &K, observed: &K) -> Option<String> {
    let d = serde_json::to_value(desired).ok()?;
    let o = match crate::watch::trim::as_stored(observed.meta()) {
        Some(text) => serde_json::from_str(text).ok()?,
        None => serde_json::to_value(observed).ok()?,
    };
    drift(&d, &o, owned_fields(&o))
}

/// Applies `desired` unless `observed` already matches it.
pub async fn apply<K>(
    api: &Api<K>,
    desired: &K,
    observed: Option<&K>,
) -> Result<Applied, kube::Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let applied = match observed {
        None => Applied::Created,
        Some(observed) => match needs_apply(desired, observed) {
            None => return Ok(Applied::Unchanged),
            Some(field) => Applied::Updated { field },
        },
    };
    match &applied {
        Applied::Updated { field } => {
            info!(kind = %K::kind(&()), name = %desired.name_any(), %field, "updating")
        }
        _ => info!(kind = %K::kind(&()), name = %desired.name_any(), "creating"),
    }
    api.patch(
        &desired.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(desired),
    )
    .await?;
    Ok(applied)
}

/// Sets a workload's replica count through the scale subresource, leaving its template alone.
pub async fn scale<K>(api: &Api<K>, name: &str, replicas: i32) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    info!(kind = %K::kind(&()), %name, replicas, "scaling");
    let patch = json!({ "spec": { "replicas": replicas } });
    api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Deletes an object that is no longer wanted; a 404 means someone else already did.
pub async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    info!(kind = %K::kind(&Default::default()), %name, "deleting");
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
