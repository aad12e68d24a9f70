//! Metric analysis as steps of the cutover: before promotion (running, success, failure,
//! inconclusive, the manual gate after it, abort), and after it (the old colour kept up, a
//! failure rolled back at once, a success winding the old colour down).

use super::*;
use crate::analysis::prometheus::{QueryError, QueryValue};
use crate::analysis::{CompiledAnalysis, compile};
use crate::api::{AnalysisPhase, AnalysisSpec, AnalysisStage, RollbackState};

const PRE: AnalysisStage = AnalysisStage::PrePromotion;
const POST: AnalysisStage = AnalysisStage::PostPromotion;

/// One builtin metric, `errors` (error ratio at most 0.05), measured twice 30 s apart, in `stage`
/// (also the simulator's).
pub(in crate::pipeline::rollout) fn analysis(stage: AnalysisStage) -> CompiledAnalysis {
    let stage = serde_json::to_value(stage).unwrap();
    let stage = stage.as_str().unwrap();
    let spec: AnalysisSpec = serde_yaml::from_str(&format!(
        r#"
prometheus: {{address: "http://prometheus:9090"}}
metrics:
- {{name: errors, builtin: errorRatio, threshold: 0.05, intervalSeconds: 30, count: 2}}
{stage}: {{metrics: [errors]}}
"#
    ))
    .unwrap();
    compile(&spec).unwrap()
}

pub(super) fn value(v: f64) -> Result<QueryValue, QueryError> {
    Ok(QueryValue::Number {
        value: v,
        text: v.to_string(),
    })
}

pub(super) fn result(
    stage: AnalysisStage,
    revision: &str,
    at: i64,
    r: Result<QueryValue, QueryError>,
) -> AnalysisResult {
    AnalysisResult {
        stage,
        revision: revision.into(),
        color: Green,
        slot: 0,
        at: t(at),
        result: r,
    }
}

/// r2 on green beside r1 on blue (both up) in `state`, with a run of `stage` started at 5 with
/// `taken` successful measurements.
fn measuring(stage: AnalysisStage, mut state: RolloutState, taken: &[i64]) -> Case {
    let compiled = analysis(stage);
    let mut run = compiled.start(stage, "r2", Green, t(5));
    for at in taken {
        compiled.record(&mut run, 0, &value(0.01), t(*at));
    }
    state.analysis = Some(run);
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    case.analysis = Some(compiled);
    case
}

/// r2 on green verified beside r1 on blue, its pre-promotion run started at 5 with `taken`
/// successful measurements.
fn analysing(taken: &[i64]) -> Case {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 2, 0, true));
    measuring(PRE, state, taken)
}

#[test]
fn a_verified_colour_starts_its_pre_promotion_analysis_and_measures() {
    let mut case = analysing(&[]);
    case.state.analysis = None;
    let d = case.decide();
    let due = Slots::of(&[0]);
    assert_eq!(
        d.step,
        CutoverStep::Analysing {
            color: Green,
            stage: PRE,
            due
        }
    );
    assert_eq!(reasons(&d), [reason::ANALYSIS_STARTED]);
    let run = d.state.analysis.as_ref().unwrap();
    assert_eq!(
        (run.stage, run.color, run.phase),
        (PRE, Green, AnalysisPhase::Running)
    );
    assert_eq!(
        d.active_service,
        Some(Blue),
        "no traffic moves while it runs"
    );
    assert_eq!(d.requeue_after, Some(MEASURE_RECHECK));
}

#[test]
fn between_measurements_it_waits_for_the_next_one() {
    let mut case = analysing(&[8]);
    case.now = t(20);
    let d = case.decide();
    let step = CutoverStep::Analysing {
        color: Green,
        stage: PRE,
        due: Slots::default(),
    };
    assert_eq!(d.step, step);
    assert_eq!(d.requeue_after, Some(std::time::Duration::from_secs(18)));
    assert!(reasons(&d).is_empty());
}

#[test]
fn a_passed_analysis_promotes() {
    let mut case = analysing(&[8]);
    case.now = t(40);
    case.results = vec![result(PRE, "r2", 39, value(0.0))];
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Green });
    assert_eq!(reasons(&d), [reason::ANALYSIS_PASSED, reason::PROMOTED]);
    let run = d.state.analysis.as_ref().unwrap();
    assert_eq!(
        (run.phase, run.metrics[0].successful),
        (AnalysisPhase::Successful, 2)
    );
}

