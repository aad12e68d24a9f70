//! The operator runs a whole scenario under exactly the RBAC the chart grants: a ServiceAccount
//! token of a chart installed with `watchNamespace`, not the e2e cluster-admin certificate. The
//! API server's audit log must show no forbidden request by that user, and a use of every verb
//! the chart grants (no more, no less than the code needs).

mod chart;
mod common;
mod more_kinds;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use chart::{install_with_account, kinds_and_rules, operator_elects_a_leader, template};
use common::{World, fast_rollout, merge, new_revision};
use e2e::{
    AuditLog, Cluster, PodServers, PodServersOptions, TestNamespace, spec_runtime, wait_for,
};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rag_operator::api::{Color, RagIndex};
use rag_operator::pipeline::annotation;
use serde_json::json;

/// The chart installed with `watchNamespace` = the test's namespace, and the operator process run
/// with a token of the chart's ServiceAccount: the world of the RBAC scenario.
struct Chartered {
    world: World,
    user: String,
    _ingest_pods: PodServers,
    _release_ns: TestNamespace,
}

async fn chartered() -> Result<Chartered> {
    e2e::install_crypto_provider();
    let cluster = Cluster::from_env()?;
    common::install_crds(&cluster).await?;
    let release_ns = TestNamespace::new(&cluster, "chart-rel").await?;
    let ns = TestNamespace::new(&cluster, "chart-rbac").await?;
    let watch = format!("watchNamespace={}", ns.name());
    let rel = release_ns.name();
    let account = install_with_account(&cluster, rel, &watch)?;

    let docs: ConfigMap = common::read_sample("handbook-docs.yaml")?;
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &docs)
        .await?;
    let index: RagIndex = common::read_sample("ragindex.yaml")?;
    ns.api::<RagIndex>()
        .create(&PostParams::default(), &index)
        .await?;
    let keys: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "api-keys" },
        "stringData": { "keys": "e2e-token\n" }
    }))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &keys)
        .await?;
    // Stand-ins answer for the pipeline's pods; the ingest Jobs' pods run for real.
    let runtime_pods = PodServersOptions {
        label_selector: Some("app.kubernetes.io/component=runtime".into()),
        ..PodServersOptions::default()
    };
    let pods = PodServers::start(&cluster, ns.name(), runtime_pods).await?;
    let ingest = spec_runtime(Some("app.kubernetes.io/component=ingest".into()));
    let ingest_pods = PodServers::start(&cluster, ns.name(), ingest).await?;

    let mut extra = vec!["--monitoring-recheck-seconds", "1"];
    if operator_elects_a_leader()? {
        extra.extend(["--leader-elect", "--lease-namespace", rel]);
    } else {
        eprintln!("NOTE: this operator has no --leader-elect; the Lease rules are not exercised");
    }
    let operator_args = common::operator_args(&extra);
    let argv: Vec<&str> = operator_args.iter().map(String::as_str).collect();
    let operator = e2e::start_operator_as(&cluster, &account.kubeconfig, ns.name(), &argv)?;
    let world = World {
        cluster,
        ns,
        operator: Some(operator),
        pods,
        operator_args,
    };
    Ok(Chartered {
        world,
        user: account.user,
        _ingest_pods: ingest_pods,
        _release_ns: release_ns,
    })
}

/// Deletes `name` and waits until the operator has put it back.
async fn delete_and_wait_back<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let uid = |o: &K| o.meta().uid.clone();
    let before = api.get(name).await?;
    api.delete(name, &DeleteParams::background()).await?;
    wait_for(
        &format!("{name} recreated"),
        Duration::from_secs(30),
        || async {
            Ok(api
                .get_opt(name)
                .await?
                .filter(|o| uid(o) != uid(&before))
                .map(|_| ()))
        },
    )
    .await
}

