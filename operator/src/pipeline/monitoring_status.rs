//! The `MonitoringReady` condition: whether what `spec.monitoring` asks for exists. Pure: the
//! spec, what discovery knows of the Prometheus Operator's kinds, the kinds the watches hold the
//! pipeline's objects of, and the current conditions in. The status is written before the
//! children, so "applied" waits until the watches show them (their events reconcile again).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;

use crate::api::MonitoringSpec;
use crate::conditions::{self, Wanted};
use crate::monitoring::discovery::Crds;

pub const MONITORING_READY: &str = "MonitoringReady";
/// Reason while the CRDs are missing (also the Event's).
pub const CRDS_NOT_INSTALLED: &str = "CRDsNotInstalled";

/// What `spec.monitoring` asks for, as the condition reports it.
fn requested(spec: Option<&MonitoringSpec>) -> Vec<&'static str> {
    let Some(m) = spec else { return vec![] };
    let scrape = m.service_monitor.as_ref().is_some_and(|s| s.enabled);
    let alerts = m.alerts.as_ref().is_some_and(|a| a.enabled);
    [(scrape, "ServiceMonitor"), (alerts, "PrometheusRule")]
        .into_iter()
        .filter_map(|(on, kind)| on.then_some(kind))
        .collect()
}

/// Whether `spec` asks for anything (discovery runs only for such pipelines).
pub fn is_requested(spec: Option<&MonitoringSpec>) -> bool {
    !requested(spec).is_empty()
}

/// The condition; `held` are the kinds whose object of this pipeline the watches show, and
/// `recheck` is how often discovery looks again while the kinds are missing.
pub fn condition(
    spec: Option<&MonitoringSpec>,
    crds: Crds,
    held: &[&str],
    recheck: std::time::Duration,
) -> Wanted {
    let kinds = requested(spec);
    if kinds.is_empty() {
        return Wanted::new(
            MONITORING_READY,
            true,
            "NotRequested",
            "spec.monitoring asks for nothing",
        );
    }
    let missing: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| !held.contains(k))
        .collect();
    let kinds = kinds.join(" and ");
    match crds {
        Crds::Present if missing.is_empty() => Wanted::new(
            MONITORING_READY,
            true,
            "Applied",
            format!("{kinds} applied"),
        ),
        Crds::Present => Wanted::new(
            MONITORING_READY,
            false,
            "Applying",
            format!("{} not applied yet", missing.join(" and ")),
        ),
        Crds::Unknown => Wanted::new(
            MONITORING_READY,
            false,
            "Discovering",
            "looking for the monitoring.coreos.com/v1 kinds",
        ),
        Crds::Absent => Wanted::new(
            MONITORING_READY,
            false,
            CRDS_NOT_INSTALLED,
            format!(
                "spec.monitoring asks for a {kinds}, but the cluster does not serve monitoring.coreos.com/v1 \
                 (install the Prometheus Operator's CRDs; checked every {}s); the pipeline runs without them",
                recheck.as_secs()
            ),
        ),
    }
}

/// `current` with the condition merged in.
pub fn merge(
    current: &[Condition],
    wanted: Wanted,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    conditions::merge(current, &[wanted], generation, now)
}

/// Whether this change of conditions is news to tell as an Event: the CRDs just went missing
/// for a pipeline that asks for monitoring.
pub fn newly_missing(before: &[Condition], after: &[Condition]) -> Option<String> {
    let find = |cs: &[Condition]| cs.iter().find(|c| c.type_ == MONITORING_READY).cloned();
    let now = find(after).filter(|c| c.reason == CRDS_NOT_INSTALLED)?;
    let was = find(before).is_some_and(|c| c.reason == CRDS_NOT_INSTALLED);
    (!was).then_some(now.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AlertsSpec, ServiceMonitorSpec};
    use crate::monitoring::discovery::RECHECK;

    fn spec(scrape: bool, alerts: bool) -> MonitoringSpec {
        MonitoringSpec {
            service_monitor: Some(ServiceMonitorSpec {
                enabled: scrape,
                interval: "30s".into(),
                labels: Default::default(),
            }),
            alerts: Some(AlertsSpec {
                enabled: alerts,
                ..AlertsSpec::default()
            }),
        }
    }

    #[test]
    fn the_condition_follows_the_spec_and_the_crds() {
        let both = spec(true, true);
        let cases = [
            (None, Crds::Absent, true, "NotRequested"),
            (Some(spec(false, false)), Crds::Absent, true, "NotRequested"),
            (Some(both.clone()), Crds::Unknown, false, "Discovering"),
            (Some(both.clone()), Crds::Absent, false, CRDS_NOT_INSTALLED),
            (Some(both.clone()), Crds::Present, true, "Applied"),
        ];
        let all = ["ServiceMonitor", "PrometheusRule"];
        for (spec, crds, status, reason) in cases {
            let c = condition(spec.as_ref(), crds, &all, RECHECK);
            assert_eq!(
                (c.status, c.reason.as_str()),
                (status, reason),
                "{spec:?} {crds:?}"
            );
        }
        // Applied only once the watches show every object asked for.
        let applying = condition(Some(&both), Crds::Present, &["ServiceMonitor"], RECHECK);
        assert_eq!(
            (applying.status, applying.reason.as_str()),
            (false, "Applying")
        );
        assert_eq!(applying.message, "PrometheusRule not applied yet");
        let scrape_only = condition(Some(&spec(true, false)), Crds::Present, &all[..1], RECHECK);
        assert!(scrape_only.status);
        let absent = condition(Some(&spec(false, true)), Crds::Absent, &[], RECHECK);
        assert!(
            absent.message.contains("PrometheusRule") && !absent.message.contains("ServiceMonitor")
        );
    }

    #[test]
    fn missing_crds_are_told_once() {
        let now: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let missing = merge(
            &[],
            condition(Some(&spec(true, true)), Crds::Absent, &[], RECHECK),
            Some(1),
            now,
        );
        assert!(newly_missing(&[], &missing).is_some());
        assert_eq!(newly_missing(&missing, &missing), None, "not again");
        let applied = merge(
            &missing,
            condition(
                Some(&spec(true, true)),
                Crds::Present,
                &["ServiceMonitor", "PrometheusRule"],
                RECHECK,
            ),
            Some(1),
            now,
        );
        assert_eq!(newly_missing(&missing, &applied), None);
    }
}