#[test]
fn a_failed_analysis_fails_the_rollout_and_blue_keeps_traffic() {
    let mut case = analysing(&[8]);
    case.now = t(40);
    case.results = vec![result(PRE, "r2", 39, value(0.5))];
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(d.active_service, Some(Blue));
    assert_eq!(d.green, DeploymentPlan::Scale { replicas: 0 });
    let failure = d.state.failure.as_ref().unwrap();
    assert_eq!(failure.reason, reason::ANALYSIS_FAILED);
    assert!(
        failure
            .message
            .contains("metric errors failed with result 0.5"),
        "{}",
        failure.message
    );
    assert_eq!(reasons(&d), [reason::ANALYSIS_FAILED]);
    assert_eq!(d.outcome(), Some("failed"));
}

#[test]
fn an_inconclusive_analysis_never_promotes() {
    let mut case = analysing(&[]);
    case.results = vec![result(
        PRE,
        "r2",
        9,
        Err(QueryError::Transport("connection refused".into())),
    )];
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(d.active_service, Some(Blue));
    let failure = d.state.failure.as_ref().unwrap();
    assert_eq!(failure.reason, reason::ANALYSIS_INCONCLUSIVE);
    assert!(
        failure.message.contains("metric errors"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("connection refused"),
        "{}",
        failure.message
    );
}

#[test]
fn results_of_another_run_are_not_recorded() {
    let mut case = analysing(&[]);
    case.results = vec![
        result(PRE, "r1", 9, value(0.5)),
        result(POST, "r2", 9, value(0.5)),
        // Taken before this run started: an earlier attempt's.
        result(PRE, "r2", 4, value(0.5)),
    ];
    let d = case.decide();
    assert!(
        matches!(d.step, CutoverStep::Analysing { .. }),
        "{:?}",
        d.step
    );
    assert_eq!(d.state.analysis.as_ref().unwrap().metrics[0].taken(), 0);
}

#[test]
fn a_new_attempt_starts_a_new_run() {
    let mut case = analysing(&[8]);
    // The rollout restarted (a retry) after this run began.
    case.state.progress = progress(30, 2, 0, true);
    case.now = t(31);
    let d = case.decide();
    let run = d.state.analysis.as_ref().unwrap();
    assert_eq!((run.started_at.0, run.metrics[0].taken()), (t(31), 0));
}

#[test]
fn promote_never_skips_a_running_analysis_and_the_manual_gate_follows_it() {
    let mut case = analysing(&[8]);
    case.spec.auto_promote = false;
    case.promote = true;
    case.now = t(20);
    let d = case.decide();
    assert!(
        matches!(d.step, CutoverStep::Analysing { .. }),
        "{:?}",
        d.step
    );
    assert!(!d.consumed.promote, "the request waits for the analysis");

    case.promote = false;
    case.now = t(40);
    case.results = vec![result(PRE, "r2", 39, value(0.0))];
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::AwaitingPromotion { color: Green });
    assert_eq!(
        reasons(&d),
        [reason::ANALYSIS_PASSED, reason::AWAITING_PROMOTION]
    );
}

#[test]
fn abort_during_analysis_stops_the_run_and_blue_keeps_traffic() {
    let mut case = analysing(&[8]);
    case.abort = true;
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(d.active_service, Some(Blue));
    assert_eq!(d.green, DeploymentPlan::Scale { replicas: 0 });
    let run = d.state.analysis.as_ref().unwrap();
    assert!(run.phase.is_done());
}

/// r2 just promoted onto green over r1 on blue (still up), its post-promotion run started at 5.
fn after_promotion(taken: &[i64]) -> Case {
    let mut state = active(Green, "r2");
    state.previous = Some((Blue, "r1".into()));
    measuring(POST, state, taken)
}

#[test]
fn promotion_with_post_promotion_analysis_keeps_the_old_colour_up() {
    let mut case = analysing(&[8]);
    let compiled = analysis(POST);
    case.analysis = Some(compiled);
    case.state.analysis = None;
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Green });
    assert_eq!(d.state.scale_down, None, "no scale-down scheduled");
    let run = d.state.analysis.as_ref().unwrap();
    assert_eq!(
        (run.stage, run.color, run.revision.as_str()),
        (POST, Green, "r2")
    );
    assert_eq!(reasons(&d), [reason::PROMOTED, reason::ANALYSIS_STARTED]);
    assert_eq!(d.requeue_after, Some(std::time::Duration::from_secs(1)));
}