/// Children of the pipeline (its labels, it as controller) that its spec does not name: the
/// operator sweeps each kind.
async fn sweep_strays(world: &World) -> Result<()> {
    let uid = world
        .pipelines()
        .get("docs")
        .await?
        .metadata
        .uid
        .context("no uid")?;
    let meta = |name: &str| {
        json!({
            "name": name,
            "labels": { "ragops.io/pipeline": "docs", "app.kubernetes.io/managed-by": "ragops" },
            "ownerReferences": [{
                "apiVersion": "ragops.io/v1alpha1", "kind": "RagPipeline", "name": "docs",
                "uid": uid, "controller": true
            }]
        })
    };
    let selector = json!({ "matchLabels": { "app": "stray" } });
    let strays = [
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("docs-stray") }),
        json!({ "apiVersion": "v1", "kind": "Service", "metadata": meta("docs-stray"),
                "spec": { "ports": [{ "port": 80 }] } }),
        json!({ "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("docs-stray"),
                "spec": { "selector": selector, "maxUnavailable": 1 } }),
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("docs-stray"),
                "spec": { "replicas": 0, "selector": selector, "template": {
                    "metadata": { "labels": { "app": "stray" } },
                    "spec": { "containers": [{ "name": "c", "image": "stray" }] } } } }),
    ];
    let client = world.ns.client();
    for stray in strays {
        let obj: kube::api::DynamicObject = serde_json::from_value(stray)?;
        let tm = obj.types.clone().context("no type")?;
        let (ar, _) = kube::discovery::pinned_kind(&client, &tm.try_into()?).await?;
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(client.clone(), world.ns.name(), &ar);
        api.create(&PostParams::default(), &obj).await?;
        wait_for(
            &format!("{} docs-stray swept", ar.kind),
            Duration::from_secs(30),
            || async { Ok(api.get_opt("docs-stray").await?.is_none().then_some(())) },
        )
        .await?;
    }
    Ok(())
}

/// Everything the operator does, done under the chart's RBAC.
async fn scenario(world: &World) -> Result<()> {
    let mut spec = fast_rollout();
    merge(
        &mut spec,
        json!({
            "autoscaling": { "minReplicas": 2, "maxReplicas": 4, "targetCPUUtilization": 70 },
            "server": { "apiKeysSecretRef": { "name": "api-keys", "key": "keys" } },
        }),
    );
    world.create_pipeline("docs", spec).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    world.patch_spec("docs", new_revision("2")).await?;
    world.wait_healthy_on("docs", Color::Green).await?;
    // Drift: a deleted child and a selector changed by hand are put back.
    delete_and_wait_back(&world.ns.api::<Service>(), "docs-preview").await?;
    let services = world.ns.api::<Service>();
    let poke = json!({ "spec": { "selector": { "ragops.io/color": "blue" } } });
    services
        .patch("docs", &PatchParams::default(), &Patch::Merge(&poke))
        .await?;
    wait_for("the selector restored", Duration::from_secs(30), || async {
        Ok((world.service_color("docs").await?.as_deref() == Some("green")).then_some(()))
    })
    .await?;
    // Autoscaling dropped: the HPA is swept.
    world
        .patch_spec("docs", json!({ "autoscaling": null }))
        .await?;
    let hpas = world.ns.api::<HorizontalPodAutoscaler>();
    wait_for("the HPA swept", Duration::from_secs(30), || async {
        Ok(hpas.get_opt("docs").await?.is_none().then_some(()))
    })
    .await?;
    sweep_strays(world).await?;
    // The old colour scales down through the scale subresource, then a rollback brings it back.
    wait_for("blue scaled to zero", common::ROLLOUT_TIMEOUT, || async {
        Ok((world.replicas("docs", "blue").await? == Some(0)).then_some(()))
    })
    .await?;
    world.annotate("docs", annotation::ROLLBACK).await?;
    world
        .wait_pipeline("docs", "rolled back to blue, annotation consumed", |p| {
            let s = p.status.as_ref();
            s.and_then(|s| s.active_color) == Some(Color::Blue)
                && s.and_then(|s| s.target_color).is_none()
                && !p
                    .metadata
                    .annotations
                    .iter()
                    .flatten()
                    .any(|(k, _)| k == annotation::ROLLBACK)
        })
        .await?;
    // An abort of a rollout in flight, held by new pods that fail their probes.
    for pod in world.pods.wait_serving(2, common::ROLLOUT_TIMEOUT).await? {
        world.pods.set_pod_status(&pod.name, 200);
    }
    world.pods.set_status(503);
    let mut held = new_revision("3");
    merge(&mut held, common::hold_on_failing_probes());
    world.patch_spec("docs", held).await?;
    world
        .wait_pipeline("docs", "the new colour failing its probes", |p| {
            let s = p.status.as_ref();
            s.and_then(|s| s.rollout.as_ref())
                .is_some_and(|r| r.health_failures > 0)
        })
        .await?;
    world.annotate("docs", annotation::ABORT).await?;
    world.wait_event("docs", "Aborted").await?;
    Ok(())
}

