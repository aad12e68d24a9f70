//! The golden set as a gate of the cutover: started once the new colour answers, held while the
//! run is out, and passed, failed (regressed, below the minimum) or inconclusive by its result.

use super::*;
use crate::analysis::golden::{QueryScore, Scores};
use crate::api::{GoldenSetPhase, GoldenSetSpec, GoldenSetStatus};
use crate::pipeline::rollout::golden::{RECHECK, reason as g};

fn golden_spec() -> GoldenSetSpec {
    serde_yaml::from_str(
        "{configMapRef: {name: golden}, minRecallAtK: 0.5, maxRegression: 0.1, timeBudgetSeconds: 60}",
    )
    .unwrap()
}

/// Ten queries, `hits` of them with their document first.
pub(in crate::pipeline::rollout) fn scores(hits: usize) -> Scores {
    Scores {
        queries: (0..10)
            .map(|i| QueryScore {
                query: format!("q{i}"),
                rank: (i < hits).then_some(1),
                found: u32::from(i < hits),
                expected: 1,
            })
            .collect(),
    }
}

fn running(revision: &str, started: i64) -> GoldenSetStatus {
    GoldenSetStatus {
        revision: revision.into(),
        color: Green,
        phase: GoldenSetPhase::Running,
        started_at: Time(t(started)),
        target: None,
        active: None,
        queries: None,
        regressed: None,
        message: None,
    }
}

fn result(started: i64, outcome: Result<GoldenScores, String>) -> GoldenResult {
    GoldenResult {
        revision: "r2".into(),
        color: Green,
        started_at: t(started),
        outcome,
    }
}

fn compared(new: usize, active: usize) -> Result<GoldenScores, String> {
    Ok(GoldenScores {
        target: scores(new),
        active: Some(scores(active)),
    })
}

/// r2 on green verified beside r1 on blue; its golden run `run`, if any.
fn verified(run: Option<GoldenSetStatus>) -> Case {
    let mut state = rolling(Some("r1"), Green, "r2", progress(0, 2, 0, true));
    state.golden = run;
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    case.spec.golden_set = Some(golden_spec());
    case
}

#[test]
fn a_colour_that_answers_starts_its_golden_set_and_holds() {
    let d = verified(None).decide();
    assert_eq!(d.step, CutoverStep::GoldenSet { color: Green });
    assert_eq!(d.state.golden, Some(running("r2", 10)));
    assert_eq!(reasons(&d), [g::GOLDEN_SET_STARTED]);
    assert!(
        d.events[0].note.contains("and on blue (revision r1)"),
        "{d:?}"
    );
    assert_eq!(d.active_service, Some(Blue));
    assert_eq!(d.requeue_after, Some(RECHECK));
    // Held with the run out: nothing new is started or said.
    let d = verified(Some(running("r2", 10))).decide();
    assert_eq!(d.step, CutoverStep::GoldenSet { color: Green });
    assert!(d.events.is_empty(), "{d:?}");
}

#[test]
fn a_run_starts_on_a_whole_second_as_status_keeps_it() {
    let mut case = verified(None);
    case.now = t(10) + SignedDuration::from_millis(700);
    let run = case.decide().state.golden.unwrap();
    assert_eq!(run.started_at, Time(t(10)));
    let text = serde_json::to_value(&run.started_at).unwrap();
    let back: Time = serde_json::from_value(text).unwrap();
    assert_eq!(back, run.started_at, "the key reads back the same");
}

#[test]
fn a_run_of_an_earlier_rollout_is_started_again() {
    let mut old = running("r2", -100);
    old.phase = GoldenSetPhase::Passed;
    let d = verified(Some(old)).decide();
    assert_eq!(d.state.golden, Some(running("r2", 10)));
    assert_eq!(d.step, CutoverStep::GoldenSet { color: Green });
}

