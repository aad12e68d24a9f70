//! Canary rollouts against the real control plane, real runtimes on the KWOK pod IPs:
//! (d) 25 % → 50 % → 100 %, where the share of answers from the new revision follows the steps;
//! (e) a canary aborted at 50 %, everything back on the stable colour.
//!
//! The client asks through Service `handbook` as a node's proxy in round-robin mode would: each
//! question to the next ready endpoint, the ready pods the Service's selector picks (this bed's
//! pod IPs are loopback addresses, which the API server refuses in EndpointSlices, so the
//! endpoints are resolved from the selector as the EndpointSlice controller would), noting the
//! revision of the pod that answered. The traffic guard checks throughout that each colour the Service selects
//! has a ready pod and that the new colour never has more of the ready pods than its recorded
//! weight plans.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result, ensure};
use common::index::QUESTION;
use common::query::query;
use common::{TrafficGuard, World, new_revision};
use e2e::spec_runtime;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use rag_operator::api::Color;
use rag_operator::pipeline::annotation;
use serde_json::json;

const PIPELINE: &str = "handbook";
/// Questions asked at each step.
const ASKS: usize = 200;

/// Four pods, 25 % → until promoted → 50 % → until promoted, then 100 %.
fn canary() -> serde_json::Value {
    json!({
        "runtime": { "replicas": 4 },
        "rollout": {
            "strategy": "canary",
            "canary": { "steps": [
                { "setWeight": 25 }, { "pause": {} }, { "setWeight": 50 }, { "pause": {} }
            ] },
            "scaleDownDelaySeconds": 3
        }
    })
}

/// Waits until the canary pauses at `step` with `weight`, the Service selecting both colours
/// and each colour at its share of the four pods.
async fn wait_paused(world: &World, step: i32, weight: i32, green: i32) -> Result<()> {
    world.wait_canary_paused(PIPELINE, step, weight).await?;
    let counts = format!("{green} green and {} blue pods ready", 4 - green);
    e2e::wait_for(&counts, common::ROLLOUT_TIMEOUT, || async {
        let ready = ready_by_color(world).await?;
        let split = world.service_color(PIPELINE).await?.is_none();
        let want = BTreeMap::from([("blue".into(), 4 - green), ("green".into(), green)]);
        Ok((split && ready == want).then_some(()))
    })
    .await?;
    wait_serving(world).await
}

/// Waits until every ready pod of the pipeline answers `/readyz`: this bed's pods are Ready as
/// soon as they run, where a kubelet would wait for the runtime's readiness probe.
async fn wait_serving(world: &World) -> Result<()> {
    let pods: Api<Pod> = world.ns.api();
    let mine = ListParams::default().labels(&format!("ragops.io/pipeline={PIPELINE}"));
    e2e::wait_for(
        "every ready pod serving",
        common::ROLLOUT_TIMEOUT,
        || async {
            let list = pods.list(&mine).await?;
            for p in list.items.iter().filter(|p| common::is_ready(p)) {
                let Some(ip) = p.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
                    continue;
                };
                let url = format!("http://{ip}:8080/readyz");
                let up = reqwest::get(&url)
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if !up {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )
    .await
}

async fn ready_by_color(world: &World) -> Result<BTreeMap<String, i32>> {
    let pods: Api<Pod> = world.ns.api();
    let list = pods
        .list(&ListParams::default().labels(&format!("ragops.io/pipeline={PIPELINE}")))
        .await?;
    let mut out = BTreeMap::new();
    for p in list.items.iter().filter(|p| common::is_ready(p)) {
        let color = p
            .labels()
            .get("ragops.io/color")
            .cloned()
            .unwrap_or_default();
        *out.entry(color).or_default() += 1;
    }
    Ok(out)
}

/// `n` questions through Service `handbook`, round-robin over its ready endpoints (the ready pods
/// its selector picks, read fresh for each question); the share of answers from `revision`. Any
/// answer but a 200 fails the test.
async fn share_of(world: &World, revision: &str, n: usize) -> Result<f64> {
    let services: Api<Service> = world.ns.api();
    let pods: Api<Pod> = world.ns.api();
    let mut from = 0;
    for i in 0..n {
        let selector = services
            .get(PIPELINE)
            .await?
            .spec
            .and_then(|s| s.selector)
            .context("a Service without a selector")?;
        let labels: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let list = pods
            .list(&ListParams::default().labels(&labels.join(",")))
            .await?;
        let mut ready: Vec<(IpAddr, String)> = list
            .items
            .iter()
            .filter(|p| common::is_ready(p))
            .filter_map(|p| {
                let ip = p.status.as_ref()?.pod_ip.as_ref()?.parse().ok()?;
                Some((ip, p.labels().get("ragops.io/revision")?.clone()))
            })
            .collect();
        ready.sort();
        ensure!(
            !ready.is_empty(),
            "Service {PIPELINE} has no ready endpoint"
        );
        let (ip, pod_revision) = &ready[i % ready.len()];
        let (code, _) = query(SocketAddr::new(*ip, 8080), QUESTION, None).await?;
        ensure!(code == 200, "{ip} ({pod_revision}) answered {code}");
        from += usize::from(pod_revision == revision);
    }
    Ok(from as f64 / n as f64)
}

/// Deploys the canary pipeline on blue and starts r2 on green; returns the guard, r1 and r2.
async fn start(world: &World) -> Result<(TrafficGuard, String, String)> {
    let guard = TrafficGuard::start(world, PIPELINE);
    world.create_pipeline(PIPELINE, canary()).await?;
    let p = world.wait_healthy_on(PIPELINE, Color::Blue).await?;
    let rev1 = p.status.and_then(|s| s.active_revision).unwrap_or_default();
    world.patch_spec(PIPELINE, new_revision("r2")).await?;
    world
        .wait_pipeline(PIPELINE, "r2 rolling out", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.target_revision.as_ref())
                .is_some_and(|r| *r != rev1)
        })
        .await?;
    let p = world.pipelines().get(PIPELINE).await?;
    let rev2 = p.status.and_then(|s| s.target_revision).unwrap_or_default();
    Ok((guard, rev1, rev2))
}

