//! The gates a new colour passes, in order, before it takes traffic. Each looks at the rollout in
//! flight and passes, holds (with the step to report and when to look again) or fails it. A new
//! kind of check, such as metric analysis or a weighted canary step, is one more gate in
//! [`GATES`].

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::SignedDuration;

use super::{
    CutoverStep, Decision, DeploymentPlan, ProbeOutcome, RolloutInput, reason, seconds, until,
};
use crate::api::{AnalysisRunStatus, Color, RolloutProgress};

/// A rollout in flight, as the gates see it.
pub struct Rollout<'a, 'i> {
    pub input: &'a RolloutInput<'i>,
    pub target: Color,
    /// The revision rolling out (the spec's, or a rollback's).
    pub revision: &'a str,
    /// Pods the new colour runs now (a canary step's share, else `total`).
    pub replicas: i32,
    /// Pods the pipeline runs as a whole.
    pub total: i32,
    /// The colour serving now, if any.
    pub active: Option<Color>,
    /// Nothing serves yet: no traffic to protect.
    pub first_deploy: bool,
    pub progress: &'a mut RolloutProgress,
    /// The analysis run in status (`status.analysis`).
    pub analysis: &'a mut Option<AnalysisRunStatus>,
    pub d: &'a mut Decision,
    /// The golden-set run in status (`status.goldenSet`).
    pub golden: &'a mut Option<crate::api::GoldenSetStatus>,
}

impl Rollout<'_, '_> {
    /// The new colour's Deployment with `replicas` pods: the spec's revision is applied, a
    /// rollback's (already in its Deployment) only scaled.
    pub fn plan(&self, replicas: i32) -> DeploymentPlan {
        if self.revision == self.input.revision {
            DeploymentPlan::Apply { replicas }
        } else {
            DeploymentPlan::Scale { replicas }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
    Pass,
    /// Not yet: report this step.
    Hold(CutoverStep),
    /// The rollout fails, with this reason and message.
    Fail(&'static str, String),
}

/// In order: a deadline, the new colour up, verified by probes and smoke queries, answering,
/// clearing its golden set, passing its pre-promotion analysis, through its canary steps, and
/// (when asked for) promoted by hand. A manual promotion never skips the analysis: it comes first
/// (only `ragops.io/force-promote` ends a running one, see `analysis`).
pub const GATES: [fn(&mut Rollout<'_, '_>) -> Gate; 8] = [
    deadline,
    available,
    verified,
    answering,
    super::golden::golden,
    super::analysis::analysed,
    super::canary::stepped,
    promotion,
];

/// The deadline covers getting the new colour up and verified; a verified colour waiting for a
/// manual promotion does not expire.
fn deadline(r: &mut Rollout<'_, '_>) -> Gate {
    if r.progress.verified {
        return Gate::Pass;
    }
    let spec = r.input.spec;
    let at = r.progress.started_at.0 + seconds(spec.progress_deadline_seconds);
    if r.input.now >= at {
        let message = format!(
            "revision {} was not verified within {}s",
            r.revision, spec.progress_deadline_seconds
        );
        return Gate::Fail(reason::PROGRESS_DEADLINE_EXCEEDED, message);
    }
    r.d.requeue(until(r.input.now, at));
    Gate::Pass
}

/// Every replica of the new colour runs the revision and is available. Holding needs no timer:
/// the Deployment and pod watches wake the pipeline when that changes, and the deadline gate's
/// requeue fails a rollout that never gets there.
fn available(r: &mut Rollout<'_, '_>) -> Gate {
    let up = r.input.observed.get(r.target).is_some_and(|o| {
        o.revision.as_deref() == Some(r.revision) && o.replicas == r.replicas && o.rolled_out
    });
    if up {
        return Gate::Pass;
    }
    Gate::Hold(CutoverStep::WaitingForAvailable { color: r.target })
}

/// `successThreshold` consecutive probes a period apart, then the smoke queries.
fn verified(r: &mut Rollout<'_, '_>) -> Gate {
    if r.progress.verified {
        return Gate::Pass;
    }
    let (spec, target) = (r.input.spec, r.target);
    let threshold = spec.health_check.success_threshold;
    let period =
        Duration::from_secs(u64::try_from(spec.health_check.period_seconds.max(1)).unwrap_or(1));
    let next_probe = r
        .progress
        .last_probe_at
        .as_ref()
        .map(|t| t.0 + SignedDuration::try_from(period).unwrap_or_default());
    if let Some(at) = next_probe.filter(|at| r.input.now < *at) {
        r.d.requeue(until(r.input.now, at));
        return Gate::Hold(CutoverStep::Verifying { color: target });
    }
    let Some(outcome) = &r.input.probe else {
        let smoke = r.progress.health_successes + 1 >= threshold && !spec.smoke_queries.is_empty();
        return Gate::Hold(CutoverStep::HealthCheck {
            color: target,
            smoke,
        });
    };
    r.progress.last_probe_at = Some(MicroTime(r.input.now));
    match outcome {
        ProbeOutcome::Healthy => {
            r.progress.health_successes += 1;
            r.progress.health_failures = 0;
            if r.progress.health_successes < threshold {
                r.d.requeue(period);
                return Gate::Hold(CutoverStep::Verifying { color: target });
            }
            r.progress.verified = true;
            r.d.event(
                reason::HEALTH_CHECK_PASSED,
                format!("{target} passed {threshold} consecutive health checks"),
            );
            Gate::Pass
        }
        ProbeOutcome::Unhealthy(why) => {
            r.progress.health_successes = 0;
            r.progress.health_failures += 1;
            let failures = r.progress.health_failures;
            if failures >= spec.health_check.failure_threshold {
                let message =
                    format!("{target} failed {failures} consecutive health checks: {why}");
                return Gate::Fail(reason::HEALTH_CHECK_FAILED, message);
            }
            r.d.requeue(period);
            Gate::Hold(CutoverStep::Verifying { color: target })
        }
        ProbeOutcome::SmokeFailed(why) => Gate::Fail(
            reason::SMOKE_QUERY_FAILED,
            format!("{target} failed its smoke queries: {why}"),
        ),
    }
}

/// Never send traffic to a colour nothing can answer on. Like [`available`], woken by the pod
/// watch, not by a timer.
fn answering(r: &mut Rollout<'_, '_>) -> Gate {
    if r.input
        .observed
        .get(r.target)
        .is_some_and(|o| o.ready_endpoints > 0)
    {
        return Gate::Pass;
    }
    Gate::Hold(CutoverStep::WaitingForAvailable { color: r.target })
}

/// A manual gate protects live traffic; a first deploy has none to protect.
fn promotion(r: &mut Rollout<'_, '_>) -> Gate {
    // A promotion a canary pause took in this decision passes that pause only.
    let promoted = r.input.requests.promote && !r.d.consumed.promote;
    if r.input.spec.auto_promote || promoted || r.first_deploy {
        return Gate::Pass;
    }
    // Announced once, in the decision that completed verification (or the analysis after it).
    if r.d.events.iter().any(|e| {
        e.reason == reason::HEALTH_CHECK_PASSED
            || e.reason == reason::ANALYSIS_PASSED
            || e.reason == super::golden::reason::GOLDEN_SET_PASSED
    }) {
        let note = format!(
            "{} is verified; annotate ragops.io/promote to switch traffic",
            r.target
        );
        r.d.event(reason::AWAITING_PROMOTION, note);
    }
    r.d.requeue_after = None;
    Gate::Hold(CutoverStep::AwaitingPromotion { color: r.target })
}
