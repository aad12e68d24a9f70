//! HorizontalPodAutoscaler `<name>` (autoscaling/v2), always aimed at the active colour: CPU and
//! memory utilisation, and per-pod metrics served by prometheus-adapter (in-flight requests,
//! p99 latency), with rate limits on how fast it may scale.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec,
    MetricTarget, PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{Validated, deployment_name};
use crate::api::{AutoscalingSpec, Color, ScalingBehavior};

/// Per-pod metric the runtime exports for in-flight requests.
pub const IN_FLIGHT_METRIC: &str = "rag_http_requests_in_flight";
/// Per-pod p99 answer latency, as `config/prometheus-adapter/` serves it.
pub const P99_METRIC: &str = "rag_http_request_p99_seconds";
/// CPU target when autoscaling names no metric at all.
const DEFAULT_CPU_UTILIZATION: i32 = 80;
/// Scaling up may always add this many pods a minute, however few there are.
const MIN_PODS_ADDED_PER_MINUTE: i32 = 4;

/// The HPA for the active colour; none without `spec.autoscaling`.
pub fn hpa(v: &Validated, active: Color) -> Option<HorizontalPodAutoscaler> {
    let a = v.pipeline.spec.autoscaling.as_ref()?;
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
            metrics: Some(metrics(a)),
            behavior: Some(behavior(&a.behavior)),
        },
        status: None,
    })
}

fn metrics(a: &AutoscalingSpec) -> Vec<MetricSpec> {
    let named = a.target_memory_utilization.is_some()
        || a.target_in_flight_requests.is_some()
        || a.target_p99_latency_seconds.is_some();
    let cpu = a
        .target_cpu_utilization
        .or((!named).then_some(DEFAULT_CPU_UTILIZATION));
    let resources = [("cpu", cpu), ("memory", a.target_memory_utilization)]
        .into_iter()
        .filter_map(|(name, target)| target.map(|t| resource(name, t)));
    let pods = [
        (
            IN_FLIGHT_METRIC,
            a.target_in_flight_requests.map(|n| n.to_string()),
        ),
        (P99_METRIC, a.target_p99_latency_seconds.map(quantity)),
    ]
    .into_iter()
    .filter_map(|(name, target)| target.map(|t| pods(name, t)));
    resources.chain(pods).collect()
}

fn resource(name: &str, utilization: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: name.into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(utilization),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}

fn pods(name: &str, average: String) -> MetricSpec {
    MetricSpec {
        type_: "Pods".into(),
        pods: Some(PodsMetricSource {
            metric: MetricIdentifier {
                name: name.into(),
                selector: None,
            },
            target: MetricTarget {
                type_: "AverageValue".into(),
                average_value: Some(Quantity(average)),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}

/// Seconds as a quantity in its canonical form (0.25 → `250m`), so the API server's rewrite
/// of it is not seen as drift.
fn quantity(seconds: f64) -> String {
    let millis = (seconds * 1000.0).round() as i64;
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

fn behavior(b: &ScalingBehavior) -> HorizontalPodAutoscalerBehavior {
    let per_minute = |type_: &str, value: i32| HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds: 60,
    };
    HorizontalPodAutoscalerBehavior {
        scale_up: Some(HPAScalingRules {
            stabilization_window_seconds: Some(b.scale_up_stabilization_seconds),
            select_policy: Some("Max".into()),
            policies: Some(vec![
                per_minute("Percent", b.scale_up_percent_per_minute),
                per_minute("Pods", MIN_PODS_ADDED_PER_MINUTE),
            ]),
            ..HPAScalingRules::default()
        }),
        scale_down: Some(HPAScalingRules {
            stabilization_window_seconds: Some(b.scale_down_stabilization_seconds),
            select_policy: Some("Max".into()),
            policies: Some(vec![per_minute("Percent", b.scale_down_percent_per_minute)]),
            ..HPAScalingRules::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::validated;
    use super::*;

    fn with(edit: impl FnOnce(&mut AutoscalingSpec)) -> Validated {
        let mut a: AutoscalingSpec =
            serde_json::from_value(serde_json::json!({ "minReplicas": 2, "maxReplicas": 6 }))
                .unwrap();
        edit(&mut a);
        let mut v = validated();
        v.pipeline.spec.autoscaling = Some(a);
        v
    }

    fn names(v: &Validated) -> Vec<String> {
        let spec = hpa(v, Color::Green).unwrap().spec;
        spec.metrics
            .unwrap()
            .iter()
            .map(|m| match (&m.resource, &m.pods) {
                (Some(r), _) => format!("{}={:?}", r.name, r.target.average_utilization.unwrap()),
                (_, Some(p)) => format!(
                    "{}={}",
                    p.metric.name,
                    p.target.average_value.as_ref().unwrap().0
                ),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn no_autoscaling_no_hpa() {
        assert!(hpa(&validated(), Color::Blue).is_none());
    }

    #[test]
    fn targets_the_active_colour_with_the_requested_metrics() {
        let spec = hpa(&with(|_| {}), Color::Green).unwrap().spec;
        assert_eq!(spec.scale_target_ref.name, "docs-green");
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 6));
        type Edit = fn(&mut AutoscalingSpec);
        let cases: [(Edit, &[&str]); 5] = [
            (|_| {}, &["cpu=80"]),
            (|a| a.target_cpu_utilization = Some(60), &["cpu=60"]),
            (|a| a.target_memory_utilization = Some(75), &["memory=75"]),
            (
                |a| a.target_in_flight_requests = Some(8),
                &["rag_http_requests_in_flight=8"],
            ),
            (
                |a| {
                    a.target_cpu_utilization = Some(60);
                    a.target_memory_utilization = Some(70);
                    a.target_in_flight_requests = Some(8);
                    a.target_p99_latency_seconds = Some(0.25);
                },
                &[
                    "cpu=60",
                    "memory=70",
                    "rag_http_requests_in_flight=8",
                    "rag_http_request_p99_seconds=250m",
                ],
            ),
        ];
        for (edit, want) in cases {
            assert_eq!(names(&with(edit)), want);
        }
    }

    #[test]
    fn scaling_is_rate_limited_by_the_spec() {
        let b = hpa(
            &with(|a| a.behavior.scale_down_percent_per_minute = 20),
            Color::Blue,
        )
        .unwrap()
        .spec
        .behavior
        .unwrap();
        let down = b.scale_down.unwrap();
        assert_eq!(down.stabilization_window_seconds, Some(300));
        assert_eq!(down.policies.unwrap()[0].value, 20);
        let up = b.scale_up.unwrap();
        assert_eq!(up.stabilization_window_seconds, Some(0));
        assert_eq!(up.policies.unwrap().len(), 2);
        assert_eq!(quantity(2.0), "2");
        assert_eq!(quantity(0.5), "500m");
    }
}
