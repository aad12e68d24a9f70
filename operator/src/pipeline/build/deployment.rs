//! The runtime Deployments `<name>-blue` and `<name>-green`, and the revision of their pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SeccompProfile, SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rag_runtime::config::{EMBEDDING_API_KEY_ENV, LLM_API_KEY_ENV, QDRANT_API_KEY_ENV};
use sha2::{Digest, Sha256};

use super::config::DATA_DIR;
use super::{
    COLOR_LABEL, CONFIG_DIR, REVISION_LABEL, RUNTIME_PORT, Validated, config_map_name,
    deployment_name,
};
use crate::api::{Color, SecretKeyRef};

/// The pod template of the desired revision, before it is labelled with its colour and revision.
/// `config_key` is the ConfigMap key of the config it runs with.
pub fn pod_template(v: &Validated, config_key: &str) -> PodTemplateSpec {
    let runtime = &v.pipeline.spec.runtime;
    let config_path = format!("{CONFIG_DIR}/config.yaml");
    let probe = |path: &str| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(5),
        ..Probe::default()
    };
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        // The API server drops `readOnly: false`; sending it would look like a change every time.
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    };
    let container = Container {
        name: "runtime".into(),
        image: Some(runtime.image.clone()),
        args: Some(
            [
                "serve",
                "--config",
                &config_path,
                "--listen",
                &format!("0.0.0.0:{RUNTIME_PORT}"),
                "--data-dir",
                DATA_DIR,
            ]
            .map(String::from)
            .to_vec(),
        ),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: RUNTIME_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(env(v)).filter(|e| !e.is_empty()),
        resources: runtime.resources.clone(),
        readiness_probe: Some(probe("/readyz")),
        liveness_probe: Some(Probe {
            failure_threshold: Some(6),
            ..probe("/healthz")
        }),
        volume_mounts: Some(vec![
            mount("config", CONFIG_DIR, true),
            mount("data", DATA_DIR, false),
            mount("tmp", "/tmp", false),
        ]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let empty_dir = |name: &str| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    let (init_containers, source_volumes) = embedded_ingest(v, &container, &config_path);
    let overrides = runtime.pod_template.clone().unwrap_or_default();
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(v.labels()),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            init_containers,
            containers: vec![container],
            volumes: Some(
                [
                    Volume {
                        name: "config".into(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: config_map_name(&v.name()),
                            items: Some(vec![KeyToPath {
                                key: config_key.into(),
                                path: "config.yaml".into(),
                                mode: None,
                            }]),
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    },
                    empty_dir("data"),
                    empty_dir("tmp"),
                ]
                .into_iter()
                .chain(source_volumes)
                .collect(),
            ),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(65532),
                run_as_group: Some(65532),
                fs_group: Some(65532),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            // The runtime drains in-flight requests on SIGTERM within its own grace period.
            termination_grace_period_seconds: Some(30),
            automount_service_account_token: Some(false),
            node_selector: Some(overrides.node_selector).filter(|m| !m.is_empty()),
            tolerations: Some(overrides.tolerations).filter(|t| !t.is_empty()),
            affinity: overrides.affinity,
            ..PodSpec::default()
        }),
    }
}

/// With the embedded store every pod holds its own copy of the index: an init container ingests the
/// RagIndex's ConfigMap sources into the pod's data volume before the runtime starts.
fn embedded_ingest(
    v: &Validated,
    runtime: &Container,
    config_path: &str,
) -> (Option<Vec<Container>>, Vec<Volume>) {
    let index = &v.index.spec;
    let config_maps: Vec<&str> = index
        .sources
        .iter()
        .filter_map(|s| s.config_map.as_ref())
        .map(|c| c.name.as_str())
        .collect();
    if index.vector_store.embedded.is_none() || config_maps.is_empty() {
        return (None, vec![]);
    }
    let volume = |name: &str| format!("source-{name}");
    let dir = |name: &str| format!("/sources/{name}");
    let mut args = ["ingest", "--config", config_path, "--data-dir", DATA_DIR]
        .map(String::from)
        .to_vec();
    args.extend(config_maps.iter().map(|n| dir(n)));
    let mut mounts = runtime.volume_mounts.clone().unwrap_or_default();
    mounts.extend(config_maps.iter().map(|n| VolumeMount {
        name: volume(n),
        mount_path: dir(n),
        read_only: Some(true),
        ..VolumeMount::default()
    }));
    let init = Container {
        name: "ingest".into(),
        args: Some(args),
        volume_mounts: Some(mounts),
        ports: None,
        readiness_probe: None,
        liveness_probe: None,
        ..runtime.clone()
    };
    let volumes = config_maps
        .iter()
        .map(|n| Volume {
            name: volume(n),
            config_map: Some(ConfigMapVolumeSource {
                name: (*n).into(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        })
        .collect();
    (Some(vec![init]), volumes)
}

/// Secrets as environment variables (never in the config), then the user's own variables.
fn env(v: &Validated) -> Vec<EnvVar> {
    let from_secret = |name: &str, r: &SecretKeyRef| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let index = &v.index.spec;
    let secrets = [
        (
            EMBEDDING_API_KEY_ENV,
            index.embedding.api_key_secret_ref.as_ref(),
        ),
        (
            LLM_API_KEY_ENV,
            v.pipeline.spec.llm.api_key_secret_ref.as_ref(),
        ),
        (
            QDRANT_API_KEY_ENV,
            index
                .vector_store
                .qdrant
                .as_ref()
                .and_then(|q| q.api_key_secret_ref.as_ref()),
        ),
    ];
    let mut env: Vec<EnvVar> = secrets
        .into_iter()
        .filter_map(|(n, r)| r.map(|r| from_secret(n, r)))
        .collect();
    env.extend(v.pipeline.spec.runtime.env.iter().cloned());
    env
}

/// Revision of a pod template: a short hash of everything that reaches the pods.
pub fn revision(template: &PodTemplateSpec) -> String {
    let json = serde_json::to_vec(template).expect("a pod template always serialises");
    Sha256::digest(json)
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Deployment of `color`, running `template` (of `revision`) with `replicas` pods.
pub fn deployment(
    v: &Validated,
    color: Color,
    replicas: i32,
    template: &PodTemplateSpec,
    revision: &str,
) -> Deployment {
    let tag = |labels: Option<BTreeMap<String, String>>| {
        let mut labels = labels.unwrap_or_default();
        labels.insert(COLOR_LABEL.into(), color.to_string());
        labels.insert(REVISION_LABEL.into(), revision.into());
        Some(labels)
    };
    let mut template = template.clone();
    let mut pod_meta = template.metadata.take().unwrap_or_default();
    pod_meta.labels = tag(pod_meta.labels);
    template.metadata = Some(pod_meta);
    let mut meta = v.meta(deployment_name(&v.name(), color));
    meta.labels = tag(meta.labels);
    Deployment {
        metadata: meta,
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(v.selector(color)),
                ..LabelSelector::default()
            },
            template,
            // Within a colour, never go below the requested count while pods are replaced.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::String("25%".into())),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            revision_history_limit: Some(3),
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
#[path = "deployment_tests.rs"]
mod tests;
