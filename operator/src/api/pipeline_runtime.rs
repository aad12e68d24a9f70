//! `RagPipeline.spec.runtime`: the runtime pods — image, size, environment, probes and the pod
//! template knobs platform teams set (identity, metadata, registry credentials, scheduling).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvFromSource, EnvVar, LocalObjectReference, ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Label key prefixes the operator owns on every pod (identity and selector labels). User labels
/// under them are refused by the schema and dropped by the builder.
pub const RESERVED_LABEL_PREFIXES: [&str; 2] = ["ragops.io/", "app.kubernetes.io/"];

/// The CEL rule behind [`RESERVED_LABEL_PREFIXES`]; `RESERVED_LABEL_PREFIXES` is what the builder
/// uses, and a unit test keeps both in step.
const NO_RESERVED_LABELS: &str =
    "self.all(k, !k.startsWith('ragops.io/') && !k.startsWith('app.kubernetes.io/'))";

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSpec {
    /// Container image of rag-runtime.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1))]
    pub image: String,
    /// Pods per colour when autoscaling is off.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// CPU and memory requests and limits of the runtime container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Extra environment variables of the runtime container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Environment variables from whole ConfigMaps and Secrets (for example proxy settings or
    /// provider keys managed elsewhere). Also given to the embedded store's ingest init container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,
    /// Tuning of the startup, readiness and liveness probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<ProbesSpec>,
    /// Size limit of the `/data` emptyDir (the embedded store's index); the kubelet evicts a pod
    /// that writes more. Unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_size_limit: Option<Quantity>,
    /// Size limit of the `/tmp` emptyDir; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmp_size_limit: Option<Quantity>,
    /// Pod-level settings of the runtime pods: identity, metadata and scheduling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateOverrides>,
}

impl Default for RuntimeSpec {
    fn default() -> Self {
        Self {
            image: default_image(),
            replicas: default_replicas(),
            resources: None,
            env: vec![],
            env_from: vec![],
            probes: None,
            data_size_limit: None,
            tmp_size_limit: None,
            pod_template: None,
        }
    }
}

fn default_image() -> String {
    "ghcr.io/ragops/rag-runtime:0.1.0".into()
}

fn default_replicas() -> i32 {
    2
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateOverrides {
    /// Labels added to the pods, for example for network policies or cost allocation. Keys
    /// under `ragops.io/` and `app.kubernetes.io/` are the operator's own and are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = Rule::new(NO_RESERVED_LABELS).message("labels under ragops.io/ and app.kubernetes.io/ are set by the operator and cannot be overridden"))]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the pods, for example for a service mesh or a secrets injector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// ServiceAccount the pods run as (for cloud workload identity); the namespace's `default`
    /// when absent. Its Kubernetes API token is not mounted: the runtime never calls the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: Option<String>,
    /// Secrets with registry credentials for pulling the runtime image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Node labels the pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node and pod affinity of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
}

/// The runtime container's probes. Unset fields keep the defaults named on each probe.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProbesSpec {
    /// `GET /healthz` until the process answers once; liveness and readiness wait for it, so a
    /// slow start (loading a large embedded index) is not killed. Defaults: periodSeconds 5,
    /// timeoutSeconds 2, failureThreshold 60 (five minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<ProbeTuning>,
    /// `GET /readyz`: the store is reachable and the providers are set up; a pod that fails it
    /// gets no traffic. Defaults: periodSeconds 5, timeoutSeconds 2, failureThreshold 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ProbeTuning>,
    /// `GET /healthz`: a pod that fails it is restarted. Defaults: periodSeconds 5,
    /// timeoutSeconds 2, failureThreshold 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<ProbeTuning>,
}

/// Timing of one probe; each unset field keeps the probe's default.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProbeTuning {
    /// Seconds after the container starts before the first probe (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds between probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 300))]
    pub period_seconds: Option<i32>,
    /// Seconds one probe may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<i32>,
    /// Consecutive failures that count as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub failure_threshold: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_rule_refuses_exactly_the_reserved_prefixes() {
        for prefix in RESERVED_LABEL_PREFIXES {
            assert!(
                NO_RESERVED_LABELS.contains(&format!("!k.startsWith('{prefix}')")),
                "{prefix}"
            );
        }
        assert_eq!(
            NO_RESERVED_LABELS.matches("startsWith").count(),
            RESERVED_LABEL_PREFIXES.len()
        );
    }
}
