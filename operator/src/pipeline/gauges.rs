//! Per-pipeline gauges computed from the watch caches when Prometheus scrapes: they can never
//! disagree with the status, and a deleted pipeline's series disappear with it.
//!
//! - `ragops_pipeline_ready_replicas{namespace,pipeline}`: ready pods of the active colour
//! - `ragops_pipeline_phase{namespace,pipeline,phase}`: 1 for the current phase, 0 for the others
//! - `ragops_managed_objects{kind}`: objects the operator manages, by kind

use kube::ResourceExt;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

use super::cache::Stores;
use crate::api::Phase;
use crate::meta::{MANAGED_BY, MANAGER};

const PHASES: [Phase; 5] = [
    Phase::Pending,
    Phase::Progressing,
    Phase::Paused,
    Phase::Healthy,
    Phase::Degraded,
];

pub struct Gauges {
    stores: Stores,
    ready: IntGaugeVec,
    phase: IntGaugeVec,
    managed: IntGaugeVec,
}

impl Gauges {
    pub fn new(stores: Stores) -> Self {
        let vec = |name: &str, help: &str, labels: &[&str]| {
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        Self {
            stores,
            ready: vec(
                "ragops_pipeline_ready_replicas",
                "Ready pods of the pipeline's active colour",
                &["namespace", "pipeline"],
            ),
            phase: vec(
                "ragops_pipeline_phase",
                "The pipeline's phase (1 for the current one)",
                &["namespace", "pipeline", "phase"],
            ),
            managed: vec(
                "ragops_managed_objects",
                "Objects the operator manages, by kind",
                &["kind"],
            ),
        }
    }

    fn fill(&self) {
        self.ready.reset();
        self.phase.reset();
        for p in self.stores.pipelines.state() {
            let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
            let status = p.status.clone().unwrap_or_default();
            let ready = i64::from(status.ready_replicas.unwrap_or(0));
            self.ready.with_label_values(&[&ns, &name]).set(ready);
            let current = status.phase.unwrap_or_default();
            for phase in PHASES {
                let value = i64::from(phase == current);
                let label = format!("{phase:?}");
                self.phase
                    .with_label_values(&[&ns, &name, &label])
                    .set(value);
            }
        }
        let s = &self.stores;
        let managed = |labels: &std::collections::BTreeMap<String, String>| {
            labels.get(MANAGED_BY).map(String::as_str) == Some(MANAGER)
        };
        let counts = [
            ("RagPipeline", s.pipelines.state().len()),
            ("Deployment", s.deployments.state().len()),
            ("Service", s.services.state().len()),
            ("HorizontalPodAutoscaler", s.hpas.state().len()),
            ("PodDisruptionBudget", s.pdbs.state().len()),
            (
                "ConfigMap",
                s.config_maps
                    .state()
                    .iter()
                    .filter(|c| managed(c.labels()))
                    .count(),
            ),
        ];
        for (kind, n) in counts {
            self.managed
                .with_label_values(&[kind])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

impl Collector for Gauges {
    fn desc(&self) -> Vec<&Desc> {
        [&self.ready, &self.phase, &self.managed]
            .into_iter()
            .flat_map(|g| g.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.fill();
        [&self.ready, &self.phase, &self.managed]
            .into_iter()
            .flat_map(|g| g.collect())
            .collect()
    }
}
