//! A revision that failed: it stays failed (its colour at zero) until the spec changes or a retry
//! is asked for, except a first deploy, which has no traffic to protect and is tried again after
//! a backoff that survives a restart of the operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::{CutoverStep, Decision, DeploymentPlan, RolloutInput, RolloutState, reason, until};
use crate::api::Color;

/// Where a failed `wanted` revision stands: `None` while it stays failed (the decision is made),
/// else the rollout goes on, carrying the failed attempts of a first deploy retried now.
pub(super) fn after_failure(
    input: &RolloutInput<'_>,
    state: &RolloutState,
    d: &mut Decision,
    target: Color,
    wanted: &str,
) -> Option<Option<i32>> {
    let Some(failure) = state.failure.as_ref().filter(|f| f.revision == wanted) else {
        return Some(None);
    };
    match failure.retry_at.as_ref().map(|t| t.0) {
        Some(at) if input.now >= at => {
            let attempts = failure.attempts.unwrap_or(1);
            let note = format!(
                "retrying the first deploy of revision {wanted} (attempt {})",
                attempts + 1
            );
            d.event(reason::RETRYING, note);
            Some(Some(attempts))
        }
        retry_at => {
            d.step = CutoverStep::Failed;
            d.preview_service = Some(target);
            if input.observed.get(target).is_some_and(|o| o.replicas > 0) {
                d.set_plan(target, DeploymentPlan::Scale { replicas: 0 });
            }
            if let Some(at) = retry_at {
                d.requeue(until(input.now, at));
            }
            None
        }
    }
}

/// How long a failed first deploy waits before its next attempt: 30 s after the first failure,
/// doubling with each further one, at most 10 minutes.
pub fn first_deploy_backoff(attempts: i32) -> SignedDuration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(5);
    SignedDuration::from_secs((30_i64 << doublings).min(600))
}

/// A first deploy that failed has no traffic to protect: it is tried again after a backoff. The
/// count of attempts lives in the failure, so it survives a restart of the operator.
pub(super) fn schedule_retry(
    now: Timestamp,
    state: &mut RolloutState,
    d: &mut Decision,
    attempts: i32,
) {
    let Some(failure) = state.failure.as_mut() else {
        return;
    };
    let delay = first_deploy_backoff(attempts);
    let at = now + delay;
    failure.attempts = Some(attempts);
    failure.retry_at = Some(Time(at));
    let note = format!(
        "nothing serves yet: the first deploy of revision {} is retried in {}s, at {at} \
         (failed attempts: {attempts})",
        failure.revision,
        delay.as_secs()
    );
    d.event(reason::RETRY_SCHEDULED, note);
    d.requeue(until(now, at));
}
