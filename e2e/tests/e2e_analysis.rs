//! Metric analysis against the real control plane. With Prometheus unreachable, pre-promotion
//! analysis is inconclusive, never a pass: the new revision never takes traffic, the old colour
//! keeps serving, and the condition names the metric.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{TrafficGuard, World, fast_rollout, merge, new_revision};
use e2e::wait_for;
use rag_operator::api::{AnalysisPhase, AnalysisStage, Color};
use serde_json::json;

#[tokio::test]
async fn an_unreachable_prometheus_is_inconclusive_and_the_new_revision_never_takes_traffic()
-> Result<()> {
    let world = World::new("analysis-down").await?;
    let guard = TrafficGuard::start(&world, "docs");
    world.create_pipeline("docs", fast_rollout()).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;

    // A loopback port nothing listens on: every query is refused.
    let closed = common::free_loopback_addr()?;
    let mut patch = new_revision("r2");
    merge(
        &mut patch,
        json!({ "rollout": { "analysis": {
            "prometheus": { "address": format!("http://{closed}") },
            "metrics": [{ "name": "errors", "builtin": "errorRatio", "threshold": 0.05,
                          "intervalSeconds": 1, "count": 3 }],
            "prePromotion": { "metrics": ["errors"] }
        } } }),
    );
    world.patch_spec("docs", patch).await?;

    let message = world.wait_degraded("docs", "AnalysisInconclusive").await?;
    assert!(message.contains("metric errors"), "{message}");
    assert!(message.contains("Prometheus unreachable"), "{message}");
    world.wait_event("docs", "AnalysisInconclusive").await?;

    let p = world.pipelines().get("docs").await?;
    let status = p.status.unwrap();
    let run = status.analysis.expect("the run is in status");
    assert_eq!(
        (run.stage, run.color, run.phase),
        (
            AnalysisStage::PrePromotion,
            Color::Green,
            AnalysisPhase::Inconclusive
        )
    );
    assert_eq!(run.metrics[0].inconclusive, 1);
    assert_eq!(status.active_color, Some(Color::Blue));
    assert_eq!(world.service_color("docs").await?.as_deref(), Some("blue"));
    wait_for(
        "green to be scaled to zero",
        Duration::from_secs(30),
        || async { Ok((world.replicas("docs", "green").await? == Some(0)).then_some(())) },
    )
    .await?;
    assert_eq!(guard.switches(), ["blue"], "green never took traffic");
    assert_eq!(guard.violations(), Vec::<String>::new());
    Ok(())
}
