//! The desired children of a RagPipeline as one value, built purely from the validated spec, the
//! rendered pod template, the cutover decision and what exists now.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::build::{self, Validated};
use super::observe::Snapshot;
use super::rollout::{self, Decision, DeploymentPlan, Live};
use crate::api::Color;

/// The runtime config and pod template of the desired revision.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// Key of this config version in `<name>-config`.
    pub config_key: String,
    pub config_yaml: String,
    pub template: PodTemplateSpec,
    pub revision: String,
}

impl Rendered {
    pub fn new(v: &Validated) -> Self {
        let config_yaml = build::runtime_config(v).to_yaml();
        let config_key = build::config_key(&config_yaml);
        let mut template = build::pod_template(v, &config_key);
        build::pin(&mut template, v);
        let revision = build::revision(&template);
        Self {
            config_key,
            config_yaml,
            template,
            revision,
        }
    }
}

/// What one colour's Deployment should become.
#[derive(Clone, Debug, PartialEq)]
pub enum Workload {
    /// Leave it as it is (or absent).
    Keep,
    /// This Deployment, applied.
    Apply(Box<Deployment>),
    /// Only its replica count changes.
    Scale(i32),
}

/// Every child the pipeline should have. The applier destructures it field by field, so a child
/// added here and forgotten there does not compile.
#[derive(Clone, Debug)]
pub struct Desired {
    pub config_map: ConfigMap,
    /// Immutable copies of the sources the pods ingest, one per content version in use.
    pub sources: Vec<ConfigMap>,
    pub blue: Workload,
    pub green: Workload,
    /// Service `<name>`: absent until the first promotion.
    pub active_service: Option<Service>,
    /// It narrows from both colours to one: it moves before the Deployments change.
    pub traffic_first: bool,
    pub preview_service: Option<Service>,
    pub hpa: Option<HorizontalPodAutoscaler>,
    pub pdb: Option<PodDisruptionBudget>,
    /// `spec.monitoring`'s metrics Service, ServiceMonitor and PrometheusRule.
    pub monitoring: build::Monitoring,
}

impl Desired {
    /// `sources`: the snapshots the desired revision mounts plus those existing Deployments still
    /// mount (the caller reads what the caches cannot hold). `crds_served`: whether the cluster
    /// serves the Prometheus Operator's kinds.
    pub fn build(
        v: &Validated,
        rendered: &Rendered,
        decision: &Decision,
        observed: &Snapshot,
        sources: Vec<ConfigMap>,
        crds_served: bool,
    ) -> Self {
        let workload = |color: Color| match decision.plan(color) {
            DeploymentPlan::Keep => Workload::Keep,
            DeploymentPlan::Apply { replicas } => Workload::Apply(Box::new(build::deployment(
                v,
                color,
                replicas,
                &rendered.template,
                &rendered.revision,
            ))),
            DeploymentPlan::Scale { replicas } => Workload::Scale(replicas),
        };
        let active = decision.active_service;
        let live = live_color(decision.live(), observed);
        Self {
            config_map: build::config_map(v, config_versions(observed, rendered)),
            sources,
            blue: workload(Color::Blue),
            green: workload(Color::Green),
            active_service: live.map(|l| build::active_service(v, l)),
            traffic_first: rollout::traffic_first(observed.live(), live),
            preview_service: decision
                .preview_service
                .map(|c| build::preview_service(v, c)),
            hpa: active.and_then(|c| build::hpa(v, c)),
            pdb: active.map(|c| build::pdb(v, c)),
            monitoring: build::monitoring(v, crds_served),
        }
    }

    /// Names of every child this value wants, by kind; anything else of ours is an orphan.
    /// Both colours' Deployments are always wanted: the idle one is scaled to zero, not deleted.
    pub fn names(&self, pipeline: &str) -> Names {
        let name = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            m.name.clone().unwrap_or_default()
        };
        Names {
            config_maps: std::iter::once(&self.config_map)
                .chain(&self.sources)
                .map(|c| name(&c.metadata))
                .collect(),
            deployments: Color::ALL
                .iter()
                .map(|c| build::deployment_name(pipeline, *c))
                .collect(),
            services: self
                .active_service
                .iter()
                .chain(&self.preview_service)
                .chain(&self.monitoring.metrics_service)
                .map(|s| name(&s.metadata))
                .collect(),
            hpas: self.hpa.iter().map(|h| name(&h.metadata)).collect(),
            pdbs: self.pdb.iter().map(|p| name(&p.metadata)).collect(),
            service_monitors: self
                .monitoring
                .service_monitor
                .iter()
                .map(|m| name(&m.metadata))
                .collect(),
            prometheus_rules: self
                .monitoring
                .prometheus_rule
                .iter()
                .map(|r| name(&r.metadata))
                .collect(),
        }
    }
}

/// What the live Service should select (see [`rollout::live_color`]).
pub fn live_color(decided: Option<Live>, observed: &Snapshot) -> Option<Live> {
    rollout::live_color(decided, observed.live(), &observed.observed())
}

/// Names of wanted children, by kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub config_maps: Vec<String>,
    pub deployments: Vec<String>,
    pub services: Vec<String>,
    pub hpas: Vec<String>,
    pub pdbs: Vec<String>,
    pub service_monitors: Vec<String>,
    pub prometheus_rules: Vec<String>,
}

/// Every config version an existing Deployment still mounts, plus the desired one: an old colour's
/// pods keep finding their config when they restart.
fn config_versions(observed: &Snapshot, rendered: &Rendered) -> BTreeMap<String, String> {
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
    keys.insert(rendered.config_key.clone(), rendered.config_yaml.clone());
    keys
}

/// Snapshot names the desired revision and the existing Deployments mount.
pub fn snapshots_in_use(v: &Validated, observed: &Snapshot) -> Vec<String> {
    let pipeline = v.name();
    let mut names: Vec<String> = v
        .inputs
        .sources
        .iter()
        .map(|s| build::snapshot_name(&pipeline, s))
        .chain(
            observed
                .config_maps_mounted()
                .into_iter()
                .filter(|n| build::is_snapshot(&pipeline, n)),
        )
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