#[tokio::test]
async fn a_canary_takes_25_then_50_then_all_of_the_answers() -> Result<()> {
    let world = World::with_pods("canary", spec_runtime(None)).await?;
    let (guard, _, rev2) = start(&world).await?;

    wait_paused(&world, 1, 25, 1).await?;
    let at25 = share_of(&world, &rev2, ASKS).await?;
    world
        .request(PIPELINE, annotation::PROMOTE, "go-50")
        .await?;
    wait_paused(&world, 3, 50, 2).await?;
    let at50 = share_of(&world, &rev2, ASKS).await?;
    world
        .request(PIPELINE, annotation::PROMOTE, "go-100")
        .await?;
    world.wait_healthy_on(PIPELINE, Color::Green).await?;
    wait_serving(&world).await?;
    let at100 = share_of(&world, &rev2, ASKS).await?;
    eprintln!(
        "answers from the new revision: 25% step {at25:.3}, 50% step {at50:.3}, after promotion {at100:.3} ({ASKS} questions each)"
    );

    // Round-robin over 1 of 4 and 2 of 4 ready endpoints: exact.
    assert_eq!((at25, at50, at100), (0.25, 0.5, 1.0));
    guard
        .wait_switches(&["blue", "both", "green"], common::ROLLOUT_TIMEOUT)
        .await?;
    let violations = guard.violations();
    assert!(violations.is_empty(), "{violations:?}");
    Ok(())
}

#[tokio::test]
async fn a_canary_aborted_at_50_percent_puts_every_answer_and_pod_back_on_blue() -> Result<()> {
    let world = World::with_pods("canary-abort", spec_runtime(None)).await?;
    let (guard, rev1, _) = start(&world).await?;

    wait_paused(&world, 1, 25, 1).await?;
    world
        .request(PIPELINE, annotation::PROMOTE, "go-50")
        .await?;
    wait_paused(&world, 3, 50, 2).await?;
    world.request(PIPELINE, annotation::ABORT, "stop").await?;
    let message = world.wait_degraded(PIPELINE, "Aborted").await?;
    assert!(message.contains("aborted by ragops.io/abort"), "{message}");
    world.wait_service_color(PIPELINE, "blue").await?;
    e2e::wait_for(
        "4 blue pods ready, none green",
        common::ROLLOUT_TIMEOUT,
        || async {
            let want = BTreeMap::from([("blue".to_string(), 4)]);
            Ok((ready_by_color(&world).await? == want).then_some(()))
        },
    )
    .await?;
    assert_eq!(world.replicas(PIPELINE, "green").await?, Some(0));
    wait_serving(&world).await?;
    assert_eq!(share_of(&world, &rev1, ASKS / 2).await?, 1.0);

    guard
        .wait_switches(&["blue", "both", "blue"], common::ROLLOUT_TIMEOUT)
        .await?;
    let violations = guard.violations();
    assert!(violations.is_empty(), "{violations:?}");
    Ok(())
}
