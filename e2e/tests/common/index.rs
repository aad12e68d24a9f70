//! A namespace whose pipelines and ingest Jobs run for real, with the Qdrant sample RagIndex
//! pointed at the test bed's Qdrant (its alias the per-namespace default unless the test sets
//! one), and what the index tests read.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{spec_runtime, wait_for};
use kube::api::{Api, PostParams};
use rag_operator::api::{RagIndex, RagPipeline};
use serde_json::{Value, json};

use super::World;

pub const INDEX: &str = "handbook-qdrant";
pub const PIPELINE: &str = "handbook-qdrant";
pub const QUESTION: &str = "How does a blue-green rollout switch traffic?";
/// Ingest, KWOK, the Job controller and a rollout, with room to spare.
pub const INDEX_TIMEOUT: Duration = Duration::from_secs(120);

/// A namespace whose pods (pipelines and ingest Jobs) run for real, with the Qdrant sample
/// index pointed at the test bed's Qdrant, its alias `<namespace>_<name>` (the default, unique
/// per namespace) unless `index_patch` names one.
pub async fn qdrant_world(prefix: &str, index_patch: Value) -> Result<(World, Qdrant)> {
    let world = World::with_pods(prefix, spec_runtime(None)).await?;
    let qdrant = create_index(&world, index_patch).await?;
    Ok((world, qdrant))
}

/// Applies the Qdrant sample RagIndex to `world`'s namespace, only its url pointed at the test
/// bed's Qdrant and `index_patch` merged in.
pub async fn create_index(world: &World, index_patch: Value) -> Result<Qdrant> {
    let (grpc, http) = world
        .cluster
        .qdrant_url
        .clone()
        .zip(world.cluster.qdrant_http_url.clone())
        .context(
            "no Qdrant beside the cluster: start it with RAGOPS_E2E_QDRANT=1 (make e2e does)",
        )?;
    let mut index: Value = super::read_sample("qdrant/ragindex.yaml")?;
    super::merge(
        &mut index["spec"],
        json!({ "vectorStore": { "qdrant": { "url": grpc } } }),
    );
    super::merge(&mut index["spec"], index_patch);
    let alias = index["spec"]["vectorStore"]["qdrant"]["collection"]
        .as_str()
        .map_or_else(|| format!("{}_{INDEX}", world.ns.name()), String::from);
    let index: RagIndex = serde_json::from_value(index)?;
    world
        .ns
        .api::<RagIndex>()
        .create(&PostParams::default(), &index)
        .await?;
    Ok(Qdrant { http, alias })
}

pub async fn create_pipeline(world: &World) -> Result<()> {
    let mut p: Value = super::read_sample("qdrant/ragpipeline.yaml")?;
    super::merge(
        &mut p["spec"],
        json!({ "rollout": { "healthCheck": { "periodSeconds": 1, "successThreshold": 1 }, "scaleDownDelaySeconds": 2 } }),
    );
    let p: RagPipeline = serde_json::from_value(p)?;
    world.pipelines().create(&PostParams::default(), &p).await?;
    Ok(())
}

/// The test bed's Qdrant over HTTP, for what the test checks behind the operator's back.
pub struct Qdrant {
    http: String,
    alias: String,
}

impl Qdrant {
    /// The alias of the test's index.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.http);
        let response = reqwest::get(&url).await?.error_for_status()?;
        Ok(response.json().await?)
    }

    /// Collections of this test's alias, sorted.
    pub async fn collections(&self) -> Result<Vec<String>> {
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

    pub async fn alias_target(&self) -> Result<Option<String>> {
        let body = self.get("/aliases").await?;
        Ok(body["result"]["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["alias_name"] == self.alias.as_str())
            .and_then(|a| a["collection_name"].as_str().map(String::from)))
    }

    pub async fn send(
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

    pub async fn points(&self, collection: &str) -> Result<u64> {
        let body = self.get(&format!("/collections/{collection}")).await?;
        body["result"]["points_count"]
            .as_u64()
            .context("no points_count")
    }
}

pub async fn wait_index(
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

pub fn ready_on(i: &RagIndex, collection: Option<&str>) -> bool {
    let s = i.status.as_ref();
    let active = s.and_then(|s| s.active_collection.as_deref());
    s.and_then(|s| s.phase.as_deref()) == Some("Ready")
        && active.is_some()
        && (collection.is_none() || active != collection)
}

pub fn condition(i: &RagIndex, type_: &str) -> Option<(String, String, String)> {
    let c = i
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}
