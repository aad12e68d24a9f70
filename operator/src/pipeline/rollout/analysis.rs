//! Metric analysis as steps of the cutover: a gate before promotion, and a window after it in
//! which the old colour stays up and traffic goes back to it if the new revision goes bad.
//!
//! The run lives in `status.analysis` ([`RolloutState::analysis`]); each decision records the
//! query results that came back ([`RolloutInput::results`], those of other runs are ignored),
//! asks `crate::analysis` what comes next and reports the metrics due as
//! [`CutoverStep::Analysing`]. The queries themselves run outside `decide`.
//!
//! Outcomes:
//! - Pre-promotion Failed: the rollout fails like a failed gate (`AnalysisFailed`).
//! - Pre-promotion Inconclusive (no data, Prometheus unreachable): the rollout fails too, with
//!   `AnalysisInconclusive`. Waiting would hold the new colour up forever on an outage, and
//!   passing would promote on no evidence; failing keeps the old colour serving and says why,
//!   and `ragops.io/retry` runs the analysis again once Prometheus is back. There is no forced
//!   promotion past it (no `--force` path exists yet).
//! - Post-promotion Failed or Inconclusive: traffic goes back to the old colour in one decision
//!   (`PostPromotionAnalysisFailed`), recorded as a rollback so the revision is not promoted
//!   again until the spec changes or a retry is asked for. Inconclusive rolls back too: the new
//!   revision never proved itself, and the old colour is still up to take the traffic.
//! - Post-promotion Successful: the old colour's scale-down is scheduled as after any promotion.
//!
//! A first deploy has no old colour to go back to, so it runs no post-promotion analysis.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::gates::{Gate, Rollout};
use super::{
    CutoverStep, Decision, DeploymentPlan, RolloutInput, RolloutState, Slots, reason, seconds,
    until,
};
use crate::analysis::CompiledAnalysis;
use crate::analysis::run::RunStep;
use crate::api::{
    AnalysisPhase, AnalysisRunStatus, AnalysisStage, Color, PendingScaleDown, RollbackState,
};

/// How soon to look again while queries are out, should their results not wake the pipeline.
pub const MEASURE_RECHECK: Duration = Duration::from_secs(5);

fn stage_name(stage: AnalysisStage) -> &'static str {
    match stage {
        AnalysisStage::PrePromotion => "pre-promotion",
        AnalysisStage::PostPromotion => "post-promotion",
        AnalysisStage::Canary => "canary",
    }
}

/// Records the results of this run that came back, then advances it. Returns the step and
/// whether the run ended in this decision.
fn advance(
    compiled: &CompiledAnalysis,
    run: &mut AnalysisRunStatus,
    input: &RolloutInput<'_>,
) -> (RunStep, bool) {
    let was_running = !run.phase.is_done();
    if was_running {
        let (stage, color, started) = (run.stage, run.color, run.started_at.0);
        let revision = run.revision.clone();
        let ours = input
            .results
            .iter()
            .filter(|r| r.stage == stage && r.revision == revision && r.color == color)
            // A query of an earlier run of the same revision and colour counts for nothing.
            .filter(|r| r.at >= started);
        for r in ours {
            compiled.record(run, r.slot, &r.result, r.at);
        }
    }
    let step = compiled.advance(run, input.now);
    (step, was_running && run.phase.is_done())
}

/// The step that reports a running analysis, with the requeue that wakes it.
fn hold(d: &mut Decision, now: Timestamp, step: &RunStep, color: Color, stage: AnalysisStage) {
    if !step.measure.is_empty() {
        d.requeue(MEASURE_RECHECK);
    } else if let Some(at) = step.wake_at {
        d.requeue(until(now, at));
    }
    d.due = Slots::of(&step.measure);
    d.step = CutoverStep::Analysing {
        color,
        stage,
        due: d.due,
    };
}

/// The pre-promotion gate: a run for this revision and colour, started for this rollout, must
/// succeed. A canary that reached its steps has passed it.
pub fn analysed(r: &mut Rollout<'_, '_>) -> Gate {
    if r.progress.canary.is_some() {
        return Gate::Pass;
    }
    let since = r.progress.started_at.0;
    run_gate(r, AnalysisStage::PrePromotion, since)
}

/// A run of `stage` for this revision and colour, started at or after `since`, must succeed:
/// started when there is none, held while it runs.
pub fn run_gate(r: &mut Rollout<'_, '_>, stage: AnalysisStage, since: Timestamp) -> Gate {
    let Some(compiled) = r.input.analysis.filter(|a| !a.stage(stage).is_empty()) else {
        return Gate::Pass;
    };
    let (now, target) = (r.input.now, r.target);
    let fresh = r.analysis.as_ref().is_some_and(|run| {
        run.stage == stage
            && run.revision == r.revision
            && run.color == target
            && run.started_at.0 >= since
    });
    if !fresh {
        *r.analysis = Some(compiled.start(stage, r.revision, target, now));
        let note = format!(
            "{} analysis of revision {} on {target} started",
            stage_name(stage),
            r.revision
        );
        r.d.event(reason::ANALYSIS_STARTED, note);
    }
    let run = r.analysis.as_mut().expect("set above");
    let (step, ended) = advance(compiled, run, r.input);
    let message = run.message.clone().unwrap_or_default();
    match run.phase {
        AnalysisPhase::Running => {
            hold(r.d, now, &step, target, stage);
            Gate::Hold(r.d.step)
        }
        AnalysisPhase::Successful => {
            if ended {
                let note = format!("{target} passed its {} analysis", stage_name(stage));
                r.d.event(reason::ANALYSIS_PASSED, note);
            }
            Gate::Pass
        }
        AnalysisPhase::Failed => Gate::Fail(reason::ANALYSIS_FAILED, message),
        AnalysisPhase::Inconclusive => Gate::Fail(reason::ANALYSIS_INCONCLUSIVE, message),
    }
}

