//! The monitoring test bed: the monitoring.coreos.com CRDs, a real prometheus-operator and a real
//! Prometheus beside the local control plane (see `e2e/README.md`, "Monitoring test bed").
//!
//! [`MonitoringBed::start`] installs the CRDs (from prometheus-operator's Go module, built and
//! cached by `e2e/hack/build-monitoring.sh`), runs prometheus-operator against the API server
//! restricted to one namespace, creates a `Prometheus` there that selects every ServiceMonitor,
//! PodMonitor and PrometheusRule of that namespace, and runs Prometheus on a free loopback port
//! with the configuration and rule files prometheus-operator generates, reloading it whenever they
//! change. The Prometheus has `replicas: 0`, so no pod stands in for it; the process is the harness's.
//!
//! Outside a pod, two things must differ from what prometheus-operator writes, and only those are
//! rewritten (`monitoring/config.rs`): `kubernetes_sd_configs` gain `kubeconfig_file` (the admin
//! kubeconfig) instead of the in-cluster service account, and rule file paths point into the bed's
//! directory instead of the ConfigMap mounts under `/etc/prometheus/rules/`. `$(POD_NAME)` in the
//! external labels is expanded as prometheus-config-reloader would. Anything else that names a
//! path of the pod is refused with an error rather than silently dropped.
//!
//! Service discovery reads EndpointSlices, which the API server refuses for loopback addresses:
//! Prometheus finds ServiceMonitor targets only on a cluster with routed pod IPs
//! (`RAGOPS_E2E_POD_NET=local-route`, which `make e2e-monitoring` runs in a network namespace of
//! its own). PodMonitors work on either.

mod api;
mod config;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

pub use api::{Alert, Rule, RuleGroup, Target};

use crate::{ChildProcess, Cluster, crd_established, wait_for, wait_for_object, workspace_root};

/// Name of the `Prometheus` object (and so of the Secret `prometheus-bed`).
pub const PROMETHEUS_NAME: &str = "bed";
/// Scrape and rule evaluation interval of the bed's Prometheus.
pub const INTERVAL: &str = "2s";

/// Where the monitoring binaries are: `build-monitoring.sh --print-env`, each value overridable
/// by the environment variable of the same name.
#[derive(Debug, Clone)]
pub struct MonitoringBinaries {
    pub prometheus: PathBuf,
    pub promtool: PathBuf,
    pub prometheus_operator: PathBuf,
    /// Directory of the monitoring.coreos.com CRDs from prometheus-operator's module.
    pub crds: PathBuf,
    /// The Prometheus release, e.g. `v3.16.0` (the `Prometheus` object's `version`).
    pub prometheus_version: String,
}

impl MonitoringBinaries {
    pub fn locate() -> Result<Self> {
        let script = workspace_root().join("e2e/hack/build-monitoring.sh");
        let out = Command::new(&script)
            .arg("--print-env")
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "{} --print-env failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8(out.stdout)?;
        let get = |key: &str| -> Result<String> {
            if let Ok(v) = std::env::var(key) {
                return Ok(v);
            }
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(String::from)
                .with_context(|| format!("{key} missing from build-monitoring.sh --print-env"))
        };
        let bins = Self {
            prometheus: get("RAGOPS_E2E_PROMETHEUS")?.into(),
            promtool: get("RAGOPS_E2E_PROMTOOL")?.into(),
            prometheus_operator: get("RAGOPS_E2E_PROMETHEUS_OPERATOR")?.into(),
            crds: get("RAGOPS_E2E_MONITORING_CRDS")?.into(),
            prometheus_version: get("RAGOPS_E2E_PROMETHEUS_VERSION")?,
        };
        for path in [
            &bins.prometheus,
            &bins.promtool,
            &bins.prometheus_operator,
            &bins.crds,
        ] {
            if !path.exists() {
                bail!(
                    "{} not found; build it with `make monitoring-bins`",
                    path.display()
                );
            }
        }
        Ok(bins)
    }
}