#[test]
fn while_post_promotion_analysis_runs_the_old_colour_stays() {
    let mut case = after_promotion(&[8]);
    case.now = t(20);
    let d = case.decide();
    assert_eq!(
        d.step,
        CutoverStep::Analysing {
            color: Green,
            stage: POST,
            due: Slots::default()
        }
    );
    assert_eq!(d.blue, DeploymentPlan::Keep, "blue is not scaled down");
    assert_eq!(d.active_service, Some(Green));
}

#[test]
fn a_failed_post_promotion_analysis_sends_traffic_back_at_once() {
    let mut case = after_promotion(&[8]);
    case.now = t(40);
    case.results = vec![result(POST, "r2", 39, value(0.9))];
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Blue });
    assert_eq!(d.active_service, Some(Blue));
    assert_eq!(d.state.active, Some((Blue, "r1".into())));
    assert_eq!(
        d.state.rollback,
        Some(RollbackState {
            from: "r2".into(),
            to: "r1".into()
        })
    );
    assert_eq!(reasons(&d), [reason::POST_PROMOTION_ANALYSIS_FAILED]);
    assert_eq!(d.outcome(), Some("rolledBack"));
    assert_eq!(d.state.scale_down.as_ref().map(|s| s.color), Some(Green));

    // Not promoted again: the next decision keeps blue, green winds down after the delay.
    let mut next = Case::new("r2", d.state.clone(), case.observed.clone());
    next.analysis = case.analysis.take();
    next.now = t(41);
    let again = next.decide();
    assert_eq!(again.step, CutoverStep::Steady);
    assert_eq!(again.active_service, Some(Blue));
}

#[test]
fn a_passed_post_promotion_analysis_schedules_the_scale_down() {
    let mut case = after_promotion(&[8]);
    case.now = t(40);
    case.results = vec![result(POST, "r2", 39, value(0.0))];
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Steady);
    assert_eq!(reasons(&d), [reason::ANALYSIS_PASSED]);
    let at = d.state.scale_down.as_ref().map(|s| (s.color, s.at.0));
    assert_eq!(at, Some((Blue, t(70))));
    assert_eq!(d.blue, DeploymentPlan::Keep);
    assert_eq!(d.requeue_after, Some(std::time::Duration::from_secs(30)));
}

#[test]
fn a_forced_promotion_ends_a_running_analysis_unjudged_and_switches() {
    for auto_promote in [true, false] {
        let mut case = analysing(&[10]);
        case.spec.auto_promote = auto_promote;
        case.force = true;
        let d = case.decide();
        assert_eq!(
            d.step,
            CutoverStep::Promoted { color: Green },
            "auto {auto_promote}"
        );
        let run = d.state.analysis.as_ref().unwrap();
        assert_eq!(run.stage, PRE);
        assert_eq!(run.phase, AnalysisPhase::Skipped);
        assert!(reasons(&d).contains(&reason::ANALYSIS_SKIPPED));
        assert!(d.consumed.force_promote && !d.consumed.promote);
    }
    // A plain promotion never skips it.
    let mut case = analysing(&[10]);
    case.spec.auto_promote = false;
    case.promote = true;
    let d = case.decide();
    assert!(matches!(d.step, CutoverStep::Analysing { .. }));
    assert!(!d.consumed.promote, "kept for when the analysis passes");
}

#[test]
fn a_forced_promotion_does_not_bring_back_a_revision_whose_analysis_failed() {
    let mut case = analysing(&[]);
    case.results = vec![
        result(PRE, "r2", 40, value(0.5)),
        result(PRE, "r2", 41, value(0.5)),
    ];
    case.now = t(41);
    let failed = case.decide();
    assert_eq!(failed.step, CutoverStep::Failed);
    let mut again = analysing(&[]);
    again.state = failed.state.clone();
    again.force = true;
    again.now = t(42);
    let d = again.decide();
    assert_eq!(
        d.step,
        CutoverStep::Failed,
        "a retry brings it back, not a promotion"
    );
}
