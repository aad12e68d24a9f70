//! A pipeline asking for monitoring in a cluster without the Prometheus Operator's CRDs runs as
//! usual: Healthy, with `MonitoringReady=False` (reason `CRDsNotInstalled`) and one Event; the
//! monitoring objects follow as soon as the CRDs appear.
//!
//! The CRDs are cluster-wide: this test removes them if an earlier test binary installed them.
//! Test binaries run one after another, and no other test in this binary needs them.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::World;
use e2e::monitoring::{MonitoringBinaries, install_monitoring_crds, monitoring_resource};
use e2e::wait_for;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use rag_operator::api::{Color, RagPipeline};
use serde_json::json;

const PIPELINE: &str = "unwatched";

fn monitoring(p: &RagPipeline) -> Option<(String, String)> {
    let c = p
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "MonitoringReady")?;
    Some((c.status.clone(), c.reason.clone()))
}

async fn remove_monitoring_crds(world: &World) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(world.ns.client());
    let ours: Vec<String> = crds
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n.ends_with(".monitoring.coreos.com"))
        .collect();
    for name in &ours {
        crds.delete(name, &DeleteParams::default()).await?;
    }
    wait_for(
        "the monitoring CRDs gone",
        Duration::from_secs(60),
        || async {
            let left = crds.list(&ListParams::default()).await?.items;
            let any = left.iter().any(|c| {
                c.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.ends_with(".monitoring.coreos.com"))
            });
            Ok((!any).then_some(()))
        },
    )
    .await
}

#[tokio::test]
async fn without_the_crds_the_pipeline_is_healthy_and_says_why_monitoring_is_not() -> Result<()> {
    let world = World::with_options(
        "nomon",
        Default::default(),
        &["--monitoring-recheck-seconds", "1"],
    )
    .await?;
    remove_monitoring_crds(&world).await?;
    let mut spec = common::fast_rollout();
    common::merge(
        &mut spec,
        json!({ "monitoring": { "serviceMonitor": {}, "alerts": {} } }),
    );
    world.create_pipeline(PIPELINE, spec).await?;
    world.wait_healthy_on(PIPELINE, Color::Blue).await?;
    let p = world
        .wait_pipeline(PIPELINE, "MonitoringReady=False CRDsNotInstalled", |p| {
            monitoring(p) == Some(("False".into(), "CRDsNotInstalled".into()))
        })
        .await?;
    let message = &p
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "MonitoringReady")
        .unwrap()
        .message;
    assert!(message.contains("monitoring.coreos.com"), "{message}");
    let events = world.wait_event(PIPELINE, "CRDsNotInstalled").await?;
    let told = events
        .iter()
        .filter(|(r, _)| r == "CRDsNotInstalled")
        .count();
    assert_eq!(told, 1, "one Event: {events:?}");

    // The CRDs arrive: the operator notices and applies what the spec asks for.
    let bins =
        MonitoringBinaries::locate().context("the monitoring test bed (make monitoring-bins)")?;
    install_monitoring_crds(&world.cluster, &bins.crds).await?;
    world
        .wait_pipeline(PIPELINE, "MonitoringReady=True", |p| {
            monitoring(p) == Some(("True".into(), "Applied".into()))
        })
        .await?;
    let client = world.ns.client();
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), world.ns.name(), &monitoring_resource(kind));
        api.get(PIPELINE)
            .await
            .with_context(|| format!("{kind} {PIPELINE}"))?;
    }
    // Dropping the spec sweeps them.
    world
        .patch_spec(PIPELINE, json!({ "monitoring": null }))
        .await?;
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), world.ns.name(), &monitoring_resource(kind));
        wait_for(
            &format!("{kind} swept"),
            Duration::from_secs(30),
            || async { Ok(api.get_opt(PIPELINE).await?.is_none().then_some(())) },
        )
        .await?;
    }
    Ok(())
}
