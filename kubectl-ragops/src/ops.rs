//! `promote`, `abort`, `retry`, `rollback`: each sets one `ragops.io/<verb>` annotation whose value
//! is a fresh request id; the operator records the id in `status.handledRequests` in the write that
//! acts on it (so the request is acted on once) and then removes the annotation. Whether a request
//! can apply is decided here from the status alone, so a script learns at once (non-zero exit)
//! instead of from an Event later; the annotation is set only on the version of the pipeline that
//! decision read, so two operators clicking at once cannot both ask.

use rag_operator::api::{Phase, RagPipeline, RagPipelineStatus};
use rag_operator::pipeline::annotation;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Promote,
    /// A promotion that also ends a running analysis unjudged.
    ForcePromote,
    Abort,
    Retry,
    Rollback,
}

impl Verb {
    pub fn annotation(self) -> &'static str {
        match self {
            Verb::Promote => annotation::PROMOTE,
            Verb::ForcePromote => annotation::FORCE_PROMOTE,
            Verb::Abort => annotation::ABORT,
            Verb::Retry => annotation::RETRY,
            Verb::Rollback => annotation::ROLLBACK,
        }
    }

    /// The merge patch that asks for this operation as request `id`, on `version` of the object
    /// (a conflict if it changed since).
    pub fn patch(self, id: &str, version: Option<&str>) -> Value {
        json!({ "metadata": {
            "resourceVersion": version,
            "annotations": { self.annotation(): id }
        } })
    }
}

/// A request id no other invocation makes: the time in nanoseconds and this process's id.
pub fn request_id(now: std::time::SystemTime) -> String {
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("kubectl-{nanos:x}-{:x}", std::process::id())
}

/// What the operator will do when `verb` is set on `p`, or why it cannot apply.
pub fn plan(verb: Verb, p: &RagPipeline) -> Result<String, String> {
    let name = p.metadata.name.as_deref().unwrap_or("?");
    let s = p.status.clone().unwrap_or_default();
    let phase = s
        .phase
        .map_or_else(|| "no phase yet".to_string(), |ph| format!("{ph:?}"));
    let rev = |r: &Option<String>| r.clone().unwrap_or_else(|| "?".into());
    let color = |c: Option<rag_operator::api::Color>| c.map_or("?", |c| c.as_str());
    match verb {
        Verb::Promote => {
            if s.phase != Some(Phase::Paused) {
                return Err(format!(
                    "cannot promote {name}: it is {phase}, not Paused (only a verified rollout \
                     waiting for promotion can be promoted)"
                ));
            }
            Ok(format!(
                "promoting {name}: traffic switches from {} to {} (revision {})",
                color(s.active_color),
                color(s.target_color),
                rev(&s.target_revision)
            ))
        }
        Verb::ForcePromote => match s.target_color {
            None => Err(format!(
                "cannot promote {name}: no rollout in flight (it is {phase})"
            )),
            Some(target) => Ok(format!(
                "force-promoting {name}: a running analysis ends unjudged and traffic moves to \
                 {} (revision {})",
                target.as_str(),
                rev(&s.target_revision)
            )),
        },
        Verb::Abort => match s.target_color {
            None => Err(format!(
                "cannot abort {name}: no rollout in flight (it is {phase})"
            )),
            Some(target) => Ok(format!(
                "aborting the rollout of revision {} on {name}: {target} goes to zero, {} keeps \
                 all traffic, and the pipeline is Degraded (Aborted) until the spec changes or a retry",
                rev(&s.target_revision),
                color(s.active_color)
            )),
        },
        Verb::Retry => retry(name, &s),
        Verb::Rollback => rollback(name, &s, &phase),
    }
}

fn retry(name: &str, s: &RagPipelineStatus) -> Result<String, String> {
    if let Some(f) = &s.failure {
        return Ok(format!(
            "retrying revision {} on {name} (it ended {}: {})",
            f.revision, f.reason, f.message
        ));
    }
    if let Some(rb) = &s.rollback {
        return Ok(format!(
            "ending the rollback of {name}: revision {} rolls out again",
            rb.from
        ));
    }
    Err(format!(
        "cannot retry {name}: no failed, aborted or rolled-back revision to retry"
    ))
}

