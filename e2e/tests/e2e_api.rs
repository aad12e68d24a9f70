//! The API as the API server serves it: CRDs established, field docs for `kubectl explain`, and
//! invalid specs refused with the field named, before the operator ever sees them.

mod common;

use anyhow::Result;
use e2e::{Cluster, TestNamespace};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn api(ns: &TestNamespace, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("ragops.io", "v1alpha1", kind);
    Api::namespaced_with(
        ns.client(),
        ns.name(),
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

fn object(kind: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "ragops.io/v1alpha1", "kind": kind, "metadata": { "name": name }, "spec": spec
    }))
    .unwrap()
}

#[tokio::test]
async fn explain_shows_the_field_docs() -> Result<()> {
    e2e::install_crypto_provider();
    let cluster = Cluster::from_env()?;
    common::install_crds(&cluster).await?;
    let out = e2e::wait_for(
        "kubectl explain to know the new kind",
        common::ROLLOUT_TIMEOUT,
        || async {
            Ok(cluster
                .kubectl_output(&["explain", "ragpipeline.spec.rollout"])
                .ok())
        },
    )
    .await?;
    assert!(out.contains("autoPromote"), "{out}");
    assert!(
        out.contains("ragops.io/promote"),
        "the field's doc comment is the explanation: {out}"
    );
    Ok(())
}

#[tokio::test]
async fn invalid_specs_are_refused_naming_the_field() -> Result<()> {
    e2e::install_crypto_provider();
    let cluster = Cluster::from_env()?;
    common::install_crds(&cluster).await?;
    let ns = TestNamespace::new(&cluster, "invalid").await?;
    let pipelines = api(&ns, "RagPipeline", "ragpipelines");
    let indexes = api(&ns, "RagIndex", "ragindexes");
    let good_index = json!({ "vectorStore": { "embedded": {} }, "embedding": { "provider": "local", "dimensions": 8 } });

    let qdrant = json!({ "qdrant": { "url": "http://q:6334" } });
    let on_qdrant = |extra: Value| {
        let mut spec =
            json!({ "vectorStore": qdrant.clone(), "embedding": good_index["embedding"].clone() });
        common::merge(&mut spec, extra);
        spec
    };
    let cases: [(&Api<DynamicObject>, &str, Value, &str); 14] = [
        (
            &pipelines,
            "RagPipeline",
            json!({ "indexRef": { "name": "i" }, "autoscaling": { "minReplicas": 5, "maxReplicas": 2 } }),
            "spec.autoscaling.minReplicas",
        ),
        (
            &pipelines,
            "RagPipeline",
            json!({ "indexRef": { "name": "i" }, "retrieval": { "topK": -1 } }),
            "spec.retrieval.topK",
        ),
        (
            &pipelines,
            "RagPipeline",
            json!({ "indexRef": { "name": "i" }, "retrieval": { "topK": 101 } }),
            "spec.retrieval.topK",
        ),
        (
            &pipelines,
            "RagPipeline",
            json!({ "indexRef": { "name": "i" }, "llm": { "provider": "gpt" } }),
            "spec.llm.provider",
        ),
        (
            &pipelines,
            "RagPipeline",
            json!({ "runtime": { "replicas": 1 } }),
            "spec.indexRef",
        ),
        (
            &pipelines,
            "RagPipeline",
            json!({ "indexRef": { "name": "i" }, "llm": { "provider": "openai" } }),
            "spec.llm",
        ),
        (
            &indexes,
            "RagIndex",
            json!({ "vectorStore": { "embedded": {}, "qdrant": { "url": "http://q:6334" } }, "embedding": good_index["embedding"].clone() }),
            "spec.vectorStore",
        ),
        (
            &indexes,
            "RagIndex",
            json!({ "vectorStore": { "embedded": {} }, "embedding": good_index["embedding"].clone(), "chunking": { "maxChars": 100, "overlapChars": 100 } }),
            "spec.chunking",
        ),
        (
            &indexes,
            "RagIndex",
            on_qdrant(json!({ "sources": [{ "url": "ftp://example.com/a.md" }] })),
            "spec.sources[0].url",
        ),
        (
            &indexes,
            "RagIndex",
            on_qdrant(
                json!({ "sources": [{ "url": "https://a.example/x", "configMap": { "name": "d" } }] }),
            ),
            "spec.sources[0]",
        ),
        (
            &indexes,
            "RagIndex",
            on_qdrant(json!({ "schedule": "every night" })),
            "spec.schedule",
        ),
        (
            &indexes,
            "RagIndex",
            on_qdrant(
                json!({ "sources": [{ "persistentVolumeClaim": { "claimName": "c", "path": "/a/../b" } }] }),
            ),
            "spec.sources[0].persistentVolumeClaim.path",
        ),
        (
            &indexes,
            "RagIndex",
            json!({ "vectorStore": { "embedded": {} }, "embedding": good_index["embedding"].clone(), "sources": [{ "url": "https://a.example/x" }] }),
            "spec.sources",
        ),
        (
            &indexes,
            "RagIndex",
            json!({ "vectorStore": { "embedded": {} }, "embedding": good_index["embedding"].clone(), "backup": { "schedule": "0 2 * * *" } }),
            "spec.backup",
        ),
    ];
    for (i, (api, kind, spec, field)) in cases.into_iter().enumerate() {
        let err = api
            .create(
                &PostParams::default(),
                &object(kind, &format!("bad-{i}"), spec.clone()),
            )
            .await;
        let Err(kube::Error::Api(status)) = err else {
            panic!("{kind} {spec} was accepted: {err:?}")
        };
        assert_eq!(status.code, 422, "{spec}: {status:?}");
        assert!(
            status.message.contains(field),
            "{spec}: the message names {field}: {}",
            status.message
        );
    }

    // The valid ones are accepted, with the schema's defaults filled in.
    indexes
        .create(
            &PostParams::default(),
            &object("RagIndex", "ok", good_index),
        )
        .await?;
    let created = pipelines
        .create(
            &PostParams::default(),
            &object("RagPipeline", "ok", json!({ "indexRef": { "name": "ok" } })),
        )
        .await?;
    assert_eq!(created.data["spec"]["rollout"]["autoPromote"], true);
    assert_eq!(created.data["spec"]["retrieval"]["topK"], 5);
    Ok(())
}
