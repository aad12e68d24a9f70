use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::{Color, RolloutFailure};
use crate::pipeline::rollout::{DeploymentPlan, RolloutState};

fn now() -> Timestamp {
    "2026-11-25T10:00:00Z".parse().unwrap()
}

fn decision(step: CutoverStep, state: RolloutState) -> Decision {
    Decision {
        step,
        state,
        blue: DeploymentPlan::Keep,
        green: DeploymentPlan::Keep,
        canary: None,
        routed: false,
        due: Default::default(),
        active_service: None,
        preview_service: None,
        events: vec![],
        requeue_after: None,
        consumed: Default::default(),
    }
}

fn condition<'a>(s: &'a RagPipelineStatus, type_: &str) -> (&'a str, &'a str) {
    let c = s.conditions.iter().find(|c| c.type_ == type_).unwrap();
    (c.status.as_str(), c.reason.as_str())
}

fn message<'a>(s: &'a RagPipelineStatus, type_: &str) -> &'a str {
    let c = s.conditions.iter().find(|c| c.type_ == type_).unwrap();
    c.message.as_str()
}

fn serving(ready: i32) -> Serving {
    Serving {
        ready_replicas: ready,
        endpoint: "http://docs.team-a.svc:80".into(),
    }
}

#[test]
fn each_step_maps_to_a_phase_and_kstatus_conditions() {
    let active = RolloutState {
        active: Some((Color::Blue, "r1".into())),
        ..RolloutState::default()
    };
    let failed = RolloutState {
        failure: Some(RolloutFailure {
            revision: "r2".into(),
            reason: "HealthCheckFailed".into(),
            message: "503".into(),
            attempts: None,
            retry_at: None,
        }),
        ..active.clone()
    };
    let cases = [
        (
            CutoverStep::Steady,
            active.clone(),
            2,
            Phase::Healthy,
            ("True", "Healthy"),
            ("False", "AsExpected"),
        ),
        (
            CutoverStep::Steady,
            active.clone(),
            0,
            Phase::Degraded,
            ("False", "NoReadyReplicas"),
            ("True", "NoReadyReplicas"),
        ),
        (
            CutoverStep::WaitingForAvailable {
                color: Color::Green,
            },
            active.clone(),
            2,
            Phase::Progressing,
            ("False", "RolloutInProgress"),
            ("False", "AsExpected"),
        ),
        (
            CutoverStep::AwaitingPromotion {
                color: Color::Green,
            },
            active.clone(),
            2,
            Phase::Paused,
            ("False", "AwaitingPromotion"),
            ("False", "AsExpected"),
        ),
        (
            CutoverStep::Failed,
            failed,
            2,
            Phase::Degraded,
            ("False", "RolloutFailed"),
            ("True", "RolloutFailed"),
        ),
    ];
    for (step, state, ready, phase, ready_cond, degraded_cond) in cases {
        let s = after_decision(
            None,
            &decision(step, state),
            &serving(ready),
            Some(4),
            now(),
        );
        assert_eq!(s.phase, Some(phase), "{step:?}");
        assert_eq!(condition(&s, READY), ready_cond, "{step:?}");
        assert_eq!(condition(&s, DEGRADED), degraded_cond, "{step:?}");
        assert_eq!(s.observed_generation, Some(4));
        assert!(
            s.conditions
                .iter()
                .all(|c| c.observed_generation == Some(4))
        );
    }
}

#[test]
fn status_reports_colours_revisions_and_endpoint() {
    let state = RolloutState {
        active: Some((Color::Blue, "r1".into())),
        target: Some((Color::Green, "r2".into())),
        last_cutover: Some(Time(now())),
        ..RolloutState::default()
    };
    let s = after_decision(
        None,
        &decision(
            CutoverStep::Verifying {
                color: Color::Green,
            },
            state,
        ),
        &serving(3),
        None,
        now(),
    );
    assert_eq!(
        (s.active_color, s.active_revision.as_deref()),
        (Some(Color::Blue), Some("r1"))
    );
    assert_eq!(
        (s.target_color, s.target_revision.as_deref()),
        (Some(Color::Green), Some("r2"))
    );
    assert_eq!(s.ready_replicas, Some(3));
    assert_eq!(s.endpoint.as_deref(), Some("http://docs.team-a.svc:80"));
    // The round trip through status gives the state machine the same bookkeeping back.
    assert_eq!(
        rollout_state(Some(&s)).target,
        Some((Color::Green, "r2".into()))
    );
}

#[test]
fn user_errors_degrade_without_touching_the_rollout_bookkeeping() {
    let current = RagPipelineStatus {
        active_color: Some(Color::Blue),
        active_revision: Some("r1".into()),
        ..Default::default()
    };
    let err = UserError::IndexNotFound("handbook".into());
    let s = after_user_error(Some(&current), &err, Some(2), now());
    assert_eq!(s.phase, Some(Phase::Degraded));
    assert_eq!(condition(&s, DEGRADED), ("True", "IndexNotFound"));
    let message = message(&s, DEGRADED);
    assert!(message.starts_with("spec.indexRef.name"), "{message}");
    assert_eq!(
        (s.active_color, s.active_revision.as_deref()),
        (Some(Color::Blue), Some("r1"))
    );
}

