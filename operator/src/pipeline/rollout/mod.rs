//! The blue-green cutover as a pure state machine.
//!
//! `decide` maps (desired revision, rollout settings, the bookkeeping kept in status, what the
//! cluster shows of both colours, an optional health-probe outcome, now) to the next [`Decision`]:
//! what each colour's Deployment should be, where both Services point, the new bookkeeping, the
//! Events to emit and when to look again. It never reads a clock or a client, so the same inputs
//! always give the same decision; that is what makes an operator restart at any point safe.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

mod model;

pub use model::*;

use crate::api::{Color, PendingScaleDown, RolloutFailure, RolloutProgress};

/// How often a rollout that waits on something slower than a watch event looks again.
const POLL: Duration = Duration::from_secs(5);

fn seconds(s: i32) -> SignedDuration {
    SignedDuration::from_secs(i64::from(s.max(0)))
}

fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now))
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

/// The next step of the cutover. Pure: see the module docs.
pub fn decide(input: RolloutInput<'_>) -> Decision {
    let mut state = input.state.clone();
    let mut d = Decision {
        step: CutoverStep::Steady,
        state: RolloutState::default(),
        blue: DeploymentPlan::Keep,
        green: DeploymentPlan::Keep,
        active_service: state.active.as_ref().map(|(c, _)| *c),
        preview_service: None,
        events: vec![],
        requeue_after: None,
        consume_promote: false,
        consume_retry: input.retry_requested,
    };
    if input.retry_requested
        && let Some(failure) = state.failure.take()
    {
        d.event(
            reason::RETRY,
            format!("retrying revision {}", failure.revision),
        );
    }

    let active_color = state.active.as_ref().map(|(c, _)| *c);
    let active_replicas = active_color
        .and_then(|c| input.observed.get(c))
        .map(|o| o.replicas);
    let new_colour_replicas = match input.scaling {
        Scaling::Fixed(n) => n,
        Scaling::Autoscaled { min, max } => active_replicas.unwrap_or(min).clamp(min, max),
    };

    if let Some((active, revision)) = state.active.clone()
        && revision == input.revision
    {
        steady(&input, &mut state, &mut d, active, new_colour_replicas);
    } else {
        roll_out(&input, &mut state, &mut d, new_colour_replicas);
    }
    d.active_service = state.active.as_ref().map(|(c, _)| *c);
    d.state = state;
    d
}

/// The active colour runs the desired revision: keep it right, and wind down the other colour.
fn steady(
    input: &RolloutInput<'_>,
    state: &mut RolloutState,
    d: &mut Decision,
    active: Color,
    replicas: i32,
) {
    d.step = CutoverStep::Steady;
    d.consume_promote = input.promote_requested;
    d.preview_service = Some(active);
    state.failure = None;
    if let Some((target, revision)) = state.target.take() {
        d.event(
            reason::ROLLOUT_CANCELLED,
            format!("revision {revision} on {target} is no longer wanted"),
        );
    }
    state.progress = None;
    let active_replicas = match input.scaling {
        Scaling::Fixed(n) => n,
        // The HPA owns the count; re-state what it chose.
        Scaling::Autoscaled { .. } => input.observed.get(active).map_or(replicas, |o| o.replicas),
    };
    d.set_plan(
        active,
        DeploymentPlan::Apply {
            replicas: active_replicas,
        },
    );

    let idle = active.other();
    match state.scale_down.clone() {
        Some(pending) if pending.color == idle && input.now < pending.at.0 => {
            d.requeue(until(input.now, pending.at.0));
        }
        pending => {
            if pending.is_some() {
                state.scale_down = None;
            }
            if input.observed.get(idle).is_some_and(|o| o.replicas > 0) {
                d.set_plan(idle, DeploymentPlan::Scale { replicas: 0 });
                d.event(reason::SCALED_DOWN, format!("scaled {idle} to zero"));
            }
        }
    }
}

