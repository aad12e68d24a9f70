//! What `spec.monitoring` asks for: a headless Service `<name>-metrics` over the pods of both
//! colours, a ServiceMonitor scraping it with colour and revision as target labels, and a
//! PrometheusRule with the pipeline's recording rules and alerts. Built only where the cluster
//! serves the Prometheus Operator's kinds.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{COLOR_LABEL, PIPELINE_LABEL, REVISION_LABEL, RUNTIME_PORT, Validated};
use crate::monitoring::crd::{
    Endpoint, PrometheusRule, PrometheusRuleSpec, ServiceMonitor, ServiceMonitorSpec,
};
use crate::monitoring::rules::{self, Target};

/// `app.kubernetes.io/component` of the metrics Service (what the ServiceMonitor selects).
const COMPONENT: &str = "metrics";
/// Name of the runtime's HTTP port, which also serves `/metrics`.
const PORT: &str = "http";

/// The monitoring children; each absent when not asked for (or not servable).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Monitoring {
    pub metrics_service: Option<Service>,
    pub service_monitor: Option<ServiceMonitor>,
    pub prometheus_rule: Option<PrometheusRule>,
}

pub fn metrics_service_name(pipeline: &str) -> String {
    format!("{pipeline}-metrics")
}

/// The children `spec.monitoring` asks for, given whether the kinds are served.
pub fn monitoring(v: &Validated, crds_served: bool) -> Monitoring {
    let spec = v.pipeline.spec.monitoring.clone().unwrap_or_default();
    if !crds_served {
        return Monitoring::default();
    }
    let scrape = spec.service_monitor.filter(|s| s.enabled);
    let alerts = spec.alerts.filter(|a| a.enabled);
    Monitoring {
        metrics_service: scrape.as_ref().map(|_| metrics_service(v)),
        service_monitor: scrape.map(|s| service_monitor(v, &s)),
        prometheus_rule: alerts.map(|a| prometheus_rule(v, &a)),
    }
}

fn labels(v: &Validated, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels = v.labels();
    labels.extend(extra.clone());
    labels
}

fn metrics_labels(v: &Validated) -> BTreeMap<String, String> {
    let mut labels = v.labels();
    labels.insert("app.kubernetes.io/component".into(), COMPONENT.into());
    labels
}

/// Headless, over every pod of the pipeline: a target per pod, whichever colour.
fn metrics_service(v: &Validated) -> Service {
    let mut meta = v.meta(metrics_service_name(&v.name()));
    meta.labels = Some(metrics_labels(v));
    Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(BTreeMap::from([(PIPELINE_LABEL.into(), v.name())])),
            ports: Some(vec![ServicePort {
                name: Some(PORT.into()),
                port: RUNTIME_PORT,
                target_port: Some(IntOrString::String(PORT.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn service_monitor(v: &Validated, spec: &crate::api::ServiceMonitorSpec) -> ServiceMonitor {
    let mut meta = v.meta(v.name());
    meta.labels = Some(labels(v, &spec.labels));
    let selector = BTreeMap::from([
        (PIPELINE_LABEL.to_string(), v.name()),
        ("app.kubernetes.io/component".into(), COMPONENT.into()),
    ]);
    ServiceMonitor {
        metadata: meta,
        spec: ServiceMonitorSpec {
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            endpoints: vec![Endpoint {
                port: Some(PORT.into()),
                path: Some("/metrics".into()),
                interval: Some(spec.interval.clone()),
            }],
            pod_target_labels: [PIPELINE_LABEL, COLOR_LABEL, REVISION_LABEL]
                .map(String::from)
                .into(),
        },
    }
}

fn prometheus_rule(v: &Validated, spec: &crate::api::AlertsSpec) -> PrometheusRule {
    let mut meta = v.meta(v.name());
    meta.labels = Some(labels(v, &spec.labels));
    let (namespace, pipeline) = (v.namespace(), v.name());
    let target = Target {
        namespace: &namespace,
        pipeline: &pipeline,
        progress_deadline_seconds: v.pipeline.spec.rollout.progress_deadline_seconds,
    };
    PrometheusRule {
        metadata: meta,
        spec: PrometheusRuleSpec {
            groups: rules::groups(&target, spec),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{INDEX, PIPELINE, validated_with};
    use super::*;

    fn with(monitoring: &str) -> Validated {
        validated_with(&format!("{PIPELINE}  monitoring: {monitoring}\n"), INDEX)
    }

    #[test]
    fn nothing_without_the_crds_or_the_spec() {
        let both = with("{ serviceMonitor: { interval: 15s }, alerts: {} }");
        assert_eq!(monitoring(&both, false), Monitoring::default());
        assert_eq!(monitoring(&with("{}"), true), Monitoring::default());
        let off = with("{ serviceMonitor: { enabled: false }, alerts: { enabled: false } }");
        assert_eq!(monitoring(&off, true), Monitoring::default());
    }

    #[test]
    fn the_service_monitor_scrapes_both_colours_with_colour_and_revision_labels() {
        let m = monitoring(
            &with("{ serviceMonitor: { interval: 15s, labels: { release: prom } } }"),
            true,
        );
        let svc = m.metrics_service.unwrap();
        let spec = svc.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        let selector = spec.selector.as_ref().unwrap();
        assert!(
            !selector.contains_key(COLOR_LABEL),
            "both colours: {selector:?}"
        );
        let sm = m.service_monitor.unwrap();
        assert_eq!(sm.metadata.labels.as_ref().unwrap()["release"], "prom");
        let wanted = sm.spec.selector.match_labels.as_ref().unwrap();
        let svc_labels = svc.metadata.labels.as_ref().unwrap();
        assert!(
            wanted.iter().all(|(k, v)| svc_labels.get(k) == Some(v)),
            "selects the metrics Service"
        );
        assert_eq!(sm.spec.endpoints[0].interval.as_deref(), Some("15s"));
        assert_eq!(sm.spec.endpoints[0].port.as_deref(), Some("http"));
        assert_eq!(
            sm.spec.pod_target_labels,
            [PIPELINE_LABEL, COLOR_LABEL, REVISION_LABEL]
        );
        assert!(m.prometheus_rule.is_none());
    }

    #[test]
    fn the_rule_names_the_pipeline_and_uses_the_spec_thresholds() {
        let m = monitoring(&with("{ alerts: { errorRatio: 0.25 } }"), true);
        let rule = m.prometheus_rule.unwrap();
        assert_eq!(rule.metadata.name.as_deref(), Some("docs"));
        let owner = &rule.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "RagPipeline");
        let alerts = &rule.spec.groups[1].rules;
        let critical = alerts
            .iter()
            .find(|r| r.alert.as_deref() == Some("RagPipelineErrorRatioCritical"))
            .unwrap();
        assert!(
            critical
                .expr
                .contains(r#"namespace="team-a",ragops_io_pipeline="docs""#)
        );
        assert!(critical.expr.ends_with("> 0.25"));
    }
}
