//! What reaches the pods besides the spec, pinned into the revision.
//!
//! A pod reads its sources (the RagIndex's ConfigMaps, with the embedded store) and Secret
//! values at start. Their digests go into the pod template as an annotation, so an edited corpus
//! or a rotated key changes the revision and ships as a gated rollout. The sources are read from
//! immutable snapshots `<pipeline>-src-<digest>` that the operator copies them into, so a pod of
//! an old colour that restarts mid-rollout still ingests the corpus its colour was verified with.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec};

use super::{PIPELINE_LABEL, Validated};
use crate::digest;
use crate::meta::standard_labels;

/// Pod template annotation with the digest of everything in [`Inputs`].
pub const INPUTS_ANNOTATION: &str = "ragops.io/inputs";

/// The versions of what the pods read besides the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    /// ConfigMap sources the pods ingest (embedded store only), by name.
    pub sources: Vec<Source>,
    /// `(<secret>/<key>, digest of its value)` of every Secret key the pods read.
    pub secrets: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The RagIndex's ConfigMap.
    pub name: String,
    /// Digest of its content.
    pub digest: String,
}

impl Inputs {
    /// One digest of all inputs; empty when the pods read nothing besides the spec.
    pub fn digest(&self) -> Option<String> {
        if self.sources.is_empty() && self.secrets.is_empty() {
            return None;
        }
        let mut text = String::new();
        for s in &self.sources {
            text.push_str(&format!("source {} {}\n", s.name, s.digest));
        }
        for (key, d) in &self.secrets {
            text.push_str(&format!("secret {key} {d}\n"));
        }
        Some(digest::short_hex(text.as_bytes(), 16))
    }
}

/// Name of the snapshot of `source` that the pods of this pipeline mount.
pub fn snapshot_name(pipeline: &str, source: &Source) -> String {
    let id = digest::short_hex(format!("{}/{}", source.name, source.digest).as_bytes(), 10);
    format!("{pipeline}-src-{id}")
}

/// Whether a ConfigMap name is one of this pipeline's source snapshots.
pub fn is_snapshot(pipeline: &str, name: &str) -> bool {
    name.strip_prefix(pipeline)
        .and_then(|rest| rest.strip_prefix("-src-"))
        .is_some_and(|id| id.len() == 10 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An immutable copy of `content` (the source ConfigMap as read now), owned by the pipeline.
pub fn snapshot(v: &Validated, source: &Source, content: &ConfigMap) -> ConfigMap {
    let mut labels = standard_labels("rag-runtime", &v.name(), "corpus");
    labels.insert(PIPELINE_LABEL.into(), v.name());
    ConfigMap {
        metadata: crate::meta::owned_by(&v.pipeline, snapshot_name(&v.name(), source), labels),
        data: content.data.clone(),
        binary_data: content.binary_data.clone(),
        immutable: Some(true),
    }
}

/// Pins `template` to the inputs: their digest as an annotation, the sources' volumes on their
/// snapshots.
pub fn pin(template: &mut PodTemplateSpec, v: &Validated) {
    let Some(digest) = v.inputs.digest() else {
        return;
    };
    let meta = template.metadata.get_or_insert_default();
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(INPUTS_ANNOTATION.into(), digest);
    let volumes = template
        .spec
        .iter_mut()
        .flat_map(|s| s.volumes.iter_mut().flatten());
    for volume in volumes {
        let Some(cm) = volume.config_map.as_mut() else {
            continue;
        };
        if let Some(source) = v.inputs.sources.iter().find(|s| s.name == cm.name) {
            cm.name = snapshot_name(&v.name(), source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{INDEX, PIPELINE, validated_with};
    use super::super::{pod_template, revision};
    use super::*;

    fn embedded(inputs: Inputs) -> Validated {
        let index = INDEX.replace(
            r#"{ qdrant: { url: "http://qdrant:6334", apiKeySecretRef: { name: qdrant } } }"#,
            "{ embedded: {} }",
        ) + "  sources: [{ configMap: { name: docs } }]\n";
        Validated {
            inputs,
            ..validated_with(PIPELINE, &index)
        }
    }

    fn source(digest: &str) -> Inputs {
        Inputs {
            sources: vec![Source {
                name: "docs".into(),
                digest: digest.into(),
            }],
            secrets: vec![("llm/token".into(), "s1".into())],
        }
    }

    fn pinned(v: &Validated) -> PodTemplateSpec {
        let mut t = pod_template(v, "config-1.yaml");
        pin(&mut t, v);
        t
    }

    #[test]
    fn an_edited_corpus_or_a_rotated_key_is_a_new_revision() {
        let base = revision(&pinned(&embedded(source("c1"))));
        let corpus = revision(&pinned(&embedded(source("c2"))));
        let mut rotated = source("c1");
        rotated.secrets[0].1 = "s2".into();
        let key = revision(&pinned(&embedded(rotated)));
        assert_eq!(base, revision(&pinned(&embedded(source("c1")))));
        assert_ne!(base, corpus);
        assert_ne!(base, key);
        assert_ne!(corpus, key);
    }

    #[test]
    fn pods_ingest_the_snapshot_of_their_revision() {
        let v = embedded(source("c1"));
        let t = pinned(&v);
        let names: Vec<_> = t
            .spec
            .unwrap()
            .volumes
            .unwrap()
            .into_iter()
            .filter_map(|vol| vol.config_map.map(|c| c.name))
            .collect();
        let snap = snapshot_name("docs", &v.inputs.sources[0]);
        assert!(names.contains(&snap), "{names:?}");
        assert!(!names.contains(&"docs".to_string()), "{names:?}");
        assert!(is_snapshot("docs", &snap));
        assert!(!is_snapshot("docs", "docs-config"));
        assert!(!is_snapshot("docs", "docs-src-zz"));
    }

    #[test]
    fn snapshots_are_immutable_owned_copies() {
        let v = embedded(source("c1"));
        let content = ConfigMap {
            data: Some(BTreeMap::from([("a.md".into(), "text".into())])),
            ..ConfigMap::default()
        };
        let s = snapshot(&v, &v.inputs.sources[0], &content);
        assert_eq!(s.immutable, Some(true));
        assert_eq!(s.data, content.data);
        assert_eq!(s.metadata.owner_references.unwrap()[0].kind, "RagPipeline");
        assert_eq!(s.metadata.labels.unwrap()[PIPELINE_LABEL], "docs");
    }

    #[test]
    fn nothing_to_pin_without_inputs() {
        let v = embedded(Inputs::default());
        assert_eq!(pinned(&v), pod_template(&v, "config-1.yaml"));
    }
}
