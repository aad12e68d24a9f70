//! A canary whose weight a Gateway API HTTPRoute carries, against the real control plane with the
//! HTTPRoute CRD of the `sigs.k8s.io/gateway-api` Go module (its schema and CEL rules check every
//! weight the operator writes). Nothing routes by those weights here: no Gateway data plane runs
//! in this bed; the test checks what a data plane would read. The operator sets only the weights
//! of the backendRefs to `handbook-blue` and `handbook-green`; everything else on the route stays
//! as the user wrote it, Service `handbook` keeps one colour, and the old colour keeps its pods.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{TrafficGuard, World, new_revision};
use e2e::{crd_established, spec_runtime, wait_for, wait_for_object};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use rag_operator::api::Color;
use rag_operator::pipeline::{annotation, route};
use serde_json::{Value, json};

const PIPELINE: &str = "handbook";

/// Applies the HTTPRoute CRD of the pinned Gateway API module (`make e2e` exports where).
async fn install_http_route_crd(world: &World) -> Result<()> {
    let dir = std::env::var("RAGOPS_E2E_GATEWAY_CRDS")
        .context("RAGOPS_E2E_GATEWAY_CRDS is unset: run through `make e2e`")?;
    let file = format!("{dir}/gateway.networking.k8s.io_httproutes.yaml");
    let crd: CustomResourceDefinition = serde_yaml::from_str(&std::fs::read_to_string(&file)?)?;
    let api: Api<CustomResourceDefinition> = Api::all(world.cluster.client().await?);
    let name = crd.metadata.name.clone().context("a CRD without a name")?;
    let apply = PatchParams::apply("e2e-gateway-api").force();
    api.patch(&name, &apply, &Patch::Apply(&crd)).await?;
    wait_for_object(&api, &name, Duration::from_secs(30), crd_established()).await?;
    Ok(())
}

/// The user's route: a match, a parent Gateway, the two colour Services and a third backend.
fn user_route() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": { "name": "handbook-route" },
        "spec": {
            "parentRefs": [{ "name": "public-gateway" }],
            "hostnames": ["handbook.example.com"],
            "rules": [{
                "matches": [{ "path": { "type": "PathPrefix", "value": "/v1/query" } }],
                "backendRefs": [
                    { "name": "handbook-blue", "port": 80, "weight": 1 },
                    { "name": "handbook-green", "port": 80, "weight": 0 },
                    { "name": "handbook-archive", "port": 80, "weight": 0 }
                ]
            }]
        }
    })
}

async fn route_weights(routes: &Api<DynamicObject>) -> Result<(Option<i32>, Option<i32>, Value)> {
    let r = serde_json::to_value(routes.get("handbook-route").await?)?;
    Ok((
        route::weight_of(&r, PIPELINE, Color::Blue),
        route::weight_of(&r, PIPELINE, Color::Green),
        r,
    ))
}

async fn wait_weights(routes: &Api<DynamicObject>, blue: i32, green: i32) -> Result<Value> {
    let what = format!("the route at blue {blue}, green {green}");
    wait_for(&what, common::ROLLOUT_TIMEOUT, || async {
        let (b, g, r) = route_weights(routes).await?;
        Ok((b == Some(blue) && g == Some(green)).then_some(r))
    })
    .await
}

#[tokio::test]
async fn a_canary_on_an_http_route_moves_only_the_weights_of_its_two_backends() -> Result<()> {
    let world = World::with_pods("canary-route", spec_runtime(None)).await?;
    install_http_route_crd(&world).await?;
    let routes: Api<DynamicObject> =
        Api::namespaced_with(world.ns.client(), world.ns.name(), &route::resource());
    let created: DynamicObject = serde_json::from_value(user_route())?;
    // As the API server stored it (with its defaults): what must come back unchanged.
    let before = serde_json::to_value(routes.create(&PostParams::default(), &created).await?)?;
    let guard = TrafficGuard::start(&world, PIPELINE);
    let spec = json!({
        "runtime": { "replicas": 4 },
        "rollout": {
            "strategy": "canary",
            "canary": {
                "steps": [{ "setWeight": 25 }, { "pause": {} }, { "setWeight": 50 }, { "pause": {} }],
                "trafficRouting": { "httpRoute": { "name": "handbook-route" } }
            },
            "scaleDownDelaySeconds": 3
        }
    });
    world.create_pipeline(PIPELINE, spec).await?;
    world.wait_healthy_on(PIPELINE, Color::Blue).await?;
    wait_weights(&routes, 100, 0).await?;

    world.patch_spec(PIPELINE, new_revision("r2")).await?;
    world.wait_canary_paused(PIPELINE, 1, 25).await?;
    wait_weights(&routes, 75, 25).await?;
    // The weight is on the route: Service handbook keeps blue, and blue keeps every pod.
    assert_eq!(
        world.service_color(PIPELINE).await?.as_deref(),
        Some("blue")
    );
    assert_eq!(world.replicas(PIPELINE, "blue").await?, Some(4));
    assert_eq!(world.replicas(PIPELINE, "green").await?, Some(1));

    world
        .request(PIPELINE, annotation::PROMOTE, "go-50")
        .await?;
    world.wait_canary_paused(PIPELINE, 3, 50).await?;
    wait_weights(&routes, 50, 50).await?;
    assert_eq!(world.replicas(PIPELINE, "green").await?, Some(2));

    world
        .request(PIPELINE, annotation::PROMOTE, "go-100")
        .await?;
    world.wait_healthy_on(PIPELINE, Color::Green).await?;
    let after = wait_weights(&routes, 0, 100).await?;
    // Everything else on the route is as the user wrote it.
    assert_eq!(after["spec"]["parentRefs"], before["spec"]["parentRefs"]);
    assert_eq!(after["spec"]["hostnames"], before["spec"]["hostnames"]);
    assert_eq!(
        after["spec"]["rules"][0]["backendRefs"][2],
        before["spec"]["rules"][0]["backendRefs"][2]
    );
    assert_eq!(
        after["spec"]["rules"][0]["matches"],
        before["spec"]["rules"][0]["matches"]
    );

    guard
        .wait_switches(&["blue", "green"], common::ROLLOUT_TIMEOUT)
        .await?;
    let violations = guard.violations();
    assert!(violations.is_empty(), "{violations:?}");
    Ok(())
}
