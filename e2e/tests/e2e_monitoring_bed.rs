//! The monitoring test bed on the real chain, independent of the operator's own monitoring
//! objects: a hand-written ServiceMonitor and PrometheusRule for a pipeline served by real
//! rag-runtime processes; prometheus-operator turns them into Prometheus configuration, and a
//! real Prometheus scrapes the runtimes on their pod IPs and evaluates the rules.
//!
//! Ignored in the plain suite: Prometheus finds ServiceMonitor targets in EndpointSlices, which
//! the API server refuses for the loopback pod IPs `make e2e` uses. `make e2e-monitoring` runs it
//! on a cluster with routed pod IPs, inside a network namespace of its own (see e2e/README.md).

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Result;
use common::World;
use e2e::monitoring::{MonitoringBed, apply_monitoring_object};
use e2e::spec_runtime;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use rag_operator::api::Color;
use serde_json::json;

const PIPELINE: &str = "handbook";
const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pod IPs that EndpointSlices accept: `make e2e-monitoring` runs it"]
async fn prometheus_scrapes_real_runtimes_and_evaluates_rules_from_hand_written_objects()
-> Result<()> {
    let world = World::with_pods("monbed", spec_runtime(None)).await?;
    world.require_routed_pod_ips()?;
    let ns = world.ns.name().to_string();
    world.create_pipeline(PIPELINE, json!({})).await?;
    world.wait_healthy_on(PIPELINE, Color::Blue).await?;
    let pods = blue_pod_ips(&world).await?;
    assert_eq!(pods.len(), 2, "the sample runs two replicas: {pods:?}");

    let mut bed = MonitoringBed::start(&world.cluster, &ns).await?;
    let loaded_at_start = bed.configs_loaded();
    let client = world.cluster.client().await?;
    apply_monitoring_object(&client, &ns, service_monitor()).await?;
    apply_monitoring_object(&client, &ns, prometheus_rule()).await?;

    targets_are_the_blue_pods(&bed, &pods).await?;
    assert!(
        bed.configs_loaded() > loaded_at_start,
        "the ServiceMonitor reached Prometheus by a reload"
    );
    runtime_metrics_are_queryable(&bed, &pods).await?;
    rules_are_evaluated(&bed).await?;
    bed.ensure_running()?;
    Ok(())
}

/// The targets are the active Service's endpoints: the blue pods at their IPs, scraped and up,
/// with the labels the ServiceMonitor's relabelling gives them.
async fn targets_are_the_blue_pods(bed: &MonitoringBed, pods: &BTreeSet<IpAddr>) -> Result<()> {
    let ns = bed.namespace();
    let pool = format!("serviceMonitor/{ns}/{PIPELINE}-bed/0");
    let targets = bed
        .wait_targets("both blue pods scraped and up", TIMEOUT, |targets| {
            let ours: Vec<_> = targets.iter().filter(|t| t.scrape_pool == pool).collect();
            let ips: BTreeSet<IpAddr> = ours.iter().filter_map(|t| t.ip()).collect();
            ours.len() == pods.len() && ips == *pods && ours.iter().all(|t| t.is_up())
        })
        .await?;
    for t in targets.iter().filter(|t| t.scrape_pool == pool) {
        let label = |name: &str| t.labels.get(name).map(String::as_str);
        assert_eq!(label("color"), Some("blue"), "{t:?}");
        assert_eq!(label("namespace"), Some(ns), "{t:?}");
        assert_eq!(label("service"), Some(PIPELINE), "{t:?}");
        assert!(t.scrape_url.ends_with(":8080/metrics"), "{t:?}");
    }
    Ok(())
}

