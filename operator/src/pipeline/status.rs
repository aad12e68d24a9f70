//! Status: the pipeline's status computed as a plain value from the cutover decision (or from a
//! user error), with kstatus conditions, so `kubectl wait --for=condition=Ready` and Argo CD can
//! follow a rollout.

use k8s_openapi::jiff::Timestamp;

use super::rollout::{CutoverStep, Decision, RolloutState, reason};
use super::validate::UserError;
use crate::api::{AnalysisPhase, AnalysisStage, Phase, RagPipelineStatus};
use crate::conditions::{self, DEGRADED, PROGRESSING, READY, Wanted};

/// The rollout bookkeeping kept in a status.
pub fn rollout_state(status: Option<&RagPipelineStatus>) -> RolloutState {
    let Some(s) = status else {
        return RolloutState::default();
    };
    RolloutState {
        active: s.active_color.zip(s.active_revision.clone()),
        target: s.target_color.zip(s.target_revision.clone()),
        progress: s.rollout.clone(),
        failure: s.failure.clone(),
        scale_down: s.scale_down.clone(),
        last_cutover: s.last_cutover_time.clone(),
        previous: s.previous_color.zip(s.previous_revision.clone()),
        rollback: s.rollback.clone(),
        analysis: s.analysis.clone(),
        golden: s.golden_set.clone(),
    }
}

/// What the pipeline looks like from outside right now.
pub struct Serving {
    /// Ready pods of the active colour.
    pub ready_replicas: i32,
    /// URL of Service `<name>`.
    pub endpoint: String,
}

/// Phase and conditions: what `kubectl get` and kstatus readers (Argo CD, `kubectl wait`) see.
type Summary = (Phase, [Wanted; 3]);

fn summary(
    phase: Phase,
    ready: (bool, &str),
    progressing: (bool, &str),
    degraded: Option<&str>,
    message: String,
) -> Summary {
    (
        phase,
        [
            Wanted::new(READY, ready.0, ready.1, message.clone()),
            Wanted::new(PROGRESSING, progressing.0, progressing.1, message.clone()),
            match degraded {
                Some(reason) => Wanted::new(DEGRADED, true, reason, message),
                None => Wanted::new(DEGRADED, false, "AsExpected", ""),
            },
        ],
    )
}

/// The active colour serves the wanted revision.
fn settled(state: &RolloutState, serving: &Serving) -> Summary {
    let active = state
        .active
        .as_ref()
        .map(|(_, r)| r.as_str())
        .unwrap_or_default();
    if serving.ready_replicas == 0 {
        let message = "the active colour has no ready pods".to_string();
        return summary(
            Phase::Degraded,
            (false, "NoReadyReplicas"),
            (false, "RolloutComplete"),
            Some("NoReadyReplicas"),
            message,
        );
    }
    if let Some((rb, why)) = state.rollback.as_ref().zip(post_promotion_failure(state)) {
        let message = format!(
            "revision {} was rolled back to {} by its post-promotion analysis: {why}; change the \
             spec or annotate ragops.io/retry to roll it out again",
            rb.from, rb.to
        );
        let r = reason::POST_PROMOTION_ANALYSIS_FAILED;
        return summary(Phase::Degraded, (false, r), (false, r), Some(r), message);
    }
    if let Some(rb) = &state.rollback {
        let message = format!(
            "revision {} was rolled back to {}; change the spec or annotate ragops.io/retry to roll it out again",
            rb.from, rb.to
        );
        return summary(
            Phase::Degraded,
            (false, reason::ROLLED_BACK),
            (false, reason::ROLLED_BACK),
            Some(reason::ROLLED_BACK),
            message,
        );
    }
    let message = format!("revision {active} is serving");
    summary(
        Phase::Healthy,
        (true, "Healthy"),
        (false, "RolloutComplete"),
        None,
        message,
    )
}

/// Why the post-promotion analysis of the rolled-back revision failed, if that is what rolled it
/// back.
fn post_promotion_failure(state: &RolloutState) -> Option<String> {
    let (rb, run) = state.rollback.as_ref().zip(state.analysis.as_ref())?;
    let failed = matches!(
        run.phase,
        AnalysisPhase::Failed | AnalysisPhase::Inconclusive
    );
    (run.stage == AnalysisStage::PostPromotion && run.revision == rb.from && failed)
        .then(|| run.message.clone().unwrap_or_default())
}

/// The new revision serves and its post-promotion analysis runs; the old colour stays up.
fn post_promotion(state: &RolloutState, serving: &Serving) -> Summary {
    let (phase, [ready, _, degraded]) = settled(state, serving);
    if phase != Phase::Healthy {
        return (
            phase,
            [
                ready,
                Wanted::new(PROGRESSING, true, "PostPromotionAnalysis", ""),
                degraded,
            ],
        );
    }
    let active = state
        .active
        .as_ref()
        .map(|(c, r)| format!("revision {r} on {c}"));
    let message = format!(
        "{} serves; its post-promotion analysis runs and the old colour stays up until it passes",
        active.unwrap_or_default()
    );
    summary(
        Phase::Progressing,
        (true, "Healthy"),
        (true, "PostPromotionAnalysis"),
        None,
        message,
    )
}

