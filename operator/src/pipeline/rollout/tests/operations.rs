//! Operations users ask for by annotation: abort and rollback.

use super::*;
use crate::api::RollbackState;

/// Blue served r1, green serves r2 since t(0); blue is still up, waiting for its scale-down.
fn after_cutover(blue_replicas: i32) -> Case {
    let state = RolloutState {
        active: Some((Green, "r2".into())),
        previous: Some((Blue, "r1".into())),
        scale_down: Some(PendingScaleDown {
            color: Blue,
            at: Time(t(30)),
        }),
        ..RolloutState::default()
    };
    let blue = if blue_replicas > 0 {
        up("r1", blue_replicas)
    } else {
        Some(ColorObservation {
            revision: Some("r1".into()),
            replicas: 0,
            rolled_out: true,
            ready_endpoints: 0,
        })
    };
    Case::new("r2", state, observed(blue, up("r2", 2)))
}

#[test]
fn abort_stops_the_rollout_and_keeps_traffic_on_the_old_colour() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 1, 0, false));
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    case.abort = true;
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(d.active_service, Some(Blue));
    assert_eq!(
        (d.blue, d.green),
        (DeploymentPlan::Keep, DeploymentPlan::Scale { replicas: 0 })
    );
    assert_eq!(d.state.failure.as_ref().unwrap().reason, reason::ABORTED);
    assert_eq!(reasons(&d), [reason::ABORTED]);
    assert!(d.consumed.abort);
    assert_eq!(d.outcome(), Some("aborted"));

    // The aborted revision stays down until the spec changes or a retry is asked for.
    case.abort = false;
    case.state = d.state;
    assert_eq!(case.decide().step, CutoverStep::Failed);
    case.retry = true;
    assert_eq!(
        case.decide().step,
        CutoverStep::HealthCheck {
            color: Green,
            smoke: false
        }
    );
}

#[test]
fn abort_with_nothing_in_flight_changes_nothing() {
    let mut case = Case::new("r1", active(Blue, "r1"), observed(up("r1", 2), None));
    case.abort = true;
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Steady);
    assert_eq!(reasons(&d), [reason::NOTHING_TO_ABORT]);
    assert!(d.consumed.abort, "the annotation is removed");
    assert_eq!(d.state.failure, None);
}

#[test]
fn rollback_while_the_previous_pods_run_is_instant() {
    let mut case = after_cutover(2);
    case.rollback = true;
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Blue });
    assert_eq!(
        d.active_service,
        Some(Blue),
        "traffic moves back in this decision"
    );
    assert_eq!(d.blue, DeploymentPlan::Keep);
    assert_eq!(d.state.active, Some((Blue, "r1".into())));
    assert_eq!(d.state.previous, Some((Green, "r2".into())));
    assert_eq!(
        d.state.rollback,
        Some(RollbackState {
            from: "r2".into(),
            to: "r1".into()
        })
    );
    assert_eq!(d.state.scale_down.as_ref().map(|s| s.color), Some(Green));
    assert_eq!(reasons(&d), [reason::ROLLED_BACK]);
    assert!(d.consumed.rollback);

    // Afterwards blue is steady on r1, its Deployment left alone (only scaled), green winds down.
    case.rollback = false;
    case.state = d.state;
    case.now = t(100);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Steady);
    assert_eq!(
        d.blue,
        DeploymentPlan::Scale { replicas: 2 },
        "never re-apply the spec's template"
    );
    assert_eq!(d.green, DeploymentPlan::Scale { replicas: 0 });

    // A new spec revision ends the rollback and rolls out normally.
    case.revision = "r3";
    case.state = d.state;
    let d = case.decide();
    assert_eq!(d.state.rollback, None);
    assert_eq!(d.state.target, Some((Green, "r3".into())));
    assert_eq!(d.green, DeploymentPlan::Apply { replicas: 2 });
}

