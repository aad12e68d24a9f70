//! Status: the pipeline's status computed as a plain value from the cutover decision (or from a
//! user error), with kstatus conditions, so `kubectl wait --for=condition=Ready` and Argo CD can
//! follow a rollout.

use k8s_openapi::jiff::Timestamp;

use super::rollout::{CutoverStep, Decision, RolloutState};
use super::validate::UserError;
use crate::api::{Phase, RagPipelineStatus};
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
    }
}

/// What the pipeline looks like from outside right now.
pub struct Serving {
    /// Ready pods of the active colour.
    pub ready_replicas: i32,
    /// URL of Service `<name>`.
    pub endpoint: String,
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
    let revision =
        |r: &Option<(_, String)>| r.as_ref().map(|(_, rev)| rev.clone()).unwrap_or_default();
    let active = revision(&state.active);
    let target = revision(&state.target);
    let (phase, wanted) = match decision.step {
        CutoverStep::Steady | CutoverStep::Promoted { .. } if serving.ready_replicas > 0 => (
            Phase::Healthy,
            [
                Wanted::new(
                    READY,
                    true,
                    "Healthy",
                    format!("revision {active} is serving"),
                ),
                Wanted::new(
                    PROGRESSING,
                    false,
                    "RolloutComplete",
                    format!("revision {active} is active"),
                ),
                Wanted::new(DEGRADED, false, "AsExpected", ""),
            ],
        ),
        CutoverStep::Steady | CutoverStep::Promoted { .. } => (
            Phase::Degraded,
            [
                Wanted::new(
                    READY,
                    false,
                    "NoReadyReplicas",
                    "the active colour has no ready pods",
                ),
                Wanted::new(
                    PROGRESSING,
                    false,
                    "RolloutComplete",
                    format!("revision {active} is active"),
                ),
                Wanted::new(
                    DEGRADED,
                    true,
                    "NoReadyReplicas",
                    "the active colour has no ready pods",
                ),
            ],
        ),
        CutoverStep::AwaitingPromotion { color } => (
            Phase::Paused,
            [
                Wanted::new(
                    READY,
                    false,
                    "AwaitingPromotion",
                    format!("revision {target} on {color} awaits promotion"),
                ),
                Wanted::new(
                    PROGRESSING,
                    true,
                    "AwaitingPromotion",
                    "annotate ragops.io/promote to switch traffic",
                ),
                Wanted::new(DEGRADED, false, "AsExpected", ""),
            ],
        ),
        CutoverStep::WaitingForAvailable { color }
        | CutoverStep::HealthCheck { color, .. }
        | CutoverStep::Verifying { color } => {
            let (reason, what) = match decision.step {
                CutoverStep::WaitingForAvailable { .. } => ("WaitingForAvailable", "starting"),
                _ => ("HealthChecking", "being health-checked"),
            };
            let message = format!("revision {target} on {color} is {what}");
            (
                Phase::Progressing,
                [
                    Wanted::new(READY, false, "RolloutInProgress", message.clone()),
                    Wanted::new(PROGRESSING, true, reason, message),
                    Wanted::new(DEGRADED, false, "AsExpected", ""),
                ],
            )
        }
        CutoverStep::Failed => {
            let message = state
                .failure
                .as_ref()
                .map_or_else(String::new, |f| format!("{}: {}", f.reason, f.message));
            (
                Phase::Degraded,
                [
                    Wanted::new(READY, false, "RolloutFailed", message.clone()),
                    Wanted::new(PROGRESSING, false, "RolloutFailed", message.clone()),
                    Wanted::new(DEGRADED, true, "RolloutFailed", message),
                ],
            )
        }
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
        observed_generation: generation,
        conditions: conditions::merge(previous, &wanted, generation, now),
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
    let wanted = [
        Wanted::new(READY, false, error.reason(), message.clone()),
        Wanted::new(PROGRESSING, false, error.reason(), message.clone()),
        Wanted::new(DEGRADED, true, error.reason(), message),
    ];
    let current = current.cloned().unwrap_or_default();
    RagPipelineStatus {
        phase: Some(Phase::Degraded),
        observed_generation: generation,
        conditions: conditions::merge(&current.conditions, &wanted, generation, now),
        ..current
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