fn in_flight(decision: &Decision, target: &str) -> Summary {
    match decision.step {
        CutoverStep::Analysing { color, stage, .. } => {
            let stage = match stage {
                AnalysisStage::Canary => "canary",
                _ => "pre-promotion",
            };
            let message = format!("revision {target} on {color} is under {stage} analysis");
            summary(
                Phase::Progressing,
                (false, "RolloutInProgress"),
                (true, "Analysing"),
                None,
                message,
            )
        }
        CutoverStep::AwaitingPromotion { color } => {
            let message = format!(
                "revision {target} on {color} awaits promotion: annotate ragops.io/promote to switch traffic"
            );
            summary(
                Phase::Paused,
                (false, "AwaitingPromotion"),
                (true, "AwaitingPromotion"),
                None,
                message,
            )
        }
        CutoverStep::WaitingForAvailable { color } => {
            let message = format!("revision {target} on {color} is starting");
            summary(
                Phase::Progressing,
                (false, "RolloutInProgress"),
                (true, "WaitingForAvailable"),
                None,
                message,
            )
        }
        CutoverStep::GoldenSet { color } => {
            let message = format!("revision {target} on {color} runs its golden set");
            summary(
                Phase::Progressing,
                (false, "RolloutInProgress"),
                (true, "GoldenSet"),
                None,
                message,
            )
        }
        CutoverStep::HealthCheck { color, .. } | CutoverStep::Verifying { color } => {
            let message = format!("revision {target} on {color} is being health-checked");
            summary(
                Phase::Progressing,
                (false, "RolloutInProgress"),
                (true, "HealthChecking"),
                None,
                message,
            )
        }
        CutoverStep::Canary {
            color,
            step,
            weight,
            paused,
        } => {
            let message = format!(
                "revision {target} on {color} is at canary step {step}, weight {weight}%{}",
                if paused {
                    ": annotate ragops.io/promote to go on"
                } else {
                    ""
                }
            );
            let (phase, why) = if paused {
                (Phase::Paused, "CanaryPaused")
            } else {
                (Phase::Progressing, "CanaryStep")
            };
            summary(
                phase,
                (false, "RolloutInProgress"),
                (true, why),
                None,
                message,
            )
        }
        _ => unreachable!("only steps of a rollout in flight"),
    }
}

fn failed(state: &RolloutState) -> Summary {
    let failure = state.failure.as_ref();
    let message = failure.map_or_else(String::new, |f| match &f.retry_at {
        Some(at) => format!(
            "{}: {}; retried automatically at {}",
            f.reason, f.message, at.0
        ),
        None => format!("{}: {}", f.reason, f.message),
    });
    let why = match failure.map(|f| f.reason.as_str()) {
        Some(reason::ABORTED) => reason::ABORTED,
        Some(reason::ANALYSIS_FAILED) => reason::ANALYSIS_FAILED,
        Some(reason::ANALYSIS_INCONCLUSIVE) => reason::ANALYSIS_INCONCLUSIVE,
        other => other
            .and_then(super::rollout::golden::failure)
            .unwrap_or(reason::ROLLOUT_FAILED),
    };
    summary(
        Phase::Degraded,
        (false, why),
        (false, why),
        Some(why),
        message,
    )
}

/// The status after `decision` has been applied.
pub fn after_decision(
    current: Option<&RagPipelineStatus>,
    decision: &Decision,
    serving: &Serving,
    generation: Option<i64>,
    now: Timestamp,
) -> RagPipelineStatus {
    let state = &decision.state;
    let target = state
        .target
        .as_ref()
        .map(|(_, r)| r.as_str())
        .unwrap_or_default();
    let (phase, wanted) = match decision.step {
        CutoverStep::Analysing {
            stage: AnalysisStage::PostPromotion,
            ..
        } => post_promotion(state, serving),
        CutoverStep::Steady | CutoverStep::Promoted { .. } => settled(state, serving),
        CutoverStep::Failed => failed(state),
        _ => in_flight(decision, target),
    };
    let previous = current.map(|c| c.conditions.as_slice()).unwrap_or_default();
    RagPipelineStatus {
        phase: Some(phase),
        active_color: state.active.as_ref().map(|(c, _)| *c),
        active_revision: state.active.as_ref().map(|(_, r)| r.clone()),
        target_color: state.target.as_ref().map(|(c, _)| *c),
        target_revision: state.target.as_ref().map(|(_, r)| r.clone()),
        ready_replicas: Some(serving.ready_replicas),
        endpoint: state.active.as_ref().map(|_| serving.endpoint.clone()),
        last_cutover_time: state.last_cutover.clone(),
        rollout: state.progress.clone(),
        failure: state.failure.clone(),
        scale_down: state.scale_down.clone(),
        previous_color: state.previous.as_ref().map(|(c, _)| *c),
        previous_revision: state.previous.as_ref().map(|(_, r)| r.clone()),
        rollback: state.rollback.clone(),
        // Set by the reconciliation from the requests this decision acted on.
        handled_requests: current.and_then(|c| c.handled_requests.clone()),
        analysis: state.analysis.clone(),
        observed_generation: generation,
        conditions: conditions::merge(previous, &wanted, generation, now),
        golden_set: state.golden.clone(),
    }
}

/// The status while the spec cannot be served: whatever runs keeps running, and the conditions say
/// what the user must fix.
pub fn after_user_error(
    current: Option<&RagPipelineStatus>,
    error: &UserError,
    generation: Option<i64>,
    now: Timestamp,
) -> RagPipelineStatus {
    let message = error.to_string();
    let waiting = error.is_waiting();
    let wanted = [
        Wanted::new(READY, false, error.reason(), message.clone()),
        Wanted::new(PROGRESSING, waiting, error.reason(), message.clone()),
        Wanted::new(DEGRADED, !waiting, error.reason(), message),
    ];
    let current = current.cloned().unwrap_or_default();
    RagPipelineStatus {
        phase: Some(if waiting {
            Phase::Progressing
        } else {
            Phase::Degraded
        }),
        observed_generation: generation,
        conditions: conditions::merge(&current.conditions, &wanted, generation, now),
        ..current
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
