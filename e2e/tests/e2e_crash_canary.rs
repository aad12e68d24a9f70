//! The operator killed at the writes of a canary's steps (its test-only kill points), then
//! started again: each canary converges to the new colour with one split and one cutover, and an
//! abort killed after its status write still puts every pod and all traffic back. The traffic
//! guard checks throughout that each colour the Service selects has a ready pod and that the new
//! colour never has more of the ready pods than its recorded weight plans.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::crash::{start_crashing_at, wait_crashed};
use common::{TrafficGuard, World, fast_rollout, merge, new_revision};
use rag_operator::api::Color;
use rag_operator::crash::at;
use rag_operator::pipeline::annotation;
use serde_json::{Value, json};

const PROMPT: Duration = Duration::from_secs(30);

/// Four pods in steps of 25 %, with `last` after them.
fn canary(last: Value) -> Value {
    let mut spec = fast_rollout();
    let steps = json!([{ "setWeight": 25 }, { "setWeight": 50 }, last]);
    merge(
        &mut spec,
        json!({
            "runtime": { "replicas": 4 },
            "rollout": { "strategy": "canary", "canary": { "steps": steps } }
        }),
    );
    spec
}

#[tokio::test]
async fn a_canary_killed_at_any_write_of_its_steps_converges_without_passing_its_weight()
-> Result<()> {
    let mut world = World::new("crash-canary").await?;
    let guard = TrafficGuard::start(&world, "docs");
    world
        .create_pipeline("docs", canary(json!({ "setWeight": 75 })))
        .await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    let mut switches = vec!["blue"];
    // The k-th Deployment write of a canary: 1 the new colour's first pod, 2 the old colour to
    // 3, 3 the new colour to 2, 4 the old to 2, 5 the new to 3, 7 the new to 4; the k-th
    // traffic move: 1 the split, 2 the promotion.
    let points = [
        format!("{}:2", at::DEPLOYMENTS_APPLIED),
        format!("{}:3", at::DEPLOYMENTS_APPLIED),
        format!("{}:4", at::DEPLOYMENTS_APPLIED),
        format!("{}:7", at::DEPLOYMENTS_APPLIED),
        format!("{}:1", at::TRAFFIC_MOVED),
        format!("{}:2", at::TRAFFIC_MOVED),
    ];
    let mut to = Color::Blue;
    for (n, point) in points.iter().enumerate() {
        start_crashing_at(&mut world, point)?;
        world
            .patch_spec("docs", new_revision(&format!("canary-{n}")))
            .await?;
        wait_crashed(&mut world, point).await?;
        world.restart_operator()?;
        to = to.other();
        world.wait_healthy_on("docs", to).await?;
        switches.extend(["both", to.as_str()]);
        guard.wait_switches(&switches, PROMPT).await?;
    }

    // An abort at 50 %, killed right after its status write: the next operator completes it.
    world
        .patch_spec("docs", canary(json!({ "pause": {} })))
        .await?;
    world.patch_spec("docs", new_revision("abort")).await?;
    world.wait_canary_paused("docs", 2, 50).await?;
    switches.push("both");
    guard.wait_switches(&switches, PROMPT).await?;
    start_crashing_at(&mut world, at::FAILURE_RECORDED)?;
    world.request("docs", annotation::ABORT, "ab-1").await?;
    wait_crashed(&mut world, at::FAILURE_RECORDED).await?;
    world.restart_operator()?;
    world.wait_degraded("docs", "Aborted").await?;
    switches.push(to.as_str());
    guard.wait_switches(&switches, PROMPT).await?;
    let stable = to.to_string();
    e2e::wait_for("every pod back on the stable colour", PROMPT, || async {
        let back = world.replicas("docs", &stable).await? == Some(4)
            && world.replicas("docs", to.other().as_str()).await? == Some(0);
        Ok(back.then_some(()))
    })
    .await?;
    assert_eq!(guard.violations(), Vec::<String>::new());
    Ok(())
}