/// Applies every CRD of prometheus-operator's module (idempotent, server-side apply) and waits
/// until each is Established.
pub async fn install_monitoring_crds(cluster: &Cluster, crds: &Path) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client().await?);
    let mut files: Vec<PathBuf> = std::fs::read_dir(crds)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
    {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&std::fs::read_to_string(file)?)
                .with_context(|| format!("parsing {}", file.display()))?;
        let name = crd.metadata.name.clone().context("CRD without a name")?;
        api.patch(
            &name,
            &PatchParams::apply("e2e-monitoring").force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("applying CRD {name}"))?;
        wait_for_object(&api, &name, Duration::from_secs(30), crd_established()).await?;
    }
    Ok(())
}

/// `monitoring.coreos.com/v1` kinds as dynamic objects (ServiceMonitor, PrometheusRule, ...).
pub fn monitoring_resource(kind: &str) -> ApiResource {
    ApiResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        api_version: "monitoring.coreos.com/v1".into(),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()).replace("prometheuss", "prometheuses"),
    }
}

/// Server-side applies a monitoring.coreos.com/v1 object (a `serde_json` value with `kind` and
/// `metadata.name`) in `namespace`, as a test author would with `kubectl apply`.
pub async fn apply_monitoring_object(
    client: &kube::Client,
    namespace: &str,
    object: serde_json::Value,
) -> Result<DynamicObject> {
    let kind = object["kind"].as_str().context("object without kind")?;
    let name = object["metadata"]["name"]
        .as_str()
        .context("object without a name")?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &monitoring_resource(kind));
    api.patch(
        name,
        &PatchParams::apply("e2e-monitoring").force(),
        &Patch::Apply(&object),
    )
    .await
    .with_context(|| format!("applying {kind} {namespace}/{name}"))
}

/// prometheus-operator and Prometheus for one namespace. Dropping it stops both and the reloader.
pub struct MonitoringBed {
    namespace: String,
    dir: PathBuf,
    url: String,
    http: reqwest::Client,
    sync: Arc<config::SyncState>,
    reloader: tokio::task::JoinHandle<()>,
    prometheus: ChildProcess,
    operator: ChildProcess,
}

impl MonitoringBed {
    /// Installs the CRDs, starts prometheus-operator for `namespace`, creates the `Prometheus`
    /// object there, waits for the generated configuration and starts Prometheus with it.
    pub async fn start(cluster: &Cluster, namespace: &str) -> Result<Self> {
        let bins = MonitoringBinaries::locate()?;
        install_monitoring_crds(cluster, &bins.crds).await?;
        let client = cluster.client().await?;
        let dir = cluster.state_dir.join("monitoring").join(namespace);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rules"))?;

        let mut operator = start_prometheus_operator(cluster, &bins, namespace)?;
        apply_monitoring_object(
            &client,
            namespace,
            prometheus_object(&bins.prometheus_version),
        )
        .await?;
        let sync = Arc::new(config::SyncState::new(config::Target {
            client: client.clone(),
            namespace: namespace.into(),
            name: PROMETHEUS_NAME.into(),
            dir: dir.clone(),
            kubeconfig: cluster.kubeconfig.clone(),
        }));
        wait_for(
            "prometheus-operator to write Secret prometheus-bed",
            Duration::from_secs(60),
            || {
                let exited = operator.ensure_running().err();
                let sync = &sync;
                async move {
                    if let Some(e) = exited {
                        return Err(e);
                    }
                    Ok(sync.write_if_changed().await?.map(|_| ()))
                }
            },
        )
        .await?;

        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?;
        let (prometheus, url) = start_prometheus(cluster, &bins, &dir, &http).await?;
        sync.mark_loaded();
        let reloader = tokio::spawn(config::reload_loop(sync.clone(), http.clone(), url.clone()));
        Ok(Self {
            namespace: namespace.into(),
            dir,
            url,
            http,
            sync,
            reloader,
            prometheus,
            operator,
        })
    }

