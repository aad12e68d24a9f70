//! prometheus-operator's generated configuration, made runnable outside a pod.
//!
//! In a cluster, the Secret `prometheus-<name>` (key `prometheus.yaml.gz`) and the ConfigMaps
//! `prometheus-<name>-rulefiles-<n>` (label `prometheus-name=<name>`) are mounted into the
//! Prometheus pod, and prometheus-config-reloader expands `$(POD_NAME)` and triggers a reload. Here
//! they are read from the API server, written into the bed's directory with the minimal rewrite
//! ([`rewrite`]), and Prometheus is told to reload (`POST /-/reload`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams};
use serde_yaml::Value;

/// Where the pods mount the rule ConfigMaps (prometheus-operator's `RulesDir`).
const POD_RULES_DIR: &str = "/etc/prometheus/rules/";
/// Paths of a pod that the bed does not provide: a configuration naming one is refused.
const POD_PATHS: [&str; 2] = ["/etc/prometheus/", "/var/run/secrets/"];
const POLL: Duration = Duration::from_millis(500);

/// What to sync: the `Prometheus` object's generated files, into `dir`.
pub(super) struct Target {
    pub client: kube::Client,
    pub namespace: String,
    pub name: String,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
}

/// The generated files of one version (resource versions of the Secret and the ConfigMaps).
struct Generated {
    version: String,
    config_gz: Vec<u8>,
    /// `<ConfigMap name>/<key>` → rule file content.
    rule_files: BTreeMap<String, String>,
}

pub(super) struct SyncState {
    target: Target,
    written: Mutex<String>,
    loaded: AtomicU64,
    error: Mutex<Option<String>>,
}

impl SyncState {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            written: Mutex::new(String::new()),
            loaded: AtomicU64::new(0),
            error: Mutex::new(None),
        }
    }

    pub fn loaded(&self) -> u64 {
        self.loaded.load(Ordering::SeqCst)
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap().clone()
    }

    /// Writes the generated files if they changed since the last write: `None` while
    /// prometheus-operator has not written its Secret yet, else whether anything was written.
    pub async fn write_if_changed(&self) -> Result<Option<bool>> {
        let Some(generated) = self.fetch().await? else {
            return Ok(None);
        };
        if *self.written.lock().unwrap() == generated.version {
            return Ok(Some(false));
        }
        let t = &self.target;
        let gz = t.dir.join("prometheus.yaml.gz");
        std::fs::write(&gz, &generated.config_gz)?;
        let config = gunzip(&gz)?;
        let pod_name = format!("prometheus-{}-0", t.name);
        let rewritten = rewrite(&config, &t.dir.join("rules"), &t.kubeconfig, &pod_name)?;
        let rules_new = t.dir.join("rules.new");
        let _ = std::fs::remove_dir_all(&rules_new);
        for (path, content) in &generated.rule_files {
            let file = rules_new.join(path);
            std::fs::create_dir_all(file.parent().context("rule file without a directory")?)?;
            std::fs::write(file, content)?;
        }
        std::fs::create_dir_all(&rules_new)?;
        let _ = std::fs::remove_dir_all(t.dir.join("rules"));
        std::fs::rename(&rules_new, t.dir.join("rules"))?;
        std::fs::write(t.dir.join("prometheus.yaml.new"), rewritten)?;
        std::fs::rename(
            t.dir.join("prometheus.yaml.new"),
            t.dir.join("prometheus.yaml"),
        )?;
        *self.written.lock().unwrap() = generated.version;
        Ok(Some(true))
    }

    /// Marks the configuration on disk as loaded by Prometheus.
    pub fn mark_loaded(&self) {
        self.loaded.fetch_add(1, Ordering::SeqCst);
        *self.error.lock().unwrap() = None;
    }

    fn fail(&self, error: String) {
        *self.error.lock().unwrap() = Some(error);
    }

    async fn fetch(&self) -> Result<Option<Generated>> {
        let t = &self.target;
        let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &t.namespace);
        let Some(secret) = secrets.get_opt(&format!("prometheus-{}", t.name)).await? else {
            return Ok(None);
        };
        let Some(config_gz) = secret.data.and_then(|mut d| d.remove("prometheus.yaml.gz")) else {
            return Ok(None);
        };
        let mut version = secret.metadata.resource_version.unwrap_or_default();
        let maps: Api<ConfigMap> = Api::namespaced(t.client.clone(), &t.namespace);
        let selector = format!("prometheus-name={}", t.name);
        let mut rule_files = BTreeMap::new();
        for cm in maps
            .list(&ListParams::default().labels(&selector))
            .await?
            .items
        {
            let name = cm.metadata.name.unwrap_or_default();
            if !name.starts_with(&format!("prometheus-{}-rulefiles-", t.name)) {
                continue;
            }
            version.push_str(&format!(
                " {name}@{}",
                cm.metadata.resource_version.unwrap_or_default()
            ));
            for (key, content) in cm.data.unwrap_or_default() {
                rule_files.insert(format!("{name}/{key}"), content);
            }
        }
        Ok(Some(Generated {
            version,
            config_gz: config_gz.0,
            rule_files,
        }))
    }
}

