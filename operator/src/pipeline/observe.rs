//! Observe: the children of a RagPipeline as the caches hold them, reduced to what the cutover
//! decides on. Nothing here does I/O; the reductions are pure and unit-tested.

use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::build::{
    COLOR_LABEL, PIPELINE_LABEL, REVISION_LABEL, RUNTIME_PORT, config_map_name, deployment_name,
    preview_service_name,
};
use super::cache::Stores;
use super::rollout::{ColorObservation, Live, Observed};
use crate::api::Color;

/// The children of one pipeline as the API server has them now.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub blue: Option<Deployment>,
    pub green: Option<Deployment>,
    pub config_map: Option<ConfigMap>,
    pub active_service: Option<Service>,
    pub preview_service: Option<Service>,
    pub hpa: Option<HorizontalPodAutoscaler>,
    pub pdb: Option<PodDisruptionBudget>,
    pub pods: Vec<Pod>,
}

impl Snapshot {
    /// The children of pipeline `ns/name` as the caches hold them.
    pub fn from_stores(stores: &Stores, ns: &str, name: &str) -> Self {
        let deployment =
            |child: &str| crate::watch::get(&stores.deployments, ns, child).map(|o| (*o).clone());
        let svc =
            |child: &str| crate::watch::get(&stores.services, ns, child).map(|o| (*o).clone());
        Self {
            blue: deployment(&deployment_name(name, Color::Blue)),
            green: deployment(&deployment_name(name, Color::Green)),
            config_map: crate::watch::get(&stores.config_maps, ns, &config_map_name(name))
                .map(|o| (*o).clone()),
            active_service: svc(name),
            preview_service: svc(&preview_service_name(name)),
            hpa: crate::watch::get(&stores.hpas, ns, name).map(|o| (*o).clone()),
            pdb: crate::watch::get(&stores.pdbs, ns, name).map(|o| (*o).clone()),
            pods: (stores.pods.of(ns, name).iter())
                .map(|p| (**p).clone())
                .collect(),
        }
    }

    pub fn deployment(&self, color: Color) -> Option<&Deployment> {
        match color {
            Color::Blue => self.blue.as_ref(),
            Color::Green => self.green.as_ref(),
        }
    }

    pub fn observed(&self) -> Observed {
        let of = |c| {
            self.deployment(c)
                .map(|d| color_observation(d, &self.pods, c))
        };
        Observed {
            blue: of(Color::Blue),
            green: of(Color::Green),
        }
    }

    /// ConfigMaps the existing Deployments mount.
    pub fn config_maps_mounted(&self) -> Vec<String> {
        Color::ALL
            .iter()
            .filter_map(|c| self.deployment(*c))
            .flat_map(mounted_config_maps)
            .collect()
    }

    /// What the live Service `<name>` selects now.
    pub fn live(&self) -> Option<Live> {
        let svc = self.active_service.as_ref()?;
        let selector = svc.spec.as_ref()?.selector.as_ref();
        match label(selector, COLOR_LABEL) {
            Some("blue") => Some(Live::Only(Color::Blue)),
            Some("green") => Some(Live::Only(Color::Green)),
            Some(_) => None,
            None => label(selector, PIPELINE_LABEL).map(|_| Live::Both),
        }
    }

    /// Config keys the existing Deployments mount, so their pods keep finding their config.
    pub fn config_keys_in_use(&self) -> Vec<String> {
        Color::ALL
            .iter()
            .filter_map(|c| self.deployment(*c))
            .filter_map(mounted_config_key)
            .collect()
    }
}

fn label<'a>(
    labels: Option<&'a std::collections::BTreeMap<String, String>>,
    key: &str,
) -> Option<&'a str> {
    labels.and_then(|l| l.get(key)).map(String::as_str)
}

/// A pod that a Service would send traffic to: Ready, with an IP, not terminating.
fn serving(pod: &Pod) -> Option<IpAddr> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .as_ref()?
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return None;
    }
    status.pod_ip.as_deref()?.parse().ok()
}

/// Addresses of the serving pods of `color` that run `revision`.
pub fn serving_addrs(pods: &[Pod], color: Color, revision: &str) -> Vec<SocketAddr> {
    let port = u16::try_from(RUNTIME_PORT).expect("a valid port");
    pods.iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            label(labels, COLOR_LABEL) == Some(color.as_str())
                && label(labels, REVISION_LABEL) == Some(revision)
        })
        .filter_map(serving)
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

/// One colour's Deployment and pods, reduced. The colour is rolled out when the Deployment's
/// status says so, or as soon as `replicas` serving pods carry the colour and the Deployment's
/// revision: the revision label is in the pod template, so those pods run the wanted template.
/// Reading the pods saves waiting for kube-controller-manager to fold their readiness into the
/// Deployment's status (seconds under load), as Argo Rollouts does by reading ReplicaSets and pods.
pub fn color_observation(d: &Deployment, pods: &[Pod], color: Color) -> ColorObservation {
    let revision = label(d.metadata.labels.as_ref(), REVISION_LABEL).map(str::to_string);
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let ready_endpoints = revision
        .as_deref()
        .map_or(0, |r| serving_addrs(pods, color, r).len());
    let ready_endpoints = i32::try_from(ready_endpoints).unwrap_or(i32::MAX);
    let deployment_rolled_out = status.observed_generation >= d.metadata.generation
        && status.updated_replicas.unwrap_or(0) == replicas
        && status.replicas.unwrap_or(0) == replicas
        && status.available_replicas.unwrap_or(0) >= replicas;
    ColorObservation {
        revision,
        replicas,
        rolled_out: deployment_rolled_out || ready_endpoints >= replicas,
        ready_endpoints,
    }
}

/// ConfigMaps mounted by a Deployment's pods.
fn mounted_config_maps(d: &Deployment) -> impl Iterator<Item = String> + '_ {
    d.spec
        .iter()
        .filter_map(|s| s.template.spec.as_ref())
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.config_map.as_ref().map(|c| c.name.clone()))
}

fn mounted_config_key(d: &Deployment) -> Option<String> {
    let volumes = d.spec.as_ref()?.template.spec.as_ref()?.volumes.as_ref()?;
    let config = volumes
        .iter()
        .find(|v| v.name == "config")?
        .config_map
        .as_ref()?;
    Some(config.items.as_ref()?.first()?.key.clone())
}

#[cfg(test)]
#[path = "observe_tests.rs"]
mod tests;
