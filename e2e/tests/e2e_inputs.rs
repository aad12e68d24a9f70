//! Revision = everything that reaches the pods, on real runtimes that run the pod spec the
//! operator wrote: an edited corpus and a rotated API key each ship as a gated blue-green rollout,
//! and an authenticated pipeline rolls out (its health gate authenticates) and refuses strangers.

mod common;

use anyhow::{Context, Result};
use common::World;
use common::query::{pod_of, query};
use e2e::spec_runtime;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use rag_operator::api::Color;
use serde_json::{Value, json};

/// Quick gates, the sample's smoke query kept: the real runtimes answer it.
fn quick() -> Value {
    json!({ "rollout": {
        "healthCheck": { "periodSeconds": 1, "successThreshold": 1 },
        "scaleDownDelaySeconds": 2
    } })
}

#[tokio::test]
async fn an_edited_corpus_rolls_out_and_the_new_colour_serves_it() -> Result<()> {
    let world = World::with_pods("corpus", spec_runtime(None)).await?;
    world.create_pipeline("docs", quick()).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    let question = "Which animal guards the quokka protocol?";
    let (_, before) = query(pod_of(&world, "docs", Color::Blue).await?, question, None).await?;
    assert!(!before.contains(&"quokka.md".to_string()), "{before:?}");

    // A user edits the documents, nothing else.
    world
        .edit_docs(json!({ "quokka.md": "# Quokka protocol\nThe quokka protocol is guarded by a wombat named Gus.\n" }))
        .await?;
    let p = world.wait_healthy_on("docs", Color::Green).await?;
    let events = world.wait_event("docs", "Promoted").await?;
    assert!(
        events
            .iter()
            .any(|(r, n)| r == "RolloutStarted" && n.contains("green")),
        "a corpus edit is a gated rollout: {events:?}"
    );
    let (code, after) = query(pod_of(&world, "docs", Color::Green).await?, question, None).await?;
    assert_eq!(code, 200);
    assert_eq!(
        after.first().map(String::as_str),
        Some("quokka.md"),
        "{after:?}"
    );

    // The pods ingested an immutable snapshot owned by the pipeline, not the live ConfigMap.
    let snapshots: Vec<ConfigMap> = world
        .ns
        .api::<ConfigMap>()
        .list(&kube::api::ListParams::default().labels("ragops.io/pipeline=docs"))
        .await?
        .items
        .into_iter()
        .filter(|c| {
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("docs-src-"))
        })
        .collect();
    let current = snapshots
        .iter()
        .find(|c| c.data.as_ref().is_some_and(|d| d.contains_key("quokka.md")))
        .context("no snapshot with the edited corpus")?;
    assert_eq!(current.immutable, Some(true));
    let uid = p.metadata.uid.unwrap();
    assert!(
        current
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid)
    );
    assert_eq!(world.pods.errors(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn an_authenticated_pipeline_rolls_out_and_a_rotated_key_ships_as_a_rollout() -> Result<()> {
    let world = World::with_pods("auth", spec_runtime(None)).await?;
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "rag-api-keys" },
        "stringData": { "keys": "first-token\n" }
    }))?;
    let secrets = world.ns.api::<Secret>();
    secrets.create(&PostParams::default(), &secret).await?;
    let mut spec = quick();
    common::merge(
        &mut spec,
        json!({ "server": { "apiKeysSecretRef": { "name": "rag-api-keys", "key": "keys" } } }),
    );
    // The smoke query needs a token: the rollout completes only if the gate sends one.
    world.create_pipeline("docs", spec).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    let blue = pod_of(&world, "docs", Color::Blue).await?;
    let question = "How does a blue-green rollout switch traffic?";
    assert_eq!(query(blue, question, None).await?.0, 401);
    assert_eq!(query(blue, question, Some("wrong")).await?.0, 401);
    let (code, sources) = query(blue, question, Some("first-token")).await?;
    assert_eq!(
        (code, sources.first().map(String::as_str)),
        (200, Some("rollouts.md"))
    );

    // Rotating the key changes what reaches the pods: a new revision, gated like any other.
    let patch = json!({ "stringData": { "keys": "second-token\n" } });
    secrets
        .patch(
            "rag-api-keys",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    world.wait_healthy_on("docs", Color::Green).await?;
    let green = pod_of(&world, "docs", Color::Green).await?;
    assert_eq!(query(green, question, Some("second-token")).await?.0, 200);
    assert_eq!(query(green, question, Some("first-token")).await?.0, 401);
    assert_eq!(world.pods.errors(), Vec::<String>::new());
    Ok(())
}
