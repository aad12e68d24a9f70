//! Replica counts and the HPA across a cutover, and the old colour winding down.

use super::*;

#[test]
fn the_old_colour_is_scaled_down_only_after_the_delay() {
    let state = RolloutState {
        scale_down: Some(PendingScaleDown {
            color: Blue,
            at: Time(t(40)),
        }),
        ..active(Green, "r2")
    };
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    case.now = t(39);
    let d = case.decide();
    assert_eq!(d.blue, DeploymentPlan::Keep);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(1)));
    case.now = t(40);
    let d = case.decide();
    assert_eq!(d.blue, DeploymentPlan::Scale { replicas: 0 });
    assert_eq!(d.state.scale_down, None);
    assert_eq!(reasons(&d), [reason::SCALED_DOWN]);
}

#[test]
fn a_new_rollout_reuses_the_colour_waiting_for_scale_down() {
    let state = RolloutState {
        scale_down: Some(PendingScaleDown {
            color: Blue,
            at: Time(t(40)),
        }),
        ..active(Green, "r2")
    };
    let d = Case::new("r3", state, observed(up("r1", 2), up("r2", 2))).decide();
    assert_eq!(d.blue, DeploymentPlan::Apply { replicas: 2 });
    assert_eq!(d.state.target, Some((Blue, "r3".into())));
    assert_eq!(d.state.scale_down, None);
}

#[test]
fn autoscaled_new_colour_starts_at_the_active_count_so_cutover_never_scales_down() {
    let cases = [(5, 5), (1, 2), (12, 10)]; // active count → new colour count, clamped to [2, 10]
    for (active_replicas, expected) in cases {
        let mut case = Case::new(
            "r2",
            active(Blue, "r1"),
            observed(up("r1", active_replicas), None),
        );
        case.scaling = Scaling::Autoscaled { min: 2, max: 10 };
        let d = case.decide();
        assert_eq!(
            d.green,
            DeploymentPlan::Apply { replicas: expected },
            "active at {active_replicas}"
        );
        assert_eq!(
            d.blue,
            DeploymentPlan::Keep,
            "the HPA's colour is not touched during the rollout"
        );
    }
}

#[test]
fn autoscaled_active_colour_keeps_the_count_the_hpa_chose() {
    let mut case = Case::new("r1", active(Blue, "r1"), observed(up("r1", 7), None));
    case.scaling = Scaling::Autoscaled { min: 2, max: 10 };
    assert_eq!(case.decide().blue, DeploymentPlan::Apply { replicas: 7 });
}

#[test]
fn replica_changes_during_a_rollout_touch_only_the_new_colour() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 0, 0, false));
    let mut case = Case::new("r2", state, observed(up("r1", 2), starting("r2", 2)));
    case.scaling = Scaling::Fixed(4);
    let d = case.decide();
    assert_eq!(
        (d.blue, d.green),
        (DeploymentPlan::Keep, DeploymentPlan::Apply { replicas: 4 })
    );
    assert_eq!(
        d.step,
        CutoverStep::WaitingForAvailable { color: Green },
        "must be up at the new count"
    );
}

#[test]
fn replica_changes_in_steady_state_scale_the_active_colour() {
    let mut case = Case::new("r1", active(Blue, "r1"), observed(up("r1", 2), None));
    case.scaling = Scaling::Fixed(5);
    assert_eq!(case.decide().blue, DeploymentPlan::Apply { replicas: 5 });
}

#[test]
fn a_deleted_active_deployment_is_recreated_without_moving_traffic() {
    let d = Case::new("r1", active(Blue, "r1"), Observed::default()).decide();
    assert_eq!(d.blue, DeploymentPlan::Apply { replicas: 2 });
    assert_eq!(d.active_service, Some(Blue));
}
