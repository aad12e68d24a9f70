//! The canary strategy as one more gate: after the new colour is verified (and has passed its
//! pre-promotion analysis), it walks `rollout.canary.steps` before it takes all traffic.
//!
//! Weight without a service mesh: Service `<name>` selects both colours and the new colour's
//! share of the traffic is its share of the ready pods. A `setWeight: N` step
//! 1. records N (the status is written before any Deployment, so the recorded weight is never
//!    below what runs),
//! 2. scales the new colour up to [`split`]'s count and waits until those pods are available,
//! 3. only then scales the old colour down to the rest and waits for that,
//!
//! so the new colour's share rises in two moves and never passes the step's planned share. With
//! an HPA the old colour stays under it at the count it chose, and the new colour adds its share
//! of that count on top (the share is then below N). Pausing, inline analysis and the background
//! analysis (`canary.analysis`) are steps or checks here too; a failure of any of them fails the
//! rollout like any gate: the selector goes back to the old colour alone in one write and the old
//! colour is scaled back to its full count.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::gates::{Gate, Rollout};
use super::{CutoverStep, Decision, DeploymentPlan, RolloutInput, Scaling, reason, seconds};
use crate::api::{AnalysisStage, CanaryProgress, CanarySpec, Color, Step};

/// Pods of each colour at one weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// The new colour's pods.
    pub new: i32,
    /// The old colour's pods; none when they are left as they are (at 100 %, or under an HPA).
    pub old: Option<i32>,
}

/// `weight` percent of `total` pods: the new colour runs `ceil(weight × total / 100)` of them
/// (at least one), the old colour the rest (at least one until 100 %, so the Service never selects
/// a colour without pods). Exact when `weight × total / 100` is whole; otherwise the new colour's
/// share rounds up to the next pod (25 % of 2 pods is 1 of 2).
pub fn split(weight: i32, total: i32, scaling: Scaling, routed: bool) -> Split {
    let total = total.max(1);
    let share = (weight.clamp(1, 100).unsigned_abs() * total.unsigned_abs()).div_ceil(100);
    let new = i32::try_from(share).unwrap_or(total).clamp(1, total);
    if weight >= 100 {
        return Split {
            new: total,
            old: None,
        };
    }
    match scaling {
        // A router carries the weight: the old colour keeps every pod, like Argo Rollouts.
        _ if routed => Split { new, old: None },
        Scaling::Autoscaled { .. } => Split { new, old: None },
        Scaling::Fixed(_) => {
            let new = new.min((total - 1).max(1));
            Split {
                new,
                old: Some((total - new).max(1)),
            }
        }
    }
}

fn routed(input: &RolloutInput<'_>) -> bool {
    input
        .spec
        .canary()
        .is_some_and(|c| c.traffic_routing.is_some())
}

fn steps(spec: &CanarySpec) -> impl Iterator<Item = Step> + '_ {
    spec.steps.iter().map(|s| s.step())
}

/// The weight a canary's pods start at before its first `setWeight`: the first one's, so the new
/// colour is verified on the pods it will run with.
fn first_weight(spec: &CanarySpec) -> i32 {
    steps(spec)
        .find_map(|s| match s {
            Step::SetWeight(w) => Some(w),
            _ => None,
        })
        .unwrap_or(1)
}

/// How many pods the new colour runs now: the share of the weight recorded (`total` at 100 %,
/// which the end of the steps records before it adds the pods, and for a blue-green rollout).
pub fn target_replicas(input: &RolloutInput<'_>, at: Option<&CanaryProgress>, total: i32) -> i32 {
    let Some(spec) = input.spec.canary() else {
        return total;
    };
    let weight = at.map_or(0, |p| p.weight);
    let weight = if weight > 0 {
        weight
    } else {
        first_weight(spec)
    };
    split(weight, total, input.scaling, routed(input)).new
}

/// Whether a canary's traffic split is in force: a `setWeight` was reached.
pub fn splitting(at: Option<&CanaryProgress>) -> bool {
    at.is_some_and(|p| p.weight > 0)
}

/// The old colour back at its full count (a fixed one; an HPA keeps its own): after a canary
/// ends without promotion, or while none is splitting.
pub fn restore(input: &RolloutInput<'_>, d: &mut Decision, active: Option<Color>) {
    let (Scaling::Fixed(n), Some(active)) = (input.scaling, active) else {
        return;
    };
    if input.observed.get(active).is_some_and(|o| o.replicas < n) {
        d.set_plan(active, DeploymentPlan::Scale { replicas: n });
    }
}

enum Walk {
    Next,
    Stay(Gate),
}

/// The canary gate: walks the steps from the one in force, as far as they go in this decision.
pub fn stepped(r: &mut Rollout<'_, '_>) -> Gate {
    let Some(spec) = r.input.spec.canary().filter(|_| !r.first_deploy) else {
        return Gate::Pass;
    };
    let now = r.input.now;
    r.progress.canary.get_or_insert(CanaryProgress {
        step: 0,
        weight: 0,
        step_started_at: Time(now),
    });
    if let Some(failed) = background(r, spec) {
        return failed;
    }
    loop {
        let at = at(r).step;
        let Some(step) = usize::try_from(at).ok().and_then(|i| spec.steps.get(i)) else {
            break;
        };
        let walk = match step.step() {
            Step::SetWeight(w) => set_weight(r, at, w),
            Step::Pause(duration) => pause(r, at, duration),
            Step::Analysis => inline_analysis(r),
        };
        match walk {
            Walk::Next => {
                let c = at_mut(r);
                c.step += 1;
                c.step_started_at = Time(now);
            }
            Walk::Stay(gate) => return gate,
        }
    }
    if background_running(r, spec) {
        return Gate::Hold(r.d.step);
    }
    full(r)
}

