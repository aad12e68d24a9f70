//! A container's environment as the kubelet would give it: `envFrom` first, then `env` (later
//! entries win), with `$(VAR)` references expanded.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::{Container, EnvVarSource, Pod};

use super::inputs::{Kind, PodInputs};

/// The variables the spec gives the container, by name.
pub(crate) fn resolve(
    container: &Container,
    pod: &Pod,
    inputs: &PodInputs,
) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or_default();
        let sources = [
            from.config_map_ref
                .as_ref()
                .map(|r| (Kind::ConfigMap, &r.name, r.optional)),
            from.secret_ref
                .as_ref()
                .map(|r| (Kind::Secret, &r.name, r.optional)),
        ];
        for (kind, name, optional) in sources.into_iter().flatten() {
            let Some(data) = inputs.data(kind, name) else {
                if optional.unwrap_or(false) {
                    continue;
                }
                bail!("envFrom: {kind:?} {name} not found");
            };
            for (key, value) in data {
                let name = format!("{prefix}{key}");
                // The kubelet skips keys that are not valid variable names (and records an Event).
                if let (true, Ok(value)) = (valid_name(&name), String::from_utf8(value)) {
                    vars.insert(name, value);
                }
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (_, Some(from)) => match value_from(from, pod, inputs)? {
                Some(v) => v,
                None => continue, // an optional reference that is absent
            },
            (Some(v), None) => expand(v, &vars),
            (None, None) => String::new(),
        };
        vars.insert(var.name.clone(), value);
    }
    Ok(vars)
}

/// `valueFrom`: a key of a Secret or ConfigMap, or a field of the pod.
fn value_from(from: &EnvVarSource, pod: &Pod, inputs: &PodInputs) -> Result<Option<String>> {
    let (kind, name, key, optional) = if let Some(r) = &from.secret_key_ref {
        (Kind::Secret, &r.name, &r.key, r.optional)
    } else if let Some(r) = &from.config_map_key_ref {
        (Kind::ConfigMap, &r.name, &r.key, r.optional)
    } else if let Some(f) = &from.field_ref {
        return field(pod, &f.field_path).map(Some);
    } else {
        bail!("valueFrom: only secretKeyRef, configMapKeyRef and fieldRef are supported");
    };
    match inputs.text(kind, name, key)? {
        Some(v) => Ok(Some(v)),
        None if optional.unwrap_or(false) => Ok(None),
        None => bail!("{kind:?} {name} has no key {key}"),
    }
}

/// A `fieldRef` path: the pod's name, namespace, uid, labels/annotations, node, service account,
/// pod and host IP.
pub(crate) fn field(pod: &Pod, path: &str) -> Result<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let indexed = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        _ => match indexed("metadata.labels['", meta.labels.as_ref())
            .or_else(|| indexed("metadata.annotations['", meta.annotations.as_ref()))
        {
            Some(v) => Some(v),
            None => bail!("fieldRef {path} is not supported"),
        },
    };
    Ok(value.unwrap_or_default())
}

/// Kubernetes' `$(VAR)` expansion: a defined variable is replaced, an undefined reference is kept
/// as written, `$$` is a literal `$`.
pub(crate) fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&rest[i..i + 3 + end]),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A variable name as Kubernetes accepts it (relaxed validation, GA since 1.34): printable ASCII
/// without `=`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| (c.is_ascii_graphic() && c != '=') || c == ' ')
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
