//! The canary strategy: weight to pods, each kind of step, the promotion at the end, and abort
//! and failure from a split.

use super::analysis::{analysis, result, value};
use super::*;
use crate::api::{AnalysisStage, CanaryProgress, CanarySpec, RolloutStrategy};

/// 25 % → 30 s → 50 % → until promoted; 4 pods.
fn canary_spec(steps: &str) -> RolloutSpec {
    RolloutSpec {
        strategy: RolloutStrategy::Canary,
        canary: Some(serde_yaml::from_str::<CanarySpec>(steps).unwrap()),
        ..spec()
    }
}

const STEPS: &str =
    "steps: [{setWeight: 25}, {pause: {durationSeconds: 30}}, {setWeight: 50}, {pause: {}}]";

fn at(step: i32, weight: i32, since: i64) -> Option<CanaryProgress> {
    Some(CanaryProgress {
        step,
        weight,
        step_started_at: Time(t(since)),
    })
}

/// r2 on green verified beside r1 on blue (4 pods each way), at canary progress `c`.
fn canary(c: Option<CanaryProgress>, blue: i32, green: Option<ColorObservation>) -> Case {
    let mut p = progress(0, 2, 0, true);
    p.as_mut().unwrap().canary = c;
    let mut case = Case::new(
        "r2",
        rolling(Some("r1"), Green, "r2", p),
        observed(up("r1", blue), green),
    );
    case.scaling = Scaling::Fixed(4);
    case.spec = canary_spec(STEPS);
    case
}

fn weight(d: &Decision) -> Option<(i32, i32)> {
    let c = d.state.progress.as_ref()?.canary.as_ref()?;
    Some((c.step, c.weight))
}

#[test]
fn weight_becomes_pods_rounded_up_with_both_colours_kept() {
    use super::super::canary::{Split, split};
    let fixed = |n| Scaling::Fixed(n);
    let hpa = Scaling::Autoscaled { min: 2, max: 10 };
    let cases = [
        ((25, 4, fixed(4)), (1, Some(3))),
        ((50, 4, fixed(4)), (2, Some(2))),
        ((80, 4, fixed(4)), (3, Some(1))),
        ((99, 4, fixed(4)), (3, Some(1))),
        ((100, 4, fixed(4)), (4, None)),
        // Not a whole pod: rounded up, the old colour keeps one.
        ((25, 2, fixed(2)), (1, Some(1))),
        ((10, 1, fixed(1)), (1, Some(1))),
        ((10, 10, fixed(10)), (1, Some(9))),
        ((33, 10, fixed(10)), (4, Some(6))),
        // Under an HPA the old colour keeps what it chose; the new one adds its share.
        ((25, 6, hpa), (2, None)),
        ((50, 6, hpa), (3, None)),
        ((100, 6, hpa), (6, None)),
    ];
    for ((w, total, scaling), (new, old)) in cases {
        assert_eq!(
            split(w, total, scaling),
            Split { new, old },
            "{w}% of {total}"
        );
    }
}

#[test]
fn a_verified_canary_starts_on_its_first_weights_pods_then_splits() {
    // Not yet at a step: green runs the first step's share, one pod.
    let mut starting = canary(None, 4, up("r2", 1));
    starting.state.progress.as_mut().unwrap().verified = false;
    starting.state.progress.as_mut().unwrap().health_successes = 0;
    let d = starting.decide();
    assert_eq!(d.green, DeploymentPlan::Apply { replicas: 1 });

    let d = canary(None, 4, up("r2", 1)).decide();
    assert_eq!(weight(&d), Some((0, 25)));
    assert_eq!(d.live(), Some(Live::Both));
    assert_eq!(
        (d.blue, d.green),
        (
            DeploymentPlan::Scale { replicas: 3 },
            DeploymentPlan::Apply { replicas: 1 }
        )
    );
    assert!(reasons(&d).contains(&reason::CANARY_WEIGHT));
    assert!(matches!(
        d.step,
        CutoverStep::Canary {
            step: 0,
            weight: 25,
            ..
        }
    ));
    // Blue scaled down: the timed pause starts and wakes the pipeline at its end.
    let d = canary(at(0, 25, 5), 3, up("r2", 1)).decide();
    assert_eq!(weight(&d), Some((1, 25)));
    assert_eq!(d.requeue_after, Some(Duration::from_secs(30)));
    assert_eq!(
        d.blue,
        DeploymentPlan::Scale { replicas: 3 },
        "re-stated, unchanged"
    );
}

