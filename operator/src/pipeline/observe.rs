//! Observe: read the children of a RagPipeline and reduce them to what the cutover decides on.
//! Only `Snapshot::read` does I/O; the reductions below it are pure and unit-tested.

use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{Api, ListParams};

use super::build::{
    COLOR_LABEL, PIPELINE_LABEL, REVISION_LABEL, RUNTIME_PORT, config_map_name, deployment_name,
    preview_service_name,
};
use super::rollout::{ColorObservation, Observed};
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
    pub async fn read(client: &Client, ns: &str, name: &str) -> Result<Self, kube::Error> {
        let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
        let services = Api::<Service>::namespaced(client.clone(), ns);
        let pods = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&format!("{PIPELINE_LABEL}={name}")))
            .await?;
        Ok(Self {
            blue: deployments
                .get_opt(&deployment_name(name, Color::Blue))
                .await?,
            green: deployments
                .get_opt(&deployment_name(name, Color::Green))
                .await?,
            config_map: Api::<ConfigMap>::namespaced(client.clone(), ns)
                .get_opt(&config_map_name(name))
                .await?,
            active_service: services.get_opt(name).await?,
            preview_service: services.get_opt(&preview_service_name(name)).await?,
            hpa: Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await?,
            pdb: Api::<PodDisruptionBudget>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await?,
            pods: pods.items,
        })
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

pub fn color_observation(d: &Deployment, pods: &[Pod], color: Color) -> ColorObservation {
    let revision = label(d.metadata.labels.as_ref(), REVISION_LABEL).map(str::to_string);
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let rolled_out = status.observed_generation >= d.metadata.generation
        && status.updated_replicas.unwrap_or(0) == replicas
        && status.replicas.unwrap_or(0) == replicas
        && status.available_replicas.unwrap_or(0) >= replicas;
    let ready_endpoints = revision
        .as_deref()
        .map_or(0, |r| serving_addrs(pods, color, r).len());
    ColorObservation {
        revision,
        replicas,
        rolled_out,
        ready_endpoints: i32::try_from(ready_endpoints).unwrap_or(i32::MAX),
    }
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
