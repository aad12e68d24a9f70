//! The RagIndex controller's operations on the real chain: deletion with `deletionPolicy:
//! Delete`, snapshots and a restore, and what only the operator can check about a spec.

mod common;

use anyhow::{Result, ensure};
use common::index::{
    INDEX, INDEX_TIMEOUT, PIPELINE, QUESTION, condition, create_pipeline, qdrant_world, ready_on,
    wait_index,
};
use common::query::{pod_of, query};
use e2e::wait_for;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rag_operator::api::{Color, RagIndex};
use serde_json::json;

#[tokio::test]
async fn deleting_an_index_with_delete_policy_drops_its_collections() -> Result<()> {
    let (world, qdrant) = qdrant_world("index-delete", json!({})).await?;
    let ready = wait_index(&world, "Ready", |i| ready_on(i, None)).await?;
    ensure!(
        ready
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "ragops.io/collections"),
        "no finalizer: {:?}",
        ready.metadata.finalizers
    );
    assert_eq!(qdrant.collections().await?.len(), 1);
    let api: Api<RagIndex> = world.ns.api();
    api.delete(INDEX, &DeleteParams::default()).await?;
    wait_for("the RagIndex gone", INDEX_TIMEOUT, || async {
        Ok(api.get_opt(INDEX).await?.is_none().then_some(()))
    })
    .await?;
    assert_eq!(qdrant.collections().await?, Vec::<String>::new());
    assert_eq!(qdrant.alias_target().await?, None);
    Ok(())
}

#[tokio::test]
async fn a_snapshot_restores_a_dropped_collection_with_the_same_answers() -> Result<()> {
    let backup = json!({ "backup": { "schedule": "0 2 * * *", "retain": 2 } });
    let (world, qdrant) = qdrant_world("index-backup", backup).await?;
    create_pipeline(&world).await?;
    let backed_up = wait_index(&world, "a snapshot taken", |i| {
        i.status
            .as_ref()
            .is_some_and(|s| s.last_backup.is_some() && s.last_backup_time.is_some())
    })
    .await?;
    let s = backed_up.status.unwrap();
    let (collection, snapshot) = (s.active_collection.unwrap(), s.last_backup.unwrap());
    world.wait_healthy_on(PIPELINE, Color::Blue).await?;
    let blue = pod_of(&world, PIPELINE, Color::Blue).await?;
    let (code, before) = query(blue, QUESTION, None).await?;
    assert_eq!(
        (code, before.first().map(String::as_str)),
        (200, Some("rollouts.md"))
    );

    // The collection is lost: queries fail.
    qdrant
        .send(
            reqwest::Method::DELETE,
            &format!("/collections/{collection}"),
            None,
        )
        .await?;
    assert_ne!(
        query(blue, QUESTION, None).await?.0,
        200,
        "the collection is gone"
    );

    // Restored from the snapshot, as README's restore steps do it: the same answers.
    let file = world
        .cluster
        .state_dir
        .join("qdrant/snapshots")
        .join(&collection)
        .join(&snapshot);
    ensure!(file.is_file(), "no snapshot file at {}", file.display());
    let location = json!({ "location": format!("file://{}", file.display()) });
    let path = format!("/collections/{collection}/snapshots/recover");
    qdrant
        .send(reqwest::Method::PUT, &path, Some(location))
        .await?;
    assert_eq!(
        qdrant.points(&collection).await?,
        s.chunks.unwrap_or_default() as u64
    );
    assert_eq!(query(blue, QUESTION, None).await?, (200, before));
    Ok(())
}

#[tokio::test]
async fn what_only_the_operator_can_check_becomes_a_condition_naming_the_field() -> Result<()> {
    // Five fields, as the schema asks, but minute 61 does not exist.
    let (world, _qdrant) =
        qdrant_world("index-invalid", json!({ "schedule": "61 * * * *" })).await?;
    let bad = wait_index(&world, "InvalidSchedule", |i| {
        condition(i, "Degraded").is_some_and(|c| c.1 == "InvalidSchedule")
    })
    .await?;
    let (status, _, message) = condition(&bad, "Degraded").unwrap();
    assert_eq!(status, "True");
    assert!(
        message.starts_with("spec.schedule: \"61 * * * *\""),
        "{message}"
    );
    world.wait_event(INDEX, "InvalidSchedule").await?;

    // Fixed, but now naming a ConfigMap that does not exist.
    let patch = json!({ "spec": { "schedule": null, "sources": [{ "configMap": { "name": "nowhere" } }] } });
    let api: Api<RagIndex> = world.ns.api();
    api.patch(INDEX, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let missing = wait_index(&world, "SourceNotFound", |i| {
        condition(i, "Degraded").is_some_and(|c| c.1 == "SourceNotFound")
    })
    .await?;
    let (_, _, message) = condition(&missing, "Degraded").unwrap();
    assert!(
        message.contains("spec.sources[0].configMap") && message.contains("nowhere"),
        "{message}"
    );
    // Creating it is all it takes.
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "nowhere" }, "data": { "a.md": "# A\nText.\n" }
    }))?;
    world
        .ns
        .api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await?;
    wait_index(&world, "Ready", |i| ready_on(i, None)).await?;
    Ok(())
}