#[test]
fn an_index_without_a_collection_yet_is_waited_for_not_degraded() {
    let err = UserError::IndexNotReady("handbook".into());
    let s = after_user_error(None, &err, Some(1), now());
    assert_eq!(s.phase, Some(Phase::Progressing));
    assert_eq!(condition(&s, PROGRESSING), ("True", "IndexNotReady"));
    assert_eq!(condition(&s, DEGRADED), ("False", "IndexNotReady"));
    assert_eq!(condition(&s, READY), ("False", "IndexNotReady"));
}

fn run(
    stage: crate::api::AnalysisStage,
    phase: AnalysisPhase,
    message: &str,
) -> crate::api::AnalysisRunStatus {
    crate::api::AnalysisRunStatus {
        stage,
        revision: "r2".into(),
        color: Color::Green,
        phase,
        started_at: Time(now()),
        message: Some(message.into()),
        metrics: vec![],
    }
}

#[test]
fn analysis_outcomes_are_condition_reasons_and_the_run_is_written() {
    let failed = |reason: &str| RolloutState {
        active: Some((Color::Blue, "r1".into())),
        failure: Some(RolloutFailure {
            revision: "r2".into(),
            reason: reason.into(),
            message: "metric errors: 1 inconclusive, inconclusiveLimit 0".into(),
            attempts: None,
            retry_at: None,
        }),
        analysis: Some(run(
            AnalysisStage::PrePromotion,
            AnalysisPhase::Inconclusive,
            "metric errors: 1 inconclusive",
        )),
        ..RolloutState::default()
    };
    for why in ["AnalysisFailed", "AnalysisInconclusive"] {
        let d = decision(CutoverStep::Failed, failed(why));
        let s = after_decision(None, &d, &serving(2), Some(3), now());
        assert_eq!(s.phase, Some(Phase::Degraded));
        assert_eq!(condition(&s, DEGRADED), ("True", why));
        assert_eq!(s.analysis, d.state.analysis, "the run is in status");
        assert_eq!(rollout_state(Some(&s)).analysis, d.state.analysis);
    }
}

#[test]
fn post_promotion_analysis_is_progressing_then_names_the_rollback() {
    let running = RolloutState {
        active: Some((Color::Green, "r2".into())),
        previous: Some((Color::Blue, "r1".into())),
        analysis: Some(run(
            AnalysisStage::PostPromotion,
            AnalysisPhase::Running,
            "",
        )),
        ..RolloutState::default()
    };
    let step = CutoverStep::Analysing {
        color: Color::Green,
        stage: AnalysisStage::PostPromotion,
        due: Default::default(),
    };
    let s = after_decision(None, &decision(step, running), &serving(2), None, now());
    assert_eq!(s.phase, Some(Phase::Progressing));
    assert_eq!(condition(&s, READY), ("True", "Healthy"));
    assert_eq!(
        condition(&s, PROGRESSING),
        ("True", "PostPromotionAnalysis")
    );

    let rolled_back = RolloutState {
        active: Some((Color::Blue, "r1".into())),
        previous: Some((Color::Green, "r2".into())),
        rollback: Some(crate::api::RollbackState {
            from: "r2".into(),
            to: "r1".into(),
        }),
        analysis: Some(run(
            AnalysisStage::PostPromotion,
            AnalysisPhase::Failed,
            "metric errors failed with result 0.9",
        )),
        ..RolloutState::default()
    };
    let step = CutoverStep::Promoted { color: Color::Blue };
    let s = after_decision(None, &decision(step, rolled_back), &serving(2), None, now());
    assert_eq!(s.phase, Some(Phase::Degraded));
    assert_eq!(
        condition(&s, DEGRADED),
        ("True", "PostPromotionAnalysisFailed")
    );
    let message = message(&s, DEGRADED);
    assert!(message.contains("result 0.9"), "{message}");
}

#[test]
fn golden_set_outcomes_are_condition_reasons_and_the_run_is_written() {
    let golden = crate::api::GoldenSetStatus {
        revision: "r2".into(),
        color: Color::Green,
        phase: crate::api::GoldenSetPhase::Running,
        started_at: Time(now()),
        target: None,
        active: None,
        queries: None,
        regressed: None,
        message: None,
    };
    let running = RolloutState {
        active: Some((Color::Blue, "r1".into())),
        target: Some((Color::Green, "r2".into())),
        golden: Some(golden),
        ..RolloutState::default()
    };
    let d = decision(
        CutoverStep::GoldenSet {
            color: Color::Green,
        },
        running.clone(),
    );
    let s = after_decision(None, &d, &serving(2), Some(3), now());
    assert_eq!(s.phase, Some(Phase::Progressing));
    assert_eq!(condition(&s, PROGRESSING), ("True", "GoldenSet"));
    assert_eq!(
        rollout_state(Some(&s)).golden,
        running.golden,
        "the run is in status"
    );
    for why in [
        "RetrievalRegressed",
        "GoldenSetBelowMinimum",
        "GoldenSetInconclusive",
    ] {
        let failed = RolloutState {
            target: None,
            failure: Some(RolloutFailure {
                revision: "r2".into(),
                reason: why.into(),
                message: "green on the golden set: 3 of 10 queries regressed: \"q7\"".into(),
                attempts: None,
                retry_at: None,
            }),
            ..running.clone()
        };
        let s = after_decision(
            None,
            &decision(CutoverStep::Failed, failed),
            &serving(2),
            None,
            now(),
        );
        assert_eq!(condition(&s, DEGRADED), ("True", why));
    }
}
