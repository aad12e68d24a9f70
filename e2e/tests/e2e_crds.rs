//! Tier 3: the checked-in CRDs install on the real API server and `kubectl get` shows the
//! printer columns the design promises.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use e2e::{
    Cluster, DEFAULT_TIMEOUT, TestNamespace, crd_established, wait_for_object, workspace_root,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};

/// The CRD files under `crds/`, sorted.
fn crd_files() -> Result<Vec<PathBuf>> {
    let dir = workspace_root().join("crds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Applies one CRD file (server-side apply) and waits until it is Established; returns its name.
async fn install_crd(cluster: &Cluster, file: &Path) -> Result<String> {
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client().await?);
    let crd: CustomResourceDefinition = serde_yaml::from_str(&std::fs::read_to_string(file)?)
        .with_context(|| format!("parsing {}", file.display()))?;
    let name = crd.metadata.name.clone().context("CRD without a name")?;
    crds.patch(
        &name,
        &PatchParams::apply("ragops-e2e").force(),
        &Patch::Apply(&crd),
    )
    .await
    .with_context(|| format!("applying {}", file.display()))?;
    wait_for_object(&crds, &name, DEFAULT_TIMEOUT, crd_established()).await?;
    Ok(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_apply_and_become_established() -> Result<()> {
    let cluster = Cluster::from_env()?;
    let mut names = Vec::new();
    let mut failures = Vec::new();
    for file in crd_files()? {
        match install_crd(&cluster, &file).await {
            Ok(name) => names.push(name),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    assert!(
        failures.is_empty(),
        "CRDs refused by the API server:\n{}",
        failures.join("\n")
    );
    assert!(
        names.contains(&"ragpipelines.ragops.io".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"ragindexes.ragops.io".to_string()),
        "{names:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_ragpipelines_shows_the_printer_columns() -> Result<()> {
    let cluster = Cluster::from_env()?;
    install_crd(
        &cluster,
        &workspace_root().join("crds/ragops.io_ragpipelines.yaml"),
    )
    .await?;
    let ns = TestNamespace::new(&cluster, "columns").await?;
    let sample = workspace_root().join("config/samples/ragpipeline.yaml");
    let sample = sample.to_str().context("sample path")?;
    cluster.kubectl_output(&["apply", "-n", ns.name(), "-f", sample])?;

    let out = cluster.kubectl_output(&["get", "ragpipelines", "-n", ns.name()])?;
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "PHASE", "ACTIVE", "REVISION", "READY", "INDEX", "AGE"
        ],
        "{out}"
    );
    let row = out.lines().nth(1).context("a row for the sample")?;
    assert!(row.starts_with("handbook "), "{out}");
    // The short name and category resolve too.
    let short = cluster.kubectl_output(&["get", "ragp", "-n", ns.name(), "-o", "name"])?;
    assert_eq!(short.trim(), "ragpipeline.ragops.io/handbook");
    Ok(())
}
