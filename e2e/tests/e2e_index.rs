//! The RagIndex controller on the real chain: a real Qdrant server beside the control plane,
//! ingest Jobs completed by the real Job controller after their pods ran `rag-runtime ingest`
//! for real, and pipelines whose real runtimes answer from the collection the index built.
//! A re-index is a gated blue-green rollout of the pipelines; a bad one never takes traffic.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::World;
use common::query::{QueryLoop, pod_of, query};
use e2e::{spec_runtime, wait_for};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rag_operator::api::{Color, Phase, RagIndex, RagPipeline};
use serde_json::{Value, json};

const INDEX: &str = "handbook-qdrant";
const PIPELINE: &str = "handbook-qdrant";
const QUESTION: &str = "How does a blue-green rollout switch traffic?";
/// Ingest, KWOK, the Job controller and a rollout, with room to spare.
const INDEX_TIMEOUT: Duration = Duration::from_secs(120);

/// A namespace whose pods (pipelines and ingest Jobs) run for real, with the Qdrant sample
/// index pointed at the test bed's Qdrant under an alias of its own.
async fn qdrant_world(prefix: &str, index_patch: Value) -> Result<(World, Qdrant)> {
    let world = World::with_pods(prefix, spec_runtime(None)).await?;
    let (grpc, http) = world
        .cluster
        .qdrant_url
        .clone()
        .zip(world.cluster.qdrant_http_url.clone())
        .context(
            "no Qdrant beside the cluster: start it with RAGOPS_E2E_QDRANT=1 (make e2e does)",
        )?;
    let mut index: Value = common::read_sample("qdrant/ragindex.yaml")?;
    let alias = world.ns.name().replace('-', "_");
    common::merge(
        &mut index["spec"],
        json!({ "vectorStore": { "qdrant": { "url": grpc, "collection": alias } } }),
    );
    common::merge(&mut index["spec"], index_patch);
    let index: RagIndex = serde_json::from_value(index)?;
    world
        .ns
        .api::<RagIndex>()
        .create(&PostParams::default(), &index)
        .await?;
    Ok((world, Qdrant { http, alias }))
}

async fn create_pipeline(world: &World) -> Result<()> {
    let mut p: Value = common::read_sample("qdrant/ragpipeline.yaml")?;
    common::merge(
        &mut p["spec"],
        json!({ "rollout": { "healthCheck": { "periodSeconds": 1, "successThreshold": 1 }, "scaleDownDelaySeconds": 2 } }),
    );
    let p: RagPipeline = serde_json::from_value(p)?;
    world.pipelines().create(&PostParams::default(), &p).await?;
    Ok(())
}

/// The test bed's Qdrant over HTTP, for what the test checks behind the operator's back.
struct Qdrant {
    http: String,
    alias: String,
}

impl Qdrant {
    async fn get(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.http);
        let response = reqwest::get(&url).await?.error_for_status()?;
        Ok(response.json().await?)
    }

    /// Collections of this test's alias, sorted.
    async fn collections(&self) -> Result<Vec<String>> {
        let body = self.get("/collections").await?;
        let mut names: Vec<String> = body["result"]["collections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .filter(|n| n.starts_with(&format!("{}-", self.alias)))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn alias_target(&self) -> Result<Option<String>> {
        let body = self.get("/aliases").await?;
        Ok(body["result"]["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["alias_name"] == self.alias.as_str())
            .and_then(|a| a["collection_name"].as_str().map(String::from)))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.http));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    async fn points(&self, collection: &str) -> Result<u64> {
        let body = self.get(&format!("/collections/{collection}")).await?;
        body["result"]["points_count"]
            .as_u64()
            .context("no points_count")
    }
}

async fn wait_index(
    world: &World,
    what: &str,
    done: impl Fn(&RagIndex) -> bool,
) -> Result<RagIndex> {
    let api: Api<RagIndex> = world.ns.api();
    let last = std::sync::Mutex::new(String::new());
    let result = wait_for(
        &format!("RagIndex {INDEX}: {what}"),
        INDEX_TIMEOUT,
        || async {
            let i = api.get(INDEX).await?;
            *last.lock().unwrap() = format!("{:?}", i.status);
            Ok(done(&i).then_some(i))
        },
    )
    .await;
    result.with_context(|| {
        let log = world
            .operator
            .as_ref()
            .map(|o| o.log_tail(30))
            .unwrap_or_default();
        format!(
            "last status: {}\npod errors: {:?}\noperator log:\n{log}",
            last.lock().unwrap(),
            world.pods.errors()
        )
    })
}

fn ready_on(i: &RagIndex, collection: Option<&str>) -> bool {
    let s = i.status.as_ref();
    let active = s.and_then(|s| s.active_collection.as_deref());
    s.and_then(|s| s.phase.as_deref()) == Some("Ready")
        && active.is_some()
        && (collection.is_none() || active != collection)
}

fn condition(i: &RagIndex, type_: &str) -> Option<(String, String, String)> {
    let c = i
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

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
    assert_eq!(
        world.service_color(PIPELINE).await?.as_deref(),
        Some("blue")
    );
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
    assert!(
        message.contains("ingest"),
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
