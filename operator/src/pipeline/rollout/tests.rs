//! The cutover state machine, case by case, then whole rollouts simulated step by step.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::*;
use crate::api::{Color::*, HealthCheckSpec, SmokeQuery};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn spec() -> RolloutSpec {
    RolloutSpec {
        auto_promote: true,
        health_check: HealthCheckSpec {
            success_threshold: 2,
            failure_threshold: 2,
            ..HealthCheckSpec::default()
        },
        smoke_queries: vec![],
        progress_deadline_seconds: 300,
        scale_down_delay_seconds: 30,
    }
}

/// A colour that is fully up on `rev`.
fn up(rev: &str, replicas: i32) -> Option<ColorObservation> {
    Some(ColorObservation {
        revision: Some(rev.into()),
        replicas,
        rolled_out: true,
        ready_endpoints: replicas,
    })
}

/// A colour whose pods are still starting.
fn starting(rev: &str, replicas: i32) -> Option<ColorObservation> {
    Some(ColorObservation {
        revision: Some(rev.into()),
        replicas,
        rolled_out: false,
        ready_endpoints: 0,
    })
}

fn observed(blue: Option<ColorObservation>, green: Option<ColorObservation>) -> Observed {
    Observed { blue, green }
}

fn progress(
    started: i64,
    successes: i32,
    failures: i32,
    verified: bool,
) -> Option<RolloutProgress> {
    Some(RolloutProgress {
        started_at: Time(t(started)),
        health_successes: successes,
        health_failures: failures,
        verified,
        last_probe_at: None,
    })
}

fn active(color: Color, rev: &str) -> RolloutState {
    RolloutState {
        active: Some((color, rev.into())),
        ..RolloutState::default()
    }
}

fn rolling(
    active_rev: Option<&str>,
    target: Color,
    rev: &str,
    p: Option<RolloutProgress>,
) -> RolloutState {
    RolloutState {
        active: active_rev.map(|r| (target.other(), r.to_string())),
        target: Some((target, rev.into())),
        progress: p,
        ..RolloutState::default()
    }
}

/// One call of `decide` with everything spelled out.
struct Case {
    revision: &'static str,
    scaling: Scaling,
    spec: RolloutSpec,
    promote: bool,
    retry: bool,
    state: RolloutState,
    observed: Observed,
    probe: Option<ProbeOutcome>,
    now: Timestamp,
}

impl Case {
    fn new(revision: &'static str, state: RolloutState, observed: Observed) -> Self {
        Self {
            revision,
            scaling: Scaling::Fixed(2),
            spec: spec(),
            promote: false,
            retry: false,
            state,
            observed,
            probe: None,
            now: t(10),
        }
    }

    fn decide(&self) -> Decision {
        decide(RolloutInput {
            revision: self.revision,
            scaling: self.scaling,
            spec: &self.spec,
            promote_requested: self.promote,
            retry_requested: self.retry,
            state: &self.state,
            observed: &self.observed,
            probe: self.probe.clone(),
            now: self.now,
        })
    }
}

fn reasons(d: &Decision) -> Vec<&'static str> {
    d.events.iter().map(|e| e.reason).collect()
}

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
fn a_failed_probe_resets_successes_and_enough_failures_abort() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 1, 0, false));
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    case.probe = Some(ProbeOutcome::Unhealthy("503".into()));
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Verifying { color: Green });
    let p = d.state.progress.clone().unwrap();
    assert_eq!((p.health_successes, p.health_failures), (0, 1));

    case.state = d.state;
    case.now = t(12);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(
        d.active_service,
        Some(Blue),
        "the old colour keeps all traffic"
    );
    assert_eq!(
        (d.blue, d.green),
        (DeploymentPlan::Keep, DeploymentPlan::Scale { replicas: 0 })
    );
    let failure = d.state.failure.clone().unwrap();
    assert_eq!(
        (failure.revision.as_str(), failure.reason.as_str()),
        ("r2", reason::HEALTH_CHECK_FAILED)
    );
    assert!(failure.message.contains("503"), "{}", failure.message);
    assert_eq!(reasons(&d), [reason::ROLLOUT_FAILED]);
    assert!(d.events[0].warning);
    assert_eq!(d.state.active, Some((Blue, "r1".into())));
}

