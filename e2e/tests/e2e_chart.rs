//! The Helm chart (`charts/rag-operator`) on the real API server: the README's install commands
//! run as written, and every rendering passes a server-side dry run with least-privilege RBAC and
//! a schema that refuses bad values. helm and kubectl are the ones built with the control plane
//! (`make e2e-bins`); `e2e_chart_rbac` runs the operator under the chart's RBAC.

mod chart;

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use chart::{flag_value, kinds_and_rules, readme_install_commands, run, template};
use e2e::{Cluster, TestNamespace, wait_for_object};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};
use rag_operator::api::RagPipeline;
use serde_json::json;

#[tokio::test]
async fn the_readme_install_commands_install_the_chart_and_the_samples() -> Result<()> {
    e2e::install_crypto_provider();
    let cluster = Cluster::from_env()?;
    let commands = readme_install_commands()?;
    ensure!(
        commands.len() == 2
            && commands[0].starts_with("helm install ")
            && commands[1] == "kubectl apply -f config/samples/",
        "the README's install is a helm install and the samples: {commands:?}"
    );
    let words: Vec<&str> = commands[0].split_whitespace().collect();
    let release = words[2];
    let ns = flag_value(&words, &["-n", "--namespace"]).context("helm install without -n")?;
    // A release left by an earlier run on a kept cluster.
    run(
        &cluster,
        "helm",
        &[
            "uninstall",
            release,
            "-n",
            ns,
            "--ignore-not-found",
            "--wait",
        ],
        None,
    )?;

    let mut printed = String::new();
    for line in &commands {
        let out = run(&cluster, "bash", &["-euo", "pipefail", "-c", line], None)?;
        eprintln!("$ {line}\n{out}");
        printed.push_str(&out);
    }
    // NOTES.txt tells the next commands.
    for next in ["kubectl apply -f config/samples/", "kubectl get ragp"] {
        ensure!(
            printed.contains(next),
            "helm's notes do not say `{next}`:\n{printed}"
        );
    }

    let client = cluster.client().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ["ragpipelines.ragops.io", "ragindexes.ragops.io"] {
        wait_for_object(&crds, crd, Duration::from_secs(30), e2e::crd_established()).await?;
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let selector = format!("app.kubernetes.io/instance={release}");
    let listed = deployments
        .list(&ListParams::default().labels(&selector))
        .await?;
    let [operator] = listed.items.as_slice() else {
        bail!(
            "expected one operator Deployment in {ns}, found {}",
            listed.items.len()
        );
    };
    let name = operator
        .metadata
        .name
        .clone()
        .context("a Deployment without a name")?;
    // KWOK makes the pods Ready: both replicas of the default values become available.
    let available = e2e::deployment_available(2);
    wait_for_object(&deployments, &name, Duration::from_secs(60), available).await?;
    let pipelines: Api<RagPipeline> = Api::namespaced(client.clone(), "default");
    ensure!(
        pipelines.get_opt("handbook").await?.is_some(),
        "the sample pipeline exists"
    );

    run(
        &cluster,
        "kubectl",
        &["delete", "-f", "config/samples/", "--ignore-not-found"],
        None,
    )?;
    run(
        &cluster,
        "helm",
        &["uninstall", release, "-n", ns, "--wait"],
        None,
    )?;
    Ok(())
}

#[tokio::test]
async fn every_rendering_of_the_chart_passes_a_server_side_dry_run() -> Result<()> {
    e2e::install_crypto_provider();
    let cluster = Cluster::from_env()?;
    let ns = TestNamespace::new(&cluster, "chart-dry").await?;
    let watch = format!("watchNamespace={}", ns.name());
    let watches = format!("watchNamespaces={{{},default}}", ns.name());
    let variants: [&[&str]; 4] = [
        &[],
        &[&watch, "logFormat=text", "replicas=1"],
        &[&watches],
        &[
            "leaderElection.enabled=false",
            "serviceAccount.create=false",
            "serviceAccount.name=default",
        ],
    ];
    for sets in variants {
        let rendered = template(&cluster, ns.name(), sets)?;
        let out = run(
            &cluster,
            "kubectl",
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&rendered),
        )
        .with_context(|| format!("dry run of the chart with {sets:?}"))?;
        ensure!(out.contains("(server dry run)"), "{out}");
        let (kinds, rules) = kinds_and_rules(&rendered)?;
        for rule in &rules {
            let fields = ["apiGroups", "resources", "verbs"].map(|f| rule[f].to_string());
            ensure!(
                !fields.iter().any(|f| f.contains('*')),
                "a wildcard in {rule}"
            );
        }
        let cluster_wide = kinds.iter().any(|k| k == "ClusterRole");
        let namespaced = sets.iter().any(|s| s.starts_with("watchNamespace"));
        ensure!(cluster_wide != namespaced, "{sets:?}: kinds {kinds:?}");
        let leases = rules.iter().any(|r| r["resources"] == json!(["leases"]));
        ensure!(
            leases != sets.contains(&"leaderElection.enabled=false"),
            "{sets:?}: {rules:?}"
        );
    }
    // The schema types every value.
    for bad in [
        "logFormat=xml",
        "replicas=two",
        "image.pullPolicy=Sometimes",
        "unknown=1",
        "watchNamespaces={Not_A_Name}",
    ] {
        let refused = template(&cluster, ns.name(), &[bad]);
        ensure!(refused.is_err(), "values.schema.json accepted {bad}");
    }
    Ok(())
}
