//! `status`: a pipeline's phase and conditions as lines, and whether a watch is over (Healthy or
//! Degraded, at the current generation). Pure.

use std::process::ExitCode;

use rag_operator::api::{Phase, RagPipeline};
use rag_operator::conditions::{DEGRADED, PROGRESSING, READY};

use crate::view::headline;

/// How `status --watch` ends, as the exit code scripts and CI read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Healthy at the current generation: 0.
    Healthy,
    /// Degraded at the current generation, with the condition's reason: 2.
    Degraded(String),
    /// The deadline passed first: 3.
    TimedOut,
}

impl Outcome {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Outcome::Healthy => 0,
            Outcome::Degraded(_) => 2,
            Outcome::TimedOut => 3,
        })
    }
}

/// The headline, the generations, then Ready, Progressing and Degraded in that order.
pub fn lines(p: &RagPipeline) -> Vec<String> {
    let status = p.status.clone().unwrap_or_default();
    let observed = status
        .observed_generation
        .map_or_else(|| "none".to_string(), |g| g.to_string());
    let generation = p.metadata.generation.unwrap_or(0);
    let mut out = vec![
        headline(p),
        format!("  generation {generation}, observed {observed}"),
    ];
    for type_ in [READY, PROGRESSING, DEGRADED] {
        let line = match status.conditions.iter().find(|c| c.type_ == type_) {
            None => format!("  {type_:<12} Unknown"),
            Some(c) => {
                let line = format!("  {type_:<12} {:<6} {}", c.status, c.reason);
                if c.message.is_empty() {
                    line
                } else {
                    format!("{line}: {}", c.message)
                }
            }
        };
        out.push(line);
    }
    out
}

/// Whether a watch is over: only a status that describes the current generation counts, so a
/// watch started right after a spec change does not end on the previous revision's state.
pub fn outcome(p: &RagPipeline) -> Option<Outcome> {
    let status = p.status.as_ref()?;
    if status.observed_generation.is_none() || status.observed_generation != p.metadata.generation {
        return None;
    }
    match status.phase? {
        Phase::Healthy => Some(Outcome::Healthy),
        Phase::Degraded => {
            let reason = status
                .conditions
                .iter()
                .find(|c| c.type_ == DEGRADED)
                .map(|c| c.reason.clone())
                .unwrap_or_default();
            Some(Outcome::Degraded(reason))
        }
        Phase::Pending | Phase::Progressing | Phase::Paused => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn with(generation: i64, status: Value) -> RagPipeline {
        serde_json::from_value(json!({
            "apiVersion": "ragops.io/v1alpha1", "kind": "RagPipeline",
            "metadata": { "name": "docs", "namespace": "ns", "generation": generation },
            "spec": { "indexRef": { "name": "i" }, "runtime": { "image": "x" },
                      "llm": { "provider": "extractive" } },
            "status": status
        }))
        .unwrap()
    }

    fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
        json!({ "type": type_, "status": status, "reason": reason, "message": message,
                "lastTransitionTime": "2026-01-01T00:00:00Z" })
    }

    #[test]
    fn lines_show_phase_generations_and_the_three_conditions_in_order() {
        let p = with(
            3,
            json!({
                "phase": "Degraded", "activeColor": "blue", "activeRevision": "a1",
                "observedGeneration": 3,
                "conditions": [
                    condition("Degraded", "True", "RolloutFailed", "health check failed"),
                    condition("Ready", "True", "Serving", ""),
                ]
            }),
        );
        assert_eq!(
            lines(&p),
            [
                "ragpipeline ns/docs: Degraded, active blue (a1)",
                "  generation 3, observed 3",
                "  Ready        True   Serving",
                "  Progressing  Unknown",
                "  Degraded     True   RolloutFailed: health check failed",
            ]
        );
        assert_eq!(
            lines(&with(1, json!(null)))[1],
            "  generation 1, observed none"
        );
    }

    #[test]
    fn a_watch_ends_only_on_the_current_generation() {
        let healthy = |observed| json!({ "phase": "Healthy", "observedGeneration": observed });
        assert_eq!(outcome(&with(2, healthy(2))), Some(Outcome::Healthy));
        assert_eq!(outcome(&with(3, healthy(2))), None);
        assert_eq!(outcome(&with(2, json!({ "phase": "Healthy" }))), None);
        assert_eq!(outcome(&with(2, json!(null))), None);
        let degraded = json!({ "phase": "Degraded", "observedGeneration": 2,
            "conditions": [condition("Degraded", "True", "Aborted", "")] });
        assert_eq!(
            outcome(&with(2, degraded)),
            Some(Outcome::Degraded("Aborted".into()))
        );
        for phase in ["Pending", "Progressing", "Paused"] {
            let p = with(2, json!({ "phase": phase, "observedGeneration": 2 }));
            assert_eq!(outcome(&p), None, "{phase}");
        }
    }

    #[test]
    fn exit_codes_are_0_2_3() {
        assert_eq!(Outcome::Healthy.exit_code(), ExitCode::from(0));
        assert_eq!(
            Outcome::Degraded(String::new()).exit_code(),
            ExitCode::from(2)
        );
        assert_eq!(Outcome::TimedOut.exit_code(), ExitCode::from(3));
    }
}