/// Keeps Prometheus on prometheus-operator's latest configuration: polls the generated files,
/// and after writing a new version asks Prometheus to reload it.
pub(super) async fn reload_loop(
    sync: std::sync::Arc<SyncState>,
    http: reqwest::Client,
    url: String,
) {
    loop {
        match sync.write_if_changed().await {
            Ok(Some(true)) => match reload(&http, &url).await {
                Ok(()) => sync.mark_loaded(),
                Err(e) => sync.fail(format!("{e:#}")),
            },
            Ok(_) => {}
            Err(e) => sync.fail(format!("{e:#}")),
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn reload(http: &reqwest::Client, url: &str) -> Result<()> {
    let resp = http.post(format!("{url}/-/reload")).send().await?;
    let status = resp.status();
    if !status.is_success() {
        bail!(
            "Prometheus refused the new configuration ({status}): {}",
            resp.text().await?
        );
    }
    Ok(())
}

fn gunzip(path: &Path) -> Result<String> {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .context("running gzip -dc")?;
    if !out.status.success() {
        bail!(
            "gzip -dc {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The API server URL of the first cluster in `kubeconfig`.
pub(super) fn api_server(kubeconfig: &Path) -> Result<String> {
    let text = std::fs::read_to_string(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let kc: Value = serde_yaml::from_str(&text)?;
    kc["clusters"][0]["cluster"]["server"]
        .as_str()
        .map(String::from)
        .with_context(|| format!("no clusters[0].cluster.server in {}", kubeconfig.display()))
}

/// The generated configuration as it must be outside a pod, and nothing else changed:
/// - every `kubernetes_sd_configs` entry reads the API server through `kubeconfig` (in a pod it
///   uses the in-cluster service account, which needs no field);
/// - `rule_files` under `/etc/prometheus/rules/` (the ConfigMap mounts) point into `rules_dir`;
/// - `$(POD_NAME)` and `$(SHARD)` become `pod_name` and `0`: prometheus-config-reloader expands
///   them from the pod's environment (the external labels and the sharding relabelling use them).
///
/// Any other path of the pod or `$(VAR)` left in the result is an error: the bed would not behave
/// as the pod.
pub fn rewrite(
    config: &str,
    rules_dir: &Path,
    kubeconfig: &Path,
    pod_name: &str,
) -> Result<String> {
    let config = config
        .replace("$(POD_NAME)", pod_name)
        .replace("$(SHARD)", "0");
    if let Some(var) = unexpanded_var(&config) {
        bail!("the generated configuration uses $({var}), which the bed does not expand");
    }
    let mut doc: Value =
        serde_yaml::from_str(&config).context("parsing the generated configuration")?;
    let kubeconfig = Value::from(kubeconfig.display().to_string());
    for job in doc["scrape_configs"]
        .as_sequence_mut()
        .into_iter()
        .flatten()
    {
        for sd in job["kubernetes_sd_configs"]
            .as_sequence_mut()
            .into_iter()
            .flatten()
        {
            let sd = sd
                .as_mapping_mut()
                .context("a kubernetes_sd_configs entry is not a map")?;
            if sd.contains_key("api_server") || sd.contains_key("kubeconfig_file") {
                bail!("a kubernetes_sd_configs entry already names its API server: {sd:?}");
            }
            sd.insert("kubeconfig_file".into(), kubeconfig.clone());
        }
    }
    for file in doc["rule_files"].as_sequence_mut().into_iter().flatten() {
        if let Some(rest) = file.as_str().and_then(|f| f.strip_prefix(POD_RULES_DIR)) {
            *file = Value::from(rules_dir.join(rest).display().to_string());
        }
    }
    let out = serde_yaml::to_string(&doc)?;
    if let Some(path) = POD_PATHS.iter().find(|p| out.contains(*p)) {
        bail!(
            "the generated configuration names {path}..., which the bed does not provide:\n{out}"
        );
    }
    Ok(out)
}

/// The first `$(NAME)` (capitals, digits, `_`) in `text`: a variable prometheus-config-reloader
/// would expand.
fn unexpanded_var(text: &str) -> Option<&str> {
    text.match_indices("$(").find_map(|(i, _)| {
        let rest = &text[i + 2..];
        let name = &rest[..rest.find(')')?];
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        valid.then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERATED: &str = r#"
global:
  scrape_interval: 2s
  external_labels:
    prometheus: ns/bed
    prometheus_replica: $(POD_NAME)
rule_files:
- /etc/prometheus/rules/prometheus-bed-rulefiles-0/*.yaml
scrape_configs:
- job_name: serviceMonitor/ns/web/0
  kubernetes_sd_configs:
  - role: endpointslice
    namespaces:
      names: [ns]
  relabel_configs:
  - source_labels: [__meta_kubernetes_service_name]
    regex: web
    action: keep
  - target_label: __tmp_current_shard
    replacement: $(SHARD)
"#;

    #[test]
    fn rewrites_only_what_differs_outside_a_pod() {
        let out = rewrite(
            GENERATED,
            Path::new("/bed/rules"),
            Path::new("/k/admin"),
            "prometheus-bed-0",
        )
        .unwrap();
        let doc: Value = serde_yaml::from_str(&out).unwrap();
        let sd = &doc["scrape_configs"][0]["kubernetes_sd_configs"][0];
        assert_eq!(sd["kubeconfig_file"], "/k/admin");
        assert_eq!(sd["role"], "endpointslice");
        assert_eq!(
            doc["rule_files"][0],
            "/bed/rules/prometheus-bed-rulefiles-0/*.yaml"
        );
        assert_eq!(
            doc["global"]["external_labels"]["prometheus_replica"],
            "prometheus-bed-0"
        );
        let relabel = &doc["scrape_configs"][0]["relabel_configs"];
        // Expanded in the text, as the reloader does: a plain YAML 0 then.
        assert_eq!(relabel[1]["replacement"], Value::from(0));
        let original: Value = serde_yaml::from_str(GENERATED).unwrap();
        assert_eq!(
            relabel[0],
            original["scrape_configs"][0]["relabel_configs"][0]
        );
    }

    #[test]
    fn refuses_variables_it_does_not_expand() {
        let config = format!("{GENERATED}  sample_limit: $(SAMPLE_LIMIT)\n");
        let err = rewrite(&config, Path::new("/r"), Path::new("/k"), "p").unwrap_err();
        assert!(err.to_string().contains("$(SAMPLE_LIMIT)"), "{err}");
    }

    #[test]
    fn refuses_other_paths_of_the_pod() {
        let config =
            format!("{GENERATED}  authorization:\n    credentials_file: /var/run/secrets/token\n");
        let err = rewrite(&config, Path::new("/r"), Path::new("/k"), "p").unwrap_err();
        assert!(err.to_string().contains("/var/run/secrets/"), "{err}");
    }
}
