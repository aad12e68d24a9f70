//! The runtime Deployments and their pod template.

use super::super::fixtures::{self, validated};
use super::*;

#[test]
fn pods_are_locked_down_and_get_secrets_from_env() {
    let t = pod_template(&validated(), "config-abc.yaml");
    let spec = t.spec.unwrap();
    let c = &spec.containers[0];
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    assert_eq!(
        spec.security_context
            .unwrap()
            .seccomp_profile
            .unwrap()
            .type_,
        "RuntimeDefault"
    );
    let env: Vec<_> = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(env, [LLM_API_KEY_ENV, QDRANT_API_KEY_ENV]);
    let llm = &c.env.as_ref().unwrap()[0];
    let secret = llm
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("llm", "token")
    );
    let items = spec.volumes.unwrap()[0]
        .config_map
        .as_ref()
        .unwrap()
        .items
        .clone()
        .unwrap();
    assert_eq!(items[0].key, "config-abc.yaml");
}

#[test]
fn embedded_store_is_filled_from_config_map_sources_before_the_runtime_starts() {
    let index = fixtures::INDEX.replace(
        r#"{ qdrant: { url: "http://qdrant:6334", apiKeySecretRef: { name: qdrant } } }"#,
        "{ embedded: {} }\n  sources: [{ configMap: { name: docs-a } }, { url: https://example.com/x.md }]",
    );
    let v = fixtures::validated_with(fixtures::PIPELINE, &index);
    let spec = pod_template(&v, "config-a.yaml").spec.unwrap();
    let init = &spec.init_containers.as_ref().unwrap()[0];
    let args = init.args.clone().unwrap();
    assert_eq!(args[0], "ingest");
    assert_eq!(args.last().map(String::as_str), Some("/sources/docs-a"));
    assert_eq!(init.image, spec.containers[0].image);
    let volume = spec
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "source-docs-a")
        .unwrap();
    assert_eq!(volume.config_map.unwrap().name, "docs-a");
    // A Qdrant server is filled by the indexing Job, not by every pod.
    assert!(
        pod_template(&validated(), "config-a.yaml")
            .spec
            .unwrap()
            .init_containers
            .is_none()
    );
}

#[test]
fn revision_changes_with_anything_that_reaches_the_pods() {
    let v = validated();
    let base = revision(&pod_template(&v, "config-a.yaml"));
    assert_eq!(base, revision(&pod_template(&v, "config-a.yaml")));
    assert_ne!(base, revision(&pod_template(&v, "config-b.yaml")));
    let mut other = v.clone();
    other.pipeline.spec.runtime.image = "rag-runtime:next".into();
    assert_ne!(base, revision(&pod_template(&other, "config-a.yaml")));
    // Replicas do not reach the template: scaling is not a rollout.
    let mut scaled = v.clone();
    scaled.pipeline.spec.runtime.replicas = 7;
    assert_eq!(base, revision(&pod_template(&scaled, "config-a.yaml")));
}

#[test]
fn deployment_selects_its_colour_and_is_owned() {
    let v = validated();
    let t = pod_template(&v, "config-a.yaml");
    let d = deployment(&v, Color::Green, 3, &t, "r1");
    assert_eq!(d.metadata.name.as_deref(), Some("docs-green"));
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    let selector = spec.selector.match_labels.unwrap();
    assert_eq!(selector.get(COLOR_LABEL).map(String::as_str), Some("green"));
    assert!(
        !selector.contains_key(REVISION_LABEL),
        "selectors are immutable; the revision must stay out"
    );
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    assert!(
        selector
            .iter()
            .all(|(k, val)| pod_labels.get(k) == Some(val))
    );
    assert_eq!(
        pod_labels.get(REVISION_LABEL).map(String::as_str),
        Some("r1")
    );
    let owner = &d.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("RagPipeline", Some(true))
    );
}