/// The runtime's own `rag_` metrics: after one query to each pod, Prometheus has its request
/// counter and latency histogram from each pod IP.
async fn runtime_metrics_are_queryable(bed: &MonitoringBed, pods: &BTreeSet<IpAddr>) -> Result<()> {
    let ns = bed.namespace();
    for ip in pods {
        let addr = SocketAddr::new(*ip, 8080);
        let (code, _) = common::query::query(addr, "How do rollouts work?", None).await?;
        assert_eq!(code, 200);
    }
    let selector = format!(r#"namespace="{ns}", route="/v1/query""#);
    for promql in [
        format!(r#"sum by (instance) (rag_http_requests_total{{{selector}, code="200"}})"#),
        format!("sum by (instance) (rag_http_request_duration_seconds_count{{{selector}}})"),
    ] {
        let result = bed
            .wait_query(
                &format!("{promql} > 0 and on() count({promql}) == {}", pods.len()),
                TIMEOUT,
            )
            .await?;
        let instances: BTreeSet<String> = result
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["metric"]["instance"].as_str().map(String::from))
            .collect();
        let expected: BTreeSet<String> = pods.iter().map(|ip| format!("{ip}:8080")).collect();
        assert_eq!(instances, expected, "{promql}: {result}");
    }
    Ok(())
}

/// The recording rule has the number of scraped runtimes; the always-firing alert fires.
async fn rules_are_evaluated(bed: &MonitoringBed) -> Result<()> {
    let ns = bed.namespace();
    let rule = bed
        .wait_rule("namespace:rag_http_requests_in_flight:count", TIMEOUT)
        .await?;
    assert_eq!(rule.kind, "recording");
    let recorded = bed
        .wait_query(
            &format!(r#"namespace:rag_http_requests_in_flight:count{{namespace="{ns}"}} == 2"#),
            TIMEOUT,
        )
        .await?;
    assert_eq!(recorded[0]["value"][1], "2", "{recorded}");
    let alert = bed.wait_alert_firing("RagBedAlwaysFiring", TIMEOUT).await?;
    assert_eq!(
        alert.labels.get("severity").map(String::as_str),
        Some("none")
    );
    assert!(alert.annotations["summary"].contains(ns), "{alert:?}");
    let state = bed
        .rules()
        .await?
        .into_iter()
        .flat_map(|g| g.rules)
        .find(|r| r.name == "RagBedAlwaysFiring")
        .and_then(|r| r.state);
    assert_eq!(state.as_deref(), Some("firing"));
    Ok(())
}

async fn blue_pod_ips(world: &World) -> Result<BTreeSet<IpAddr>> {
    let selector = format!("ragops.io/pipeline={PIPELINE},ragops.io/color=blue");
    let pods = world
        .ns
        .api::<Pod>()
        .list(&ListParams::default().labels(&selector))
        .await?;
    Ok(pods
        .items
        .iter()
        .filter(|p| common::is_ready(p))
        .filter_map(|p| p.status.as_ref()?.pod_ip.as_ref()?.parse().ok())
        .collect())
}

/// Both Services of the pipeline carry `ragops.io/pipeline`; the relabelling keeps the active
/// one (`<name>`, not `<name>-preview`), so each pod is one target.
fn service_monitor() -> serde_json::Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": { "name": format!("{PIPELINE}-bed") },
        "spec": {
            "selector": { "matchLabels": { "ragops.io/pipeline": PIPELINE } },
            "endpoints": [{
                "port": "http",
                "path": "/metrics",
                "interval": "2s",
                "relabelings": [
                    { "sourceLabels": ["__meta_kubernetes_service_name"], "regex": PIPELINE, "action": "keep" },
                    { "sourceLabels": ["__meta_kubernetes_pod_label_ragops_io_color"], "targetLabel": "color" }
                ]
            }]
        }
    })
}

fn prometheus_rule() -> serde_json::Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": { "name": format!("{PIPELINE}-bed") },
        "spec": { "groups": [{
            "name": "bed",
            "interval": "2s",
            "rules": [
                { "record": "namespace:rag_http_requests_in_flight:count",
                  "expr": "count by (namespace) (rag_http_requests_in_flight)" },
                { "alert": "RagBedAlwaysFiring",
                  "expr": "vector(1) > 0",
                  "labels": { "severity": "none" },
                  "annotations": { "summary": "always firing in {{ $externalLabels.prometheus }}" } }
            ]
        }]}
    })
}