#[test]
fn a_higher_weight_adds_new_pods_before_it_takes_old_ones() {
    let mut case = canary(at(1, 25, 0), 3, up("r2", 1));
    case.now = t(40);
    let d = case.decide();
    assert_eq!(weight(&d), Some((2, 50)));
    assert_eq!(
        (d.blue, d.green),
        (DeploymentPlan::Keep, DeploymentPlan::Apply { replicas: 2 })
    );
    assert_eq!(d.live(), Some(Live::Both));
    // Green's second pod is up: now blue gives one back.
    let d = canary(at(2, 50, 40), 3, up("r2", 2)).decide();
    assert_eq!(d.blue, DeploymentPlan::Scale { replicas: 2 });
    assert!(matches!(d.step, CutoverStep::Canary { step: 2, .. }));
    let d = canary(at(2, 50, 40), 2, up("r2", 2)).decide();
    assert_eq!(
        d.step,
        CutoverStep::Canary {
            color: Green,
            step: 3,
            weight: 50,
            until_promoted: true
        }
    );
    assert_eq!(
        d.requeue_after, None,
        "an untimed pause waits for the promotion"
    );
}

#[test]
fn a_promotion_ends_a_pause_and_the_canary_goes_to_full_then_takes_all_traffic() {
    let mut case = canary(at(3, 50, 40), 2, up("r2", 2));
    case.promote = true;
    let d = case.decide();
    assert!(d.consumed.promote);
    assert_eq!(weight(&d), Some((4, 100)));
    assert_eq!(d.green, DeploymentPlan::Apply { replicas: 4 });
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Green });
    assert_eq!(
        d.live(),
        Some(Live::Both),
        "traffic stays split until green is full"
    );

    let d = canary(at(4, 100, 50), 2, up("r2", 4)).decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Green });
    assert_eq!(d.live(), Some(Live::Only(Green)));
    assert_eq!(
        d.blue,
        DeploymentPlan::Keep,
        "blue winds down after the delay"
    );
}

#[test]
fn one_promotion_passes_one_pause_not_also_the_manual_gate() {
    let mut case = canary(at(3, 50, 40), 2, up("r2", 2));
    case.spec.auto_promote = false;
    case.promote = true;
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Green });
    assert!(d.consumed.promote);

    let mut full = canary(at(4, 100, 50), 2, up("r2", 4));
    full.spec.auto_promote = false;
    assert_eq!(
        full.decide().step,
        CutoverStep::AwaitingPromotion { color: Green }
    );
    full.promote = true;
    assert_eq!(full.decide().step, CutoverStep::Promoted { color: Green });
}

#[test]
fn abort_from_any_step_puts_all_traffic_and_pods_back_on_blue() {
    let cases = [
        (at(0, 25, 0), 3, up("r2", 1)),
        (at(1, 25, 0), 3, up("r2", 1)),
        (at(2, 50, 40), 3, starting("r2", 2)),
        (at(3, 50, 40), 2, up("r2", 2)),
        (at(4, 100, 50), 2, starting("r2", 4)),
    ];
    for (c, blue, green) in cases {
        let mut case = canary(c.clone(), blue, green);
        case.abort = true;
        let d = case.decide();
        assert_eq!(d.step, CutoverStep::Failed, "{c:?}");
        assert_eq!(d.live(), Some(Live::Only(Blue)), "{c:?}");
        assert!(traffic_first(Some(Live::Both), d.live()));
        let blue_plan = if blue < 4 {
            DeploymentPlan::Scale { replicas: 4 }
        } else {
            DeploymentPlan::Keep
        };
        assert_eq!(
            (d.blue, d.green),
            (blue_plan, DeploymentPlan::Scale { replicas: 0 }),
            "{c:?}"
        );
    }
}

