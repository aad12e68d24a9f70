//! The blue-green cutover as a pure state machine.
//!
//! `decide` maps (desired revision, rollout settings, the bookkeeping kept in status, what the
//! cluster shows of both colours, the operations the user asked for, an optional health-probe
//! outcome, now) to the next [`Decision`]: what each colour's Deployment should be, where both
//! Services point, the new bookkeeping, the Events to emit and when to look again. It never reads
//! a clock or a client, so the same inputs always give the same decision; that is what makes an
//! operator restart at any point safe.
//!
//! A rollout passes [`gates::GATES`] in order before traffic moves; a new kind of check (metric
//! analysis, a weighted canary step) is one more gate. User operations (abort, rollback) are in
//! [`operations`].

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

mod analysis;
mod canary;
mod failure;
mod gates;
pub mod golden;
mod model;
mod operations;
pub mod requests;

pub use analysis::MEASURE_RECHECK;
pub use failure::first_deploy_backoff;
use failure::{after_failure, schedule_retry};
pub use golden::{GoldenResult, GoldenScores};
pub use model::*;

use self::gates::{Gate, Rollout};
use crate::api::{Color, PendingScaleDown, RolloutFailure, RolloutProgress};

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
    // A forced promotion is a promotion that may also end a running analysis (see `analysis`).
    let asked = input.requests;
    let input = RolloutInput {
        requests: Requests {
            promote: asked.promote || asked.force_promote,
            ..asked
        },
        ..input
    };
    let mut d = decide_requested(&input);
    if asked.force_promote && d.consumed.promote {
        d.consumed.force_promote = true;
        d.consumed.promote = asked.promote;
    }
    d
}

fn decide_requested(input: &RolloutInput<'_>) -> Decision {
    let mut state = input.state.clone();
    let mut d = Decision {
        step: CutoverStep::Steady,
        state: RolloutState::default(),
        blue: DeploymentPlan::Keep,
        green: DeploymentPlan::Keep,
        active_service: state.active.as_ref().map(|(c, _)| *c),
        canary: None,
        routed: input
            .spec
            .canary()
            .is_some_and(|c| c.traffic_routing.is_some()),
        due: Slots::default(),
        preview_service: None,
        events: vec![],
        requeue_after: None,
        consumed: Requests::default(),
    };
    if operations::apply(input, &mut state, &mut d) {
        d.active_service = state.active.as_ref().map(|(c, _)| *c);
        d.state = state;
        return d;
    }
    let wanted = operations::wanted_revision(input, &state);
    let replicas = new_colour_replicas(input, &state);
    match state.active.clone() {
        Some((active, revision)) if revision == wanted => {
            steady(input, &mut state, &mut d, active, replicas)
        }
        _ => roll_out(input, &mut state, &mut d, &wanted, replicas),
    }
    d.active_service = state.active.as_ref().map(|(c, _)| *c);
    d.state = state;
    d
}

/// What the live Service should select, given what it selects now (`current`): the decided
/// selection, unless a colour it adds has no ready pod. A status recorded ahead of the Service
/// whose new colour lost its pods since never sends traffic to nothing; a later decision moves it
/// once a pod is ready. A split whose canary lost its pods narrows to the colour that has them.
pub fn live_color(
    decided: Option<Live>,
    current: Option<Live>,
    observed: &Observed,
) -> Option<Live> {
    match decided {
        Some(l) if current.is_some_and(|now| now != l) && !l.serves(observed) => {
            if current == Some(Live::Both) {
                // Out of a split, onto the colour that still serves.
                let mut only = Color::ALL.into_iter().map(Live::Only);
                only.find(|o| o.serves(observed)).or(current)
            } else {
                current
            }
        }
        other => other,
    }
}

/// Whether the live Service must move before the Deployments change: when it narrows from both
/// colours to one, the other colour may be about to lose its pods.
pub fn traffic_first(current: Option<Live>, next: Option<Live>) -> bool {
    current == Some(Live::Both) && matches!(next, Some(Live::Only(_)))
}

/// Pods a new colour starts with: the fixed count, or what the HPA gave the active colour.
fn new_colour_replicas(input: &RolloutInput<'_>, state: &RolloutState) -> i32 {
    let active_replicas = state
        .active
        .as_ref()
        .and_then(|(c, _)| input.observed.get(*c))
        .map(|o| o.replicas);
    match input.scaling {
        Scaling::Fixed(n) => n,
        Scaling::Autoscaled { min, max } => active_replicas.unwrap_or(min).clamp(min, max),
    }
}

/// The active colour runs the wanted revision: keep it right, and wind down the other colour.
fn steady(
    input: &RolloutInput<'_>,
    state: &mut RolloutState,
    d: &mut Decision,
    active: Color,
    replicas: i32,
) {
    d.step = CutoverStep::Steady;
    d.consumed.promote = input.requests.promote;
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
    // A rolled-back revision's template lives only in its Deployment: never re-apply the spec's.
    let plan = if state.rollback.is_some() {
        DeploymentPlan::Scale {
            replicas: active_replicas,
        }
    } else {
        DeploymentPlan::Apply {
            replicas: active_replicas,
        }
    };
    d.set_plan(active, plan);
    if !analysis::post_promotion(input, state, d, active) {
        scale_down_idle(input, state, d, active.other());
    }
}

