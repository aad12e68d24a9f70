//! Children follow the spec both ways: what the spec adds appears, what it drops is swept (found
//! by label and owner), and nothing the pipeline does not own is touched.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{World, fast_rollout, merge};
use e2e::wait_for;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use rag_operator::api::Color;
use serde_json::json;

#[tokio::test]
async fn a_child_the_spec_no_longer_asks_for_is_swept() -> Result<()> {
    let world = World::new("sweep").await?;
    let mut spec = fast_rollout();
    merge(
        &mut spec,
        json!({ "autoscaling": { "minReplicas": 2, "maxReplicas": 4, "targetCPUUtilization": 70 } }),
    );
    world.create_pipeline("docs", spec).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    let hpas = world.ns.api::<HorizontalPodAutoscaler>();
    // The status comes before the children's writes: the HPA follows within the reconciliation.
    wait_for("the HPA created", Duration::from_secs(30), || async {
        Ok(hpas.get_opt("docs").await?.map(|_| ()))
    })
    .await?;

    // A ConfigMap with the pipeline's label that the pipeline does not own must survive.
    let bystander: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "docs-notes", "labels": { "ragops.io/pipeline": "docs", "app.kubernetes.io/managed-by": "ragops" } },
        "data": { "a": "b" }
    }))?;
    world
        .ns
        .api::<ConfigMap>()
        .create(&PostParams::default(), &bystander)
        .await?;

    world
        .patch_spec("docs", json!({ "autoscaling": null }))
        .await?;
    wait_for("the HPA swept", Duration::from_secs(30), || async {
        Ok(hpas.get_opt("docs").await?.is_none().then_some(()))
    })
    .await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    assert!(
        world
            .ns
            .api::<ConfigMap>()
            .get_opt("docs-notes")
            .await?
            .is_some(),
        "an object the pipeline does not own is never swept"
    );
    Ok(())
}
