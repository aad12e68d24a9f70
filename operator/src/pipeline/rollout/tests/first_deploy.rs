//! A first deploy that fails has no traffic to protect: it is retried by itself, with backoff. A
//! rollout that fails while an older revision serves waits for the user.

use super::*;

/// The first deploy of r1 on blue, up, with `failed_attempts` before it.
fn first_deploy_failing(failed_attempts: Option<i32>) -> Case {
    let mut p = progress(0, 0, 1, false).unwrap();
    p.failed_attempts = failed_attempts;
    let state = rolling(None, Blue, "r1", Some(p));
    let mut case = Case::new("r1", state, observed(up("r1", 2), None));
    case.probe = Some(ProbeOutcome::Unhealthy("503".into()));
    case
}

#[test]
fn the_backoff_starts_at_30s_doubles_and_is_capped_at_10_minutes() {
    let secs: Vec<i64> = [1, 2, 3, 4, 5, 6, 20]
        .map(|n| first_deploy_backoff(n).as_secs())
        .to_vec();
    assert_eq!(secs, [30, 60, 120, 240, 480, 600, 600]);
}

#[test]
fn a_failed_first_deploy_schedules_a_retry_with_an_event() {
    let d = first_deploy_failing(None).decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(d.outcome(), Some("failed"));
    let failure = d.state.failure.clone().unwrap();
    assert_eq!(failure.reason, reason::HEALTH_CHECK_FAILED);
    assert_eq!(
        (failure.attempts, failure.retry_at),
        (Some(1), Some(Time(t(40))))
    );
    assert_eq!(d.requeue_after, Some(Duration::from_secs(30)));
    assert_eq!(d.blue, DeploymentPlan::Scale { replicas: 0 });
    assert_eq!(
        reasons(&d),
        [reason::ROLLOUT_FAILED, reason::RETRY_SCHEDULED]
    );
    let note = &d.events[1].note;
    assert!(note.contains("retried in 30s"), "{note}");
    assert!(!d.events[1].warning);
}

#[test]
fn before_the_retry_it_stays_failed_and_then_starts_again_counting_attempts() {
    let failed = first_deploy_failing(None).decide().state;
    let mut case = Case::new("r1", failed, observed(starting("r1", 0), None));
    case.now = t(39);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(1)));
    assert!(d.events.is_empty());

    case.now = t(40);
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::WaitingForAvailable { color: Blue });
    assert_eq!(d.blue, DeploymentPlan::Apply { replicas: 2 });
    assert_eq!(d.state.failure, None);
    assert_eq!(
        d.state
            .progress
            .as_ref()
            .map(|p| (p.started_at.clone(), p.failed_attempts)),
        Some((Time(t(40)), Some(1)))
    );
    assert_eq!(reasons(&d), [reason::RETRYING, reason::ROLLOUT_STARTED]);
}

#[test]
fn consecutive_failures_double_the_wait() {
    let d = first_deploy_failing(Some(2)).decide();
    let failure = d.state.failure.unwrap();
    assert_eq!(failure.attempts, Some(3));
    assert_eq!(failure.retry_at, Some(Time(t(10 + 120))));
    assert_eq!(d.requeue_after, Some(Duration::from_secs(120)));
}

#[test]
fn a_first_deploy_past_its_deadline_is_retried_too() {
    let state = rolling(None, Blue, "r1", progress(0, 0, 0, false));
    let mut case = Case::new("r1", state, observed(starting("r1", 2), None));
    case.now = t(300);
    let d = case.decide();
    let failure = d.state.failure.unwrap();
    assert_eq!(failure.reason, reason::PROGRESS_DEADLINE_EXCEEDED);
    assert_eq!(failure.retry_at, Some(Time(t(330))));
}

#[test]
fn an_update_that_fails_while_an_old_colour_serves_waits_for_the_user() {
    let mut p = progress(0, 0, 1, false).unwrap();
    p.failed_attempts = None;
    let state = rolling(Some("r1"), Green, "r2", Some(p));
    let mut case = Case::new("r2", state, observed(up("r1", 2), up("r2", 2)));
    case.probe = Some(ProbeOutcome::Unhealthy("503".into()));
    let d = case.decide();
    assert_eq!(d.step, CutoverStep::Failed);
    let failure = d.state.failure.clone().unwrap();
    assert_eq!((failure.attempts, failure.retry_at), (None, None));
    assert_eq!(d.requeue_after, None);
    assert_eq!(reasons(&d), [reason::ROLLOUT_FAILED]);
    // Much later, still failed, nothing scheduled.
    case.state = d.state;
    case.probe = None;
    case.now = t(100_000);
    let d = case.decide();
    assert_eq!((d.step, d.requeue_after), (CutoverStep::Failed, None));
}

#[test]
fn an_aborted_first_deploy_is_not_retried_by_itself() {
    let state = rolling(None, Blue, "r1", progress(0, 0, 0, false));
    let mut case = Case::new("r1", state, observed(starting("r1", 2), None));
    case.abort = true;
    let d = case.decide();
    let failure = d.state.failure.unwrap();
    assert_eq!(failure.reason, reason::ABORTED);
    assert_eq!(failure.retry_at, None);
}
