//! Blue-green rollouts against the real control plane: first deploy, update, failed health check,
//! manual promotion. The operator's health probes reach HTTP servers on the KWOK pod IPs: for the
//! sample, the pods' own specs run by the spec runner; elsewhere, fake health servers.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{TrafficGuard, World, fast_rollout, merge, new_revision};
use e2e::{spec_runtime, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use rag_operator::api::{Color, Phase};
use serde_json::json;

#[tokio::test]
async fn sample_pipeline_deploys_blue_then_rolls_out_green_through_real_runtimes() -> Result<()> {
    // Each pod runs what the operator wrote: the ingest init container over the mounted
    // `handbook-docs` ConfigMap, then `rag-runtime serve` with the rendered config.
    let world = World::with_pods("sample", spec_runtime(None)).await?;
    let guard = TrafficGuard::start(&world, "handbook");

    // The sample as it is, but a short scale-down delay.
    world
        .create_pipeline(
            "handbook",
            json!({ "rollout": { "scaleDownDelaySeconds": 3 } }),
        )
        .await?;
    let p = world.wait_healthy_on("handbook", Color::Blue).await?;
    let status = p.status.unwrap();
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(
        status.endpoint.as_deref(),
        Some(format!("http://handbook.{}.svc:80", world.ns.name()).as_str())
    );
    let out = world.cluster.kubectl_output(&[
        "wait",
        "--for=condition=Ready",
        "ragpipeline/handbook",
        "-n",
        world.ns.name(),
        "--timeout=30s",
    ])?;
    assert!(out.contains("condition met"), "{out}");

    // Every child exists and is owned by the pipeline.
    let uid = p.metadata.uid.clone().unwrap();
    let ns = &world.ns;
    let children = [
        (
            "ConfigMap handbook-config",
            ns.api::<ConfigMap>().get("handbook-config").await?.metadata,
        ),
        (
            "Deployment handbook-blue",
            ns.api::<Deployment>().get("handbook-blue").await?.metadata,
        ),
        (
            "Service handbook",
            ns.api::<Service>().get("handbook").await?.metadata,
        ),
        (
            "Service handbook-preview",
            ns.api::<Service>().get("handbook-preview").await?.metadata,
        ),
        (
            "PodDisruptionBudget handbook",
            ns.api::<PodDisruptionBudget>()
                .get("handbook")
                .await?
                .metadata,
        ),
    ];
    for (child, meta) in children {
        let owners = meta.owner_references.unwrap_or_default();
        let owned = owners
            .iter()
            .any(|r| r.uid == uid && r.controller == Some(true));
        assert!(
            owned,
            "{child} is not controlled by the pipeline: {owners:?}"
        );
    }
    world.wait_service_color("handbook", "blue").await?;
    // The config the operator rendered is one the runtime accepts.
    let config = world.ns.api::<ConfigMap>().get("handbook-config").await?;
    for (key, yaml) in config.data.unwrap_or_default() {
        let parsed = rag_runtime::config::RuntimeConfig::from_yaml(&yaml);
        assert!(parsed.is_ok(), "{key}: {parsed:?}");
    }

    // The printer columns tell the story: NAME PHASE ACTIVE REVISION READY INDEX AGE.
    let table = world
        .cluster
        .kubectl_output(&["get", "ragpipelines", "-n", world.ns.name()])?;
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..3], ["handbook", "Healthy", "blue"], "{table}");
    assert_eq!(row[3], status.active_revision.as_deref().unwrap());
    assert_eq!(&row[4..6], ["2", "handbook"], "{table}");

    // The smoke query ran against a real runtime: it ranked rollouts.md in its top K.
    world.wait_event("handbook", "HealthCheckPassed").await?;
    // Every pod serves the documents its init container ingested from the ConfigMap.
    for pod in world.pods.serving() {
        let ids = query_sources(pod.addr, "What does autoscaling do?").await?;
        assert!(
            ids.iter().any(|id| id == "autoscaling.md"),
            "{}: {ids:?}",
            pod.name
        );
    }
    assert_eq!(world.pods.errors(), Vec::<String>::new());

    // A change rolls out on green; traffic moves only once green is up and verified.
    let blue_revision = status.active_revision.clone();
    world.patch_spec("handbook", new_revision("2")).await?;
    let p = world.wait_healthy_on("handbook", Color::Green).await?;
    let status = p.status.unwrap();
    assert_ne!(status.active_revision, blue_revision);
    world.wait_service_color("handbook", "green").await?;
    world
        .wait_service_color("handbook-preview", "green")
        .await?;
    assert!(status.last_cutover_time.is_some());
    wait_for(
        "blue scaled to zero after the delay",
        common::ROLLOUT_TIMEOUT,
        || async { Ok((world.replicas("handbook", "blue").await? == Some(0)).then_some(())) },
    )
    .await?;
    let events = world.wait_event("handbook", "ScaledDown").await?;
    let reasons: Vec<&str> = events.iter().map(|(r, _)| r.as_str()).collect();
    for expected in [
        "RolloutStarted",
        "HealthCheckPassed",
        "Promoted",
        "ScaledDown",
    ] {
        assert!(
            reasons.contains(&expected),
            "missing {expected} in {reasons:?}"
        );
    }
    guard
        .wait_switches(&["blue", "green"], Duration::from_secs(10))
        .await?;
    assert_eq!(guard.violations(), Vec::<String>::new());
    assert_eq!(world.pods.errors(), Vec::<String>::new());
    Ok(())
}

