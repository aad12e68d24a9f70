//! Two teams on one Qdrant server: what one index does there (re-indexes, garbage collection,
//! deletion) never touches what another serves, an alias has one owner per server, a deletion
//! waits while a pipeline serves the collections, and a namespace whose Secret went first is
//! still deleted.

mod common;

use anyhow::{Context, Result, ensure};
use common::World;
use common::index::{
    INDEX, INDEX_TIMEOUT, PIPELINE, QUESTION, Qdrant, condition, create_index, create_pipeline,
    qdrant_world, ready_on, wait_index,
};
use common::query::QueryLoop;
use e2e::wait_for;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use rag_operator::api::{Color, RagIndex};
use serde_json::json;

/// Re-indexes `world`'s index once (a new document) and waits for the new collection.
async fn reindex(world: &World, round: usize) -> Result<String> {
    let before = world.ns.api::<RagIndex>().get(INDEX).await?;
    let c = before.status.and_then(|s| s.active_collection);
    let doc = format!("# Round {round}\nRound {round} of the tenants test.\n");
    world
        .edit_docs(json!({ format!("round-{round}.md"): doc }))
        .await?;
    let after = wait_index(world, "re-indexed", |i| ready_on(i, c.as_deref())).await?;
    after
        .status
        .and_then(|s| s.active_collection)
        .context("no active collection")
}