#[test]
fn failing_smoke_queries_abort_at_once() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 1, 0, false));
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    case.spec.smoke_queries = vec![SmokeQuery {
        query: "q".into(),
        expect_source_ids: vec!["a".into()],
        min_score: None,
    }];
    // The probe that completes the health check also runs the smoke queries.
    assert_eq!(
        case.decide().step,
        CutoverStep::HealthCheck {
            color: Green,
            smoke: true
        }
    );
    case.probe = Some(ProbeOutcome::SmokeFailed("a not in top 5".into()));
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(d.state.failure.unwrap().reason, reason::SMOKE_QUERY_FAILED);
    assert_eq!(d.active_service, Some(Blue));
}

#[test]
fn smoke_queries_run_only_with_the_last_needed_probe() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 0, 0, false));
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    case.spec.smoke_queries = vec![SmokeQuery {
        query: "q".into(),
        expect_source_ids: vec![],
        min_score: None,
    }];
    assert_eq!(
        case.decide().step,
        CutoverStep::HealthCheck {
            color: Green,
            smoke: false
        }
    );
}

#[test]
fn progress_deadline_fails_the_rollout_and_keeps_the_old_colour() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 0, 0, false));
    let mut case = Case::new("r2", state, observed(up("r1", 2), starting("r2", 2)));
    case.now = t(299);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Green });
    assert_eq!(
        d.requeue_after,
        Some(Duration::from_secs(1)),
        "wakes up for the deadline at the latest"
    );
    case.now = t(300);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(
        d.state.failure.clone().unwrap().reason,
        reason::PROGRESS_DEADLINE_EXCEEDED
    );
    assert_eq!(
        (d.blue, d.green),
        (DeploymentPlan::Keep, DeploymentPlan::Scale { replicas: 0 })
    );
    assert_eq!(d.active_service, Some(Blue));
}

#[test]
fn a_failed_revision_stays_failed_until_the_spec_changes() {
    let failed = RolloutState {
        failure: Some(RolloutFailure {
            revision: "r2".into(),
            reason: "HealthCheckFailed".into(),
            message: "m".into(),
        }),
        ..active(Blue, "r1")
    };
    let mut case = Case::new("r2", failed, observed(up("r1", 2), up("r2", 2)));
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(
        d.green,
        DeploymentPlan::Scale { replicas: 0 },
        "the failed colour is held at zero"
    );
    assert!(d.events.is_empty(), "no new event while nothing changes");
    assert_eq!(
        d.requeue_after, None,
        "waits for a change instead of looping"
    );
    assert_eq!(d.state, case.state);

    // A new spec is a new revision: it rolls out.
    case.revision = "r3";
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Green });
    assert_eq!(d.state.failure, None);

    // Reverting to the active revision heals the pipeline.
    case.revision = "r1";
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Steady);
    assert_eq!(d.state.failure, None);
}

#[test]
fn retry_annotation_rolls_the_failed_revision_out_again() {
    let failed = RolloutState {
        failure: Some(RolloutFailure {
            revision: "r2".into(),
            reason: "HealthCheckFailed".into(),
            message: "m".into(),
        }),
        ..active(Blue, "r1")
    };
    let mut case = Case::new(
        "r2",
        failed,
        observed(
            up("r1", 2),
            Some(ColorObservation {
                replicas: 0,
                ..up("r2", 0).unwrap()
            }),
        ),
    );
    case.retry = true;
    let d = case.decide();
    assert!(d.consume_retry);
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Green });
    assert_eq!(d.green, DeploymentPlan::Apply { replicas: 2 });
    assert_eq!(
        d.state.progress,
        progress(10, 0, 0, false),
        "a retry starts a fresh deadline"
    );
    assert_eq!(reasons(&d), [reason::RETRY, reason::ROLLOUT_STARTED]);
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
    assert!(!d.consume_promote);

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
    assert!(d.consume_promote, "the annotation is removed once acted on");
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
    assert!(case.decide().consume_promote);
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
fn never_promotes_a_colour_without_ready_endpoints() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 2, 0, true));
    let mut empty = up("r2", 2).unwrap();
    empty.ready_endpoints = 0;
    let d = Case::new("r2", state, observed(up("r1", 2), Some(empty))).decide();
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Green });
    assert_eq!(d.active_service, Some(Blue));
}

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