/// The desired revision is not active yet: bring it up on the idle colour and cut over.
fn roll_out(input: &RolloutInput<'_>, state: &mut RolloutState, d: &mut Decision, replicas: i32) {
    let active = state.active.as_ref().map(|(c, _)| *c);
    let target = active.map_or(Color::Blue, Color::other);
    let spec = input.spec;

    if state
        .failure
        .as_ref()
        .is_some_and(|f| f.revision == input.revision)
    {
        d.step = CutoverStep::Failed;
        d.preview_service = Some(target);
        if input.observed.get(target).is_some_and(|o| o.replicas > 0) {
            d.set_plan(target, DeploymentPlan::Scale { replicas: 0 });
        }
        return;
    }
    state.failure = None;

    if state.target.as_ref() != Some(&(target, input.revision.to_string()))
        || state.progress.is_none()
    {
        match &state.target {
            Some((_, old)) if old != input.revision => d.event(
                reason::ROLLOUT_SUPERSEDED,
                format!(
                    "revision {old} superseded by {} before promotion",
                    input.revision
                ),
            ),
            _ => {}
        }
        d.event(
            reason::ROLLOUT_STARTED,
            format!("rolling out revision {} on {target}", input.revision),
        );
        state.target = Some((target, input.revision.to_string()));
        state.progress = Some(RolloutProgress {
            started_at: Time(input.now),
            health_successes: 0,
            health_failures: 0,
            verified: false,
            last_probe_at: None,
        });
        if state.scale_down.as_ref().is_some_and(|s| s.color == target) {
            state.scale_down = None;
        }
    }
    d.set_plan(target, DeploymentPlan::Apply { replicas });
    d.preview_service = Some(target);
    // A pending scale-down of the active colour's predecessor is the target itself, so the
    // active colour is never touched here.
    let progress = state.progress.as_mut().expect("set above");

    // The deadline covers getting the new colour up and verified; a verified colour waiting for
    // a manual promotion does not expire.
    if !progress.verified {
        let deadline = progress.started_at.0 + seconds(spec.progress_deadline_seconds);
        if input.now >= deadline {
            let message = format!(
                "revision {} was not verified within {}s",
                input.revision, spec.progress_deadline_seconds
            );
            return fail(
                input,
                state,
                d,
                target,
                reason::PROGRESS_DEADLINE_EXCEEDED,
                message,
            );
        }
        d.requeue(until(input.now, deadline));
    }

    let observed = input.observed.get(target);
    let up = observed.is_some_and(|o| {
        o.revision.as_deref() == Some(input.revision) && o.replicas == replicas && o.rolled_out
    });
    if !up {
        d.step = CutoverStep::WaitingForAvailable { color: target };
        d.requeue(POLL);
        return;
    }

    if !progress.verified {
        let threshold = spec.health_check.success_threshold;
        let period = Duration::from_secs(
            u64::try_from(spec.health_check.period_seconds.max(1)).unwrap_or(1),
        );
        let next_probe = progress
            .last_probe_at
            .as_ref()
            .map(|t| t.0 + SignedDuration::try_from(period).unwrap_or_default());
        if let Some(at) = next_probe.filter(|at| input.now < *at) {
            d.step = CutoverStep::Verifying { color: target };
            d.requeue(until(input.now, at));
            return;
        }
        if input.probe.is_some() {
            progress.last_probe_at = Some(MicroTime(input.now));
        }
        match &input.probe {
            None => {
                let smoke =
                    progress.health_successes + 1 >= threshold && !spec.smoke_queries.is_empty();
                d.step = CutoverStep::HealthCheck {
                    color: target,
                    smoke,
                };
                return;
            }
            Some(ProbeOutcome::Healthy) => {
                progress.health_successes += 1;
                progress.health_failures = 0;
                if progress.health_successes < threshold {
                    d.step = CutoverStep::Verifying { color: target };
                    d.requeue(period);
                    return;
                }
                progress.verified = true;
                d.event(
                    reason::HEALTH_CHECK_PASSED,
                    format!("{target} passed {threshold} consecutive health checks"),
                );
            }
            Some(ProbeOutcome::Unhealthy(why)) => {
                progress.health_successes = 0;
                progress.health_failures += 1;
                if progress.health_failures >= spec.health_check.failure_threshold {
                    let message = format!(
                        "{target} failed {} consecutive health checks: {why}",
                        progress.health_failures
                    );
                    return fail(
                        input,
                        state,
                        d,
                        target,
                        reason::HEALTH_CHECK_FAILED,
                        message,
                    );
                }
                d.step = CutoverStep::Verifying { color: target };
                d.requeue(period);
                return;
            }
            Some(ProbeOutcome::SmokeFailed(why)) => {
                let message = format!("{target} failed its smoke queries: {why}");
                return fail(input, state, d, target, reason::SMOKE_QUERY_FAILED, message);
            }
        }
    }

    // Never send traffic to a colour nothing can answer on.
    if observed.is_none_or(|o| o.ready_endpoints == 0) {
        d.step = CutoverStep::WaitingForAvailable { color: target };
        d.requeue(POLL);
        return;
    }
    // A manual gate protects live traffic; a first deploy has none to protect.
    if !spec.auto_promote && !input.promote_requested && active.is_some() {
        // Announced once, in the decision that completed verification.
        if d.events
            .iter()
            .any(|e| e.reason == reason::HEALTH_CHECK_PASSED)
        {
            let note =
                format!("{target} is verified; annotate ragops.io/promote to switch traffic");
            d.event(reason::AWAITING_PROMOTION, note);
        }
        d.step = CutoverStep::AwaitingPromotion { color: target };
        d.requeue_after = None;
        return;
    }

    d.consume_promote = input.promote_requested;
    d.event(
        reason::PROMOTED,
        format!("traffic switched to {target} (revision {})", input.revision),
    );
    d.step = CutoverStep::Promoted { color: target };
    if let Some(old) = active {
        state.scale_down = Some(PendingScaleDown {
            color: old,
            at: Time(input.now + seconds(spec.scale_down_delay_seconds)),
        });
    }
    state.active = state.target.take();
    state.progress = None;
    state.last_cutover = Some(Time(input.now));
    d.preview_service = Some(target);
    d.requeue_after = Some(until(
        input.now,
        input.now + seconds(spec.scale_down_delay_seconds),
    ));
}

/// The old colour keeps all traffic; the new one is scaled to zero and the revision is remembered
/// as failed so it is not retried until the spec changes or a retry is asked for.
fn fail(
    input: &RolloutInput<'_>,
    state: &mut RolloutState,
    d: &mut Decision,
    target: Color,
    why: &'static str,
    message: String,
) {
    d.warning(reason::ROLLOUT_FAILED, format!("{why}: {message}"));
    state.failure = Some(RolloutFailure {
        revision: input.revision.to_string(),
        reason: why.to_string(),
        message,
    });
    state.target = None;
    state.progress = None;
    d.set_plan(target, DeploymentPlan::Scale { replicas: 0 });
    d.step = CutoverStep::Failed;
    d.requeue_after = None;
}

#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;
