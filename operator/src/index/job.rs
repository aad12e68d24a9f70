//! The ingest Job of one index revision and the ConfigMap holding its runtime config: built
//! purely from the index, the revision and what the previous ingest stored.
//!
//! The Job runs `rag-runtime ingest --revision <rev>` in the runtime image: it fills
//! `<alias>-<rev>`, checks the point count, points the alias at it, and writes its result as one
//! JSON object to its termination message, which the operator copies into the index status.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use rag_runtime::config::{EMBEDDING_API_KEY_ENV, QDRANT_API_KEY_ENV};

use super::revision::SourceVersion;
use super::{COMPONENT, INDEX_LABEL, REVISION_LABEL, SPEC_REVISION_ANNOTATION};
use crate::api::RagIndex;
use crate::meta::env_from_secret as from_secret;

const CONFIG_DIR: &str = "/etc/ragops";
const CONFIG_FILE: &str = "config.yaml";
const SOURCES_DIR: &str = "/sources";
/// Where the Job writes its result; the kubelet keeps up to 4 KiB of it in the pod status.
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// Longest Job name: it becomes the pods' `job-name` label value (63 characters at most).
const MAX_NAME: usize = 63;

/// What one ingest needs beyond the index.
pub struct Plan<'a> {
    pub index: &'a RagIndex,
    pub revision: &'a str,
    /// The revision without the schedule tick (see [`super::SPEC_REVISION_ANNOTATION`]).
    pub spec_revision: &'a str,
    pub sources: &'a [SourceVersion],
    /// The source digest of the collection serving now: an ingest that finds the same content
    /// stores nothing.
    pub unless_digest: Option<&'a str>,
    /// The operator's default runtime image (`spec.ingest.image` overrides it).
    pub default_image: &'a str,
    /// The cluster's pod and service networks, refused to `url` sources (`--cluster-cidrs`).
    pub cluster_cidrs: &'a [ipnet::IpNet],
}

/// `<index>-ingest-<revision>`, the index name shortened to fit.
pub fn name(index: &str, revision: &str) -> String {
    let suffix = format!("-ingest-{revision}");
    let keep = MAX_NAME.saturating_sub(suffix.len());
    let prefix: String = index.chars().take(keep).collect();
    format!("{}{suffix}", prefix.trim_end_matches(['-', '.']))
}

/// Labels of the Job, its pods and its ConfigMap.
pub fn labels(index: &RagIndex, revision: &str) -> BTreeMap<String, String> {
    let name = index.name_any();
    let mut labels = crate::meta::standard_labels("rag-runtime", &name, COMPONENT);
    labels.insert(INDEX_LABEL.into(), name);
    labels.insert(REVISION_LABEL.into(), revision.into());
    labels
}

fn meta(plan: &Plan) -> ObjectMeta {
    let name = name(&plan.index.name_any(), plan.revision);
    let mut meta = crate::meta::owned_by(plan.index, name, labels(plan.index, plan.revision));
    meta.annotations = Some(BTreeMap::from([(
        SPEC_REVISION_ANNOTATION.into(),
        plan.spec_revision.into(),
    )]));
    meta
}

/// The runtime config the Job reads: the index's store, alias, embedding and chunking, and
/// where its `url` sources may be fetched from.
pub fn config_map(plan: &Plan) -> ConfigMap {
    let alias = super::config::alias(plan.index);
    let mut config = super::config::with_index(plan.index, alias, &plan.index.spec.embedding);
    config.url_sources = super::config::url_sources(plan.index, plan.cluster_cidrs);
    let yaml = config.to_yaml();
    ConfigMap {
        metadata: meta(plan),
        data: Some(BTreeMap::from([(CONFIG_FILE.into(), yaml)])),
        ..ConfigMap::default()
    }
}

pub fn job(plan: &Plan) -> Job {
    let spec = &plan.index.spec.ingest;
    let metadata = meta(plan);
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: metadata.labels.clone(),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container(plan)],
            volumes: Some(volumes(plan, metadata.name.as_deref().unwrap_or_default())),
            restart_policy: Some("Never".into()),
            security_context: Some(crate::security::pod()),
            automount_service_account_token: Some(false),
            ..PodSpec::default()
        }),
    };
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(spec.backoff_limit),
            active_deadline_seconds: Some(spec.active_deadline_seconds),
            template,
            ..JobSpec::default()
        }),
        status: None,
    }
}

