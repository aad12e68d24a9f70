//! Pre-promotion analysis on the real monitoring chain: a revision whose model server fails
//! answers 5xx; Prometheus scrapes that from the new colour's real runtimes (through the
//! operator's own ServiceMonitor), the built-in `errorRatio` fails, and the revision never takes
//! traffic. Pre-promotion analysis measures only the traffic the new colour gets before it is
//! live, so this test sends questions to the new colour's pods (by pod IP) throughout.
//!
//! Ignored in the plain suite for the same reason as e2e_monitoring_bed (EndpointSlices refuse
//! loopback pod IPs); `make e2e-monitoring` runs it on routed pod IPs in a network namespace.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use common::model::{fixed_model_server, llm};
use common::query::{query, ready_pod};
use common::{TrafficGuard, World, merge};
use e2e::monitoring::MonitoringBed;
use e2e::wait_for;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use rag_operator::api::{AnalysisPhase, Color, Phase};
use serde_json::json;

const PIPELINE: &str = "analysed";
const TIMEOUT: Duration = Duration::from_secs(180);
const QUESTION: &str = "How does a blue-green rollout switch traffic?";

/// Asks the new colour's pods until `stop`; counts the answers that were not 200.
fn ask_green(world: &World, stop: Arc<AtomicBool>, failed: Arc<AtomicUsize>) {
    let pods: Api<Pod> = world.ns.api();
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            if let Ok(Some(addr)) = ready_pod(&pods, PIPELINE, "green").await
                && let Ok((status, _)) = query(addr, QUESTION, None).await
                && status != 200
            {
                failed.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pod IPs that EndpointSlices accept: `make e2e-monitoring` runs it"]
async fn a_revision_whose_answers_fail_is_stopped_by_pre_promotion_error_ratio() -> Result<()> {
    let world = World::monitored("analysed").await?;
    let bed = MonitoringBed::start(&world.cluster, world.ns.name()).await?;
    let (good, bad) = (
        fixed_model_server(false).await?,
        fixed_model_server(true).await?,
    );
    let mut spec = llm(good);
    merge(
        &mut spec,
        json!({
            "rollout": { "smokeQueries": null, "scaleDownDelaySeconds": 2,
                         "healthCheck": { "periodSeconds": 1, "successThreshold": 1 } },
            "monitoring": { "serviceMonitor": { "interval": "2s" } }
        }),
    );
    world.create_pipeline(PIPELINE, spec).await?;
    world.wait_healthy_on(PIPELINE, Color::Blue).await?;
    let guard = TrafficGuard::start(&world, PIPELINE);

    // r2 answers through the failing model server, under pre-promotion errorRatio.
    let mut r2 = llm(bad);
    merge(
        &mut r2,
        json!({ "rollout": { "analysis": {
            "prometheus": { "address": bed.url() },
            "metrics": [{ "name": "errors", "builtin": "errorRatio", "threshold": 0.2,
                          "initialDelaySeconds": 10, "intervalSeconds": 5, "count": 12,
                          "inconclusiveLimit": 10 }],
            "prePromotion": { "metrics": ["errors"] }
        } } }),
    );
    world.patch_spec(PIPELINE, r2).await?;
    let (stop, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    ask_green(&world, stop.clone(), failed.clone());

    let p = world
        .wait_pipeline_within(PIPELINE, "Degraded: AnalysisFailed", TIMEOUT, |p| {
            p.status.as_ref().is_some_and(|s| {
                s.phase == Some(Phase::Degraded)
                    && s.conditions.iter().any(|c| {
                        c.type_ == "Degraded" && c.status == "True" && c.reason == "AnalysisFailed"
                    })
            })
        })
        .await?;
    stop.store(true, Ordering::SeqCst);
    let status = p.status.unwrap();
    let message = &status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap()
        .message;
    assert!(
        message.contains("metric errors failed with result"),
        "{message}"
    );
    let run = status.analysis.expect("the run is in status");
    assert_eq!(run.phase, AnalysisPhase::Failed);
    assert_eq!(status.active_color, Some(Color::Blue));
    assert!(
        failed.load(Ordering::SeqCst) > 0,
        "green was asked and failed"
    );
    world.wait_event(PIPELINE, "AnalysisFailed").await?;
    wait_for(
        "green to be scaled to zero",
        Duration::from_secs(30),
        || async { Ok((world.replicas(PIPELINE, "green").await? == Some(0)).then_some(())) },
    )
    .await?;
    assert_eq!(
        guard.switches(),
        ["blue"],
        "the failing revision never took traffic"
    );
    assert_eq!(guard.violations(), Vec::<String>::new());
    eprintln!("pre-promotion analysis stopped r2: {message}");
    Ok(())
}
