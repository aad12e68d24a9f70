//! The two controllers compared: ragops (RagPipelines) and Argo Rollouts (plain blue-green
//! Rollouts), each as the objects the bench creates, the template change it makes, the process it
//! starts and how it reads an object's progress. Both get the same pods: 2 replicas of an image
//! named like the runtime's, served by the stand-in on port 8080.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::process::{operator_binary, workspace_root};

pub const NAMESPACE: &str = "bench";
pub const REPLICAS: i32 = 2;
const IMAGE: &str = "ghcr.io/ragops/rag-runtime:bench";
const PORT: i32 = 8080;
/// Both keep the old colour this long after the switch (Argo's default).
const SCALE_DOWN_DELAY: i32 = 30;
/// Longer than any phase limit: a rollout never fails on time inside the bench.
const PROGRESS_DEADLINE: i32 = 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Ragops,
    Argo,
}

/// What the bench reads of one object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub generation: i64,
    /// Its controller has seen this generation through: serving it, nothing in flight.
    pub healthy: bool,
    /// What serves: ragops' active revision, Argo's stable ReplicaSet hash.
    pub serving: Option<String>,
}

impl Subject {
    pub fn label(self) -> &'static str {
        match self {
            Self::Ragops => "ragops",
            Self::Argo => "Argo Rollouts",
        }
    }

    pub fn resource(self) -> ApiResource {
        let (group, kind, plural) = match self {
            Self::Ragops => ("ragops.io", "RagPipeline", "ragpipelines"),
            Self::Argo => ("argoproj.io", "Rollout", "rollouts"),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1alpha1", kind), plural)
    }

    /// The pod label naming the object a pod belongs to.
    pub fn owner_label(self) -> &'static str {
        match self {
            Self::Ragops => "ragops.io/pipeline",
            Self::Argo => "app",
        }
    }

    /// The CRD manifests to install first.
    pub fn crd_files(self) -> Result<Vec<PathBuf>> {
        Ok(match self {
            Self::Ragops => {
                let dir = workspace_root().join("crds");
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .with_context(|| format!("reading {}", dir.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                    .collect();
                files.sort();
                files
            }
            // All of them: the controller's informers list each kind before it starts.
            Self::Argo => {
                let dir = argo_dir()?.join("crds");
                [
                    "rollout",
                    "analysis-run",
                    "analysis-template",
                    "cluster-analysis-template",
                    "experiment",
                ]
                .iter()
                .map(|k| dir.join(format!("{k}-crd.yaml")))
                .collect()
            }
        })
    }

    /// Objects every pipeline shares, created once before the timed phases.
    pub fn shared_objects(self) -> Vec<Value> {
        match self {
            Self::Ragops => vec![
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "bench-docs"},
                    "data": {"rollouts.md": "A blue-green rollout switches traffic by patching the Service selector."}}),
                json!({"apiVersion": "ragops.io/v1alpha1", "kind": "RagIndex",
                    "metadata": {"name": "bench"},
                    "spec": {"vectorStore": {"embedded": {}},
                        "embedding": {"provider": "local", "dimensions": 64},
                        "sources": [{"configMap": {"name": "bench-docs"}}]}}),
            ],
            Self::Argo => vec![],
        }
    }

    /// The objects of the `name`d pipeline, in creation order.
    pub fn objects(self, name: &str) -> Vec<Value> {
        match self {
            Self::Ragops => vec![json!({
                "apiVersion": "ragops.io/v1alpha1", "kind": "RagPipeline",
                "metadata": {"name": name},
                "spec": {
                    "indexRef": {"name": "bench"},
                    "runtime": {"image": IMAGE, "replicas": REPLICAS},
                    "llm": {"provider": "extractive"},
                    "rollout": {
                        "autoPromote": true,
                        "healthCheck": {"path": "/readyz", "periodSeconds": 1, "successThreshold": 1},
                        "smokeQueries": [{"query": "How does a rollout switch traffic?",
                            "expectSourceIDs": ["rollouts.md"]}],
                        "progressDeadlineSeconds": PROGRESS_DEADLINE,
                        "scaleDownDelaySeconds": SCALE_DOWN_DELAY,
                    },
                },
            })],
            Self::Argo => {
                let service = |svc: &str| {
                    json!({"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": svc},
                        "spec": {"selector": {"app": name},
                            "ports": [{"port": 80, "targetPort": PORT}]}})
                };
                let preview = format!("{name}-preview");
                vec![
                    service(name),
                    service(&preview),
                    json!({
                        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                        "metadata": {"name": name},
                        "spec": {
                            "replicas": REPLICAS,
                            "progressDeadlineSeconds": PROGRESS_DEADLINE,
                            "selector": {"matchLabels": {"app": name}},
                            "template": {
                                "metadata": {"labels": {"app": name}},
                                "spec": {"containers": [{"name": "rag-runtime", "image": IMAGE,
                                    "ports": [{"containerPort": PORT}],
                                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": PORT}}}]},
                            },
                            "strategy": {"blueGreen": {
                                "activeService": name,
                                "previewService": preview,
                                "autoPromotionEnabled": true,
                                "scaleDownDelaySeconds": SCALE_DOWN_DELAY,
                            }},
                        },
                    }),
                ]
            }
        }
    }

    /// The template change every object gets (a merge patch): a new environment variable.
    pub fn change(self) -> Value {
        let env = json!([{"name": "BENCH_ROUND", "value": "2"}]);
        match self {
            Self::Ragops => json!({"spec": {"runtime": {"env": env}}}),
            Self::Argo => json!({"spec": {"template": {"spec": {"containers": [
                {"name": "rag-runtime", "image": IMAGE, "env": env,
                 "ports": [{"containerPort": PORT}],
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": PORT}}}]}}}}),
        }
    }

    /// The controller process, authenticated as the operator user and watching [`NAMESPACE`].
    pub fn command(self, cluster: &Cluster) -> Result<Command> {
        let kubeconfig = cluster.operator_kubeconfig()?;
        let mut cmd = match self {
            Self::Ragops => {
                let mut cmd = Command::new(operator_binary()?);
                cmd.env("KUBECONFIG", &kubeconfig)
                    .env("RUST_LOG", "info")
                    .args(["--namespace", NAMESPACE, "--metrics-addr", "127.0.0.1:0"]);
                cmd
            }
            Self::Argo => {
                let mut cmd = Command::new(argo_dir()?.join("rollouts-controller"));
                let (metrics, healthz) = (free_port()?, free_port()?);
                cmd.arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .args([
                        "--namespaced",
                        "--namespace",
                        NAMESPACE,
                        "--leader-elect=false",
                    ])
                    .args(["--metricsPort", &metrics.to_string()])
                    .args(["--healthzPort", &healthz.to_string()])
                    .args(["--loglevel", "info"]);
                cmd
            }
        };
        cmd.stdin(std::process::Stdio::null());
        Ok(cmd)
    }

    /// An object's progress as its status tells it.
    pub fn progress(self, o: &DynamicObject) -> Progress {
        let generation = o.metadata.generation.unwrap_or(0);
        let status = o.data.get("status").cloned().unwrap_or(Value::Null);
        let text = |k: &str| status.get(k).and_then(Value::as_str).map(String::from);
        let seen = match status.get("observedGeneration") {
            Some(Value::Number(n)) => n.as_i64(),
            // Argo Rollouts writes it as a string.
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        } == Some(generation);
        let healthy_phase = text("phase").as_deref() == Some("Healthy");
        let (healthy, serving) = match self {
            Self::Ragops => {
                let idle = status.get("rollout").is_none_or(Value::is_null);
                (seen && healthy_phase && idle, text("activeRevision"))
            }
            Self::Argo => {
                let stable = text("stableRS");
                let current = stable.is_some() && stable == text("currentPodHash");
                (seen && healthy_phase && current, stable)
            }
        };
        Progress {
            generation,
            healthy,
            serving,
        }
    }
}

/// Where `build-argo-rollouts.sh` put the controller and its CRDs (`RAGOPS_ARGO_ROLLOUTS_DIR`
/// overrides).
fn argo_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("RAGOPS_ARGO_ROLLOUTS_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let script = workspace_root().join("e2e/hack/build-argo-rollouts.sh");
    let out = Command::new(&script)
        .arg("--print-path")
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(status: Value, generation: i64) -> DynamicObject {
        let mut o = DynamicObject::new("p", &Subject::Ragops.resource());
        o.metadata.generation = Some(generation);
        o.data = json!({ "status": status });
        o
    }

    #[test]
    fn ragops_is_healthy_once_its_generation_serves_with_nothing_in_flight() {
        let s = Subject::Ragops;
        let done = json!({"phase": "Healthy", "observedGeneration": 2, "activeRevision": "r2"});
        assert!(s.progress(&object(done.clone(), 2)).healthy);
        assert!(
            !s.progress(&object(done.clone(), 3)).healthy,
            "an older generation"
        );
        let mut rolling = done;
        rolling["rollout"] = json!({"startedAt": "2026-01-01T00:00:00Z"});
        assert!(!s.progress(&object(rolling, 2)).healthy);
        assert_eq!(
            s.progress(&object(json!({"activeRevision": "r2"}), 1))
                .serving,
            Some("r2".into())
        );
    }

    #[test]
    fn argo_is_healthy_once_the_current_hash_is_stable() {
        let s = Subject::Argo;
        let done = json!({"phase": "Healthy", "observedGeneration": "4",
            "stableRS": "abc", "currentPodHash": "abc"});
        assert!(s.progress(&object(done.clone(), 4)).healthy);
        let mut switching = done;
        switching["currentPodHash"] = json!("def");
        let p = s.progress(&object(switching, 4));
        assert!(!p.healthy);
        assert_eq!(p.serving, Some("abc".into()));
    }
}
