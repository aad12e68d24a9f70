//! The operator under failure: killed mid-rollout, a pipeline deleted. (At rest: e2e_caches.)

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{TrafficGuard, World, fast_rollout, merge, new_revision};
use e2e::wait_for;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DeleteParams;
use rag_operator::api::Color;

#[tokio::test]
async fn operator_killed_mid_rollout_completes_it_exactly_once() -> Result<()> {
    let mut world = World::new("restart").await?;
    let guard = TrafficGuard::start(&world, "docs");
    let mut spec = fast_rollout();
    merge(&mut spec, common::hold_on_failing_probes());
    world.create_pipeline("docs", spec).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;

    world.pods.set_status(503);
    world.patch_spec("docs", new_revision("2")).await?;
    // Kill point 1: the green Deployment exists.
    let deployments = world.ns.api::<Deployment>();
    wait_for("docs-green created", common::ROLLOUT_TIMEOUT, || async {
        Ok(deployments.get_opt("docs-green").await?.map(|_| ()))
    })
    .await?;
    world.restart_operator()?;

    // Kill point 2: green is ready and being probed, traffic not switched yet.
    world
        .wait_pipeline("docs", "green ready and failing probes", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.rollout.as_ref())
                .is_some_and(|r| r.health_failures > 0)
        })
        .await?;
    world.wait_service_color("docs", "blue").await?;
    world.restart_operator()?;

    world.pods.set_status(200);
    world.wait_healthy_on("docs", Color::Green).await?;
    let events = world.wait_event_note("docs", "Promoted", "green").await?;
    let promotions: Vec<_> = events
        .iter()
        .filter(|(r, n)| r == "Promoted" && n.contains("green"))
        .collect();
    assert_eq!(promotions.len(), 1, "{events:?}");
    guard
        .wait_switches(&["blue", "green"], Duration::from_secs(10))
        .await?;
    assert_eq!(guard.violations(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn deleting_a_pipeline_garbage_collects_every_child() -> Result<()> {
    let world = World::new("gc").await?;
    world.create_pipeline("docs", fast_rollout()).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    world
        .pipelines()
        .delete("docs", &DeleteParams::background())
        .await?;

    let ns = &world.ns;
    wait_for(
        "every child of docs deleted",
        common::ROLLOUT_TIMEOUT,
        || async {
            let left = [
                ns.api::<Deployment>()
                    .get_opt("docs-blue")
                    .await?
                    .map(|_| "Deployment docs-blue"),
                ns.api::<Service>()
                    .get_opt("docs")
                    .await?
                    .map(|_| "Service docs"),
                ns.api::<Service>()
                    .get_opt("docs-preview")
                    .await?
                    .map(|_| "Service docs-preview"),
                ns.api::<ConfigMap>()
                    .get_opt("docs-config")
                    .await?
                    .map(|_| "ConfigMap docs-config"),
                ns.api::<PodDisruptionBudget>()
                    .get_opt("docs")
                    .await?
                    .map(|_| "PodDisruptionBudget docs"),
            ];
            Ok(left.iter().all(Option::is_none).then_some(()))
        },
    )
    .await?;
    Ok(())
}
