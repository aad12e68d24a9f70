//! What the stores keep of each object: only what the operator reads. Objects the operator
//! applies keep the one managed-fields entry drift detection reads (the controller-manager's and
//! anyone else's are often larger than the object itself); pods keep their labels, IP and
//! readiness; ConfigMaps the operator does not own keep a digest of their content instead of the
//! content; Secrets keep their keys with a digest of each value (or that it was blank), never a
//! value.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodCondition, PodSpec, PodStatus, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde_json::json;

use crate::meta::{MANAGED_BY, MANAGER};
use crate::{apply, digest};

/// Annotation a trimmed ConfigMap carries instead of its content.
pub const CONTENT_DIGEST: &str = "ragops.io/content-digest";
/// Annotation a trimmed ConfigMap carries with its number of keys (documents, for a source).
pub const CONTENT_KEYS: &str = "ragops.io/content-keys";

/// Metadata without what nobody reads (managed fields, annotations).
fn lean(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.annotations = None;
}

/// An object the operator applies: whole, but of its managed fields only what the operator's own
/// applies own.
pub fn owned<K: Resource>(obj: &mut K) {
    if let Some(entries) = obj.meta_mut().managed_fields.as_mut() {
        entries.retain(apply::is_own_apply);
    }
}

/// Annotation a cached Deployment carries instead of most of its spec: the object as the API
/// server stores it (status aside, of its managed fields only the operator's apply entry), as
/// JSON text. Drift detection compares with it; a pod spec kept as typed fields is several times
/// larger than its text (every `Option` of every container, probe and volume takes its room).
pub const AS_STORED: &str = "ragops.io/as-stored";

/// A Deployment the operator applies, as its store keeps it: metadata, replicas, selector, the
/// pod template's metadata and volumes (the ConfigMaps it mounts), status, and [`AS_STORED`].
pub fn deployment(d: &mut Deployment) {
    owned(d);
    let status = d.status.take();
    let text = serde_json::to_string(&*d).unwrap_or_default();
    d.status = status;
    d.metadata.managed_fields = None;
    if let Some(pod) = d.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        *pod = PodSpec {
            volumes: pod.volumes.take(),
            ..PodSpec::default()
        };
    }
    d.metadata
        .annotations
        .get_or_insert_default()
        .insert(AS_STORED.into(), text);
}

/// The object as the API server stores it, when a trim kept it as [`AS_STORED`] text.
pub fn as_stored(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(AS_STORED)
        .map(String::as_str)
}

/// One of the operator's own kinds (or any object it reads but never applies): managed fields
/// are never read.
pub fn unmanaged<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

/// A Pod as the cutover reads it: labels, IP, phase, the Ready condition.
pub fn pod(p: &mut Pod) {
    lean(&mut p.metadata);
    p.spec = None;
    let status = p.status.take().unwrap_or_default();
    p.status = Some(PodStatus {
        phase: status.phase,
        pod_ip: status.pod_ip,
        conditions: status.conditions.map(|c| {
            c.into_iter()
                .filter(|c| c.type_ == "Ready")
                .map(|c| PodCondition {
                    type_: c.type_,
                    status: c.status,
                    ..PodCondition::default()
                })
                .collect()
        }),
        ..PodStatus::default()
    });
}

/// The digest of a ConfigMap's content (data and binaryData).
pub fn config_map_digest(cm: &ConfigMap) -> String {
    let content = json!({ "data": cm.data, "binaryData": cm.binary_data });
    digest::hex(content.to_string().as_bytes())
}

/// A ConfigMap the operator owns is kept whole (it compares it with what it wants); any other is
/// a potential source: its content is replaced by [`CONTENT_DIGEST`].
pub fn config_map(cm: &mut ConfigMap) {
    let ours = cm
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY))
        .is_some_and(|v| v == MANAGER);
    if ours {
        return owned(cm);
    }
    let digest = config_map_digest(cm);
    let keys = cm.data.as_ref().map_or(0, BTreeMap::len)
        + cm.binary_data.as_ref().map_or(0, BTreeMap::len);
    lean(&mut cm.metadata);
    cm.metadata.annotations = Some(BTreeMap::from([
        (CONTENT_DIGEST.into(), digest),
        (CONTENT_KEYS.into(), keys.to_string()),
    ]));
    cm.data = None;
    cm.binary_data = None;
}

