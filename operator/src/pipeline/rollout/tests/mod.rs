//! The cutover state machine, case by case: shared fixtures here, the cases by theme below.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::*;
use crate::api::{Color::*, HealthCheckSpec, RolloutSpec, SmokeQuery};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn spec() -> RolloutSpec {
    RolloutSpec {
        auto_promote: true,
        health_check: HealthCheckSpec {
            success_threshold: 2,
            failure_threshold: 2,
            ..HealthCheckSpec::default()
        },
        smoke_queries: vec![],
        progress_deadline_seconds: 300,
        scale_down_delay_seconds: 30,
        analysis: None,
        golden_set: None,
        strategy: Default::default(),
        canary: None,
    }
}

/// A colour that is fully up on `rev`.
fn up(rev: &str, replicas: i32) -> Option<ColorObservation> {
    Some(ColorObservation {
        revision: Some(rev.into()),
        replicas,
        rolled_out: true,
        ready_endpoints: replicas,
    })
}

/// A colour whose pods are still starting.
fn starting(rev: &str, replicas: i32) -> Option<ColorObservation> {
    Some(ColorObservation {
        revision: Some(rev.into()),
        replicas,
        rolled_out: false,
        ready_endpoints: 0,
    })
}

fn observed(blue: Option<ColorObservation>, green: Option<ColorObservation>) -> Observed {
    Observed { blue, green }
}

fn progress(
    started: i64,
    successes: i32,
    failures: i32,
    verified: bool,
) -> Option<RolloutProgress> {
    Some(RolloutProgress {
        started_at: Time(t(started)),
        health_successes: successes,
        health_failures: failures,
        verified,
        last_probe_at: None,
        failed_attempts: None,
        canary: None,
    })
}

fn active(color: Color, rev: &str) -> RolloutState {
    RolloutState {
        active: Some((color, rev.into())),
        ..RolloutState::default()
    }
}

fn rolling(
    active_rev: Option<&str>,
    target: Color,
    rev: &str,
    p: Option<RolloutProgress>,
) -> RolloutState {
    RolloutState {
        active: active_rev.map(|r| (target.other(), r.to_string())),
        target: Some((target, rev.into())),
        progress: p,
        ..RolloutState::default()
    }
}

/// One call of `decide` with everything spelled out.
struct Case {
    revision: &'static str,
    scaling: Scaling,
    spec: RolloutSpec,
    promote: bool,
    retry: bool,
    abort: bool,
    rollback: bool,
    force: bool,
    state: RolloutState,
    observed: Observed,
    probe: Option<ProbeOutcome>,
    analysis: Option<crate::analysis::CompiledAnalysis>,
    results: Vec<AnalysisResult>,
    now: Timestamp,
    golden: Vec<GoldenResult>,
}

impl Case {
    fn new(revision: &'static str, state: RolloutState, observed: Observed) -> Self {
        Self {
            revision,
            scaling: Scaling::Fixed(2),
            spec: spec(),
            promote: false,
            retry: false,
            abort: false,
            rollback: false,
            force: false,
            state,
            observed,
            probe: None,
            analysis: None,
            results: vec![],
            now: t(10),
            golden: vec![],
        }
    }

    fn decide(&self) -> Decision {
        decide(RolloutInput {
            revision: self.revision,
            scaling: self.scaling,
            spec: &self.spec,
            requests: Requests {
                promote: self.promote,
                retry: self.retry,
                abort: self.abort,
                rollback: self.rollback,
                force_promote: self.force,
            },
            state: &self.state,
            observed: &self.observed,
            probe: self.probe.clone(),
            analysis: self.analysis.as_ref(),
            results: &self.results,
            now: self.now,
            golden: &self.golden,
        })
    }
}

fn reasons(d: &Decision) -> Vec<&'static str> {
    d.events.iter().map(|e| e.reason).collect()
}

pub(super) mod analysis;
mod canary;
mod cutover;
mod failures;
mod first_deploy;
pub(super) mod golden;
mod operations;
mod scaling;
