//! The chart told to serve two namespaces (`watchNamespaces`): a Role in each and nothing
//! cluster-wide, and the operator, run with a token of the chart's ServiceAccount, serves both
//! namespaces under those Roles alone: no request outside them (no cluster-wide list of Secrets
//! or ConfigMaps), none refused, and a third namespace left untouched.

mod chart;
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, ensure};
use chart::{install_with_account, kinds_and_rules, run, template};
use e2e::{AuditLog, Cluster, TestNamespace, wait_for};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use rag_operator::api::RagIndex;
use serde_json::Value;

/// The sample documents and the sample (embedded) RagIndex in `ns`.
async fn apply_samples(ns: &TestNamespace) -> Result<()> {
    let docs: ConfigMap = common::read_sample("handbook-docs.yaml")?;
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &docs)
        .await?;
    let index: RagIndex = common::read_sample("ragindex.yaml")?;
    ns.api::<RagIndex>()
        .create(&PostParams::default(), &index)
        .await?;
    Ok(())
}

#[tokio::test]
async fn two_namespaces_are_served_under_their_roles_alone() -> Result<()> {
    e2e::install_crypto_provider();
    let cluster = Cluster::from_env()?;
    common::install_crds(&cluster).await?;
    let release_ns = TestNamespace::new(&cluster, "chart-nsrel").await?;
    let (a, b) = (
        TestNamespace::new(&cluster, "chart-ns-a").await?,
        TestNamespace::new(&cluster, "chart-ns-b").await?,
    );
    let other = TestNamespace::new(&cluster, "chart-ns-other").await?;
    let watch = format!("watchNamespaces={{{},{}}}", a.name(), b.name());
    let rel = release_ns.name();

    // What the chart renders: Roles in the two namespaces, no ClusterRole.
    let rendered = template(&cluster, rel, &[&watch])?;
    let (kinds, _) = kinds_and_rules(&rendered)?;
    ensure!(!kinds.iter().any(|k| k.starts_with("Cluster")), "{kinds:?}");
    let role_namespaces: BTreeSet<String> = serde_yaml::Deserializer::from_str(&rendered)
        .filter_map(|d| <Value as serde::Deserialize>::deserialize(d).ok())
        .filter(|o| o["kind"] == "Role" && o["metadata"]["namespace"] != rel)
        .filter_map(|o| o["metadata"]["namespace"].as_str().map(String::from))
        .collect();
    let served = BTreeSet::from([a.name().to_string(), b.name().to_string()]);
    ensure!(role_namespaces == served, "Roles in {role_namespaces:?}");

    let account = install_with_account(&cluster, rel, &watch)?;
    for ns in [&a, &b, &other] {
        apply_samples(ns).await?;
    }
    let audit = AuditLog::new(&cluster)?;
    let client = cluster.client().await?;
    let start = audit.sync(&client).await?;

    // The chart passes the namespaces as WATCH_NAMESPACE; the process here gets the same list.
    let namespaces = format!("{},{}", a.name(), b.name());
    let operator_args = common::operator_args(&[]);
    let argv: Vec<&str> = operator_args.iter().map(String::as_str).collect();
    let _operator = e2e::start_operator_as(&cluster, &account.kubeconfig, &namespaces, &argv)?;

    let docs: ConfigMap = common::read_sample("handbook-docs.yaml")?;
    let documents = docs.data.as_ref().map_or(0, |d| d.len()) as i64;
    for ns in [&a, &b] {
        let indexes = ns.api::<RagIndex>();
        wait_for(
            &format!("the index of {} counted and Ready", ns.name()),
            Duration::from_secs(60),
            || async {
                let i = indexes.get("handbook").await?;
                let s = i.status.as_ref();
                let ready = s.and_then(|s| s.phase.as_deref()) == Some("Ready")
                    && s.and_then(|s| s.documents) == Some(documents);
                Ok(ready.then_some(()))
            },
        )
        .await?;
    }
    let end = audit.sync(&client).await?;

    let user = &account.user;
    let requests = audit.requests_by(user, start..end)?;
    ensure!(
        !requests.is_empty(),
        "no request by {user} in the audit log"
    );
    let forbidden: Vec<String> = requests
        .iter()
        .filter(|e| e.code == Some(403))
        .map(|e| format!("{} {}", e.verb, e.uri))
        .collect();
    ensure!(forbidden.is_empty(), "refused: {forbidden:?}");
    // Every request names one of the two namespaces (discovery aside): no cluster-wide list or
    // watch of any kind, Secrets and ConfigMaps included, and nothing in the third namespace.
    let outside: Vec<String> = requests
        .iter()
        .filter(|e| e.resource.is_some())
        .filter(|e| !e.namespace.as_ref().is_some_and(|n| served.contains(n)))
        .map(|e| format!("{} {} (namespace {:?})", e.verb, e.uri, e.namespace))
        .collect();
    ensure!(
        outside.is_empty(),
        "requests outside the served namespaces: {outside:?}"
    );
    let lists = |resource: &str| {
        requests
            .iter()
            .filter(|e| e.verb == "list" && e.resource.as_deref() == Some(resource))
            .filter_map(|e| e.namespace.clone())
            .collect::<BTreeSet<_>>()
    };
    for resource in ["secrets", "configmaps", "ragindexes", "ragpipelines"] {
        ensure!(
            lists(resource) == served,
            "{resource} listed in {:?}",
            lists(resource)
        );
    }
    let untouched = other.api::<RagIndex>().get("handbook").await?;
    ensure!(
        untouched.status.is_none(),
        "the operator wrote the status of an index outside its namespaces: {:?}",
        untouched.status
    );
    run(
        &cluster,
        "helm",
        &["uninstall", "ragops", "-n", rel, "--wait"],
        None,
    )?;
    Ok(())
}
