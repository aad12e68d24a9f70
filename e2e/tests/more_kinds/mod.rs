//! The RBAC scenario's parts beyond the pipeline's own children: a Qdrant-backed RagIndex (its
//! Jobs, their pods, its status and finalizer) and `spec.monitoring` (ServiceMonitors and
//! PrometheusRules).

use std::time::Duration;

use anyhow::{Context, Result};
use e2e::wait_for;
use kube::api::{Api, DeleteParams, PostParams};
use rag_operator::api::RagIndex;
use serde_json::{Value, json};

use crate::common::{self, World, merge};

/// A Qdrant-backed index ingested, re-indexed and deleted: its Jobs, their pods' termination
/// messages, its status and its finalizer.
pub async fn index(world: &World) -> Result<()> {
    let url = world.cluster.qdrant_url.clone().context(
        "no Qdrant beside the cluster: start it with RAGOPS_E2E_QDRANT=1 (make e2e does)",
    )?;
    let mut index: Value = common::read_sample("qdrant/ragindex.yaml")?;
    let alias = world.ns.name().to_string();
    merge(
        &mut index["spec"],
        json!({ "vectorStore": { "qdrant": { "url": url, "collection": alias } } }),
    );
    let index: RagIndex = serde_json::from_value(index)?;
    let name = index.metadata.name.clone().context("no name")?;
    let api = world.ns.api::<RagIndex>();
    api.create(&PostParams::default(), &index).await?;
    let indexed = |previous: Option<String>| {
        let api = api.clone();
        let name = name.clone();
        async move {
            wait_for(
                "the index Ready on a new collection",
                common::ROLLOUT_TIMEOUT,
                || async {
                    let s = api.get(&name).await?.status.unwrap_or_default();
                    let active = s.active_collection.clone();
                    let ready = s.phase.as_deref() == Some("Ready")
                        && active.is_some()
                        && active != previous;
                    Ok(ready.then_some(active))
                },
            )
            .await
        }
    };
    let first = indexed(None).await?;
    // A re-index: a new Job, and the old revision's Job swept.
    world
        .edit_docs(json!({ "more.md": "# More\nAnother document.\n" }))
        .await?;
    indexed(first).await?;
    // deletionPolicy Delete: the finalizer drops the collections, then lets the index go.
    api.delete(&name, &DeleteParams::default()).await?;
    wait_for("the index deleted", common::ROLLOUT_TIMEOUT, || async {
        Ok(api.get_opt(&name).await?.is_none().then_some(()))
    })
    .await
}

/// `spec.monitoring` with the Prometheus Operator's CRDs installed: discovery, the watches of
/// ServiceMonitors and PrometheusRules, their creation, update and sweep.
pub async fn monitoring(world: &World) -> Result<()> {
    let bins = e2e::monitoring::MonitoringBinaries::locate()?;
    e2e::monitoring::install_monitoring_crds(&world.cluster, &bins.crds).await?;
    let ready = |reason: &'static str| {
        move |p: &rag_operator::api::RagPipeline| {
            p.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "MonitoringReady" && c.reason == reason)
            })
        }
    };
    let monitored = json!({ "monitoring": { "serviceMonitor": {}, "alerts": {} } });
    world.patch_spec("docs", monitored).await?;
    world
        .wait_pipeline("docs", "monitoring applied", ready("Applied"))
        .await?;
    let rules = Api::<kube::api::DynamicObject>::namespaced_with(
        world.ns.client(),
        world.ns.name(),
        &e2e::monitoring::monitoring_resource("PrometheusRule"),
    );
    wait_for("the PrometheusRule", Duration::from_secs(30), || async {
        Ok(rules.get_opt("docs").await?.map(|_| ()))
    })
    .await?;
    // A new threshold updates the rule in place.
    let stricter = json!({ "monitoring": { "alerts": { "errorRatio": 0.2 } } });
    world.patch_spec("docs", stricter).await?;
    wait_for("the rule updated", Duration::from_secs(30), || async {
        let rule = rules.get("docs").await?;
        Ok(rule.data.to_string().contains("> 0.2").then_some(()))
    })
    .await?;
    world
        .patch_spec("docs", json!({ "monitoring": null }))
        .await?;
    wait_for(
        "the PrometheusRule swept",
        Duration::from_secs(30),
        || async { Ok(rules.get_opt("docs").await?.is_none().then_some(())) },
    )
    .await
}
