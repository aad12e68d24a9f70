//! The operator killed between two writes of a promotion, a rollback and an abort (its test-only
//! kill points, `RAGOPS_TEST_CRASH_AT`), then started again: each converges to one cutover and
//! never flips traffic back; a request id seen again, a second rollback and an annotation the
//! crashed operator never removed do no harm.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::crash::{start_crashing_at, wait_crashed};
use common::{TrafficGuard, World, fast_rollout, merge, new_revision};
use e2e::wait_for;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use rag_operator::api::{Color, RagPipeline};
use rag_operator::crash::at;
use rag_operator::pipeline::annotation;
use serde_json::json;

const PROMPT: Duration = Duration::from_secs(30);

/// Sets request annotation `key` to `id`, as `kubectl annotate --overwrite` would.
async fn request(world: &World, key: &str, id: &str) -> Result<()> {
    let patch = json!({ "metadata": { "annotations": { key: id } } });
    world
        .pipelines()
        .patch("docs", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn pipeline(world: &World) -> Result<RagPipeline> {
    Ok(world.pipelines().get("docs").await?)
}

/// Waits until annotation `key` is gone (the operator tidied a handled request).
async fn wait_tidied(world: &World, key: &str) -> Result<()> {
    wait_for(&format!("{key} removed"), PROMPT, || async {
        Ok((!pipeline(world).await?.annotations().contains_key(key)).then_some(()))
    })
    .await
}

/// Waits until the status records `color` as active (a rolled-back pipeline is Degraded
/// (RolledBack), not Healthy).
async fn wait_active_on(world: &World, color: Color) -> Result<RagPipeline> {
    world
        .wait_pipeline_within("docs", &format!("active on {color}"), PROMPT, |p| {
            active(p).0 == Some(color)
        })
        .await
}

fn active(p: &RagPipeline) -> (Option<Color>, Option<String>) {
    let s = p.status.clone().unwrap_or_default();
    (s.active_color, s.active_revision)
}

#[tokio::test]
async fn a_crash_between_any_two_writes_of_a_promotion_converges_to_one_cutover() -> Result<()> {
    let mut world = World::new("crash-promote").await?;
    let guard = TrafficGuard::start(&world, "docs");
    world.create_pipeline("docs", fast_rollout()).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    let mut switches = vec!["blue"];
    let mut revisions = vec![];
    let points = [
        at::DEPLOYMENTS_APPLIED,
        at::CUTOVER_RECORDED,
        at::TRAFFIC_MOVED,
    ];
    for (n, point) in points.into_iter().enumerate() {
        start_crashing_at(&mut world, point)?;
        world
            .patch_spec("docs", new_revision(&format!("crash-{n}")))
            .await?;
        wait_crashed(&mut world, point).await?;
        world.restart_operator()?;
        let to = if switches.last() == Some(&"blue") {
            Color::Green
        } else {
            Color::Blue
        };
        let p = world.wait_healthy_on("docs", to).await?;
        revisions.push(active(&p).1.unwrap_or_default());
        switches.push(to.as_str());
        guard.wait_switches(&switches, PROMPT).await?;
    }
    // One promotion per revision, whichever write the crash fell between.
    let events = world.events("docs").await?;
    for revision in &revisions {
        let promoted = events
            .iter()
            .filter(|(r, n)| r == "Promoted" && n.contains(revision.as_str()))
            .count();
        assert_eq!(promoted, 1, "revision {revision}: {events:?}");
    }
    assert_eq!(guard.switches(), switches, "no flip back");
    assert_eq!(guard.violations(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn crashed_rollbacks_and_aborts_are_acted_on_once() -> Result<()> {
    let mut world = World::new("crash-rollback").await?;
    let guard = TrafficGuard::start(&world, "docs");
    let mut spec = fast_rollout();
    // Blue keeps running after the cutover, so a rollback is instant.
    merge(
        &mut spec,
        json!({ "rollout": { "scaleDownDelaySeconds": 600 } }),
    );
    merge(&mut spec, common::hold_on_failing_probes());
    world.create_pipeline("docs", spec).await?;
    let r1 = active(&world.wait_healthy_on("docs", Color::Blue).await?).1;
    world.patch_spec("docs", new_revision("2")).await?;
    world.wait_healthy_on("docs", Color::Green).await?;

    // Crash after the status recorded the rollback, before traffic moved.
    start_crashing_at(&mut world, at::CUTOVER_RECORDED)?;
    request(&world, annotation::ROLLBACK, "rb-1").await?;
    wait_crashed(&mut world, at::CUTOVER_RECORDED).await?;
    world.wait_service_color("docs", "green").await?;
    world.restart_operator()?;
    let p = wait_active_on(&world, Color::Blue).await?;
    assert_eq!(active(&p).1, r1);
    wait_tidied(&world, annotation::ROLLBACK).await?;
    guard
        .wait_switches(&["blue", "green", "blue"], PROMPT)
        .await?;

    // The same id again (a repeated click): ignored. A new id while the rollback is in force:
    // refused with an Event. Neither moves traffic.
    request(&world, annotation::ROLLBACK, "rb-1").await?;
    wait_tidied(&world, annotation::ROLLBACK).await?;
    request(&world, annotation::ROLLBACK, "rb-2").await?;
    world
        .wait_event_note_within("docs", "RollbackRefused", "already in force", PROMPT)
        .await?;
    wait_tidied(&world, annotation::ROLLBACK).await?;
    world.wait_service_color("docs", "blue").await?;

    // Retry brings revision 2 back on green; then a rollback whose annotation the crashed
    // operator never removes: the next operator finds the id recorded and does not flip back.
    request(&world, annotation::RETRY, "rt-1").await?;
    world.wait_healthy_on("docs", Color::Green).await?;
    guard
        .wait_switches(&["blue", "green", "blue", "green"], PROMPT)
        .await?;
    start_crashing_at(&mut world, at::CHILDREN_APPLIED)?;
    request(&world, annotation::ROLLBACK, "rb-3").await?;
    wait_crashed(&mut world, at::CHILDREN_APPLIED).await?;
    let p = pipeline(&world).await?;
    assert_eq!(
        p.annotations()
            .get(annotation::ROLLBACK)
            .map(String::as_str),
        Some("rb-3"),
        "the crashed operator left the annotation"
    );
    let handled = p.status.as_ref().and_then(|s| s.handled_requests.clone());
    assert_eq!(handled.and_then(|h| h.rollback).as_deref(), Some("rb-3"));
    world.restart_operator()?;
    wait_tidied(&world, annotation::ROLLBACK).await?;
    let expected = ["blue", "green", "blue", "green", "blue"];
    guard.wait_switches(&expected, PROMPT).await?;

    // An abort recorded by a crashed operator: the next one finishes it, traffic stays.
    // Revision 3's new pods fail their probes (held, not failed); every pod up now answers.
    for pod in world.pods.serving() {
        world.pods.set_pod_status(&pod.name, 200);
    }
    world.pods.set_status(503);
    world.patch_spec("docs", new_revision("3")).await?;
    world
        .wait_pipeline("docs", "revision 3 in flight", |p| {
            p.status.as_ref().and_then(|s| s.target_color).is_some()
        })
        .await?;
    start_crashing_at(&mut world, at::FAILURE_RECORDED)?;
    request(&world, annotation::ABORT, "ab-1").await?;
    wait_crashed(&mut world, at::FAILURE_RECORDED).await?;
    world.restart_operator()?;
    world
        .wait_pipeline_within("docs", "aborted, green at zero", PROMPT, |p| {
            p.status
                .as_ref()
                .and_then(|s| s.failure.as_ref())
                .is_some_and(|f| f.reason == "Aborted")
        })
        .await?;
    wait_for("green scaled to zero", PROMPT, || async {
        Ok((world.replicas("docs", "green").await? == Some(0)).then_some(()))
    })
    .await?;
    wait_tidied(&world, annotation::ABORT).await?;
    world.wait_service_color("docs", "blue").await?;
    assert_eq!(guard.switches(), expected, "no flip back");
    assert_eq!(guard.violations(), Vec::<String>::new());
    Ok(())
}
