//! The path of a healthy rollout: first deploy, update, health checks, promotion, determinism.

use super::*;

#[test]
fn first_deploy_starts_blue_without_an_active_service() {
    let d = Case::new("r1", RolloutState::default(), Observed::default()).decide();
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Blue });
    assert_eq!(
        (d.blue, d.green),
        (DeploymentPlan::Apply { replicas: 2 }, DeploymentPlan::Keep)
    );
    assert_eq!((d.active_service, d.preview_service), (None, Some(Blue)));
    assert_eq!(d.state.target, Some((Blue, "r1".into())));
    assert_eq!(d.state.progress, progress(10, 0, 0, false));
    assert_eq!(reasons(&d), [reason::ROLLOUT_STARTED]);
}

#[test]
fn first_deploy_promotes_blue_once_healthy() {
    let state = rolling(None, Blue, "r1", progress(0, 1, 0, false));
    let mut case = Case::new("r1", state, observed(up("r1", 2), None));
    // Available: the controller is asked to probe.
    assert_eq!(
        case.decide().step,
        CutoverStep::HealthCheck {
            color: Blue,
            smoke: false
        }
    );
    case.probe = Some(ProbeOutcome::Healthy);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Blue });
    assert_eq!(d.active_service, Some(Blue));
    assert_eq!(d.state.active, Some((Blue, "r1".into())));
    assert_eq!(
        (d.state.target.clone(), d.state.progress.clone()),
        (None, None)
    );
    assert_eq!(d.state.last_cutover, Some(Time(t(10))));
    assert_eq!(
        d.state.scale_down, None,
        "nothing to scale down on a first deploy"
    );
    assert_eq!(reasons(&d), [reason::HEALTH_CHECK_PASSED, reason::PROMOTED]);
}

#[test]
fn steady_state_changes_nothing_and_needs_no_writes() {
    let case = Case::new("r1", active(Blue, "r1"), observed(up("r1", 2), None));
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Steady);
    assert_eq!(
        (d.blue, d.green),
        (DeploymentPlan::Apply { replicas: 2 }, DeploymentPlan::Keep)
    );
    assert_eq!(
        (d.active_service, d.preview_service),
        (Some(Blue), Some(Blue))
    );
    assert_eq!(d.state, case.state);
    assert!(d.events.is_empty());
    assert_eq!(d.requeue_after, None);
}

#[test]
fn waiting_for_the_new_pods_looks_again_only_at_the_deadline() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 0, 0, false));
    let d = Case::new("r2", state, observed(up("r1", 2), starting("r2", 2))).decide();
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Green });
    // The Deployment and pod watches wake the pipeline when the pods come up; the requeue is
    // only there so that a rollout that never comes up fails at its deadline (300s from t(0)).
    assert_eq!(d.requeue_after, Some(Duration::from_secs(290)));
}

#[test]
fn update_rolls_out_on_the_idle_colour_and_leaves_the_active_one_alone() {
    let d = Case::new("r2", active(Blue, "r1"), observed(up("r1", 2), None)).decide();
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Green });
    assert_eq!(
        (d.blue, d.green),
        (DeploymentPlan::Keep, DeploymentPlan::Apply { replicas: 2 })
    );
    assert_eq!(
        (d.active_service, d.preview_service),
        (Some(Blue), Some(Green))
    );
    assert_eq!(d.state.active, Some((Blue, "r1".into())));
}

#[test]
fn health_probes_count_consecutive_successes_before_promotion() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 0, 0, false));
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    case.probe = Some(ProbeOutcome::Healthy);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Verifying { color: Green });
    let p = d.state.progress.clone().unwrap();
    assert_eq!(
        (p.health_successes, p.last_probe_at),
        (1, Some(MicroTime(t(10))))
    );
    assert_eq!(d.active_service, Some(Blue), "one success is not enough");
    assert_eq!(
        d.requeue_after,
        Some(Duration::from_secs(2)),
        "probes run every periodSeconds"
    );

    case.state = d.state;
    case.now = t(12);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Green });
    assert_eq!(d.active_service, Some(Green));
    assert_eq!(
        d.state.scale_down,
        Some(PendingScaleDown {
            color: Blue,
            at: Time(t(42))
        })
    );
    assert_eq!(
        (d.blue, d.green),
        (DeploymentPlan::Keep, DeploymentPlan::Apply { replicas: 2 })
    );
}