#[tokio::test]
async fn a_url_source_is_fetched_by_the_ingest_job() -> Result<()> {
    // A document server on loopback, as an intranet wiki would be.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let faq = "# Wombat FAQ\nThe wombat Gus guards the quokka protocol on weekends.\n";
    let app = axum::Router::new().route("/faq.md", axum::routing::get(move || async move { faq }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/faq.md");
    // Loopback is refused to URL sources unless the index allows it, as it does here.
    let sources = json!({
        "sources": [{ "configMap": { "name": "handbook-docs" } }, { "url": url }],
        "ingest": { "allowCIDRs": ["127.0.0.0/8"] },
    });
    let (world, _qdrant) = qdrant_world("index-url", sources).await?;
    create_pipeline(&world).await?;
    let ready = wait_index(&world, "Ready", |i| ready_on(i, None)).await?;
    let docs: ConfigMap = common::read_sample("handbook-docs.yaml")?;
    let in_config_map = docs.data.as_ref().map_or(0, |d| d.len()) as i64;
    assert_eq!(ready.status.unwrap().documents, Some(in_config_map + 1));
    world.wait_healthy_on(PIPELINE, Color::Blue).await?;
    let blue = pod_of(&world, PIPELINE, Color::Blue).await?;
    let (code, cited) = query(blue, "Who guards the quokka protocol on weekends?", None).await?;
    assert_eq!((code, cited.first()), (200, Some(&url)), "{cited:?}");
    Ok(())
}

#[tokio::test]
async fn deleting_while_qdrant_is_unreachable_waits_visibly_and_retain_lets_go() -> Result<()> {
    // A Qdrant nobody answers on (the url is immutable, so the index starts there): its ingest
    // fails, the collection it would have filled is recorded, and the deletion cannot drop it.
    let unreachable = json!({ "vectorStore": { "qdrant": { "url": "http://127.0.0.1:9" } }, "ingest": { "backoffLimit": 0 } });
    let (world, _qdrant) = qdrant_world("index-gone", unreachable).await?;
    let api: Api<RagIndex> = world.ns.api();
    let recorded = wait_index(&world, "a collection recorded", |i| {
        i.status.as_ref().is_some_and(|s| !s.collections.is_empty())
    })
    .await?;
    let collection = recorded.status.unwrap().collections[0].clone();
    api.delete(INDEX, &DeleteParams::default()).await?;
    let waiting = wait_index(&world, "DeleteFailed", |i| {
        condition(i, "Degraded").is_some_and(|c| c.1 == "DeleteFailed")
    })
    .await?;
    let (_, _, message) = condition(&waiting, "Degraded").unwrap();
    assert!(message.contains("on http://127.0.0.1:9 yet"), "{message}");
    assert_eq!(
        waiting.status.unwrap().collections,
        [collection],
        "still recorded"
    );
    world.wait_event(INDEX, "DeleteFailed").await?;
    // The user gives up on those collections: Retain releases the index at once.
    let retain = json!({ "spec": { "deletionPolicy": "Retain" } });
    api.patch(INDEX, &PatchParams::default(), &Patch::Merge(&retain))
        .await?;
    wait_for("the RagIndex gone", INDEX_TIMEOUT, || async {
        Ok(api.get_opt(INDEX).await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn superseded_collections_are_dropped_beyond_the_retention_and_retain_keeps_them()
-> Result<()> {
    let keep_none = json!({ "retainCollections": 0, "deletionPolicy": "Retain" });
    let (world, qdrant) = qdrant_world("index-gc", keep_none).await?;
    let first = wait_index(&world, "Ready", |i| ready_on(i, None)).await?;
    let c1 = first.status.unwrap().active_collection.unwrap();
    // No pipeline serves c1 and nothing is retained: the next ingest drops it.
    world
        .edit_docs(json!({ "gc.md": "# GC\nCollected.\n" }))
        .await?;
    let second = wait_index(&world, "re-indexed", |i| ready_on(i, Some(&c1))).await?;
    let s = second.status.unwrap();
    let c2 = s.active_collection.unwrap();
    let only_c2 = std::slice::from_ref(&c2);
    assert_eq!(qdrant.collections().await?, only_c2, "{c1} dropped");
    assert_eq!(s.collections, only_c2);
    // deletionPolicy Retain: the index goes, its collection and alias stay.
    let api: Api<RagIndex> = world.ns.api();
    api.delete(INDEX, &DeleteParams::default()).await?;
    wait_for("the RagIndex gone", INDEX_TIMEOUT, || async {
        Ok(api.get_opt(INDEX).await?.is_none().then_some(()))
    })
    .await?;
    assert_eq!(qdrant.collections().await?, std::slice::from_ref(&c2));
    assert_eq!(qdrant.alias_target().await?, Some(c2));
    Ok(())
}

#[tokio::test]
async fn a_pipeline_waits_for_its_index_first_ingest() -> Result<()> {
    // An embedder nobody answers: the first ingest cannot complete.
    let broken = json!({
        "embedding": { "provider": "openai", "model": "m", "endpoint": "http://127.0.0.1:9/v1" },
        "ingest": { "backoffLimit": 0 }
    });
    let (world, _qdrant) = qdrant_world("index-wait", broken).await?;
    create_pipeline(&world).await?;
    let waiting = world
        .wait_pipeline(PIPELINE, "Progressing IndexNotReady", |p| {
            p.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Progressing" && c.status == "True" && c.reason == "IndexNotReady"
                })
            })
        })
        .await?;
    let s = waiting.status.unwrap();
    assert!(
        !s.conditions
            .iter()
            .any(|c| c.type_ == "Degraded" && c.status == "True"),
        "waiting, not degraded: {s:?}"
    );
    assert_eq!(
        world.replicas(PIPELINE, "blue").await?,
        None,
        "nothing deployed yet"
    );
    // The embedder is fixed: the index fills and the pipeline rolls out.
    let fixed = json!({ "spec": { "embedding": { "provider": "local", "model": null, "endpoint": null } } });
    world
        .ns
        .api::<RagIndex>()
        .patch(INDEX, &PatchParams::default(), &Patch::Merge(&fixed))
        .await?;
    world.wait_healthy_on(PIPELINE, Color::Blue).await?;
    Ok(())
}