#[tokio::test]
async fn the_operator_runs_under_the_charts_rbac_without_a_forbidden_request() -> Result<()> {
    // The user is new with each run (its namespace is), so the whole log is this run's.
    let Chartered {
        world,
        user,
        _ingest_pods,
        _release_ns,
    } = chartered().await?;
    let audit = AuditLog::new(&world.cluster)?;
    let client = world.cluster.client().await?;
    // A missing verb shows as a 403 even when it also stalls the scenario: report that first.
    let played = match scenario(&world).await {
        Ok(()) => more_kinds::index(&world).await,
        failed => failed,
    };
    let played = match played {
        Ok(()) => more_kinds::monitoring(&world).await,
        failed => failed,
    };
    let end = audit.sync(&client).await?;

    let forbidden = audit.forbidden_for(&user, ..end)?;
    let denied: Vec<String> = forbidden
        .iter()
        .map(|e| {
            format!(
                "{} {} ({})",
                e.verb,
                e.uri,
                e.resource.as_deref().unwrap_or("")
            )
        })
        .collect();
    ensure!(
        denied.is_empty(),
        "the chart's RBAC refused {user}:\n{}",
        denied.join("\n")
    );
    played?;
    // And every verb the chart grants was used: the rules are exactly what the code needs.
    let requests = audit.requests_by(&user, ..end)?;
    let used = |verb: &str, resource: &str, sub: Option<&str>| {
        requests.iter().any(|e| {
            let code = e.code.unwrap_or(0);
            // A server-side apply that creates its object is a patch answered 201 (and
            // authorized as a create as well).
            let verb_ok = e.verb == verb || (verb == "create" && e.verb == "patch" && code == 201);
            verb_ok
                && e.resource.as_deref() == Some(resource)
                && e.subresource.as_deref() == sub
                && (200..300).contains(&code)
        })
    };
    let elects = world.operator_args.iter().any(|a| a == "--leader-elect");
    let rendered = template(
        &world.cluster,
        "rel",
        &[&format!("watchNamespace={}", world.ns.name())],
    )?;
    let (_, rules) = kinds_and_rules(&rendered)?;
    let mut unused = vec![];
    for rule in &rules {
        for resource in rule["resources"].as_array().into_iter().flatten() {
            let resource = resource.as_str().unwrap_or_default();
            let (resource, sub) = match resource.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (resource, None),
            };
            for verb in rule["verbs"].as_array().into_iter().flatten() {
                let verb = verb.as_str().unwrap_or_default();
                // A watch is logged when it ends, and the operator's are still open.
                // namespaces get: only a RagIndex deletion that cannot reach its Qdrant server
                // asks whether its namespace is terminating (e2e_index_tenants.rs covers it).
                // httproutes: only a canary on an HTTPRoute reads and weighs one
                // (e2e_canary_route.rs covers it).
                let skip = verb == "watch"
                    || (resource == "leases" && !elects)
                    || (resource == "namespaces" && verb == "get")
                    || resource == "httproutes";
                if !skip && !used(verb, resource, sub) {
                    unused.push(format!(
                        "{verb} {resource}{}",
                        sub.map(|s| format!("/{s}")).unwrap_or_default()
                    ));
                }
            }
        }
    }
    ensure!(
        unused.is_empty(),
        "the chart grants what {user} never used: {unused:?}"
    );
    Ok(())
}