fn scale_down_idle(
    input: &RolloutInput<'_>,
    state: &mut RolloutState,
    d: &mut Decision,
    idle: Color,
) {
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

/// The wanted revision is not active yet: bring it up on the idle colour, pass the gates, cut
/// over.
fn roll_out(
    input: &RolloutInput<'_>,
    state: &mut RolloutState,
    d: &mut Decision,
    wanted: &str,
    replicas: i32,
) {
    let active = state.active.as_ref().map(|(c, _)| *c);
    let target = active.map_or(Color::Blue, Color::other);
    let Some(failed_attempts) = after_failure(input, state, d, target, wanted) else {
        canary::restore(input, d, active);
        return;
    };
    state.failure = None;
    start(input, state, d, target, wanted);
    d.preview_service = Some(target);
    let mut progress = state.progress.take().expect("set by start");
    if failed_attempts.is_some() {
        progress.failed_attempts = failed_attempts;
    }
    if canary::splitting(progress.canary.as_ref()) {
        d.canary = Some(target);
    } else if input.spec.canary().is_some() {
        // A canary superseded before it split gives the old colour its pods back.
        canary::restore(input, d, active);
    }
    let mut run = state.analysis.take();
    let mut golden = state.golden.take();
    let mut rollout = Rollout {
        input,
        target,
        revision: wanted,
        // A first deploy has no traffic to split: it goes straight to its full count.
        replicas: match active {
            Some(_) => canary::target_replicas(input, progress.canary.as_ref(), replicas),
            None => replicas,
        },
        total: replicas,
        active,
        first_deploy: active.is_none(),
        progress: &mut progress,
        analysis: &mut run,
        d,
        golden: &mut golden,
    };
    let plan = rollout.plan(rollout.replicas);
    rollout.d.set_plan(target, plan);
    let verdict = gates::GATES
        .iter()
        .map(|gate| gate(&mut rollout))
        .find(|g| *g != Gate::Pass);
    state.progress = Some(progress);
    state.analysis = run;
    state.golden = golden;
    match verdict {
        Some(Gate::Pass) => unreachable!("found only gates that did not pass"),
        Some(Gate::Hold(step)) => d.step = step,
        Some(Gate::Fail(why, message)) => {
            let attempts = state.progress.as_ref().and_then(|p| p.failed_attempts);
            fail(state, d, target, wanted, why, message);
            canary::restore(input, d, active);
            if active.is_none() {
                schedule_retry(input.now, state, d, attempts.unwrap_or(0) + 1);
            }
        }
        None => promote(input, state, d, target, active),
    }
}

/// Records the rollout of `revision` on `target`, starting it if it is new.
fn start(
    input: &RolloutInput<'_>,
    state: &mut RolloutState,
    d: &mut Decision,
    target: Color,
    revision: &str,
) {
    if state.target.as_ref() == Some(&(target, revision.to_string())) && state.progress.is_some() {
        return;
    }
    if let Some((_, old)) = &state.target
        && old != revision
    {
        d.event(
            reason::ROLLOUT_SUPERSEDED,
            format!("revision {old} superseded by {revision} before promotion"),
        );
    }
    d.event(
        reason::ROLLOUT_STARTED,
        format!("rolling out revision {revision} on {target}"),
    );
    analysis::stop(state, &format!("revision {revision} is rolling out"));
    state.target = Some((target, revision.to_string()));
    state.progress = Some(RolloutProgress {
        started_at: Time(input.now),
        health_successes: 0,
        health_failures: 0,
        verified: false,
        last_probe_at: None,
        failed_attempts: None,
        canary: None,
    });
    // A pending scale-down of the active colour's predecessor is the target itself, so the active
    // colour is never touched here.
    if state.scale_down.as_ref().is_some_and(|s| s.color == target) {
        state.scale_down = None;
    }
}

/// Traffic moves to `target`; the old colour keeps running for `scaleDownDelaySeconds`.
fn promote(
    input: &RolloutInput<'_>,
    state: &mut RolloutState,
    d: &mut Decision,
    target: Color,
    active: Option<Color>,
) {
    let revision = state
        .target
        .as_ref()
        .map(|(_, r)| r.clone())
        .unwrap_or_default();
    let delay = seconds(input.spec.scale_down_delay_seconds);
    d.consumed.promote = input.requests.promote;
    d.event(
        reason::PROMOTED,
        format!("traffic switched to {target} (revision {revision})"),
    );
    d.step = CutoverStep::Promoted { color: target };
    d.canary = None;
    let analysed = active.is_some() && analysis::start_post(input, state, d, target, &revision);
    if let Some(old) = active.filter(|_| !analysed) {
        state.scale_down = Some(PendingScaleDown {
            color: old,
            at: Time(input.now + delay),
        });
    }
    state.previous = state.active.take();
    state.active = state.target.take();
    state.progress = None;
    state.last_cutover = Some(Time(input.now));
    d.preview_service = Some(target);
    d.requeue_after = Some(until(input.now, input.now + delay));
    if analysed {
        d.requeue(Duration::from_secs(1));
    }
}

/// The old colour keeps all traffic; the new one is scaled to zero and the revision is remembered
/// as failed so it is not retried until the spec changes or a retry is asked for.
fn fail(
    state: &mut RolloutState,
    d: &mut Decision,
    target: Color,
    revision: &str,
    why: &'static str,
    message: String,
) {
    let event = match why {
        reason::ABORTED | reason::ANALYSIS_FAILED | reason::ANALYSIS_INCONCLUSIVE => why,
        _ if golden::failure(why).is_some() => why,
        _ => reason::ROLLOUT_FAILED,
    };
    d.warning(event, format!("{why}: {message}"));
    analysis::stop(state, &format!("{why}: {message}"));
    state.failure = Some(RolloutFailure {
        revision: revision.to_string(),
        reason: why.to_string(),
        message,
        attempts: None,
        retry_at: None,
    });
    state.target = None;
    state.progress = None;
    d.set_plan(target, DeploymentPlan::Scale { replicas: 0 });
    d.canary = None;
    d.step = CutoverStep::Failed;
    d.requeue_after = None;
}

#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;