    /// Prometheus's base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where the rewritten `prometheus.yaml`, the rule files and the TSDB are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many generated configurations Prometheus has loaded (the first one counts).
    pub fn configs_loaded(&self) -> u64 {
        self.sync.loaded()
    }

    /// The last error of fetching, rewriting or reloading the configuration, if the last attempt failed.
    pub fn config_error(&self) -> Option<String> {
        self.sync.error()
    }

    /// Fails with the log tail if prometheus-operator or Prometheus has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        self.operator.ensure_running()?;
        self.prometheus.ensure_running()
    }

    pub fn prometheus_log_tail(&self, lines: usize) -> String {
        self.prometheus.log_tail(lines)
    }

    pub fn operator_log_tail(&self, lines: usize) -> String {
        self.operator.log_tail(lines)
    }
}

impl Drop for MonitoringBed {
    fn drop(&mut self) {
        self.reloader.abort();
        // Kept for a look after a failure (a test returning Err does not panic here).
        if std::env::var_os("RAGOPS_E2E_KEEP_MONITORING").is_none() && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn prometheus_object(version: &str) -> serde_json::Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": { "name": PROMETHEUS_NAME },
        "spec": {
            // No pod: the harness runs Prometheus itself from the generated configuration.
            "replicas": 0,
            "version": version,
            "serviceDiscoveryRole": "EndpointSlice",
            "scrapeInterval": INTERVAL,
            "evaluationInterval": INTERVAL,
            // Empty selectors and no namespace selectors: everything in the Prometheus's namespace.
            "serviceMonitorSelector": {},
            "podMonitorSelector": {},
            "ruleSelector": {},
        }
    })
}

/// prometheus-operator against the API server as the admin user (client certificate from the
/// cluster's PKI), watching `namespace` only.
fn start_prometheus_operator(
    cluster: &Cluster,
    bins: &MonitoringBinaries,
    namespace: &str,
) -> Result<ChildProcess> {
    let pki = cluster.state_dir.join("pki");
    for f in ["ca.crt", "admin.crt", "admin.key"] {
        if !pki.join(f).is_file() {
            bail!(
                "{} missing (not a cluster.sh cluster?)",
                pki.join(f).display()
            );
        }
    }
    let server = config::api_server(&cluster.kubeconfig)?;
    let mut cmd = Command::new(&bins.prometheus_operator);
    cmd.arg(format!("--apiserver={server}"))
        .arg(format!("--ca-file={}", pki.join("ca.crt").display()))
        .arg(format!("--cert-file={}", pki.join("admin.crt").display()))
        .arg(format!("--key-file={}", pki.join("admin.key").display()))
        .arg(format!("--namespaces={namespace}"))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg("--log-level=info");
    ChildProcess::spawn("prometheus-operator", cmd, &cluster.logs_dir())
}

/// Prometheus on a free loopback port with the configuration in `dir`, once `/-/ready` answers.
/// `--web.enable-lifecycle` lets the reloader `POST /-/reload`.
async fn start_prometheus(
    cluster: &Cluster,
    bins: &MonitoringBinaries,
    dir: &Path,
    http: &reqwest::Client,
) -> Result<(ChildProcess, String)> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(&bins.prometheus);
    cmd.arg(format!(
        "--config.file={}",
        dir.join("prometheus.yaml").display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        dir.join("data").display()
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
    .arg("--web.enable-lifecycle")
    .arg("--log.level=info");
    let mut prometheus = ChildProcess::spawn("prometheus", cmd, &cluster.logs_dir())?;
    wait_for("Prometheus /-/ready", Duration::from_secs(60), || {
        let exited = prometheus.ensure_running().err();
        let ready = http.get(format!("{url}/-/ready")).send();
        async move {
            if let Some(e) = exited {
                return Err(e);
            }
            let ok = ready.await.is_ok_and(|r| r.status().is_success());
            Ok(ok.then_some(()))
        }
    })
    .await?;
    Ok((prometheus, url))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
