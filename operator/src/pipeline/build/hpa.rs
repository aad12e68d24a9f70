//! HorizontalPodAutoscaler `<name>` (autoscaling/v2), always aimed at the active colour.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
    MetricIdentifier, MetricSpec, MetricTarget, PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{Validated, deployment_name};
use crate::api::Color;

/// Per-pod metric the runtime exports for in-flight requests.
pub const IN_FLIGHT_METRIC: &str = "rag_http_requests_in_flight";
/// CPU target when autoscaling names no metric at all.
const DEFAULT_CPU_UTILIZATION: i32 = 80;

/// The HPA for the active colour; none without `spec.autoscaling`.
pub fn hpa(v: &Validated, active: Color) -> Option<HorizontalPodAutoscaler> {
    let a = v.pipeline.spec.autoscaling.as_ref()?;
    let cpu = a.target_cpu_utilization.or(a
        .target_in_flight_requests
        .is_none()
        .then_some(DEFAULT_CPU_UTILIZATION));
    let mut metrics = vec![];
    if let Some(utilization) = cpu {
        metrics.push(MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(utilization),
                    ..MetricTarget::default()
                },
            }),
            ..MetricSpec::default()
        });
    }
    if let Some(in_flight) = a.target_in_flight_requests {
        metrics.push(MetricSpec {
            type_: "Pods".into(),
            pods: Some(PodsMetricSource {
                metric: MetricIdentifier {
                    name: IN_FLIGHT_METRIC.into(),
                    selector: None,
                },
                target: MetricTarget {
                    type_: "AverageValue".into(),
                    average_value: Some(Quantity(in_flight.to_string())),
                    ..MetricTarget::default()
                },
            }),
            ..MetricSpec::default()
        });
    }
    Some(HorizontalPodAutoscaler {
        metadata: v.meta(v.name()),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: deployment_name(&v.name(), active),
            },
            min_replicas: Some(a.min_replicas),
            max_replicas: a.max_replicas,
            metrics: Some(metrics),
            behavior: None,
        },
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::validated;
    use super::*;
    use crate::api::AutoscalingSpec;

    fn with(a: AutoscalingSpec) -> Validated {
        let mut v = validated();
        v.pipeline.spec.autoscaling = Some(a);
        v
    }

    #[test]
    fn no_autoscaling_no_hpa() {
        assert!(hpa(&validated(), Color::Blue).is_none());
    }

    #[test]
    fn targets_the_active_colour_with_the_requested_metrics() {
        let cases = [
            (None, None, vec!["Resource"]),
            (Some(60), None, vec!["Resource"]),
            (None, Some(8), vec!["Pods"]),
            (Some(60), Some(8), vec!["Resource", "Pods"]),
        ];
        for (cpu, in_flight, kinds) in cases {
            let v = with(AutoscalingSpec {
                min_replicas: 2,
                max_replicas: 6,
                target_cpu_utilization: cpu,
                target_in_flight_requests: in_flight,
            });
            let spec = hpa(&v, Color::Green).unwrap().spec;
            assert_eq!(spec.scale_target_ref.name, "docs-green");
            assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 6));
            let metrics = spec.metrics.unwrap();
            assert_eq!(
                metrics.iter().map(|m| m.type_.as_str()).collect::<Vec<_>>(),
                kinds,
                "{cpu:?} {in_flight:?}"
            );
            if let Some(cpu) = cpu {
                assert_eq!(
                    metrics[0]
                        .resource
                        .as_ref()
                        .unwrap()
                        .target
                        .average_utilization,
                    Some(cpu)
                );
            }
        }
    }
}