/// The document ids a runtime cites for `query`.
async fn query_sources(addr: std::net::SocketAddr, query: &str) -> Result<Vec<String>> {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/v1/query"))
        .json(&json!({ "query": query, "topK": 3 }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["documentId"].as_str().map(String::from))
        .collect())
}

#[tokio::test]
async fn failing_health_check_keeps_traffic_on_the_old_colour_until_a_fixed_spec() -> Result<()> {
    let world = World::new("unhealthy").await?;
    let guard = TrafficGuard::start(&world, "docs");
    world.create_pipeline("docs", fast_rollout()).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;

    // New pods answer 503: the rollout fails and blue keeps all traffic.
    world.pods.set_status(503);
    world.patch_spec("docs", new_revision("broken")).await?;
    let p = world
        .wait_pipeline("docs", "Degraded with RolloutFailed", |p| {
            p.status.as_ref().is_some_and(|s| {
                s.phase == Some(Phase::Degraded)
                    && s.conditions.iter().any(|c| {
                        c.type_ == "Degraded" && c.status == "True" && c.reason == "RolloutFailed"
                    })
            })
        })
        .await?;
    let status = p.status.unwrap();
    assert_eq!(status.active_color, Some(Color::Blue));
    assert_eq!(
        status.failure.as_ref().map(|f| f.reason.as_str()),
        Some("HealthCheckFailed")
    );
    world.wait_service_color("docs", "blue").await?;
    wait_for("green scaled to zero", common::ROLLOUT_TIMEOUT, || async {
        Ok((world.replicas("docs", "green").await? == Some(0)).then_some(()))
    })
    .await?;
    assert_eq!(world.replicas("docs", "blue").await?, Some(2));
    let events = world.wait_event("docs", "RolloutFailed").await?;
    assert!(
        events
            .iter()
            .any(|(r, n)| r == "RolloutFailed" && n.contains("503")),
        "{events:?}"
    );

    // A fixed spec rolls out.
    world.pods.set_status(200);
    world.patch_spec("docs", new_revision("fixed")).await?;
    let p = world.wait_healthy_on("docs", Color::Green).await?;
    assert_eq!(p.status.unwrap().failure, None);
    guard
        .wait_switches(&["blue", "green"], Duration::from_secs(10))
        .await?;
    assert_eq!(guard.violations(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn manual_promotion_pauses_until_the_promote_annotation() -> Result<()> {
    let world = World::new("manual").await?;
    let mut spec = fast_rollout();
    merge(&mut spec, json!({ "rollout": { "autoPromote": false } }));
    world.create_pipeline("docs", spec).await?;
    // The first deploy has no traffic to protect and is not held.
    world.wait_healthy_on("docs", Color::Blue).await?;

    world.patch_spec("docs", new_revision("2")).await?;
    let p = world
        .wait_pipeline("docs", "Paused", |p| {
            p.status.as_ref().and_then(|s| s.phase) == Some(Phase::Paused)
        })
        .await?;
    assert_eq!(p.status.as_ref().unwrap().target_color, Some(Color::Green));
    world.wait_service_color("docs", "blue").await?;
    world.wait_service_color("docs-preview", "green").await?;
    world.wait_event("docs", "AwaitingPromotion").await?;

    world.annotate("docs", "ragops.io/promote").await?;
    world.wait_healthy_on("docs", Color::Green).await?;
    world.wait_service_color("docs", "green").await?;
    world
        .wait_pipeline("docs", "the promote annotation consumed", |p| {
            !p.annotations().contains_key("ragops.io/promote")
        })
        .await?;
    world.wait_event("docs", "Promoted").await?;
    Ok(())
}
