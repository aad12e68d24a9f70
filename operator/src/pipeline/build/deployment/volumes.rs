//! The pod's volumes and where they are mounted: the config (only this revision's ConfigMap key),
//! the `/data` and `/tmp` emptyDirs (size-limited on request), the API keys Secret, and with the
//! embedded store the ConfigMap sources the ingest init container reads.

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, EmptyDirVolumeSource, KeyToPath, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::super::config::DATA_DIR;
use super::super::{CONFIG_DIR, Validated, config_map_name};

/// File name of the runtime config inside [`CONFIG_DIR`].
pub(super) const CONFIG_FILE: &str = "config.yaml";
/// Directory of the API keys file. Not under [`CONFIG_DIR`]: a mount point inside a read-only
/// volume cannot be created.
pub(super) const API_KEYS_DIR: &str = "/var/run/secrets/ragops/api-keys";
/// File name of the API keys inside [`API_KEYS_DIR`].
pub(super) const API_KEYS_FILE: &str = "keys";
/// Owner and group (the pod's fsGroup) may read the API keys; nobody may write them.
const API_KEYS_MODE: i32 = 0o440;

const CONFIG: &str = "config";
const DATA: &str = "data";
const TMP: &str = "tmp";
const API_KEYS: &str = "api-keys";

/// Every volume of the pod.
pub(super) fn volumes(v: &Validated, config_key: &str) -> Vec<Volume> {
    let runtime = &v.pipeline.spec.runtime;
    let config = Volume {
        name: CONFIG.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map_name(&v.name()),
            items: Some(vec![KeyToPath {
                key: config_key.into(),
                path: CONFIG_FILE.into(),
                mode: None,
            }]),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    };
    let api_keys = api_keys_ref(v).map(|r| Volume {
        name: API_KEYS.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(r.name.clone()),
            items: Some(vec![KeyToPath {
                key: r.key.clone(),
                path: API_KEYS_FILE.into(),
                mode: Some(API_KEYS_MODE),
            }]),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    });
    let sources = embedded_sources(v).into_iter().map(|name| Volume {
        name: source_volume(name),
        config_map: Some(ConfigMapVolumeSource {
            name: name.into(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    });
    [
        config,
        empty_dir(DATA, runtime.data_size_limit.as_ref()),
        empty_dir(TMP, runtime.tmp_size_limit.as_ref()),
    ]
    .into_iter()
    .chain(api_keys)
    .chain(sources)
    .collect()
}

fn empty_dir(name: &str, size_limit: Option<&Quantity>) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: None,
            size_limit: size_limit.cloned(),
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        // The API server drops `readOnly: false`; sending it would look like a change every time.
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// Mounts of both containers: the config, the data and the scratch space.
pub(super) fn shared_mounts() -> Vec<VolumeMount> {
    vec![
        mount(CONFIG, CONFIG_DIR, true),
        mount(DATA, DATA_DIR, false),
        mount(TMP, "/tmp", false),
    ]
}

/// The API keys Secret, mounted into the runtime container only.
pub(super) fn api_keys_mount(v: &Validated) -> Option<VolumeMount> {
    api_keys_ref(v).map(|_| mount(API_KEYS, API_KEYS_DIR, true))
}

/// Path of the API keys file inside the runtime container, when there is one.
pub(super) fn api_keys_path(v: &Validated) -> Option<String> {
    api_keys_ref(v).map(|_| format!("{API_KEYS_DIR}/{API_KEYS_FILE}"))
}

fn api_keys_ref(v: &Validated) -> Option<&crate::api::SecretKeyRef> {
    v.pipeline
        .spec
        .server
        .as_ref()
        .and_then(|s| s.api_keys_secret_ref.as_ref())
}

/// ConfigMaps every pod ingests into its own embedded store; none with a Qdrant server, which
/// the indexing Job fills.
pub(super) fn embedded_sources(v: &Validated) -> Vec<&str> {
    let index = &v.index.spec;
    if index.vector_store.embedded.is_none() {
        return vec![];
    }
    index
        .sources
        .iter()
        .filter_map(|s| s.config_map.as_ref())
        .map(|c| c.name.as_str())
        .collect()
}

fn source_volume(name: &str) -> String {
    format!("source-{name}")
}

/// Where the ingest init container sees a ConfigMap source.
pub(super) fn source_dir(name: &str) -> String {
    format!("/sources/{name}")
}

/// Mounts of the ConfigMap sources, for the ingest init container.
pub(super) fn source_mounts(names: &[&str]) -> Vec<VolumeMount> {
    names
        .iter()
        .map(|n| mount(&source_volume(n), &source_dir(n), true))
        .collect()
}