/// At a promotion of `revision` onto `target` from `old`: starts the post-promotion run when the
/// spec has one. Returns whether it did (then the old colour's scale-down waits for it).
pub fn start_post(
    input: &RolloutInput<'_>,
    state: &mut RolloutState,
    d: &mut Decision,
    target: Color,
    revision: &str,
) -> bool {
    let stage = AnalysisStage::PostPromotion;
    let Some(compiled) = input.analysis.filter(|a| !a.stage(stage).is_empty()) else {
        return false;
    };
    state.analysis = Some(compiled.start(stage, revision, target, input.now));
    let note = format!(
        "post-promotion analysis of revision {revision} on {target} started; the old colour \
         stays up until it passes"
    );
    d.event(reason::ANALYSIS_STARTED, note);
    true
}

/// Ends a run still going when its rollout stops (an abort, a rollback, a new rollout).
pub fn stop(state: &mut RolloutState, why: &str) {
    if let Some(run) = state.analysis.as_mut().filter(|r| !r.phase.is_done()) {
        run.phase = AnalysisPhase::Inconclusive;
        run.message = Some(format!("stopped: {why}"));
    }
}

/// The active colour runs the wanted revision: while its post-promotion run goes on, the old
/// colour stays as it is. Returns true when that settles the idle colour for this decision
/// (running, or rolled back); false when the old colour winds down as usual.
pub fn post_promotion(
    input: &RolloutInput<'_>,
    state: &mut RolloutState,
    d: &mut Decision,
    active: Color,
) -> bool {
    let stage = AnalysisStage::PostPromotion;
    let revision = state.active.as_ref().map(|(_, r)| r.clone());
    let Some(run) = state.analysis.as_mut().filter(|r| {
        r.stage == stage && r.color == active && Some(&r.revision) == revision.as_ref()
    }) else {
        return false;
    };
    if run.phase.is_done() {
        return false;
    }
    let Some(compiled) = input.analysis else {
        run.phase = AnalysisPhase::Inconclusive;
        run.message = Some("spec.rollout.analysis was removed; not measured".into());
        return false;
    };
    let (step, _) = advance(compiled, run, input);
    let message = run.message.clone().unwrap_or_default();
    match run.phase {
        AnalysisPhase::Running => {
            hold(d, input.now, &step, active, stage);
            true
        }
        AnalysisPhase::Successful => {
            let note = format!("{active} passed its post-promotion analysis");
            d.event(reason::ANALYSIS_PASSED, note);
            let at = input.now + seconds(input.spec.scale_down_delay_seconds);
            state.scale_down = Some(PendingScaleDown {
                color: active.other(),
                at: Time(at),
            });
            false
        }
        AnalysisPhase::Failed | AnalysisPhase::Inconclusive => {
            roll_back(input, state, d, active, &message)
        }
    }
}

/// Traffic back to the colour that served before, at once; the failed colour winds down after
/// the delay. The old colour was kept up for this; the live-Service guard still refuses it
/// while it has no ready pod.
fn roll_back(
    input: &RolloutInput<'_>,
    state: &mut RolloutState,
    d: &mut Decision,
    active: Color,
    why: &str,
) -> bool {
    let revision = input.revision.to_string();
    let previous = state.previous.clone().filter(|(c, to)| {
        input.observed.get(*c).and_then(|o| o.revision.as_deref()) == Some(to.as_str())
    });
    let (Some((previous, to)), None) = (previous, &state.rollback) else {
        let note = format!(
            "{}: {why}; no previous revision is still up to take traffic back",
            stage_name(AnalysisStage::PostPromotion)
        );
        d.warning(reason::POST_PROMOTION_ANALYSIS_FAILED, note);
        return false;
    };
    state.rollback = Some(RollbackState {
        from: revision.clone(),
        to: to.clone(),
    });
    let at = input.now + seconds(input.spec.scale_down_delay_seconds);
    state.scale_down = Some(PendingScaleDown {
        color: active,
        at: Time(at),
    });
    state.previous = Some((active, revision.clone()));
    state.active = Some((previous, to.clone()));
    state.last_cutover = Some(Time(input.now));
    let note =
        format!("traffic back on {previous} (revision {to}) from revision {revision}: {why}");
    d.warning(reason::POST_PROMOTION_ANALYSIS_FAILED, note);
    d.set_plan(previous, DeploymentPlan::Keep);
    d.set_plan(active, DeploymentPlan::Keep);
    // After a canary the old colour may run only its last share: it takes its full count back.
    super::canary::restore(input, d, Some(previous));
    d.step = CutoverStep::Promoted { color: previous };
    d.preview_service = Some(previous);
    d.requeue(until(input.now, at));
    true
}