#[test]
fn probes_are_a_period_apart_however_often_the_pipeline_is_reconciled() {
    let mut p = progress(0, 1, 0, false).unwrap();
    p.last_probe_at = Some(MicroTime(t(9)));
    let state = rolling(Some("r1"), Green, "r2", Some(p));
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    // A status write re-triggers the reconcile at once: no probe yet, look again when due.
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Verifying { color: Green });
    assert_eq!(d.requeue_after, Some(Duration::from_secs(1)));
    assert_eq!(d.state, case.state);
    case.now = t(11);
    assert_eq!(
        case.decide().step,
        CutoverStep::HealthCheck {
            color: Green,
            smoke: false
        }
    );
}

#[test]
fn manual_promotion_pauses_until_the_annotation_appears() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 1, 0, false));
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    case.spec.auto_promote = false;
    case.probe = Some(ProbeOutcome::Healthy);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::AwaitingPromotion { color: Green });
    assert_eq!(
        reasons(&d),
        [reason::HEALTH_CHECK_PASSED, reason::AWAITING_PROMOTION]
    );
    assert_eq!(d.active_service, Some(Blue));
    assert!(!d.consumed.promote);

    // Paused: quiet, and the deadline no longer applies.
    case.state = d.state;
    case.probe = None;
    case.now = t(10_000);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::AwaitingPromotion { color: Green });
    assert!(d.events.is_empty());

    case.promote = true;
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Green });
    assert_eq!(d.active_service, Some(Green));
    assert!(
        d.consumed.promote,
        "the annotation is removed once acted on"
    );
}

#[test]
fn a_first_deploy_is_not_held_for_manual_promotion() {
    let state = rolling(None, Blue, "r1", progress(0, 2, 0, true));
    let mut case = Case::new("r1", state, observed(up("r1", 2), None));
    case.spec.auto_promote = false;
    assert_eq!(case.decide().step, CutoverStep::Promoted { color: Blue });
}

#[test]
fn a_stale_promote_annotation_is_removed_when_there_is_nothing_to_promote() {
    let mut case = Case::new("r1", active(Blue, "r1"), observed(up("r1", 2), None));
    case.promote = true;
    assert!(case.decide().consumed.promote);
}

#[test]
fn a_second_change_supersedes_the_rollout_in_flight_on_the_same_colour() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 1, 0, false));
    let case = Case::new("r3", state, observed(up("r1", 2), up("r2", 2)));
    let d = case.decide();
    assert_eq!(
        d.step,
        CutoverStep::WaitingForAvailable { color: Green },
        "green still runs r2, not r3"
    );
    assert_eq!(d.green, DeploymentPlan::Apply { replicas: 2 });
    assert_eq!(d.state.target, Some((Green, "r3".into())));
    assert_eq!(
        d.state.progress,
        progress(10, 0, 0, false),
        "verification starts over"
    );
    assert_eq!(
        d.active_service,
        Some(Blue),
        "the active colour never changes for a superseded revision"
    );
    assert_eq!(
        reasons(&d),
        [reason::ROLLOUT_SUPERSEDED, reason::ROLLOUT_STARTED]
    );
}

#[test]
fn reverting_while_in_flight_cancels_the_rollout() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 1, 0, false));
    let d = Case::new("r1", state, observed(up("r1", 2), up("r2", 2))).decide();
    assert_eq!(d.step, CutoverStep::Steady);
    assert_eq!(d.green, DeploymentPlan::Scale { replicas: 0 });
    assert_eq!(
        (d.state.target.clone(), d.state.progress.clone()),
        (None, None)
    );
    assert_eq!(
        reasons(&d),
        [reason::ROLLOUT_CANCELLED, reason::SCALED_DOWN]
    );
}

#[test]
fn the_same_inputs_always_give_the_same_decision() {
    // An operator restart re-runs `decide` on the state it last wrote: every step must be stable.
    let mut case = Case::new("r2", active(Blue, "r1"), observed(up("r1", 2), None));
    for _ in 0..6 {
        let first = case.decide();
        assert_eq!(first, case.decide());
        case.state = first.state;
        case.now += SignedDuration::from_secs(5);
    }
}