fn rollback(name: &str, s: &RagPipelineStatus, phase: &str) -> Result<String, String> {
    if let Some(rb) = &s.rollback {
        return Err(format!(
            "cannot roll back {name}: a rollback from revision {} to {} is already in force \
             (status.rollback); change the spec or run retry first",
            rb.from, rb.to
        ));
    }
    if let Some(target) = s.target_color {
        return Ok(format!(
            "a rollout is in flight on {name}, so rollback aborts it: {target} goes to zero and \
             {} keeps all traffic",
            s.active_color.map_or("the active colour", |c| c.as_str())
        ));
    }
    let (Some(previous), Some(revision)) = (s.previous_color, &s.previous_revision) else {
        return Err(format!(
            "cannot roll back {name}: no previous revision (status.previousRevision is unset; \
             it is {phase})"
        ));
    };
    Ok(format!(
        "rolling {name} back to revision {revision} on {previous}: at once while its pods still \
         run, otherwise through every gate; then Degraded (RolledBack) until the spec changes or a retry"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with_status(status: Value) -> RagPipeline {
        serde_json::from_value(json!({
            "apiVersion": "ragops.io/v1alpha1", "kind": "RagPipeline",
            "metadata": { "name": "docs", "namespace": "ns" },
            "spec": { "indexRef": { "name": "i" }, "runtime": { "image": "x" },
                      "llm": { "provider": "extractive" } },
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn the_patch_sets_the_request_id_on_the_version_read() {
        assert_eq!(
            Verb::Rollback.patch("id-1", Some("42")),
            json!({ "metadata": {
                "resourceVersion": "42",
                "annotations": { "ragops.io/rollback": "id-1" }
            } })
        );
        let (a, b) = (
            request_id(std::time::SystemTime::now()),
            request_id(std::time::SystemTime::now() + std::time::Duration::from_nanos(1)),
        );
        assert!(a.starts_with("kubectl-") && a != b, "{a} {b}");
        assert_eq!(Verb::Promote.annotation(), "ragops.io/promote");
        assert_eq!(Verb::Abort.annotation(), "ragops.io/abort");
        assert_eq!(Verb::Retry.annotation(), "ragops.io/retry");
    }

    #[test]
    fn promote_needs_a_paused_rollout() {
        let healthy = with_status(json!({ "phase": "Healthy", "activeColor": "blue" }));
        let err = plan(Verb::Promote, &healthy).unwrap_err();
        assert!(err.contains("it is Healthy, not Paused"), "{err}");
        let paused = with_status(json!({
            "phase": "Paused", "activeColor": "blue", "targetColor": "green", "targetRevision": "b2"
        }));
        assert_eq!(
            plan(Verb::Promote, &paused).unwrap(),
            "promoting docs: traffic switches from blue to green (revision b2)"
        );
        let err = plan(Verb::Promote, &with_status(json!(null))).unwrap_err();
        assert!(err.contains("no phase yet"), "{err}");
    }

    #[test]
    fn a_forced_promotion_needs_a_rollout_in_flight_not_a_pause() {
        let err = plan(
            Verb::ForcePromote,
            &with_status(json!({ "phase": "Healthy" })),
        );
        assert_eq!(
            err.unwrap_err(),
            "cannot promote docs: no rollout in flight (it is Healthy)"
        );
        let analysing = with_status(json!({
            "phase": "Progressing", "activeColor": "blue", "targetColor": "green", "targetRevision": "b2"
        }));
        assert_eq!(
            plan(Verb::ForcePromote, &analysing).unwrap(),
            "force-promoting docs: a running analysis ends unjudged and traffic moves to green \
             (revision b2)"
        );
        assert_eq!(
            Verb::ForcePromote.patch("id", None)["metadata"]["annotations"]["ragops.io/force-promote"],
            "id"
        );
    }

    #[test]
    fn abort_needs_a_rollout_in_flight() {
        let err = plan(Verb::Abort, &with_status(json!({ "phase": "Healthy" }))).unwrap_err();
        assert_eq!(
            err,
            "cannot abort docs: no rollout in flight (it is Healthy)"
        );
        let flying = with_status(json!({
            "phase": "Progressing", "activeColor": "blue", "targetColor": "green", "targetRevision": "b2"
        }));
        let ok = plan(Verb::Abort, &flying).unwrap();
        assert!(
            ok.starts_with(
                "aborting the rollout of revision b2 on docs: green goes to zero, blue keeps"
            ),
            "{ok}"
        );
    }

    #[test]
    fn retry_needs_a_failure_or_a_rollback() {
        let err = plan(Verb::Retry, &with_status(json!({ "phase": "Healthy" }))).unwrap_err();
        assert!(err.starts_with("cannot retry docs"), "{err}");
        let failed = with_status(json!({ "phase": "Degraded", "failure": {
            "revision": "b2", "reason": "Aborted", "message": "aborted by ragops.io/abort" } }));
        assert_eq!(
            plan(Verb::Retry, &failed).unwrap(),
            "retrying revision b2 on docs (it ended Aborted: aborted by ragops.io/abort)"
        );
        let rolled_back = with_status(json!({ "rollback": { "from": "b2", "to": "a1" } }));
        assert!(
            plan(Verb::Retry, &rolled_back)
                .unwrap()
                .contains("revision b2 rolls out again")
        );
    }

    #[test]
    fn rollback_needs_a_previous_revision_unless_it_aborts() {
        let first = with_status(json!({ "phase": "Healthy", "activeColor": "blue" }));
        let err = plan(Verb::Rollback, &first).unwrap_err();
        assert!(err.contains("status.previousRevision is unset"), "{err}");
        let second = with_status(json!({ "phase": "Healthy", "activeColor": "green",
            "previousColor": "blue", "previousRevision": "a1" }));
        let ok = plan(Verb::Rollback, &second).unwrap();
        assert!(
            ok.starts_with("rolling docs back to revision a1 on blue"),
            "{ok}"
        );
        let flying = with_status(json!({ "phase": "Progressing", "activeColor": "blue",
            "targetColor": "green" }));
        let ok = plan(Verb::Rollback, &flying).unwrap();
        assert!(
            ok.contains("rollback aborts it: green goes to zero"),
            "{ok}"
        );
    }

    #[test]
    fn rollback_while_one_is_in_force_is_refused() {
        let rolled_back = with_status(json!({ "phase": "Degraded", "activeColor": "blue",
            "previousColor": "green", "previousRevision": "b2",
            "rollback": { "from": "b2", "to": "a1" } }));
        let err = plan(Verb::Rollback, &rolled_back).unwrap_err();
        assert!(
            err.contains("a rollback from revision b2 to a1 is already in force"),
            "{err}"
        );
        // Also while the rollback's own rollout is in flight.
        let gated = with_status(json!({ "phase": "Progressing", "activeColor": "green",
            "targetColor": "blue", "targetRevision": "a1",
            "rollback": { "from": "b2", "to": "a1" } }));
        assert!(plan(Verb::Rollback, &gated).is_err());
    }
}
