//! What only the operator can see: a RagPipeline naming a RagIndex, source ConfigMap or Secret
//! that does not exist is Degraded with a reason and an Event, and recovers by itself once the
//! object appears: the watch on that kind wakes it, long before the periodic recheck would.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{World, fast_rollout, merge};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, PostParams};
use rag_operator::api::{Color, RagIndex};
use serde_json::json;

/// The operator rechecks a pipeline waiting for the user every 60 s; recovering within this
/// proves a watch event did it. Includes bringing the pods up and two health checks.
const RECOVERY: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_missing_index_degrades_the_pipeline_until_it_exists() -> Result<()> {
    let world = World::new("noindex").await?;
    // Take the sample index away, then ask for a pipeline over it.
    let index: RagIndex = world.ns.api::<RagIndex>().get("handbook").await?;
    world
        .ns
        .api::<RagIndex>()
        .delete("handbook", &DeleteParams::default())
        .await?;
    world.create_pipeline("docs", fast_rollout()).await?;

    let message = world.wait_degraded("docs", "IndexNotFound").await?;
    assert!(
        message.contains("spec.indexRef.name") && message.contains("handbook"),
        "{message}"
    );
    world.wait_event("docs", "IndexNotFound").await?;

    // Creating the index is a watch event for the pipelines that use it: no restart, no edit.
    let mut index = index;
    index.metadata = kube::api::ObjectMeta {
        name: Some("handbook".into()),
        ..Default::default()
    };
    world
        .ns
        .api::<RagIndex>()
        .create(&PostParams::default(), &index)
        .await?;
    world
        .wait_healthy_on_within("docs", Color::Blue, RECOVERY)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_missing_source_degrades_the_pipeline_until_it_exists() -> Result<()> {
    let world = World::new("nosource").await?;
    // The sample index reads ConfigMap handbook-docs: take it away, then ask for a pipeline.
    let configmaps = world.ns.api::<ConfigMap>();
    let docs = configmaps.get("handbook-docs").await?;
    configmaps
        .delete("handbook-docs", &DeleteParams::default())
        .await?;
    world.create_pipeline("docs", fast_rollout()).await?;

    let message = world.wait_degraded("docs", "SourceNotFound").await?;
    assert!(
        message.contains("spec.sources") && message.contains("handbook-docs"),
        "{message}"
    );
    world.wait_event("docs", "SourceNotFound").await?;
    assert!(
        world.replicas("docs", "blue").await?.is_none(),
        "nothing is deployed without its sources"
    );

    // Creating the ConfigMap is a watch event for the pipelines whose index reads it.
    let docs = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("handbook-docs".into()),
            ..Default::default()
        },
        data: docs.data,
        binary_data: docs.binary_data,
        ..Default::default()
    };
    configmaps.create(&PostParams::default(), &docs).await?;
    world
        .wait_healthy_on_within("docs", Color::Blue, RECOVERY)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_missing_secret_key_is_named_in_the_condition() -> Result<()> {
    let world = World::new("nosecret").await?;
    let mut spec = fast_rollout();
    merge(
        &mut spec,
        json!({ "llm": { "provider": "openai", "model": "gpt-4o-mini", "apiKeySecretRef": { "name": "llm", "key": "token" } } }),
    );
    world.create_pipeline("docs", spec).await?;
    let message = world.wait_degraded("docs", "SecretNotFound").await?;
    assert!(message.starts_with("spec.llm.apiKeySecretRef"), "{message}");
    assert!(
        world.replicas("docs", "blue").await?.is_none(),
        "nothing is deployed for an unusable spec"
    );

    // A Secret without the key is still wrong, and says so.
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "llm" }, "stringData": { "other": "x" }
    }))?;
    world
        .ns
        .api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let message = world.wait_degraded("docs", "SecretKeyMissing").await?;
    assert!(message.contains("\"token\""), "{message}");
    Ok(())
}

#[tokio::test]
async fn an_empty_api_keys_secret_stops_the_rollout_until_it_holds_a_key() -> Result<()> {
    // An ExternalSecret not synced yet: the Secret and its key exist, the value is blank. The
    // runtime would refuse to start on it (auth fails closed); the operator says why first.
    let world = World::new("emptykeys").await?;
    let secrets = world.ns.api::<Secret>();
    let keys = |value: &str| -> Result<Secret> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "rag-api-keys" },
            "stringData": { "keys": value }
        }))?)
    };
    secrets
        .create(&PostParams::default(), &keys(" \n")?)
        .await?;
    let mut spec = fast_rollout();
    merge(
        &mut spec,
        json!({ "server": { "apiKeysSecretRef": { "name": "rag-api-keys", "key": "keys" } } }),
    );
    world.create_pipeline("docs", spec).await?;
    let message = world.wait_degraded("docs", "SecretKeyEmpty").await?;
    assert!(
        message.starts_with("spec.server.apiKeysSecretRef") && message.contains("\"keys\""),
        "{message}"
    );
    world.wait_event("docs", "SecretKeyEmpty").await?;
    assert!(
        world.replicas("docs", "blue").await?.is_none(),
        "nothing is deployed that would refuse to start"
    );

    // The key arrives: the Secret's watch event wakes the pipeline, which rolls out.
    let params = kube::api::PatchParams::default();
    let filled = kube::api::Patch::Merge(json!({ "stringData": { "keys": "e2e-token\n" } }));
    secrets.patch("rag-api-keys", &params, &filled).await?;
    world
        .wait_healthy_on_within("docs", Color::Blue, RECOVERY)
        .await?;
    Ok(())
}
