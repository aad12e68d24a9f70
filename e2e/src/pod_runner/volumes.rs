//! A pod's volumes as directories on this machine, and the table that turns container paths
//! (mount paths, the termination message file) into paths under them.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Container, KeyToPath, PodSpec, Volume};

use super::inputs::{Kind, PodInputs, containers};

/// File mode of ConfigMap and Secret keys without `defaultMode` or an item `mode` (0644).
const DEFAULT_MODE: i32 = 0o644;

/// Volume name → its directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Volumes {
    pub dirs: BTreeMap<String, PathBuf>,
}

/// Writes every volume of `spec` into `<root>/<volume name>`: `configMap` and `secret` volumes
/// (every key, or `items` mapped to their paths, with their modes), `emptyDir` (an empty
/// directory), `projected` (its configMap and secret sources; token and downward API sources are
/// left out). Any other type is an error only if a container mounts it.
pub(crate) fn materialise(spec: &PodSpec, inputs: &PodInputs, root: &Path) -> Result<Volumes> {
    let mounted: BTreeSet<&str> = containers(spec)
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .map(|m| m.name.as_str())
        .collect();
    let mut dirs = BTreeMap::new();
    for volume in spec.volumes.iter().flatten() {
        let dir = root.join(relative(&volume.name)?);
        let written = materialise_one(volume, inputs, &dir)
            .with_context(|| format!("volume {}", volume.name))?;
        if written {
            dirs.insert(volume.name.clone(), dir);
        } else if mounted.contains(volume.name.as_str()) {
            bail!(
                "volume {}: unsupported type (the runner knows configMap, secret, emptyDir and projected)",
                volume.name
            );
        }
    }
    Ok(Volumes { dirs })
}

/// Ok(false): a type the runner does not know.
fn materialise_one(volume: &Volume, inputs: &PodInputs, dir: &Path) -> Result<bool> {
    if volume.empty_dir.is_some() {
        std::fs::create_dir_all(dir)?;
    } else if let Some(c) = &volume.config_map {
        let keys = Keyed::new(Kind::ConfigMap, &c.name, c.items.as_deref(), c.optional);
        write_keys(dir, inputs, &keys, c.default_mode)?;
    } else if let Some(s) = &volume.secret {
        let name = s.secret_name.as_deref().unwrap_or_default();
        let keys = Keyed::new(Kind::Secret, name, s.items.as_deref(), s.optional);
        write_keys(dir, inputs, &keys, s.default_mode)?;
    } else if let Some(p) = &volume.projected {
        std::fs::create_dir_all(dir)?;
        for source in p.sources.iter().flatten() {
            if let Some(c) = &source.config_map {
                let keys = Keyed::new(Kind::ConfigMap, &c.name, c.items.as_deref(), c.optional);
                write_keys(dir, inputs, &keys, p.default_mode)?;
            }
            if let Some(s) = &source.secret {
                let keys = Keyed::new(Kind::Secret, &s.name, s.items.as_deref(), s.optional);
                write_keys(dir, inputs, &keys, p.default_mode)?;
            }
        }
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// The keys of one ConfigMap or Secret, as a volume (or projection) selects them.
struct Keyed<'a> {
    kind: Kind,
    name: &'a str,
    items: Option<&'a [KeyToPath]>,
    optional: bool,
}

impl<'a> Keyed<'a> {
    fn new(kind: Kind, name: &'a str, items: Option<&'a [KeyToPath]>, opt: Option<bool>) -> Self {
        Self {
            kind,
            name,
            items,
            optional: opt.unwrap_or(false),
        }
    }
}

fn write_keys(dir: &Path, inputs: &PodInputs, k: &Keyed, default_mode: Option<i32>) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let Some(data) = inputs.data(k.kind, k.name) else {
        if k.optional {
            return Ok(());
        }
        bail!("{:?} {} not found", k.kind, k.name);
    };
    let mode = default_mode.unwrap_or(DEFAULT_MODE);
    let files: Vec<(&str, &[u8], i32)> = match k.items {
        None => data
            .iter()
            .map(|(key, v)| (key.as_str(), &v[..], mode))
            .collect(),
        Some(items) => {
            let mut files = vec![];
            for item in items {
                match data.get(&item.key) {
                    Some(v) => files.push((item.path.as_str(), &v[..], item.mode.unwrap_or(mode))),
                    None if k.optional => {}
                    None => bail!("{:?} {} has no key {}", k.kind, k.name, item.key),
                }
            }
            files
        }
    };
    for (path, bytes, mode) in files {
        let target = dir.join(relative(path)?);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, bytes).with_context(|| format!("writing {}", target.display()))?;
        let perms = std::fs::Permissions::from_mode((mode & 0o7777) as u32);
        std::fs::set_permissions(&target, perms)?;
    }
    Ok(())
}

/// A relative path that stays below its base (no root, no `..`), as the API server requires.
pub(crate) fn relative(path: &str) -> Result<&Path> {
    let p = Path::new(path);
    let plain = p.components().all(|c| matches!(c, Component::Normal(_)));
    if path.is_empty() || !plain {
        bail!("{path:?} is not a plain relative path");
    }
    Ok(p)
}

/// Container paths → paths on this machine. A string is rewritten when it is such a path or lies
/// below one (whole components: `/data` matches `/data/x`, never `/database`), and so is the value
/// after the first `=` (`--flag=/path`). The longest container path wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mounts(Vec<(String, PathBuf)>);

impl Mounts {
    /// The container's volume mounts (with `subPath`), pointing into `volumes`.
    pub fn for_container(container: &Container, volumes: &Volumes) -> Result<Self> {
        let mut mounts = Self::default();
        for m in container.volume_mounts.iter().flatten() {
            let Some(dir) = volumes.dirs.get(&m.name) else {
                bail!(
                    "container {} mounts unknown volume {}",
                    container.name,
                    m.name
                );
            };
            if m.sub_path_expr.as_deref().is_some_and(|e| !e.is_empty()) {
                bail!("container {}: subPathExpr is not supported", container.name);
            }
            let host = match m.sub_path.as_deref().filter(|p| !p.is_empty()) {
                Some(sub) => dir.join(relative(sub)?),
                None => dir.clone(),
            };
            mounts.add(&m.mount_path, host);
        }
        Ok(mounts)
    }

    pub fn add(&mut self, container_path: &str, host: PathBuf) {
        let path = match container_path.trim_end_matches('/') {
            "" => "/",
            p => p,
        };
        self.0.push((path.to_string(), host));
        self.0.sort_by_key(|(c, _)| std::cmp::Reverse(c.len()));
    }

    /// Where `container_path` itself is mounted, if it is a mount point.
    pub fn host(&self, container_path: &str) -> Option<&Path> {
        self.0
            .iter()
            .find(|(c, _)| c == container_path)
            .map(|(_, h)| h.as_path())
    }

    pub fn rewrite(&self, s: &str) -> String {
        if let Some(r) = self.rewrite_path(s) {
            return r;
        }
        if let Some((head, tail)) = s.split_once('=')
            && let Some(r) = self.rewrite_path(tail)
        {
            return format!("{head}={r}");
        }
        s.to_string()
    }

    fn rewrite_path(&self, s: &str) -> Option<String> {
        self.0.iter().find_map(|(path, host)| {
            let rest = s.strip_prefix(path.as_str())?;
            (rest.is_empty() || rest.starts_with('/') && path != "/")
                .then(|| format!("{}{rest}", host.display()))
        })
    }
}

#[cfg(test)]
#[path = "volumes_tests.rs"]
mod tests;