fn container(plan: &Plan) -> Container {
    let mut args: Vec<String> = [
        "ingest",
        "--config",
        &format!("{CONFIG_DIR}/{CONFIG_FILE}"),
        "--revision",
        plan.revision,
        "--report-file",
        TERMINATION_MESSAGE_PATH,
    ]
    .map(String::from)
    .into();
    if let Some(digest) = plan.unless_digest {
        args.extend(["--unless-digest".into(), digest.into()]);
    }
    args.extend(
        plan.sources
            .iter()
            .enumerate()
            .map(|(i, s)| source_arg(i, s)),
    );
    Container {
        name: COMPONENT.into(),
        image: Some(
            plan.index
                .spec
                .ingest
                .image
                .clone()
                .unwrap_or_else(|| plan.default_image.into()),
        ),
        args: Some(args),
        env: Some(env(plan.index)).filter(|e| !e.is_empty()),
        resources: plan.index.spec.ingest.resources.clone(),
        volume_mounts: Some(mounts(plan)),
        termination_message_path: Some(TERMINATION_MESSAGE_PATH.into()),
        termination_message_policy: Some("File".into()),
        security_context: Some(crate::security::container()),
        ..Container::default()
    }
}

/// The command-line source of the i-th source: a mounted directory, or the URL itself.
fn source_arg(i: usize, source: &SourceVersion) -> String {
    match source {
        SourceVersion::ConfigMap { name, .. } => format!("{SOURCES_DIR}/{name}"),
        SourceVersion::Url { url } => url.clone(),
        SourceVersion::Volume { path, .. } => {
            format!("{SOURCES_DIR}/volume-{i}{}", path.trim_end_matches('/'))
        }
    }
}

fn volumes(plan: &Plan, config_map: &str) -> Vec<Volume> {
    let config = Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.into(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    };
    let tmp = Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    let sources = plan
        .sources
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            SourceVersion::ConfigMap { name, .. } => Some(Volume {
                name: format!("source-{i}"),
                config_map: Some(ConfigMapVolumeSource {
                    name: name.clone(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            }),
            SourceVersion::Volume { claim, .. } => Some(Volume {
                name: format!("source-{i}"),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: Some(true),
                }),
                ..Volume::default()
            }),
            SourceVersion::Url { .. } => None,
        });
    [config, tmp].into_iter().chain(sources).collect()
}

fn mounts(plan: &Plan) -> Vec<VolumeMount> {
    let mount = |name: String, path: String| VolumeMount {
        name,
        mount_path: path,
        read_only: Some(true),
        ..VolumeMount::default()
    };
    let sources = plan
        .sources
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            SourceVersion::ConfigMap { name, .. } => Some(mount(
                format!("source-{i}"),
                format!("{SOURCES_DIR}/{name}"),
            )),
            SourceVersion::Volume { .. } => Some(mount(
                format!("source-{i}"),
                format!("{SOURCES_DIR}/volume-{i}"),
            )),
            SourceVersion::Url { .. } => None,
        });
    let tmp = VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..VolumeMount::default()
    };
    [mount("config".into(), CONFIG_DIR.into()), tmp]
        .into_iter()
        .chain(sources)
        .collect()
}

/// Provider credentials, by reference only.
fn env(index: &RagIndex) -> Vec<EnvVar> {
    let spec = &index.spec;
    let qdrant = spec.vector_store.qdrant.as_ref();
    [
        (
            EMBEDDING_API_KEY_ENV,
            spec.embedding.api_key_secret_ref.as_ref(),
        ),
        (
            QDRANT_API_KEY_ENV,
            qdrant.and_then(|q| q.api_key_secret_ref.as_ref()),
        ),
    ]
    .into_iter()
    .filter_map(|(name, r)| r.map(|r| from_secret(name, r)))
    .collect()
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