/// What [`secret`] keeps instead of a digest for a value that is empty or only whitespace: a
/// Secret not filled yet (an ExternalSecret before its first sync). Never a hex digest.
pub const BLANK_VALUE: &str = "blank";

/// Keys and a digest of each value (or [`BLANK_VALUE`]): enough to check a reference, to see that
/// it holds nothing, and to notice a rotation.
pub fn secret(s: &mut Secret) {
    lean(&mut s.metadata);
    s.string_data = None;
    if let Some(data) = s.data.as_mut() {
        for value in data.values_mut() {
            let blank = value.0.iter().all(u8::is_ascii_whitespace);
            *value = ByteString(if blank {
                BLANK_VALUE.into()
            } else {
                digest::hex(&value.0).into_bytes()
            });
        }
    }
}

/// Whether the value [`secret`] saw under `key` was empty or only whitespace.
pub fn secret_value_is_blank(s: &Secret, key: &str) -> bool {
    secret_value_digest(s, key) == Some(BLANK_VALUE)
}

/// The digest [`secret`] left for `key`.
pub fn secret_value_digest<'a>(s: &'a Secret, key: &str) -> Option<&'a str> {
    let value = s.data.as_ref()?.get(key)?;
    std::str::from_utf8(&value.0).ok()
}

/// The digest [`config_map`] left on a source ConfigMap.
/// The number of keys of a trimmed ConfigMap (see [`CONTENT_KEYS`]).
pub fn content_keys(cm: &ConfigMap) -> i64 {
    cm.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONTENT_KEYS))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub fn content_digest(cm: &ConfigMap) -> Option<&str> {
    cm.metadata
        .annotations
        .as_ref()?
        .get(CONTENT_DIGEST)
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn owned_objects_keep_only_what_the_operators_applies_own() {
        let entry = |manager: &str, operation: &str, subresource: Option<&str>| {
            json!({ "manager": manager, "operation": operation, "subresource": subresource,
                    "fieldsType": "FieldsV1", "fieldsV1": { "f:spec": {} } })
        };
        let mut d: Deployment = serde_json::from_value(json!({
            "metadata": { "name": "a", "managedFields": [
                entry("kube-controller-manager", "Update", Some("status")),
                entry("ragops", "Update", Some("scale")),
                entry("ragops", "Apply", None),
                entry("kubectl-edit", "Update", None),
            ]},
            "spec": { "selector": {}, "template": {} },
        }))
        .unwrap();
        owned(&mut d);
        let kept = d.metadata.managed_fields.as_deref().unwrap_or_default();
        assert_eq!(kept.len(), 1);
        assert!(apply::is_own_apply(&kept[0]));
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(apply::owned_fields(&json), Some(&json!({ "f:spec": {} })));
        assert_ne!(serde_json::to_value(&d.spec).unwrap(), Value::Null);
    }

    #[test]
    fn deployments_keep_their_spec_as_text_and_drift_reads_it() {
        let spec = |image: &str| {
            json!({ "replicas": 2, "selector": { "matchLabels": { "app": "a" } },
                "template": { "metadata": { "labels": { "app": "a" } }, "spec": {
                    "containers": [{ "name": "runtime", "image": image }],
                    "volumes": [{ "name": "config", "configMap": { "name": "a-config" } }],
                }},
            })
        };
        let desired: Deployment =
            serde_json::from_value(json!({ "metadata": { "name": "a" }, "spec": spec("v1") }))
                .unwrap();
        let stored = |image: &str| -> Deployment {
            let mut d: Deployment = serde_json::from_value(json!({
                "metadata": { "name": "a", "generation": 3, "managedFields": [
                    { "manager": "ragops", "operation": "Apply", "fieldsType": "FieldsV1",
                      "fieldsV1": { "f:spec": { "f:replicas": {} } } },
                    { "manager": "kube-controller-manager", "operation": "Update",
                      "subresource": "status", "fieldsV1": { "f:status": {} } },
                ]},
                "spec": spec(image),
                "status": { "observedGeneration": 3, "availableReplicas": 2 },
            }))
            .unwrap();
            deployment(&mut d);
            d
        };

        let kept = stored("v1");
        let pod = kept.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        assert!(
            pod.containers.is_empty(),
            "the pod spec is kept as text only"
        );
        assert_eq!(pod.volumes.as_ref().unwrap()[0].name, "config");
        assert_eq!(kept.spec.as_ref().unwrap().replicas, Some(2));
        assert_eq!(kept.status.as_ref().unwrap().available_replicas, Some(2));
        assert!(kept.metadata.managed_fields.is_none());
        let text: Value = serde_json::from_str(as_stored(&kept.metadata).unwrap()).unwrap();
        assert_eq!(
            text["metadata"]["managedFields"].as_array().unwrap().len(),
            1
        );
        assert!(text.get("status").is_none());

        assert_eq!(apply::needs_apply(&desired, &kept), None);
        assert_eq!(
            apply::needs_apply(&desired, &stored("v2")).as_deref(),
            Some(".spec.template.spec.containers[0].image")
        );
        // What the operator's apply entry owns but the desired object no longer sets.
        let mut unset = desired.clone();
        unset.spec.as_mut().unwrap().replicas = None;
        assert_eq!(
            apply::needs_apply(&unset, &kept).as_deref(),
            Some(".spec.replicas (no longer set)")
        );
    }

    #[test]
    fn secrets_keep_keys_and_digests_never_values() {
        let mut s = Secret {
            data: Some(BTreeMap::from([(
                "token".into(),
                ByteString(b"hunter2".to_vec()),
            )])),
            ..Secret::default()
        };
        secret(&mut s);
        let kept = secret_value_digest(&s, "token").unwrap();
        assert_eq!(kept, digest::hex(b"hunter2"));
        assert!(!secret_value_is_blank(&s, "token"));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
        for blank in [&b""[..], b" \n\t\n"] {
            let mut s = Secret {
                data: Some(BTreeMap::from([(
                    "token".into(),
                    ByteString(blank.to_vec()),
                )])),
                ..Secret::default()
            };
            secret(&mut s);
            assert!(secret_value_is_blank(&s, "token"), "{blank:?}");
            assert!(!secret_value_is_blank(&s, "other"));
        }
    }

    #[test]
    fn source_config_maps_keep_a_digest_that_follows_the_content() {
        let source = |text: &str| ConfigMap {
            data: Some(BTreeMap::from([("a.md".into(), text.into())])),
            ..ConfigMap::default()
        };
        let (mut a, mut b, mut c) = (source("one"), source("one"), source("two"));
        for cm in [&mut a, &mut b, &mut c] {
            config_map(cm);
            assert!(cm.data.is_none());
        }
        assert_eq!(content_digest(&a), content_digest(&b));
        assert_ne!(content_digest(&a), content_digest(&c));
        assert_eq!(content_keys(&a), 1, "its documents are counted");
    }

    #[test]
    fn owned_config_maps_are_kept_whole() {
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                labels: Some(BTreeMap::from([(MANAGED_BY.into(), MANAGER.into())])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([("config.yaml".into(), "x: 1".into())])),
            ..ConfigMap::default()
        };
        let before = cm.clone();
        config_map(&mut cm);
        assert_eq!(cm, before);
    }

    #[test]
    fn pods_keep_what_the_cutover_reads() {
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": { "name": "p", "labels": { "a": "b" }, "annotations": { "big": "x" } },
            "spec": { "containers": [{ "name": "c" }] },
            "status": { "phase": "Running", "podIP": "10.0.0.1", "hostIP": "1.2.3.4",
                "conditions": [{ "type": "Ready", "status": "True", "message": "m" },
                               { "type": "PodScheduled", "status": "True" }] }
        }))
        .unwrap();
        pod(&mut p);
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": "p", "labels": { "a": "b" } },
                "status": { "phase": "Running", "podIP": "10.0.0.1",
                    "conditions": [{ "type": "Ready", "status": "True" }] }
            })
        );
    }
}