#[test]
fn a_result_that_keeps_recall_promotes() {
    let mut case = verified(Some(running("r2", 5)));
    case.golden = vec![result(5, compared(9, 10))];
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Green });
    assert_eq!(reasons(&d), [g::GOLDEN_SET_PASSED, reason::PROMOTED]);
    let run = d.state.golden.unwrap();
    assert_eq!(run.phase, GoldenSetPhase::Passed);
    assert_eq!((run.queries, run.regressed), (Some(10), Some(1)));
    let (new, active) = (run.target.unwrap(), run.active.unwrap());
    assert_eq!((new.color, new.recall_at_k), (Green, 0.9));
    assert_eq!((active.color, active.revision.as_str()), (Blue, "r1"));
}

#[test]
fn a_regression_fails_the_rollout_and_blue_keeps_traffic() {
    let mut case = verified(Some(running("r2", 5)));
    case.golden = vec![result(5, compared(7, 10))];
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(d.active_service, Some(Blue));
    assert_eq!(d.plan(Green), DeploymentPlan::Scale { replicas: 0 });
    let failure = d.state.failure.as_ref().unwrap();
    assert_eq!(failure.reason, g::RETRIEVAL_REGRESSED);
    assert!(
        failure
            .message
            .contains("3 of 10 queries regressed: \"q7\", \"q8\", \"q9\""),
        "{failure:?}"
    );
    let warning = d.events.iter().find(|e| e.warning).unwrap();
    assert_eq!(warning.reason, g::RETRIEVAL_REGRESSED);
    assert!(warning.note.contains("\"q7\""), "{warning:?}");
    assert_eq!(d.outcome(), Some("failed"));
    assert_eq!(d.state.golden.unwrap().regressed, Some(3));
}

#[test]
fn results_of_other_runs_count_for_nothing() {
    let mut case = verified(Some(running("r2", 5)));
    case.golden = vec![result(4, compared(0, 10))];
    assert_eq!(case.decide().step, CutoverStep::GoldenSet { color: Green });
}

#[test]
fn no_answer_or_no_result_in_time_is_inconclusive_never_a_pass() {
    let mut case = verified(Some(running("r2", 5)));
    case.golden = vec![result(5, Err("over the time budget of 60s".into()))];
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(d.state.failure.unwrap().reason, g::GOLDEN_SET_INCONCLUSIVE);
    // Twice the budget and 30 s: a restart of the operator may run it again, no longer.
    let mut case = verified(Some(running("r2", 5)));
    case.now = t(5 + 149);
    assert_eq!(case.decide().step, CutoverStep::GoldenSet { color: Green });
    case.now = t(5 + 150);
    let d = case.decide();
    assert_eq!(d.state.failure.unwrap().reason, g::GOLDEN_SET_INCONCLUSIVE);
    assert_eq!(d.active_service, Some(Blue));
}

#[test]
fn a_first_deploy_checks_only_the_minimum() {
    let first = |hits: usize| {
        let mut state = rolling(None, Blue, "r1", progress(0, 2, 0, true));
        let mut run = running("r1", 5);
        run.color = Blue;
        state.golden = Some(run);
        let mut case = Case::new("r1", state, observed(up("r1", 2), None));
        case.spec.golden_set = Some(golden_spec());
        case.golden = vec![GoldenResult {
            revision: "r1".into(),
            color: Blue,
            started_at: t(5),
            outcome: Ok(GoldenScores {
                target: scores(hits),
                active: None,
            }),
        }];
        case.decide()
    };
    let d = first(5);
    assert_eq!(d.step, CutoverStep::Promoted { color: Blue });
    assert_eq!(d.state.golden.unwrap().active, None);
    let d = first(4);
    assert_eq!(d.state.failure.unwrap().reason, g::GOLDEN_SET_BELOW_MINIMUM);
    assert_eq!(d.active_service, None);
}

#[test]
fn a_manual_promotion_waits_for_the_golden_set_and_is_announced_after_it() {
    let mut case = verified(Some(running("r2", 5)));
    case.spec.auto_promote = false;
    case.promote = true;
    assert_eq!(case.decide().step, CutoverStep::GoldenSet { color: Green });
    case.promote = false;
    case.golden = vec![result(5, compared(10, 10))];
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::AwaitingPromotion { color: Green });
    assert_eq!(
        reasons(&d),
        [g::GOLDEN_SET_PASSED, reason::AWAITING_PROMOTION]
    );
}
