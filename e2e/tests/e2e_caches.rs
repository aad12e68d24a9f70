//! The operator reads from its watch caches and is woken by them: a steady pipeline costs no API
//! reads or writes even when it is resynced, and a child changed or deleted by hand is put back
//! within seconds (a watch event, not the periodic resync) with a `DriftCorrected` Event.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{World, fast_rollout, free_loopback_addr, reconciliations};
use e2e::{AuditEvent, AuditLog, OPERATOR_USER, wait_for};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use rag_operator::api::Color;
use serde_json::json;

/// Far less than the default resync (300 s): what happens this fast came from a watch event.
const RESTORE_DEADLINE: Duration = Duration::from_secs(15);

/// A Healthy pipeline `docs` on blue whose rollout has finished writing (its Promoted Event is
/// the last write of the first deploy). Its quantities are written the way people write them,
/// not the way the API server stores them (`0.5` becomes `500m`, `1024Mi` becomes `1Gi`): that
/// must not look like a change on every look.
async fn healthy(world: &World) -> Result<()> {
    let mut spec = fast_rollout();
    common::merge(
        &mut spec,
        serde_json::json!({ "runtime": {
            "resources": { "requests": { "cpu": "0.5", "memory": "1024Mi" } },
            "dataSizeLimit": "2048Mi"
        } }),
    );
    world.create_pipeline("docs", spec).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    world.wait_event("docs", "Promoted").await?;
    Ok(())
}

