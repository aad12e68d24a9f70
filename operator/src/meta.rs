//! Labels and owner references every child carries, whichever controller builds it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use crate::api::SecretKeyRef;

/// Label selecting everything the operator manages (its watches use it).
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY`].
pub const MANAGER: &str = "ragops";

/// The `app.kubernetes.io/*` labels of a child: what it runs, for which object, as which part.
pub fn standard_labels(app: &str, instance: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), app.into()),
        ("app.kubernetes.io/instance".into(), instance.into()),
        ("app.kubernetes.io/component".into(), component.into()),
        (MANAGED_BY.into(), MANAGER.into()),
    ])
}

/// Metadata of a child called `name` in the owner's namespace, controlled by `owner`.
pub fn owned_by<K: Resource<DynamicType = ()>>(
    owner: &K,
    name: String,
    labels: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: owner.meta().namespace.clone(),
        labels: Some(labels),
        owner_references: Some(vec![
            owner
                .controller_owner_ref(&())
                .expect("a stored object has a name and uid"),
        ]),
        ..ObjectMeta::default()
    }
}

/// Whether `meta` names `uid` as its controller: only such objects may be swept.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == uid && r.controller == Some(true))
}

/// The variable `name` read from a Secret key: credentials reach pods by reference only.
pub fn env_from_secret(name: &str, r: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}
