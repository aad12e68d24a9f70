//! The runtime container's probes: a startup probe so a slow start is not killed by liveness, a
//! readiness probe that keeps traffic off a pod that cannot serve, and a liveness probe that
//! restarts a hung one. Each starts from its defaults; `spec.runtime.probes` tunes them.

use k8s_openapi::api::core::v1::{HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{ProbeTuning, ProbesSpec};

/// A probe's path and timing before tuning. Keep in step with the docs of [`ProbesSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ProbeDefaults {
    pub path: &'static str,
    pub period_seconds: i32,
    pub timeout_seconds: i32,
    pub failure_threshold: i32,
}

/// Five minutes for the process to answer at all.
pub(super) const STARTUP: ProbeDefaults = ProbeDefaults {
    path: "/healthz",
    period_seconds: 5,
    timeout_seconds: 2,
    failure_threshold: 60,
};
pub(super) const READINESS: ProbeDefaults = ProbeDefaults {
    path: "/readyz",
    period_seconds: 5,
    timeout_seconds: 2,
    failure_threshold: 3,
};
pub(super) const LIVENESS: ProbeDefaults = ProbeDefaults {
    path: "/healthz",
    period_seconds: 5,
    timeout_seconds: 2,
    failure_threshold: 6,
};

pub(super) struct Probes {
    pub startup: Probe,
    pub readiness: Probe,
    pub liveness: Probe,
}

pub(super) fn probes(spec: Option<&ProbesSpec>) -> Probes {
    let spec = spec.cloned().unwrap_or_default();
    Probes {
        startup: probe(STARTUP, spec.startup),
        readiness: probe(READINESS, spec.readiness),
        liveness: probe(LIVENESS, spec.liveness),
    }
}

fn probe(defaults: ProbeDefaults, tuning: Option<ProbeTuning>) -> Probe {
    let t = tuning.unwrap_or_default();
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(defaults.path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        // The API server drops a zero delay; sending one would look like a change every time.
        initial_delay_seconds: t.initial_delay_seconds.filter(|&d| d > 0),
        period_seconds: Some(t.period_seconds.unwrap_or(defaults.period_seconds)),
        timeout_seconds: Some(t.timeout_seconds.unwrap_or(defaults.timeout_seconds)),
        failure_threshold: Some(t.failure_threshold.unwrap_or(defaults.failure_threshold)),
        ..Probe::default()
    }
}