/// A collection created behind the operator's back, named like one of `qdrant`'s index.
async fn foreign_collection(qdrant: &Qdrant, name: &str) -> Result<()> {
    let body = json!({ "vectors": { "size": 4, "distance": "Cosine" } });
    qdrant
        .send(
            reqwest::Method::PUT,
            &format!("/collections/{name}"),
            Some(body),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn two_namespaces_on_one_qdrant_never_touch_each_others_collections() -> Result<()> {
    // The Qdrant sample applied unchanged (only its url points at the test bed) by two teams.
    let (a, qa) = qdrant_world("tenant-a", json!({})).await?;
    let (b, qb) = qdrant_world("tenant-b", json!({})).await?;
    create_pipeline(&a).await?;
    create_pipeline(&b).await?;
    wait_index(&a, "Ready", |i| ready_on(i, None)).await?;
    wait_index(&b, "Ready", |i| ready_on(i, None)).await?;
    a.wait_healthy_on(PIPELINE, Color::Blue).await?;
    b.wait_healthy_on(PIPELINE, Color::Blue).await?;
    // Another tool's collection that looks like one of A's revisions: A never created it.
    let foreign = format!("{}-0123456789", qa.alias());
    foreign_collection(&qa, &foreign).await?;

    // B's client asks throughout A's and B's re-indexes and A's deletion.
    let client = QueryLoop::start(&b, PIPELINE, QUESTION, "rollouts.md");
    for round in 1..=3 {
        let (ca, cb) = futures::try_join!(reindex(&a, round), reindex(&b, round))?;
        eprintln!("round {round}: A serves {ca}, B serves {cb}");
    }
    let b_index = b.ns.api::<RagIndex>().get(INDEX).await?;
    let b_status = b_index.status.context("B has no status")?;

    // A's pipeline goes, then A's index (deletionPolicy: Delete in the sample).
    a.pipelines()
        .delete(PIPELINE, &DeleteParams::default())
        .await?;
    let api: Api<RagIndex> = a.ns.api();
    api.delete(INDEX, &DeleteParams::default()).await?;
    wait_for("A's RagIndex gone", INDEX_TIMEOUT, || async {
        Ok(api.get_opt(INDEX).await?.is_none().then_some(()))
    })
    .await?;
    let (answered, failures) = client.finish().await;
    eprintln!(
        "B's client during A's and B's re-indexes and A's deletion: {answered} answered, {} failed",
        failures.len()
    );
    ensure!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    ensure!(answered > 0, "B's client never got an answer");

    // A dropped exactly what it recorded, and left the look-alike and all of B's alone.
    assert_eq!(qa.collections().await?, [foreign]);
    assert_eq!(qa.alias_target().await?, None, "A's alias went with it");
    let b_active = b_status
        .active_collection
        .clone()
        .context("B serves nothing")?;
    assert_eq!(qb.alias_target().await?, Some(b_active.clone()));
    let on_server = qb.collections().await?;
    for c in &b_status.collections {
        ensure!(on_server.contains(c), "B's {c} is gone: {on_server:?}");
    }
    assert!(qb.points(&b_active).await? > 0);
    // And the server knows whose it is: the collection is tagged with B's uid.
    let info = qb.get(&format!("/collections/{b_active}")).await?;
    assert_eq!(
        info["result"]["config"]["metadata"]["ragops.io/owner"].as_str(),
        b_index.metadata.uid.as_deref(),
        "{info}"
    );
    Ok(())
}

#[tokio::test]
async fn a_second_index_with_the_same_alias_on_the_same_server_is_refused() -> Result<()> {
    let shared =
        json!({ "vectorStore": { "qdrant": { "collection": "tenants_shared_handbook" } } });
    let (world, qdrant) = qdrant_world("index-alias", shared.clone()).await?;
    let first = wait_index(&world, "Ready", |i| ready_on(i, None)).await?;
    let c1 = first.status.unwrap().active_collection.unwrap();
    // A second team (here: a second index in the same namespace) claims the same alias.
    let mut second: serde_json::Value = common::read_sample("qdrant/ragindex.yaml")?;
    second["metadata"]["name"] = json!("handbook-copy");
    let url = first.spec.vector_store.qdrant.as_ref().unwrap().url.clone();
    common::merge(&mut second["spec"], shared);
    common::merge(
        &mut second["spec"],
        json!({ "vectorStore": { "qdrant": { "url": url } } }),
    );
    let second: RagIndex = serde_json::from_value(second)?;
    let api: Api<RagIndex> = world.ns.api();
    api.create(&PostParams::default(), &second).await?;
    let refused = wait_for("handbook-copy AliasConflict", INDEX_TIMEOUT, || async {
        let i = api.get("handbook-copy").await?;
        Ok(condition(&i, "Degraded")
            .filter(|c| c.1 == "AliasConflict")
            .map(|c| c.2))
    })
    .await?;
    assert!(
        refused.contains("\"tenants_shared_handbook\"")
            && refused.contains(&format!("{}/{INDEX}", world.ns.name())),
        "{refused}"
    );
    world.wait_event("handbook-copy", "AliasConflict").await?;
    let jobs: Api<Job> = world.ns.api();
    let copies = jobs
        .list(&ListParams::default().labels("ragops.io/index=handbook-copy"))
        .await?;
    assert_eq!(
        copies.items.len(),
        0,
        "the refused index never starts a Job"
    );
    assert_eq!(
        qdrant.alias_target().await?,
        Some(c1.clone()),
        "the alias stays"
    );
    let kept = api.get(INDEX).await?;
    assert_eq!(
        kept.status.and_then(|s| s.active_collection),
        Some(c1),
        "the first index keeps serving"
    );
    Ok(())
}

#[tokio::test]
async fn deleting_an_index_under_a_live_pipeline_waits_with_in_use() -> Result<()> {
    let (world, qdrant) = qdrant_world("index-inuse", json!({})).await?;
    create_pipeline(&world).await?;
    let ready = wait_index(&world, "Ready", |i| ready_on(i, None)).await?;
    let c1 = ready.status.unwrap().active_collection.unwrap();
    world.wait_healthy_on(PIPELINE, Color::Blue).await?;
    let api: Api<RagIndex> = world.ns.api();
    api.delete(INDEX, &DeleteParams::default()).await?;
    let waiting = wait_index(&world, "InUse", |i| {
        condition(i, "Degraded").is_some_and(|c| c.1 == "InUse")
    })
    .await?;
    let (_, _, message) = condition(&waiting, "Degraded").unwrap();
    assert!(message.contains(&c1), "{message}");
    world.wait_event(INDEX, "InUse").await?;
    assert_eq!(qdrant.points(&c1).await.ok().map(|p| p > 0), Some(true));
    let (code, _) = common::query::query(
        common::query::pod_of(&world, PIPELINE, Color::Blue).await?,
        QUESTION,
        None,
    )
    .await?;
    assert_eq!(code, 200, "the pipeline still answers");
    // The pipeline goes: the deletion proceeds and drops what the index recorded.
    world
        .pipelines()
        .delete(PIPELINE, &DeleteParams::default())
        .await?;
    wait_for("the RagIndex gone", INDEX_TIMEOUT, || async {
        Ok(api.get_opt(INDEX).await?.is_none().then_some(()))
    })
    .await?;
    assert_eq!(qdrant.collections().await?, Vec::<String>::new());
    Ok(())
}

/// Deletes `world`'s namespace and waits until it is gone; the operator's log on failure.
async fn delete_namespace(world: &World) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(world.cluster.client().await?);
    namespaces
        .delete(world.ns.name(), &DeleteParams::default())
        .await?;
    wait_for("the namespace gone", INDEX_TIMEOUT, || async {
        Ok(namespaces
            .get_opt(world.ns.name())
            .await?
            .is_none()
            .then_some(()))
    })
    .await
    .with_context(|| operator_log(world, 30))
}

fn operator_log(world: &World, lines: usize) -> String {
    world
        .operator
        .as_ref()
        .map(|o| o.log_tail(lines))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_namespace_whose_qdrant_is_unreachable_is_still_deleted() -> Result<()> {
    let unreachable = json!({ "vectorStore": { "qdrant": { "url": "http://127.0.0.1:9" } }, "ingest": { "backoffLimit": 0 } });
    let (world, _qdrant) = qdrant_world("index-nsdown", unreachable).await?;
    wait_index(&world, "a collection recorded", |i| {
        i.status.as_ref().is_some_and(|s| !s.collections.is_empty())
    })
    .await?;
    delete_namespace(&world).await?;
    let log = operator_log(&world, 200);
    ensure!(
        log.contains("released without dropping") && log.contains("the namespace is terminating"),
        "no release logged:\n{log}"
    );
    Ok(())
}

#[tokio::test]
async fn a_namespace_whose_qdrant_secret_went_first_is_still_deleted() -> Result<()> {
    let with_key = json!({ "vectorStore": { "qdrant": { "apiKeySecretRef": { "name": "qdrant", "key": "apiKey" } } } });
    let world = World::with_pods("index-nsgone", e2e::spec_runtime(None)).await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "qdrant" }, "stringData": { "apiKey": "unused-by-the-test-bed" }
    }))?;
    world
        .ns
        .api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let qdrant = create_index(&world, with_key).await?;
    wait_index(&world, "Ready", |i| ready_on(i, None)).await?;
    ensure!(!qdrant.collections().await?.is_empty());
    // The Secret goes first, then the namespace (as `kubectl delete ns` may order it).
    world
        .ns
        .api::<Secret>()
        .delete("qdrant", &DeleteParams::default())
        .await?;
    delete_namespace(&world).await?;
    let log = operator_log(&world, 200);
    ensure!(
        log.contains("released without dropping") && log.contains("is gone"),
        "no release logged:\n{log}"
    );
    Ok(())
}
