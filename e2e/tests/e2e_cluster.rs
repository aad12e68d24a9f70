//! Tier 3: the loopback control plane itself — API server, fake nodes, controllers, KWOK pods
//! with pod IPs that a real HTTP server on this host answers on, and the audit log.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use e2e::{
    AuditLog, Cluster, DEFAULT_TIMEOUT, OPERATOR_USER, PodServers, PodServersOptions,
    TestNamespace, deployment_available, wait_for, wait_for_object,
};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_serves_the_pinned_version_and_fake_nodes_are_ready() -> Result<()> {
    let cluster = Cluster::from_env()?;
    let client = cluster.client().await?;
    let version = client.apiserver_version().await?;
    assert_eq!(
        version.git_version, "v1.36.3",
        "the API server reports the pinned version"
    );

    let nodes: Api<Node> = Api::all(client);
    let ready = wait_for("a Ready kwok node", DEFAULT_TIMEOUT, || async {
        let list = nodes
            .list(&ListParams::default().labels("type=kwok"))
            .await?;
        Ok(list.items.into_iter().find(|n| {
            has_condition(
                n.status.as_ref().and_then(|s| s.conditions.as_ref()),
                "Ready",
            )
        }))
    })
    .await?;
    let annotations = ready.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("kwok.x-k8s.io/node").map(String::as_str),
        Some("fake")
    );
    let spec = ready.spec.context("node spec")?;
    assert!(
        spec.taints.unwrap_or_default().is_empty(),
        "a Ready fake node has no taints"
    );
    assert!(spec.pod_cidr.is_some(), "fake nodes carry a pod CIDR");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_becomes_available_and_its_pods_answer_http_on_their_ips() -> Result<()> {
    let cluster = Cluster::from_env()?;
    let ns = TestNamespace::new(&cluster, "deploy").await?;
    let servers = PodServers::start(&cluster, ns.name(), PodServersOptions::default()).await?;

    let deployments: Api<Deployment> = ns.api();
    deployments
        .create(&PostParams::default(), &web_deployment(2)?)
        .await?;
    ns.api::<Service>()
        .create(&PostParams::default(), &web_service()?)
        .await?;
    wait_for_object(
        &deployments,
        "web",
        DEFAULT_TIMEOUT,
        deployment_available(2),
    )
    .await?;

    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels("app=web"))
        .await?;
    let ips: BTreeSet<IpAddr> = pods
        .items
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.as_ref()?.parse().ok())
        .collect();
    assert_eq!(ips.len(), 2, "two pods with distinct IPs: {ips:?}");
    for ip in &ips {
        assert!(
            cluster.pod_cidrs.iter().any(|c| in_cidr(*ip, c)),
            "{ip} is inside a fake node's pod CIDR {:?}",
            cluster.pod_cidrs
        );
    }

    // A real HTTP server on each pod IP, and an HTTP client reaching it.
    let served = servers.wait_serving(2, DEFAULT_TIMEOUT).await?;
    let served_ips: BTreeSet<IpAddr> = served.iter().map(|s| s.ip).collect();
    assert_eq!(served_ips, ips);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    for pod in &served {
        let resp = http
            .get(format!("http://{}/readyz", pod.addr))
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 200, "{} answers /readyz", pod.name);
    }
    servers.set_pod_status(&served[0].name, 503);
    let resp = http
        .get(format!("http://{}/healthz", served[0].addr))
        .send()
        .await?;
    assert_eq!(
        resp.status().as_u16(),
        503,
        "the test controls each pod's health"
    );
    assert_eq!(servers.requests(), 3);

    // EndpointSlices accept the pod IPs (they refuse loopback ones; see README).
    if !cluster.pod_cidrs.iter().all(|c| c.starts_with("127.")) {
        let slices: Api<EndpointSlice> = ns.api();
        wait_for(
            "EndpointSlice of Service web with both pod IPs ready",
            DEFAULT_TIMEOUT,
            || async {
                let list = slices
                    .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                    .await?;
                let ready: BTreeSet<IpAddr> = list
                    .items
                    .iter()
                    .flat_map(|s| s.endpoints.iter().flatten())
                    .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                    .flat_map(|e| e.addresses.iter().filter_map(|a| a.parse().ok()))
                    .collect();
                Ok((ready == ips).then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_counts_writes_by_user() -> Result<()> {
    let cluster = Cluster::from_env()?;
    let audit = AuditLog::new(&cluster)?;
    let ns = TestNamespace::new(&cluster, "audit").await?;
    let operator = cluster.operator_client().await?;
    let configmaps: Api<ConfigMap> = Api::namespaced(operator, ns.name());

    let start = Timestamp::now();
    for i in 0..3 {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")}}))?;
        configmaps.create(&PostParams::default(), &cm).await?;
    }
    let patch = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}});
    configmaps
        .patch(
            "cm-0",
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&patch),
        )
        .await?;
    configmaps.get("cm-1").await?; // a read: not counted
    audit.sync(&ns.client()).await?;

    let writes = audit.writes_by(OPERATOR_USER, start..)?;
    let verbs: Vec<&str> = writes.iter().map(|e| e.verb.as_str()).collect();
    assert_eq!(
        verbs,
        ["create", "create", "create", "patch"],
        "{writes:#?}"
    );
    assert!(
        writes
            .iter()
            .all(|e| e.namespace.as_deref() == Some(ns.name()))
    );
    // Other users' writes are told apart: the admin's audit marker is not the operator's.
    let admin = audit.writes_by("ragops-e2e-admin", start..)?;
    assert!(
        admin.iter().any(|e| e.verb == "create"
            && e.name
                .as_deref()
                .is_some_and(|n| n.starts_with("e2e-audit-marker"))),
        "{admin:#?}"
    );
    Ok(())
}

fn web_deployment(replicas: i32) -> Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "registry.invalid/web:1",
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}},
                }]},
            },
        },
    }))?)
}

fn web_service() -> Result<Service> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }))?)
}

fn has_condition(
    conditions: Option<&Vec<k8s_openapi::api::core::v1::NodeCondition>>,
    type_: &str,
) -> bool {
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (IpAddr::V4(ip), Some((net, bits))) = (ip, cidr.split_once('/')) else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<std::net::Ipv4Addr>(), bits.parse::<u32>()) else {
        return false;
    };
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}
