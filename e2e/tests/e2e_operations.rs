//! What users ask for by annotation: abort the rollout in flight, roll back to the previous
//! revision (at once while its pods still run, through every gate once they are gone), retry.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{TrafficGuard, World, fast_rollout, is_ready, merge, new_revision};
use e2e::wait_for;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::ListParams;
use rag_operator::api::{Color, Phase, RagPipeline};
use rag_operator::pipeline::annotation;
use serde_json::{Value, json};

/// A request by annotation is acted on by the next reconciliation, which its own watch event
/// starts: seconds, not a resync.
const PROMPT: Duration = Duration::from_secs(15);

/// The reason of the pipeline's Degraded condition when it is True.
fn degraded_reason(p: &RagPipeline) -> Option<&str> {
    let s = p.status.as_ref()?;
    s.conditions
        .iter()
        .find(|c| c.type_ == "Degraded" && c.status == "True")
        .map(|c| c.reason.as_str())
}

fn phase(p: &RagPipeline) -> Option<Phase> {
    p.status.as_ref().and_then(|s| s.phase)
}

fn active_revision(p: &RagPipeline) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.active_revision.clone())
        .unwrap_or_default()
}

async fn wait_annotation_removed(world: &World, name: &str, key: &str) -> Result<()> {
    let api = world.pipelines();
    wait_for(
        &format!("annotation {key} removed from {name}"),
        PROMPT,
        || async {
            let p = api.get(name).await?;
            Ok((!p.annotations().contains_key(key)).then_some(()))
        },
    )
    .await
}

/// Spec of a pipeline served by the fake pod servers, with `patch` merged in.
fn spec(patch: Value) -> Value {
    let mut spec = fast_rollout();
    merge(&mut spec, patch);
    spec
}