fn at<'r>(r: &'r Rollout<'_, '_>) -> &'r CanaryProgress {
    r.progress.canary.as_ref().expect("set by stepped")
}

fn at_mut<'r>(r: &'r mut Rollout<'_, '_>) -> &'r mut CanaryProgress {
    r.progress.canary.as_mut().expect("set by stepped")
}

fn hold(r: &Rollout<'_, '_>, step: i32, paused: bool) -> Walk {
    Walk::Stay(Gate::Hold(CutoverStep::Canary {
        color: r.target,
        step,
        weight: at(r).weight,
        paused,
    }))
}

fn set_weight(r: &mut Rollout<'_, '_>, step: i32, weight: i32) -> Walk {
    let split = split(weight, r.total, r.input.scaling, routed(r.input));
    if at(r).weight != weight {
        at_mut(r).weight = weight;
        let note = format!(
            "canary step {step}: {} to {weight}% ({} of {} pods)",
            r.target, split.new, r.total
        );
        r.d.event(reason::CANARY_WEIGHT, note);
    }
    r.d.canary = Some(r.target);
    r.d.set_plan(r.target, r.plan(split.new));
    let up = r.input.observed.get(r.target).is_some_and(|o| {
        o.revision.as_deref() == Some(r.revision) && o.replicas == split.new && o.rolled_out
    });
    if !up {
        // The Deployment and pod watches wake the pipeline when they come up.
        return hold(r, step, false);
    }
    if let (Some(old), Some(active)) = (split.old, r.active) {
        r.d.set_plan(active, DeploymentPlan::Scale { replicas: old });
        if r.input
            .observed
            .get(active)
            .is_none_or(|o| o.replicas != old)
        {
            return hold(r, step, false);
        }
    }
    Walk::Next
}

/// A pause ends at its time, or when promoted; one promotion passes one pause.
fn pause(r: &mut Rollout<'_, '_>, step: i32, duration: Option<i32>) -> Walk {
    let now = r.input.now;
    if r.input.requests.promote && !r.d.consumed.promote {
        r.d.consumed.promote = true;
        let note = format!("canary step {step}: pause ended by ragops.io/promote");
        r.d.event(reason::CANARY_PAUSED, note);
        return Walk::Next;
    }
    match duration {
        Some(s) => {
            let end = at(r).step_started_at.0 + seconds(s);
            if now >= end {
                return Walk::Next;
            }
            r.d.requeue(super::until(now, end));
            hold(r, step, true)
        }
        None => {
            if at(r).step_started_at.0 == now {
                let note = format!(
                    "canary step {step}: {} at {}%; annotate ragops.io/promote to go on",
                    r.target,
                    at(r).weight
                );
                r.d.event(reason::CANARY_PAUSED, note);
            }
            hold(r, step, true)
        }
    }
}

fn inline_analysis(r: &mut Rollout<'_, '_>) -> Walk {
    let since = at(r).step_started_at.0;
    match super::analysis::run_gate(r, AnalysisStage::Canary, since) {
        Gate::Pass => Walk::Next,
        other => Walk::Stay(other),
    }
}

/// The background analysis, from its starting step on: a failure fails the rollout; a run in
/// progress only has its due metrics measured.
fn background(r: &mut Rollout<'_, '_>, spec: &CanarySpec) -> Option<Gate> {
    let from = spec.analysis.as_ref()?.starting_step;
    if at(r).step < from {
        return None;
    }
    let step = r.d.step;
    let since = r.progress.started_at.0;
    let gate = super::analysis::run_gate(r, AnalysisStage::Canary, since);
    // Running in the background reports the canary's step, not the analysis.
    r.d.step = step;
    match gate {
        Gate::Fail(..) => Some(gate),
        _ => None,
    }
}

/// Every step passed while the background analysis still runs: wait for its verdict.
fn background_running(r: &mut Rollout<'_, '_>, spec: &CanarySpec) -> bool {
    if spec.analysis.is_none() {
        return false;
    }
    let running = r
        .analysis
        .as_ref()
        .is_some_and(|run| run.stage == AnalysisStage::Canary && !run.phase.is_done());
    if running {
        let weight = at(r).weight;
        let step = at(r).step;
        r.d.step = CutoverStep::Canary {
            color: r.target,
            step,
            weight,
            paused: false,
        };
    }
    running
}

/// After the last step, the new colour runs its full count before it takes all traffic: weight
/// 100, recorded before the pods are added.
fn full(r: &mut Rollout<'_, '_>) -> Gate {
    if at(r).weight != 100 {
        at_mut(r).weight = 100;
        let note = format!(
            "canary steps passed: {} to 100% ({} pods) before it takes all traffic",
            r.target, r.total
        );
        r.d.event(reason::CANARY_WEIGHT, note);
    }
    r.d.canary = Some(r.target);
    r.d.set_plan(r.target, r.plan(r.total));
    let up = r.input.observed.get(r.target).is_some_and(|o| {
        o.revision.as_deref() == Some(r.revision) && o.replicas == r.total && o.rolled_out
    });
    if up {
        Gate::Pass
    } else {
        Gate::Hold(CutoverStep::WaitingForAvailable { color: r.target })
    }
}
