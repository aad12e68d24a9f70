//! Apply: server-side apply under one field manager, skipped when the API server already has
//! everything we would send, so a steady pipeline causes no writes at all.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::info;

use super::build::{self, Validated};
use super::observe::Snapshot;
use super::rollout::{Decision, DeploymentPlan};
use crate::api::Color;

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "ragops";

/// The first field `desired` sets that `observed` lacks or holds differently, as a path such as
/// `.spec.template.spec.containers[0].image` (`""` for the root); none when nothing differs.
/// Fields only the API server sets (defaults, status, server metadata) are ignored.
pub fn first_difference(desired: &Value, observed: &Value) -> Option<String> {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d.iter().find_map(|(k, dv)| match o.get(k) {
            None => Some(format!(".{k}")),
            Some(ov) => first_difference(dv, ov).map(|rest| format!(".{k}{rest}")),
        }),
        (Value::Array(d), Value::Array(o)) if d.len() == o.len() => {
            let mut pairs = d.iter().zip(o).enumerate();
            pairs.find_map(|(i, (dv, ov))| {
                first_difference(dv, ov).map(|rest| format!("[{i}]{rest}"))
            })
        }
        _ if desired == observed => None,
        _ => Some(String::new()),
    }
}

/// Applies `desired` unless `observed` already matches it; returns whether it wrote.
pub async fn apply<K>(api: &Api<K>, desired: &K, observed: Option<&K>) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    if let Some(observed) = observed {
        let d = serde_json::to_value(desired).map_err(kube::Error::SerdeError)?;
        let o = serde_json::to_value(observed).map_err(kube::Error::SerdeError)?;
        match first_difference(&d, &o) {
            None => return Ok(false),
            Some(field) => {
                info!(kind = %K::kind(&()), name = %desired.name_any(), %field, "updating")
            }
        }
    } else {
        info!(kind = %K::kind(&()), name = %desired.name_any(), "creating");
    }
    api.patch(
        &desired.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(desired),
    )
    .await?;
    Ok(true)
}

/// Sets a Deployment's replica count through the scale subresource, leaving its template alone.
pub async fn scale<K>(api: &Api<K>, name: &str, replicas: i32) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let patch = json!({ "spec": { "replicas": replicas } });
    api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Deletes a child that is no longer wanted, if it is there.
pub async fn remove<K>(api: &Api<K>, observed: Option<&K>) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let Some(observed) = observed else {
        return Ok(false);
    };
    match api
        .delete(&observed.name_any(), &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Brings every child in line with `decision`. Each child kind is listed here explicitly, in the
/// order that keeps pods working: config first, then Deployments, then the Services that route to
/// them, then what hangs off the active colour.
pub async fn children(
    client: &Client,
    v: &Validated,
    observed: &Snapshot,
    decision: &Decision,
    (config_key, config_yaml): (&str, &str),
    template: &PodTemplateSpec,
    revision: &str,
) -> Result<(), kube::Error> {
    let ns = v.namespace();
    let client = client.clone();

    // Keep every config version an existing Deployment still mounts, plus the desired one.
    let previous = observed
        .config_map
        .as_ref()
        .and_then(|c| c.data.clone())
        .unwrap_or_default();
    let mut keys: BTreeMap<String, String> = observed
        .config_keys_in_use()
        .into_iter()
        .filter_map(|k| previous.get(&k).map(|yaml| (k, yaml.clone())))
        .collect();
    keys.insert(config_key.into(), config_yaml.into());
    apply(
        &Api::<ConfigMap>::namespaced(client.clone(), &ns),
        &build::config_map(v, keys),
        observed.config_map.as_ref(),
    )
    .await?;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    for color in Color::ALL {
        let current = observed.deployment(color);
        match decision.plan(color) {
            DeploymentPlan::Keep => {}
            DeploymentPlan::Apply { replicas } => {
                apply(
                    &deployments,
                    &build::deployment(v, color, replicas, template, revision),
                    current,
                )
                .await?;
            }
            DeploymentPlan::Scale { replicas } => {
                let now = current
                    .and_then(|d| d.spec.as_ref())
                    .and_then(|s| s.replicas);
                if current.is_some() && now != Some(replicas) {
                    scale(
                        &deployments,
                        &build::deployment_name(&v.name(), color),
                        replicas,
                    )
                    .await?;
                }
            }
        }
    }

    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    if let Some(color) = decision.preview_service {
        apply(
            &services,
            &build::preview_service(v, color),
            observed.preview_service.as_ref(),
        )
        .await?;
    }
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    match decision.active_service {
        Some(color) => {
            // The cutover itself: the active Service's selector moves to the new colour.
            apply(
                &services,
                &build::active_service(v, color),
                observed.active_service.as_ref(),
            )
            .await?;
            match build::hpa(v, color) {
                Some(hpa) => drop(apply(&hpas, &hpa, observed.hpa.as_ref()).await?),
                None => drop(remove(&hpas, observed.hpa.as_ref()).await?),
            }
            apply(&pdbs, &build::pdb(v, color), observed.pdb.as_ref()).await?;
        }
        None => {
            remove(&hpas, observed.hpa.as_ref()).await?;
            remove(&pdbs, observed.pdb.as_ref()).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_when_something_we_set_differs() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}, "metadata": {"labels": {"a": "1"}}});
        let cases = [
            // Server-side defaults and extra labels do not count.
            (
                json!({"spec": {"replicas": 2, "ports": [{"port": 80, "protocol": "TCP"}], "clusterIP": "10.0.0.1"},
                    "metadata": {"labels": {"a": "1", "b": "2"}, "uid": "x"}}),
                None,
            ),
            (
                json!({"spec": {"replicas": 3, "ports": [{"port": 80}]}, "metadata": {"labels": {"a": "1"}}}),
                Some(".spec.replicas"),
            ),
            (
                json!({"spec": {"replicas": 2, "ports": []}, "metadata": {"labels": {"a": "1"}}}),
                Some(".spec.ports"),
            ),
            (
                json!({"spec": {"replicas": 2, "ports": [{"port": 81}]}, "metadata": {"labels": {"a": "1"}}}),
                Some(".spec.ports[0].port"),
            ),
            (
                json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}, "metadata": {}}),
                Some(".metadata.labels"),
            ),
        ];
        for (observed, expected) in cases {
            assert_eq!(
                first_difference(&desired, &observed),
                expected.map(String::from),
                "{observed}"
            );
        }
    }
}