#[test]
fn a_failed_canary_keeps_restoring_blue_after_the_failure_is_recorded() {
    let mut case = canary(None, 2, up("r2", 0));
    case.state.target = None;
    case.state.progress = None;
    case.state.failure = Some(crate::api::RolloutFailure {
        revision: "r2".into(),
        reason: reason::ABORTED.into(),
        message: "aborted".into(),
        attempts: None,
        retry_at: None,
    });
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(d.blue, DeploymentPlan::Scale { replicas: 4 });
}

#[test]
fn an_analysis_step_holds_until_it_passes_and_fails_the_canary_when_it_fails() {
    const STAGE: AnalysisStage = AnalysisStage::Canary;
    let steps = "steps: [{setWeight: 50}, {analysis: {}}, {pause: {}}]";
    let mut case = canary(at(1, 50, 10), 2, up("r2", 2));
    case.spec = canary_spec(steps);
    case.analysis = Some(analysis(STAGE));
    case.now = t(10);
    let d = case.decide();
    assert!(matches!(
        d.step,
        CutoverStep::Analysing { stage: STAGE, .. }
    ));
    assert!(!d.due.is_empty());
    assert_eq!(d.live(), Some(Live::Both));

    fails_back_to_blue(case, &d);
}

/// `case` decided again with its run (started in `d`) measuring an error ratio of 0.5: the
/// canary fails, all traffic and pods back on blue.
fn fails_back_to_blue(mut case: Case, d: &Decision) {
    const STAGE: AnalysisStage = AnalysisStage::Canary;
    case.state.analysis = d.state.analysis.clone();
    case.now = t(11);
    case.results = vec![result(STAGE, "r2", 11, value(0.5))];
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert!(reasons(&d).contains(&reason::ANALYSIS_FAILED));
    assert_eq!(d.live(), Some(Live::Only(Blue)));
    assert_eq!(d.blue, DeploymentPlan::Scale { replicas: 4 });
}

#[test]
fn a_background_analysis_measures_at_every_step_and_its_failure_aborts() {
    const STAGE: AnalysisStage = AnalysisStage::Canary;
    let steps = "steps: [{setWeight: 25}, {pause: {}}]\nanalysis: {startingStep: 1}";
    let mut case = canary(at(1, 25, 10), 3, up("r2", 1));
    case.spec = canary_spec(steps);
    case.analysis = Some(analysis(STAGE));
    let d = case.decide();
    assert!(
        matches!(
            d.step,
            CutoverStep::Canary {
                step: 1,
                until_promoted: true,
                ..
            }
        ),
        "the pause is what shows: {:?}",
        d.step
    );
    assert!(!d.due.is_empty(), "measured in the background");

    fails_back_to_blue(case, &d);
}

#[test]
fn under_an_hpa_the_canary_adds_its_share_and_leaves_the_old_colour_alone() {
    let mut case = canary(None, 6, up("r2", 2));
    case.scaling = Scaling::Autoscaled { min: 2, max: 10 };
    let d = case.decide();
    assert_eq!(weight(&d), Some((1, 25)), "step 0 done at once");
    assert_eq!(
        (d.blue, d.green),
        (DeploymentPlan::Keep, DeploymentPlan::Apply { replicas: 2 })
    );
}

#[test]
fn blue_green_is_untouched_by_the_canary_steps() {
    let mut case = canary(None, 4, up("r2", 4));
    case.spec.strategy = RolloutStrategy::BlueGreen;
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Green });
    assert_eq!(d.canary, None);
}

#[test]
fn the_live_service_splits_only_when_both_colours_have_ready_pods() {
    let both = Some(Live::Both);
    let (blue, green) = (Some(Live::Only(Blue)), Some(Live::Only(Green)));
    let green_starting = observed(up("r1", 3), starting("r2", 1));
    let both_up = observed(up("r1", 3), up("r2", 1));
    let blue_gone = observed(starting("r1", 3), up("r2", 1));
    let cases = [
        (both, blue, &green_starting, blue),
        (both, blue, &both_up, both),
        // Out of a split onto the colour that still serves.
        (blue, both, &both_up, blue),
        (blue, both, &blue_gone, green),
        (None, both, &both_up, None),
    ];
    for (decided, current, observed, want) in cases {
        assert_eq!(
            live_color(decided, current, observed),
            want,
            "{decided:?} from {current:?}"
        );
    }
}
