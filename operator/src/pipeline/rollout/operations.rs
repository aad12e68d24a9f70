//! What users ask for by annotation, applied to the bookkeeping before the cutover moves on:
//! retry a failed revision, abort the rollout in flight, roll back to the previous revision.
//!
//! A rollback sets the spec's revision aside (`state.rollback`) until the spec changes or a retry
//! is asked for; another rollback meanwhile is refused (it would bring the rolled-back revision
//! back). While every wanted pod of the previous colour is still up and ready, traffic moves back
//! at once; otherwise the previous revision (still in that colour's Deployment) is scaled up and
//! rolled out again through every gate, and traffic moves only when all its pods are ready.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{
    CutoverStep, Decision, DeploymentPlan, RolloutInput, RolloutState, fail, new_colour_replicas,
    reason, seconds, until,
};
use crate::api::{PendingScaleDown, RollbackState};

/// The revision the pipeline should serve: the spec's, unless a rollback set it aside.
pub fn wanted_revision(input: &RolloutInput<'_>, state: &RolloutState) -> String {
    match &state.rollback {
        Some(rb) if rb.from == input.revision => rb.to.clone(),
        _ => input.revision.to_string(),
    }
}

/// Applies the requested operations to `state`. Returns true when that settles this decision
/// (an abort, an instant rollback); false when the cutover goes on as usual.
pub fn apply(input: &RolloutInput<'_>, state: &mut RolloutState, d: &mut Decision) -> bool {
    // A new spec revision ends the rollback of an older one.
    if state
        .rollback
        .as_ref()
        .is_some_and(|rb| rb.from != input.revision)
    {
        state.rollback = None;
    }
    let requests = input.requests;
    d.consumed.retry = requests.retry;
    if requests.retry {
        if let Some(failure) = state.failure.take() {
            d.event(
                reason::RETRY,
                format!("retrying revision {}", failure.revision),
            );
        }
        if let Some(rb) = state.rollback.take() {
            d.event(
                reason::RETRY,
                format!("rolling revision {} out again", rb.from),
            );
        }
    }
    if requests.abort {
        d.consumed.abort = true;
        return abort(input, state, d);
    }
    if requests.rollback {
        d.consumed.rollback = true;
        return rollback(input, state, d);
    }
    false
}

/// Stops the rollout in flight: the new colour goes to zero, the old one keeps all traffic, and
/// the revision is not rolled out again until the spec changes or a retry is asked for.
fn abort(input: &RolloutInput<'_>, state: &mut RolloutState, d: &mut Decision) -> bool {
    let Some((target, revision)) = state.target.clone() else {
        d.event(reason::NOTHING_TO_ABORT, "no rollout in flight".into());
        return false;
    };
    let message = format!("rollout of revision {revision} on {target} aborted by ragops.io/abort");
    fail(state, d, target, &revision, reason::ABORTED, message);
    // A canary gave the old colour pods back to the new one: all of them return.
    super::canary::restore(input, d, state.active.as_ref().map(|(c, _)| *c));
    d.preview_service = Some(target);
    true
}

fn rollback(input: &RolloutInput<'_>, state: &mut RolloutState, d: &mut Decision) -> bool {
    if let Some(rb) = &state.rollback {
        // A second rollback would bring back the revision the first one set aside.
        let note = format!(
            "a rollback from revision {} to {} is already in force; change the spec or \
             annotate ragops.io/retry before rolling back again",
            rb.from, rb.to
        );
        d.warning(reason::ROLLBACK_REFUSED, note);
        return false;
    }
    if state.target.is_some() {
        // Before a cutover, the previous revision is the one still serving.
        return abort(input, state, d);
    }
    let (Some((active, current)), Some((previous, to))) =
        (state.active.clone(), state.previous.clone())
    else {
        d.warning(
            reason::ROLLBACK_UNAVAILABLE,
            "no previous revision to roll back to".into(),
        );
        return false;
    };
    let there = input.observed.get(previous);
    if there.and_then(|o| o.revision.as_deref()) != Some(to.as_str()) {
        let note = format!("revision {to} is no longer in the {previous} Deployment");
        d.warning(reason::ROLLBACK_UNAVAILABLE, note);
        return false;
    }
    state.rollback = Some(RollbackState {
        from: input.revision.to_string(),
        to: to.clone(),
    });
    // Every pod the active colour runs must be there and ready: a colour with 1 of N ready pods, or
    // one being scaled to zero, would take the whole load at once.
    let wanted = new_colour_replicas(input, state);
    let all_ready = there.is_some_and(|o| {
        o.replicas >= wanted && o.rolled_out && o.ready_endpoints >= wanted.max(1)
    });
    if !all_ready {
        let ready = there.map_or(0, |o| o.ready_endpoints);
        let note = format!(
            "rolling back to revision {to} on {previous}; {ready} of its {wanted} pods are ready, \
             so it is scaled up and goes through every gate"
        );
        d.event(reason::ROLLBACK_STARTED, note);
        return false;
    }
    // Its pods served moments ago and all still run: traffic moves back at once.
    let delay = seconds(input.spec.scale_down_delay_seconds);
    d.event(
        reason::ROLLED_BACK,
        format!("traffic back on {previous} (revision {to}); {active} scales down after the delay"),
    );
    state.scale_down = Some(PendingScaleDown {
        color: active,
        at: Time(input.now + delay),
    });
    super::analysis::stop(state, "rolled back by ragops.io/rollback");
    state.previous = Some((active, current));
    state.active = Some((previous, to));
    state.last_cutover = Some(Time(input.now));
    d.set_plan(previous, DeploymentPlan::Keep);
    d.step = CutoverStep::Promoted { color: previous };
    d.preview_service = Some(previous);
    d.requeue_after = Some(until(input.now, input.now + delay));
    true
}