#[tokio::test]
async fn abort_stops_the_rollout_in_flight_and_retry_resumes_it() -> Result<()> {
    let world = World::new("abort").await?;
    let guard = TrafficGuard::start(&world, "docs");
    let spec = spec(common::hold_on_failing_probes());
    world.create_pipeline("docs", spec).await?;
    let before = world.wait_healthy_on("docs", Color::Blue).await?;
    let rev1 = active_revision(&before);

    // Green's pods fail their probes, blue's keep answering.
    for pod in world.pods.wait_serving(2, common::ROLLOUT_TIMEOUT).await? {
        world.pods.set_pod_status(&pod.name, 200);
    }
    world.pods.set_status(503);
    world.patch_spec("docs", new_revision("2")).await?;
    world
        .wait_pipeline("docs", "green up and failing its probes", |p| {
            let s = p.status.as_ref();
            s.and_then(|s| s.target_color) == Some(Color::Green)
                && s.and_then(|s| s.rollout.as_ref())
                    .is_some_and(|r| r.health_failures > 0)
        })
        .await?;

    world.annotate("docs", annotation::ABORT).await?;
    let p = world
        .wait_pipeline_within("docs", "Degraded: Aborted", PROMPT, |p| {
            phase(p) == Some(Phase::Degraded) && degraded_reason(p) == Some("Aborted")
        })
        .await?;
    let status = p.status.clone().unwrap_or_default();
    assert_eq!(status.active_color, Some(Color::Blue), "{status:?}");
    assert_eq!(status.active_revision.as_deref(), Some(rev1.as_str()));
    assert_eq!(status.target_color, None, "{status:?}");
    assert_eq!(
        status.failure.as_ref().map(|f| f.reason.as_str()),
        Some("Aborted"),
        "{status:?}"
    );
    world.wait_service_color("docs", "blue").await?;
    assert_eq!(world.replicas("docs", "green").await?, Some(0));
    assert_eq!(world.replicas("docs", "blue").await?, Some(2));
    wait_annotation_removed(&world, "docs", annotation::ABORT).await?;
    world
        .wait_event_note_within("docs", "Aborted", "aborted by ragops.io/abort", PROMPT)
        .await?;

    // Retried with pods that pass: the same revision goes out on green and takes traffic.
    world.pods.set_status(200);
    world.annotate("docs", annotation::RETRY).await?;
    let p = world.wait_healthy_on("docs", Color::Green).await?;
    assert_ne!(active_revision(&p), rev1);
    assert_eq!(p.status.as_ref().and_then(|s| s.failure.clone()), None);
    wait_annotation_removed(&world, "docs", annotation::RETRY).await?;
    guard.wait_switches(&["blue", "green"], PROMPT).await?;
    assert_eq!(guard.violations(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn rollback_while_the_old_colour_runs_moves_traffic_back_at_once() -> Result<()> {
    let world = World::new("rollback-now").await?;
    let guard = TrafficGuard::start(&world, "docs");
    // Blue keeps running for five minutes after the cutover.
    world
        .create_pipeline(
            "docs",
            spec(json!({ "rollout": { "scaleDownDelaySeconds": 300 } })),
        )
        .await?;
    let rev1 = active_revision(&world.wait_healthy_on("docs", Color::Blue).await?);
    world.patch_spec("docs", new_revision("2")).await?;
    let rev2 = active_revision(&world.wait_healthy_on("docs", Color::Green).await?);
    assert_eq!(world.replicas("docs", "blue").await?, Some(2));

    world.annotate("docs", annotation::ROLLBACK).await?;
    let started = std::time::Instant::now();
    wait_for("Service docs back on blue", PROMPT, || async {
        let color = world.service_color("docs").await?;
        Ok((color.as_deref() == Some("blue")).then_some(()))
    })
    .await?;
    eprintln!("traffic back on blue after {:?}", started.elapsed());
    let p = world
        .wait_pipeline_within("docs", "Degraded: RolledBack", PROMPT, |p| {
            phase(p) == Some(Phase::Degraded) && degraded_reason(p) == Some("RolledBack")
        })
        .await?;
    let status = p.status.clone().unwrap_or_default();
    assert_eq!(status.active_color, Some(Color::Blue), "{status:?}");
    assert_eq!(status.active_revision.as_deref(), Some(rev1.as_str()));
    let rollback = status.rollback.clone().expect("status.rollback is set");
    assert_eq!((rollback.from, rollback.to), (rev2.clone(), rev1.clone()));
    world
        .wait_event_note_within("docs", "RolledBack", "traffic back on blue", PROMPT)
        .await?;
    wait_annotation_removed(&world, "docs", annotation::ROLLBACK).await?;

    // A new spec ends the rollback: it rolls out like any change, on the idle colour.
    world.patch_spec("docs", new_revision("3")).await?;
    let p = world.wait_healthy_on("docs", Color::Green).await?;
    let status = p.status.clone().unwrap_or_default();
    assert_eq!(status.rollback, None, "{status:?}");
    assert!(
        ![rev1.as_str(), rev2.as_str()].contains(&active_revision(&p).as_str()),
        "{status:?}"
    );
    guard
        .wait_switches(&["blue", "green", "blue", "green"], PROMPT)
        .await?;
    assert_eq!(guard.violations(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn rollback_after_the_old_colour_scaled_down_goes_through_the_gates() -> Result<()> {
    let world = World::new("rollback-gated").await?;
    let guard = TrafficGuard::start(&world, "docs");
    world
        .create_pipeline(
            "docs",
            spec(json!({ "rollout": { "scaleDownDelaySeconds": 2 } })),
        )
        .await?;
    let rev1 = active_revision(&world.wait_healthy_on("docs", Color::Blue).await?);
    world.patch_spec("docs", new_revision("2")).await?;
    let rev2 = active_revision(&world.wait_healthy_on("docs", Color::Green).await?);
    wait_for("blue scaled to zero", common::ROLLOUT_TIMEOUT, || async {
        Ok((world.replicas("docs", "blue").await? == Some(0)).then_some(()))
    })
    .await?;

    world.annotate("docs", annotation::ROLLBACK).await?;
    let p = world
        .wait_pipeline("docs", "revision 1 serving on blue again", |p| {
            let s = p.status.as_ref();
            s.and_then(|s| s.active_color) == Some(Color::Blue)
                && s.and_then(|s| s.active_revision.as_deref()) == Some(rev1.as_str())
                && s.and_then(|s| s.target_color).is_none()
        })
        .await?;
    let status = p.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Some(Phase::Degraded), "{status:?}");
    assert_eq!(degraded_reason(&p), Some("RolledBack"), "{status:?}");
    let rollback = status.rollback.clone().expect("status.rollback is set");
    assert_eq!((rollback.from, rollback.to), (rev2, rev1.clone()));
    world.wait_service_color("docs", "blue").await?;

    // The previous revision went through a rollout of its own: started, then promoted. The
    // Events follow the status write that the wait above saw.
    let in_order = |timeline: &[(jiff::Timestamp, String, String)]| {
        let when = |reason: &str, note: &[&str]| {
            timeline
                .iter()
                .filter(|(_, r, n)| r == reason && note.iter().all(|part| n.contains(part)))
                .map(|(t, _, _)| *t)
                .max()
        };
        let rollback_started = when("RollbackStarted", &[&rev1, "blue"]);
        let rollout_started = when("RolloutStarted", &[&rev1, "on blue"]);
        let promoted = when("Promoted", &["switched to blue", &rev1]);
        rollback_started.is_some()
            && rollback_started <= rollout_started
            && rollout_started < promoted
    };
    let ordered = wait_for(
        "Events RollbackStarted, RolloutStarted, Promoted",
        PROMPT,
        || async {
            let timeline = world.timeline("docs").await?;
            Ok(in_order(&timeline).then_some(()))
        },
    )
    .await;
    if let Err(e) = ordered {
        let timeline = world.timeline("docs").await?;
        panic!(
            "expected RollbackStarted, RolloutStarted, Promoted for {rev1} on blue, in that \
             order ({e:#}): {timeline:#?}"
        );
    }

    // Blue's pods run the previous revision.
    let pods = world.ns.api::<Pod>();
    let selector = "ragops.io/pipeline=docs,ragops.io/color=blue";
    let blue: Vec<Pod> = pods
        .list(&ListParams::default().labels(selector))
        .await?
        .items
        .into_iter()
        .filter(is_ready)
        .collect();
    assert!(!blue.is_empty(), "no ready blue pod");
    for pod in &blue {
        assert_eq!(
            pod.labels().get("ragops.io/revision").map(String::as_str),
            Some(rev1.as_str()),
            "{}",
            pod.name_any()
        );
    }
    guard
        .wait_switches(&["blue", "green", "blue"], PROMPT)
        .await?;
    assert_eq!(guard.violations(), Vec::<String>::new());
    Ok(())
}
