//! Where the loopback cluster is and how to talk to it.
//!
//! `cluster.sh up` writes `<state>/env` (`export NAME=value` lines). Values come from there, and
//! the process environment overrides each of them, so `cargo test -p e2e` works right after
//! `make cluster-up` with nothing exported, and `make e2e` works with everything exported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::process::workspace_root;

/// The user (client-certificate CN) of `operator.kubeconfig`, as it appears in the audit log.
pub const OPERATOR_USER: &str = "ragops-operator";

/// The user of `operator-b.kubeconfig` (beside `operator.kubeconfig`): a second operator replica
/// whose requests the audit log tells from the first's.
pub const OPERATOR_B_USER: &str = "ragops-operator-b";

/// What `cluster.sh` exports, each overridable by the process environment.
const ENV_KEYS: [&str; 7] = [
    "KUBECONFIG",
    "RAGOPS_E2E_OPERATOR_KUBECONFIG",
    "RAGOPS_E2E_AUDIT_LOG",
    "RAGOPS_E2E_KUBECTL",
    "RAGOPS_E2E_POD_CIDRS",
    "RAGOPS_E2E_QDRANT_URL",
    "RAGOPS_E2E_QDRANT_HTTP_URL",
];

/// Coordinates of a running e2e cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// State dir of `cluster.sh` (logs, PKI, audit log).
    pub state_dir: PathBuf,
    /// Admin kubeconfig (user `ragops-e2e-admin`, group `system:masters`).
    pub kubeconfig: PathBuf,
    /// Kubeconfig for the operator (user [`OPERATOR_USER`], group `system:masters`).
    pub operator_kubeconfig: Option<PathBuf>,
    /// The API server's audit log (Metadata level, JSON lines).
    pub audit_log: Option<PathBuf>,
    /// kubectl built with the control plane.
    pub kubectl: Option<PathBuf>,
    /// Pod CIDRs of the fake nodes (one per node).
    pub pod_cidrs: Vec<String>,
    /// The Qdrant server beside the cluster (`RAGOPS_E2E_QDRANT=1`): its gRPC URL, the one
    /// the runtime and qdrant-client speak.
    pub qdrant_url: Option<String>,
    /// The same server's HTTP (REST) URL.
    pub qdrant_http_url: Option<String>,
}

impl Cluster {
    /// Reads `<state>/env` (state dir: `RAGOPS_E2E_STATE`, default `<workspace>/.e2e/cluster`),
    /// then lets the process environment override each value.
    pub fn from_env() -> Result<Self> {
        let state_dir = std::env::var_os("RAGOPS_E2E_STATE")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".e2e/cluster"));
        let mut vars = read_env_file(&state_dir.join("env")).unwrap_or_default();
        for key in ENV_KEYS {
            if let Ok(v) = std::env::var(key) {
                vars.insert(key.to_string(), v);
            }
        }
        Self::from_vars(state_dir, &vars)
    }

    /// The cluster whose state dir is `state_dir`, from its `env` file alone (the process
    /// environment is not consulted): for a tool that starts clusters of its own.
    pub fn at(state_dir: &Path) -> Result<Self> {
        let vars = read_env_file(&state_dir.join("env")).unwrap_or_default();
        Self::from_vars(state_dir.to_path_buf(), &vars)
    }

    fn from_vars(state_dir: PathBuf, vars: &HashMap<String, String>) -> Result<Self> {
        let Some(kubeconfig) = vars.get("KUBECONFIG").map(PathBuf::from) else {
            bail!(
                "no e2e cluster: {} is missing and KUBECONFIG is not set; start one with `make cluster-up`",
                state_dir.join("env").display()
            );
        };
        let path = |k: &str| vars.get(k).map(PathBuf::from);
        Ok(Self {
            operator_kubeconfig: path("RAGOPS_E2E_OPERATOR_KUBECONFIG"),
            audit_log: path("RAGOPS_E2E_AUDIT_LOG"),
            kubectl: path("RAGOPS_E2E_KUBECTL"),
            pod_cidrs: vars
                .get("RAGOPS_E2E_POD_CIDRS")
                .map(|s| {
                    s.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            qdrant_url: vars.get("RAGOPS_E2E_QDRANT_URL").cloned(),
            qdrant_http_url: vars.get("RAGOPS_E2E_QDRANT_HTTP_URL").cloned(),
            state_dir,
            kubeconfig,
        })
    }

    /// A client authenticated as the admin user.
    pub async fn client(&self) -> Result<Client> {
        client_for(&self.kubeconfig).await
    }

    /// A client authenticated as [`OPERATOR_USER`].
    pub async fn operator_client(&self) -> Result<Client> {
        client_for(&self.operator_kubeconfig()?).await
    }

    pub fn operator_kubeconfig(&self) -> Result<PathBuf> {
        self.operator_kubeconfig
            .clone()
            .context("RAGOPS_E2E_OPERATOR_KUBECONFIG unknown (not a cluster.sh cluster?)")
    }

    /// The kubeconfig of [`OPERATOR_B_USER`], written by `cluster.sh` beside the operator's.
    pub fn operator_b_kubeconfig(&self) -> Result<PathBuf> {
        let path = self
            .operator_kubeconfig()?
            .with_file_name("operator-b.kubeconfig");
        if !path.exists() {
            bail!(
                "{} is missing: the cluster was started by an older cluster.sh; restart it (`make cluster-down cluster-up`)",
                path.display()
            );
        }
        Ok(path)
    }

    /// `kubectl --kubeconfig <admin>`, from the binaries built with the control plane.
    pub fn kubectl(&self) -> Result<Command> {
        let bin = self
            .kubectl
            .clone()
            .context("RAGOPS_E2E_KUBECTL unknown (not a cluster.sh cluster?)")?;
        let mut cmd = Command::new(bin);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        Ok(cmd)
    }

    /// Runs kubectl with `args`; returns stdout, or an error with stderr when it fails.
    pub fn kubectl_output(&self, args: &[&str]) -> Result<String> {
        let out = self
            .kubectl()?
            .args(args)
            .output()
            .context("running kubectl")?;
        if !out.status.success() {
            bail!(
                "kubectl {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Directory for logs of processes started by tests (kept with `RAGOPS_E2E_KEEP_LOGS=1`).
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// Per-pod directories of [`crate::SpecRunner`] (volumes, termination messages).
    pub fn pods_dir(&self) -> PathBuf {
        self.state_dir.join("pods")
    }
}

/// The rustls crypto provider must be chosen once per process (two backends are compiled in).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The admin client of the cluster from [`Cluster::from_env`].
pub async fn client() -> Result<Client> {
    Cluster::from_env()?.client().await
}

pub(crate) async fn client_for(kubeconfig: &Path) -> Result<Client> {
    install_crypto_provider();
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

fn read_env_file(path: &Path) -> Option<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect(),
    )
}
