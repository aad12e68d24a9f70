//! The ConfigMaps and Secrets a pod spec refers to, read once when the pod starts.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Secret, VolumeProjection};
use kube::{Api, Client};

/// What kind of object holds the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    ConfigMap,
    Secret,
}

/// A reference from the spec to an object; `optional` as the spec says (default: required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectRef {
    pub kind: Kind,
    pub name: String,
    pub optional: bool,
}

/// The ConfigMaps and Secrets available to a pod, by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct PodInputs {
    config_maps: BTreeMap<String, ConfigMap>,
    secrets: BTreeMap<String, Secret>,
}

impl PodInputs {
    #[cfg(test)]
    pub fn new(
        config_maps: impl IntoIterator<Item = ConfigMap>,
        secrets: impl IntoIterator<Item = Secret>,
    ) -> Self {
        let name = |m: &kube::api::ObjectMeta| m.name.clone().unwrap_or_default();
        Self {
            config_maps: config_maps
                .into_iter()
                .map(|c| (name(&c.metadata), c))
                .collect(),
            secrets: secrets
                .into_iter()
                .map(|s| (name(&s.metadata), s))
                .collect(),
        }
    }

    /// Every key of the object as bytes (a ConfigMap's `data` and `binaryData`, a Secret's `data`
    /// decoded, and `stringData` should an object carry it); None when the object is absent.
    pub fn data(&self, kind: Kind, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        match kind {
            Kind::ConfigMap => self.config_maps.get(name).map(|c| {
                let text = c.data.iter().flatten().map(|(k, v)| (k, v.as_bytes()));
                let binary = c.binary_data.iter().flatten().map(|(k, v)| (k, &v.0[..]));
                text.chain(binary)
                    .map(|(k, v)| (k.clone(), v.to_vec()))
                    .collect()
            }),
            Kind::Secret => self.secrets.get(name).map(|s| {
                let data = s.data.iter().flatten().map(|(k, v)| (k, &v.0[..]));
                let text = s
                    .string_data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k, v.as_bytes()));
                data.chain(text)
                    .map(|(k, v)| (k.clone(), v.to_vec()))
                    .collect()
            }),
        }
    }

    /// One key as UTF-8 text (for environment variables). `Ok(None)`: the object or key is absent.
    pub fn text(&self, kind: Kind, name: &str, key: &str) -> Result<Option<String>> {
        let Some(bytes) = self.data(kind, name).and_then(|mut d| d.remove(key)) else {
            return Ok(None);
        };
        match String::from_utf8(bytes) {
            Ok(s) => Ok(Some(s)),
            Err(_) => bail!("{kind:?} {name} key {key} is not UTF-8 text"),
        }
    }
}

/// Every ConfigMap and Secret the spec refers to (volumes, `env`, `envFrom`), each once; an object
/// referred to both optionally and not is required.
pub(crate) fn references(spec: &PodSpec) -> Vec<ObjectRef> {
    let mut refs: BTreeMap<(Kind, String), bool> = BTreeMap::new();
    let mut add = |kind: Kind, name: &str, optional: Option<bool>| {
        let optional = optional.unwrap_or(false);
        refs.entry((kind, name.to_string()))
            .and_modify(|o| *o &= optional)
            .or_insert(optional);
    };
    for volume in spec.volumes.iter().flatten() {
        if let Some(c) = &volume.config_map {
            add(Kind::ConfigMap, &c.name, c.optional);
        }
        if let Some(s) = &volume.secret {
            add(
                Kind::Secret,
                s.secret_name.as_deref().unwrap_or(""),
                s.optional,
            );
        }
        let sources = volume.projected.as_ref().and_then(|p| p.sources.as_ref());
        for p in sources.into_iter().flatten() {
            projection_refs(p, &mut add);
        }
    }
    for c in containers(spec) {
        for e in c.env.iter().flatten() {
            let Some(from) = &e.value_from else { continue };
            if let Some(r) = &from.config_map_key_ref {
                add(Kind::ConfigMap, &r.name, r.optional);
            }
            if let Some(r) = &from.secret_key_ref {
                add(Kind::Secret, &r.name, r.optional);
            }
        }
        for e in c.env_from.iter().flatten() {
            if let Some(r) = &e.config_map_ref {
                add(Kind::ConfigMap, &r.name, r.optional);
            }
            if let Some(r) = &e.secret_ref {
                add(Kind::Secret, &r.name, r.optional);
            }
        }
    }
    refs.into_iter()
        .map(|((kind, name), optional)| ObjectRef {
            kind,
            name,
            optional,
        })
        .collect()
}

fn projection_refs(p: &VolumeProjection, add: &mut impl FnMut(Kind, &str, Option<bool>)) {
    if let Some(c) = &p.config_map {
        add(Kind::ConfigMap, &c.name, c.optional);
    }
    if let Some(s) = &p.secret {
        add(Kind::Secret, &s.name, s.optional);
    }
}

/// Init containers, then the containers.
pub(crate) fn containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

/// Reads the referenced objects; fails while a required one does not exist (a kubelet keeps such
/// a pod in ContainerCreating and retries; so does the caller).
pub(crate) async fn fetch(
    client: &Client,
    namespace: &str,
    refs: &[ObjectRef],
) -> Result<PodInputs> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut inputs = PodInputs::default();
    for r in refs {
        let found = match r.kind {
            Kind::ConfigMap => config_maps
                .get_opt(&r.name)
                .await?
                .map(|c| inputs.config_maps.insert(r.name.clone(), c))
                .is_some(),
            Kind::Secret => secrets
                .get_opt(&r.name)
                .await?
                .map(|s| inputs.secrets.insert(r.name.clone(), s))
                .is_some(),
        };
        if !found && !r.optional {
            bail!("{:?} {namespace}/{} not found", r.kind, r.name);
        }
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_referenced_object_once_required_wins() {
        let spec: PodSpec = serde_json::from_value(json!({
            "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "settings", "optional": true}}]}],
            "containers": [{"name": "c",
                "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "k", "optional": true}}},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "k"}}},
                    {"name": "C", "value": "plain"},
                ],
                "envFrom": [{"secretRef": {"name": "env-secret"}}]}],
            "volumes": [
                {"name": "v1", "configMap": {"name": "docs"}},
                {"name": "v2", "secret": {"secretName": "api-keys"}},
                {"name": "v3", "projected": {"sources": [{"secret": {"name": "llm"}}]}},
                {"name": "v4", "emptyDir": {}},
            ],
        }))
        .unwrap();
        let refs = references(&spec);
        let refs: Vec<(Kind, &str, bool)> = refs
            .iter()
            .map(|r| (r.kind, r.name.as_str(), r.optional))
            .collect();
        assert_eq!(
            refs,
            [
                (Kind::ConfigMap, "docs", false),
                (Kind::ConfigMap, "settings", false),
                (Kind::Secret, "api-keys", false),
                (Kind::Secret, "env-secret", false),
                (Kind::Secret, "llm", false),
            ]
        );
    }
}
