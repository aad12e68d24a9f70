//! Rollouts that must not take traffic: failed probes and smoke queries, deadlines, retries.

use super::*;

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
    let failed = d.events.iter().find(|e| e.reason == reason::ROLLOUT_FAILED);
    assert!(
        failed.is_some_and(|e| e.warning),
        "a Warning Event, logged at WARN: {:?}",
        d.events
    );
}

/// Blue serves r1; r2 failed its health check and is remembered as failed.
fn r2_failed_over_blue_r1() -> RolloutState {
    RolloutState {
        failure: Some(RolloutFailure {
            revision: "r2".into(),
            reason: "HealthCheckFailed".into(),
            message: "m".into(),
            attempts: None,
            retry_at: None,
        }),
        ..active(Blue, "r1")
    }
}

#[test]
fn a_failed_revision_stays_failed_until_the_spec_changes() {
    let failed = r2_failed_over_blue_r1();
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
    let failed = r2_failed_over_blue_r1();
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
    assert!(d.consumed.retry);
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
fn never_promotes_a_colour_without_ready_endpoints() {
    let state = rolling(Some("r1"), Green, "r2", progress(0, 2, 0, true));
    let mut empty = up("r2", 2).unwrap();
    empty.ready_endpoints = 0;
    let d = Case::new("r2", state, observed(up("r1", 2), Some(empty))).decide();
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Green });
    assert_eq!(d.active_service, Some(Blue));
    assert_eq!(
        d.requeue_after, None,
        "verified, so no deadline: the pod watch wakes it, no timer"
    );
}