fn describe(events: &[AuditEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {} {}/{} {} ({})",
                e.received,
                e.verb,
                e.resource.as_deref().unwrap_or("-"),
                e.name.as_deref().unwrap_or("-"),
                e.uri,
                e.code.unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_steady_pipeline_is_resynced_without_reads_or_writes() -> Result<()> {
    let metrics = free_loopback_addr()?;
    let metrics_arg = metrics.to_string();
    let world = World::with_operator_args(
        "steady",
        &["--resync-seconds", "5", "--metrics-addr", &metrics_arg],
    )
    .await?;
    healthy(&world).await?;
    let audit = AuditLog::new(&world.cluster)?;
    let client = world.cluster.client().await?;

    let from = audit.sync(&client).await?;
    let before = reconciliations(metrics, "ok").await?;
    // The observation window itself, not a synchronisation: nothing changes for 20 s, which
    // holds at least three resyncs of 5 s (plus up to 10 % offset).
    tokio::time::sleep(Duration::from_secs(20)).await;
    let after = reconciliations(metrics, "ok").await?;
    let to = audit.sync(&client).await?;

    eprintln!("successful reconciliations in the window: {before} -> {after}");
    // The operator was alive and reconciling all along: the resyncs ran.
    assert!(
        after >= before + 2,
        "expected at least 2 resyncs in 20 s with --resync-seconds 5: {before} -> {after} \
         successful reconciliations"
    );
    let ns = world.ns.name();
    // The operator's user also belongs to the operators of tests running beside this one: its
    // requests in other namespaces are theirs. Cluster-scoped ones (no namespace) cannot be told
    // apart, and none is expected from an operator watching one namespace, so they count here.
    let ours = |e: &AuditEvent| e.namespace.as_deref().is_none_or(|n| n == ns);
    let writes: Vec<_> = audit
        .writes_by(OPERATOR_USER, from..to)?
        .into_iter()
        .filter(ours)
        .collect();
    let reads: Vec<_> = audit
        .reads_by(OPERATOR_USER, from..to)?
        .into_iter()
        .filter(ours)
        .collect();
    let (namespaced, cluster_scoped): (Vec<_>, Vec<_>) =
        reads.iter().cloned().partition(|e| e.namespace.is_some());
    assert!(
        writes.is_empty() && reads.is_empty(),
        "a steady pipeline, resynced {} times, cost {} writes, {} reads in {ns} and {} \
         cluster-scoped reads:\nwrites: {:#?}\nreads in {ns}: {:#?}\ncluster-scoped reads: {:#?}",
        after - before,
        writes.len(),
        namespaced.len(),
        cluster_scoped.len(),
        describe(&writes),
        describe(&namespaced),
        describe(&cluster_scoped),
    );
    Ok(())
}

/// Deletes `K` `name`, then waits until a new one (another uid) exists; returns how long it took.
async fn delete_and_wait_recreated<K>(api: &Api<K>, name: &str) -> Result<Duration>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    // The Promoted Event is published before the children are applied (the status and its
    // Events come first, see README "What the operator writes, in which order").
    let old = wait_for(&format!("{name} created"), RESTORE_DEADLINE, || async {
        Ok(api.get_opt(name).await?.map(|o| o.uid()))
    })
    .await?;
    let started = std::time::Instant::now();
    api.delete(name, &DeleteParams::background()).await?;
    wait_for(&format!("{name} recreated"), RESTORE_DEADLINE, || async {
        let now = api.get_opt(name).await?;
        Ok(now.filter(|o| o.uid() != old).map(|_| ()))
    })
    .await?;
    Ok(started.elapsed())
}

#[tokio::test]
async fn a_child_deleted_by_hand_is_recreated_within_seconds() -> Result<()> {
    // The default resync (300 s): only a watch event can bring the children back in time.
    let world = World::new("recreate").await?;
    healthy(&world).await?;

    let pdbs: Api<PodDisruptionBudget> = world.ns.api();
    let took = delete_and_wait_recreated(&pdbs, "docs").await?;
    eprintln!("PodDisruptionBudget docs recreated after {took:?}");
    world
        .wait_event_note_within(
            "docs",
            "DriftCorrected",
            "recreated PodDisruptionBudget docs",
            RESTORE_DEADLINE,
        )
        .await?;

    let services: Api<Service> = world.ns.api();
    let took = delete_and_wait_recreated(&services, "docs-preview").await?;
    eprintln!("Service docs-preview recreated after {took:?}");
    world
        .wait_event_note_within(
            "docs",
            "DriftCorrected",
            "recreated Service docs-preview",
            RESTORE_DEADLINE,
        )
        .await?;
    world.wait_service_color("docs-preview", "blue").await?;
    Ok(())
}

#[tokio::test]
async fn a_selector_changed_by_hand_is_restored() -> Result<()> {
    let world = World::new("selector").await?;
    healthy(&world).await?;

    let services: Api<Service> = world.ns.api();
    let patch = json!({ "spec": { "selector": { "ragops.io/color": "green" } } });
    let patched = services
        .patch("docs", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let selector = patched.spec.and_then(|s| s.selector).unwrap_or_default();
    assert_eq!(
        selector.get("ragops.io/color").map(String::as_str),
        Some("green")
    );

    wait_for("Service docs back on blue", RESTORE_DEADLINE, || async {
        let color = world.service_color("docs").await?;
        Ok((color.as_deref() == Some("blue")).then_some(()))
    })
    .await?;
    world
        .wait_event_note_within(
            "docs",
            "DriftCorrected",
            "Service docs (.spec.selector.ragops.io/color)",
            RESTORE_DEADLINE,
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_field_the_operator_no_longer_sets_is_removed() -> Result<()> {
    let world = World::new("unset").await?;
    healthy(&world).await?;

    // What an older operator that also set a label `stale` leaves behind: the operator's field
    // manager owns the label. The apply carries everything the operator sets (an apply removes
    // whatever its manager owned and no longer sends), plus the label.
    let services: Api<Service> = world.ns.api();
    let live = services.get("docs-preview").await?;
    let mut labels = live.labels().clone();
    labels.insert("stale".into(), "1".into());
    let spec = live.spec.clone().context("Service without a spec")?;
    let ports: Vec<_> = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .map(|p| json!({ "name": p.name, "port": p.port, "targetPort": p.target_port, "protocol": p.protocol }))
        .collect();
    let old = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "docs-preview",
            "labels": labels,
            "ownerReferences": live.owner_references(),
        },
        "spec": { "selector": spec.selector, "ports": ports },
    });
    let params = PatchParams::apply(rag_operator::apply::FIELD_MANAGER).force();
    let applied = services
        .patch("docs-preview", &params, &Patch::Apply(&old))
        .await?;
    assert_eq!(applied.labels().get("stale").map(String::as_str), Some("1"));
    let applied = serde_json::to_value(&applied)?;
    let owned = rag_operator::apply::owned_fields(&applied)
        .cloned()
        .unwrap_or_default();
    assert!(
        owned["f:metadata"]["f:labels"].get("f:stale").is_some(),
        "the operator's field manager owns the label: {owned}"
    );

    // Anything that makes the operator look again; this annotation means nothing to it.
    let poke = json!({ "metadata": { "annotations": { "e2e.ragops.io/poke": "1" } } });
    world
        .pipelines()
        .patch("docs", &PatchParams::default(), &Patch::Merge(&poke))
        .await?;

    wait_for(
        "label stale removed from Service docs-preview",
        RESTORE_DEADLINE,
        || async {
            let svc = services.get("docs-preview").await?;
            Ok((!svc.labels().contains_key("stale")).then_some(()))
        },
    )
    .await?;
    world
        .wait_event_note_within(
            "docs",
            "DriftCorrected",
            "Service docs-preview (.metadata.labels.stale (no longer set))",
            RESTORE_DEADLINE,
        )
        .await?;
    // Nothing else was lost on the way.
    let svc = services.get("docs-preview").await?;
    assert_eq!(svc.labels(), live.labels());
    world.wait_service_color("docs-preview", "blue").await?;
    Ok(())
}
