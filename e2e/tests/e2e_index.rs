//! The RagIndex controller on the real chain: a real Qdrant server beside the control plane,
//! ingest Jobs completed by the real Job controller after their pods ran `rag-runtime ingest`
//! for real, and pipelines whose real runtimes answer from the collection the index built.
//! A re-index is a gated blue-green rollout of the pipelines; a bad one never takes traffic.

mod common;

use anyhow::{Context, Result};
use common::World;
use common::index::{
    INDEX, PIPELINE, QUESTION, condition, create_pipeline, qdrant_world, ready_on, wait_index,
};
use common::query::{QueryLoop, pod_of, query};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use rag_operator::api::{Color, Phase, RagIndex};
use serde_json::json;

#[tokio::test]
async fn an_index_is_ingested_into_qdrant_and_a_reindex_rolls_the_pipeline_with_no_failed_query()
-> Result<()> {
    let (world, qdrant) = qdrant_world("index", json!({})).await?;
    create_pipeline(&world).await?;
    let first = wait_index(&world, "Ready", |i| ready_on(i, None)).await?;
    let s = first.status.clone().unwrap();
    let c1 = s.active_collection.clone().unwrap();
    let docs: ConfigMap = common::read_sample("handbook-docs.yaml")?;
    let documents = docs.data.as_ref().map_or(0, |d| d.len()) as i64;
    assert_eq!(s.documents, Some(documents));
    let chunks = s.chunks.context("no chunks in the status")?;
    assert!(
        chunks >= documents,
        "{chunks} chunks of {documents} documents"
    );
    assert_eq!(
        qdrant.points(&c1).await?,
        chunks as u64,
        "the status counts what Qdrant holds"
    );
    assert_eq!(qdrant.alias_target().await?.as_deref(), Some(c1.as_str()));
    assert!(s.source_digest.is_some() && s.last_indexed_at.is_some());

    world.wait_healthy_on(PIPELINE, Color::Blue).await?;
    let (code, sources) =
        query(pod_of(&world, PIPELINE, Color::Blue).await?, QUESTION, None).await?;
    assert_eq!(
        (code, sources.first().map(String::as_str)),
        (200, Some("rollouts.md"))
    );

    // A client asks throughout the re-index and the rollout it causes.
    let client = QueryLoop::start(&world, PIPELINE, QUESTION, "rollouts.md");
    world.edit_docs(json!({ "quokka.md": "# Quokka protocol\nThe quokka protocol is guarded by a wombat named Gus.\n" })).await?;
    let second = wait_index(&world, "re-indexed", |i| ready_on(i, Some(&c1))).await?;
    let c2 = second
        .status
        .as_ref()
        .unwrap()
        .active_collection
        .clone()
        .unwrap();
    assert_eq!(
        second.status.as_ref().unwrap().documents,
        Some(documents + 1)
    );
    let p = world.wait_healthy_on(PIPELINE, Color::Green).await?;
    let (answered, failures) = client.finish().await;
    eprintln!(
        "queries during the re-index: {answered} answered, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed queries: {failures:?}",
        failures.len()
    );
    assert!(answered > 0);
    let green = pod_of(&world, PIPELINE, Color::Green).await?;
    let (_, cited) = query(green, "Which animal guards the quokka protocol?", None).await?;
    assert_eq!(
        cited.first().map(String::as_str),
        Some("quokka.md"),
        "{cited:?}"
    );
    assert_ne!(p.status.unwrap().active_revision, None);
    assert_eq!(qdrant.alias_target().await?.as_deref(), Some(c2.as_str()));
    // The old colour still serves c1 (for a rollback), so c1 stays.
    assert_eq!(qdrant.collections().await?, {
        let mut v = vec![c1.clone(), c2.clone()];
        v.sort();
        v
    });

    // A rollback brings back the collection the old colour served.
    world
        .annotate(PIPELINE, rag_operator::pipeline::annotation::ROLLBACK)
        .await?;
    world
        .wait_pipeline(PIPELINE, "rolled back to blue", |p| {
            p.status.as_ref().and_then(|s| s.active_color) == Some(Color::Blue)
        })
        .await?;
    let blue = pod_of(&world, PIPELINE, Color::Blue).await?;
    let (code, cited) = query(blue, "Which animal guards the quokka protocol?", None).await?;
    assert_eq!(code, 200);
    assert!(
        !cited.contains(&"quokka.md".to_string()),
        "blue serves {c1}: {cited:?}"
    );
    assert_eq!(world.pods.errors(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn a_reindex_that_loses_the_expected_source_never_takes_traffic() -> Result<()> {
    let (world, _qdrant) = qdrant_world("index-smoke", json!({})).await?;
    create_pipeline(&world).await?;
    let first = wait_index(&world, "Ready", |i| ready_on(i, None)).await?;
    let c1 = first.status.unwrap().active_collection.unwrap();
    world.wait_healthy_on(PIPELINE, Color::Blue).await?;

    // rollouts.md, which the smoke query expects, is dropped from the corpus.
    world.edit_docs(json!({ "rollouts.md": null })).await?;
    wait_index(&world, "re-indexed", |i| ready_on(i, Some(&c1))).await?;
    let failed = world
        .wait_pipeline(PIPELINE, "the rollout failed", |p| {
            p.status.as_ref().and_then(|s| s.phase) == Some(Phase::Degraded)
        })
        .await?;
    let s = failed.status.unwrap();
    assert_eq!(s.active_color, Some(Color::Blue));
    world.wait_service_color(PIPELINE, "blue").await?;
    let (code, sources) =
        query(pod_of(&world, PIPELINE, Color::Blue).await?, QUESTION, None).await?;
    assert_eq!(
        (code, sources.first().map(String::as_str)),
        (200, Some("rollouts.md")),
        "blue still serves {c1}"
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_ingest_degrades_the_index_and_the_old_collection_keeps_serving() -> Result<()> {
    let (world, qdrant) =
        qdrant_world("index-fail", json!({ "ingest": { "backoffLimit": 0 } })).await?;
    create_pipeline(&world).await?;
    let first = wait_index(&world, "Ready", |i| ready_on(i, None)).await?;
    let c1 = first.status.unwrap().active_collection.unwrap();
    world.wait_healthy_on(PIPELINE, Color::Blue).await?;

    // An embedder nobody answers: the new revision's ingest fails.
    let patch = json!({ "spec": { "embedding": { "provider": "openai", "model": "m", "endpoint": "http://127.0.0.1:9/v1" } } });
    world
        .ns
        .api::<RagIndex>()
        .patch(INDEX, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let degraded = wait_index(&world, "Degraded", |i| {
        i.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Degraded")
    })
    .await?;
    let (status, reason, message) = condition(&degraded, "Degraded").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "IngestFailed"));
    // The ingest's own report (its termination message), not the Job controller's condition.
    assert!(
        message.contains("embedding provider") && !message.contains("BackoffLimitExceeded"),
        "the Job's own message: {message}"
    );
    let s = degraded.status.unwrap();
    assert_eq!(
        s.active_collection.as_deref(),
        Some(c1.as_str()),
        "the old collection still serves"
    );
    assert_eq!(condition_status(&world, "Ready").await?, "True");
    assert_eq!(qdrant.alias_target().await?.as_deref(), Some(c1.as_str()));
    let (code, _) = query(pod_of(&world, PIPELINE, Color::Blue).await?, QUESTION, None).await?;
    assert_eq!(code, 200);
    let p = world.pipelines().get(PIPELINE).await?;
    assert_eq!(
        p.status.and_then(|s| s.phase),
        Some(Phase::Healthy),
        "the pipeline is untouched"
    );
    Ok(())
}

async fn condition_status(world: &World, type_: &str) -> Result<String> {
    let i = world.ns.api::<RagIndex>().get(INDEX).await?;
    Ok(condition(&i, type_).map(|c| c.0).unwrap_or_default())
}
