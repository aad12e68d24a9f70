//! The runtime Deployments `<name>-blue` and `<name>-green`, and the revision of their pods.
//!
//! The pod template is put together here from its parts: the environment (`env`), the probes
//! (`probes`) and the volumes with their mounts (`volumes`).

mod env;
mod probes;
mod volumes;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config::{DATA_DIR, server_config};
use super::{COLOR_LABEL, CONFIG_DIR, REVISION_LABEL, RUNTIME_PORT, Validated, deployment_name};
use crate::api::{Color, PodTemplateOverrides, RESERVED_LABEL_PREFIXES};

/// Seconds the kubelet waits beyond the runtime's own drain before it kills the container.
const GRACE_MARGIN_SECONDS: i64 = 5;

/// The pod template of the desired revision, before it is labelled with its colour and revision.
/// `config_key` is the ConfigMap key of the config it runs with.
pub fn pod_template(v: &Validated, config_key: &str) -> PodTemplateSpec {
    let runtime = &v.pipeline.spec.runtime;
    // Destructured without `..`: a new pod-level knob does not compile until it is wired here.
    let PodTemplateOverrides {
        labels,
        annotations,
        service_account_name,
        image_pull_secrets,
        node_selector,
        tolerations,
        affinity,
    } = runtime.pod_template.clone().unwrap_or_default();
    let mut pod_labels: BTreeMap<String, String> = labels
        .into_iter()
        .filter(|(k, _)| !RESERVED_LABEL_PREFIXES.iter().any(|p| k.starts_with(p)))
        .collect();
    pod_labels.extend(v.labels());
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            init_containers: embedded_ingest(v),
            containers: vec![runtime_container(v)],
            volumes: Some(volumes::volumes(v, config_key)),
            security_context: Some(crate::security::pod()),
            termination_grace_period_seconds: Some(termination_grace_period_seconds(v)),
            automount_service_account_token: Some(false),
            service_account_name,
            image_pull_secrets: non_empty(image_pull_secrets),
            node_selector: Some(node_selector).filter(|m| !m.is_empty()),
            tolerations: non_empty(tolerations),
            affinity,
            ..PodSpec::default()
        }),
    }
}

/// The runtime drains in-flight requests on SIGTERM for `shutdownGraceSeconds`; the pod gets a
/// little longer, so the drain is never cut short by a kill.
fn termination_grace_period_seconds(v: &Validated) -> i64 {
    let drain = i64::try_from(server_config(v).shutdown_grace_seconds).unwrap_or(i64::MAX / 2);
    drain + GRACE_MARGIN_SECONDS
}

fn config_path() -> String {
    format!("{CONFIG_DIR}/{}", volumes::CONFIG_FILE)
}

/// What the runtime and the ingest init container share: image, resources, environment from
/// ConfigMaps and Secrets, the config and scratch volumes, and the locked-down security context.
fn base_container(v: &Validated) -> Container {
    let runtime = &v.pipeline.spec.runtime;
    Container {
        image: Some(runtime.image.clone()),
        env_from: non_empty(runtime.env_from.clone()),
        resources: runtime.resources.clone(),
        volume_mounts: Some(volumes::shared_mounts()),
        security_context: Some(crate::security::container()),
        ..Container::default()
    }
}

fn runtime_container(v: &Validated) -> Container {
    let base = base_container(v);
    let probes = probes::probes(v.pipeline.spec.runtime.probes.as_ref());
    let mut mounts = base.volume_mounts.clone().unwrap_or_default();
    mounts.extend(volumes::api_keys_mount(v));
    let args = [
        "serve",
        "--config",
        &config_path(),
        "--listen",
        &format!("0.0.0.0:{RUNTIME_PORT}"),
        "--data-dir",
        DATA_DIR,
    ];
    Container {
        name: "runtime".into(),
        args: Some(args.map(String::from).to_vec()),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: RUNTIME_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: non_empty(env::runtime(v)),
        startup_probe: Some(probes.startup),
        readiness_probe: Some(probes.readiness),
        liveness_probe: Some(probes.liveness),
        volume_mounts: Some(mounts),
        ..base
    }
}

/// With the embedded store every pod holds its own copy of the index: an init container ingests the
/// RagIndex's ConfigMap sources into the pod's data volume before the runtime starts.
fn embedded_ingest(v: &Validated) -> Option<Vec<Container>> {
    let sources = volumes::embedded_sources(v);
    if sources.is_empty() {
        return None;
    }
    let base = base_container(v);
    let mut args = ["ingest", "--config", &config_path(), "--data-dir", DATA_DIR]
        .map(String::from)
        .to_vec();
    args.extend(sources.iter().map(|n| volumes::source_dir(n)));
    let mut mounts = base.volume_mounts.clone().unwrap_or_default();
    mounts.extend(volumes::source_mounts(&sources));
    Some(vec![Container {
        name: "ingest".into(),
        args: Some(args),
        env: non_empty(env::ingest(v)),
        volume_mounts: Some(mounts),
        ..base
    }])
}

/// The API server drops empty lists; sending one would look like a change every time.
fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    Some(items).filter(|i| !i.is_empty())
}

/// Revision of a pod template: a short hash of everything that reaches the pods.
pub fn revision(template: &PodTemplateSpec) -> String {
    let json = serde_json::to_vec(template).expect("a pod template always serialises");
    crate::digest::short_hex(&json, 10)
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
    if v.index.spec.vector_store.qdrant.is_some() {
        // The RagIndex controller keeps every collection a Deployment names (rollbacks included).
        meta.annotations = Some(BTreeMap::from([(
            crate::index::COLLECTION_ANNOTATION.into(),
            v.collection.clone(),
        )]));
    }
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