#[test]
fn rollback_after_the_previous_pods_are_gone_is_a_gated_rollout() {
    let mut case = after_cutover(0);
    case.now = t(40);
    case.rollback = true;
    let d = case.decide();
    assert_eq!(
        reasons(&d),
        [reason::ROLLBACK_STARTED, reason::ROLLOUT_STARTED]
    );
    assert_eq!(d.state.target, Some((Blue, "r1".into())));
    assert_eq!(
        d.blue,
        DeploymentPlan::Scale { replicas: 2 },
        "its own template, scaled up"
    );
    assert_eq!(
        d.active_service,
        Some(Green),
        "no traffic moves before the gates pass"
    );
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Blue });

    // Up and probed: it promotes like any rollout.
    case.rollback = false;
    case.state = d.state;
    case.observed = observed(up("r1", 2), up("r2", 2));
    case.spec.health_check.success_threshold = 1;
    case.probe = Some(ProbeOutcome::Healthy);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Blue });
    assert_eq!(d.state.active, Some((Blue, "r1".into())));
    assert_eq!(
        d.state.rollback.as_ref().map(|r| r.from.as_str()),
        Some("r2")
    );
}

#[test]
fn rollback_needs_the_previous_revision_in_its_deployment() {
    let mut case = after_cutover(2);
    case.observed.blue = up("r0", 2);
    case.rollback = true;
    let d = case.decide();
    assert_eq!(reasons(&d), [reason::ROLLBACK_UNAVAILABLE]);
    assert!(d.events[0].warning);
    assert_eq!(d.step, CutoverStep::Steady);
    assert_eq!(d.state.active, Some((Green, "r2".into())));

    let mut first = Case::new("r1", active(Blue, "r1"), observed(up("r1", 2), None));
    first.rollback = true;
    assert_eq!(reasons(&first.decide()), [reason::ROLLBACK_UNAVAILABLE]);
}

#[test]
fn retry_after_a_rollback_rolls_the_spec_out_again() {
    let mut case = after_cutover(2);
    case.rollback = true;
    let rolled_back = case.decide().state;
    case.rollback = false;
    case.retry = true;
    case.state = rolled_back;
    let d = case.decide();
    assert_eq!(d.state.rollback, None);
    assert!(reasons(&d).contains(&reason::RETRY));
    assert_eq!(d.state.target, Some((Green, "r2".into())));
}

#[test]
fn a_promotion_remembers_what_served_before() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 1, 0, false));
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    case.probe = Some(ProbeOutcome::Healthy);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Promoted { color: Green });
    assert_eq!(d.state.previous, Some((Blue, "r1".into())));
}

#[test]
fn a_second_rollback_while_one_is_in_force_is_refused() {
    let mut case = after_cutover(2);
    case.rollback = true;
    let rolled_back = case.decide();
    assert_eq!(rolled_back.state.active, Some((Blue, "r1".into())));

    // Clicked again (a new request id): it would bring the bad revision back. Refused.
    case.state = rolled_back.state.clone();
    case.observed = observed(up("r1", 2), up("r2", 2));
    let d = case.decide();
    assert_eq!(reasons(&d), [reason::ROLLBACK_REFUSED]);
    assert!(d.events[0].warning);
    assert!(d.consumed.rollback, "recorded as handled");
    assert_eq!(d.active_service, Some(Blue), "no flip back");
    assert_eq!(d.state.active, Some((Blue, "r1".into())));

    // A gated rollback in flight is refused too, not aborted.
    let mut gated = after_cutover(0);
    gated.now = t(40);
    gated.rollback = true;
    gated.state = gated.decide().state;
    assert_eq!(gated.state.target, Some((Blue, "r1".into())));
    let d = gated.decide();
    assert_eq!(reasons(&d), [reason::ROLLBACK_REFUSED]);
    assert_eq!(
        d.state.target,
        Some((Blue, "r1".into())),
        "the rollback goes on"
    );
}

#[test]
fn an_instant_rollback_needs_every_pod_of_the_old_colour_ready() {
    // Blue kept 2 replicas, but only 1 is ready: it would take the whole load at once.
    let mut case = after_cutover(2);
    case.observed.blue = Some(ColorObservation {
        revision: Some("r1".into()),
        replicas: 2,
        rolled_out: false,
        ready_endpoints: 1,
    });
    case.rollback = true;
    let d = case.decide();
    assert_eq!(
        reasons(&d),
        [reason::ROLLBACK_STARTED, reason::ROLLOUT_STARTED]
    );
    assert_eq!(
        d.active_service,
        Some(Green),
        "traffic stays until all are ready"
    );
    assert_eq!(d.blue, DeploymentPlan::Scale { replicas: 2 });
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Blue });

    // Scaled below the active colour's count (being wound down): scaled up first.
    let mut case = after_cutover(1);
    case.rollback = true;
    let d = case.decide();
    assert_eq!(d.active_service, Some(Green));
    assert_eq!(d.blue, DeploymentPlan::Scale { replicas: 2 });
}
