//! The status an index step leads to. Pure: the current status, the step and the clock in, the
//! new status out. What served before stays in the status until something replaces it, so a
//! failed re-index never hides the collection that still answers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::decide::{Report, Step};
use crate::api::RagIndexStatus;
use crate::conditions::{self, DEGRADED, READY, Wanted};

pub const INDEXING: &str = "Indexing";

/// Phases, as `kubectl get ragindexes` shows them.
pub mod phase {
    pub const PENDING: &str = "Pending";
    pub const INDEXING: &str = "Indexing";
    pub const READY: &str = "Ready";
    pub const DEGRADED: &str = "Degraded";
}

/// Where the step happens: the revision wanted, its Job, the spec generation and the clock.
pub struct At<'a> {
    pub revision: &'a str,
    /// What the wanted revision is built with.
    pub indexed_with: Option<crate::api::IndexedWith>,
    pub job: &'a str,
    /// The collection the wanted revision's ingest fills (Qdrant stores).
    pub collection: &'a str,
    pub generation: Option<i64>,
    pub now: Timestamp,
}

/// The status after `step` of a Qdrant-backed index.
pub fn after_step(current: Option<&RagIndexStatus>, step: &Step, at: &At) -> RagIndexStatus {
    let mut next = current.cloned().unwrap_or_default();
    match step {
        Step::Adopt { report, finished } => adopt(&mut next, report, at, *finished),
        // The intent, written before the Job starts: a collection the operator may create is
        // recorded as the index's own first, so a crash leaves a record, never an orphan.
        Step::Start => record(&mut next, at.collection),
        _ => {}
    }
    let ready = ready_condition(&next);
    let (phase, indexing, degraded) = match step {
        Step::UpToDate | Step::Adopt { .. } => (
            phase::READY,
            Wanted::new(INDEXING, false, "Idle", "no ingest is running"),
            Some(Wanted::new(
                DEGRADED,
                false,
                "Indexed",
                "the latest ingest succeeded",
            )),
        ),
        Step::Start | Step::Indexing => (
            phase::INDEXING,
            Wanted::new(
                INDEXING,
                true,
                "IngestRunning",
                format!("Job {} ingests revision {}", at.job, at.revision),
            ),
            None,
        ),
        Step::Waiting { job } => (
            phase::INDEXING,
            Wanted::new(
                INDEXING,
                true,
                "WaitingForIngest",
                format!(
                    "Job {job} of an earlier schedule tick still runs; revision {} starts when it ends",
                    at.revision
                ),
            ),
            None,
        ),
        Step::Failed { .. } | Step::Restart => {
            let message = match step {
                Step::Failed { message, .. } => message.as_str(),
                _ => "retrying",
            };
            (
                phase::DEGRADED,
                Wanted::new(INDEXING, false, "IngestFailed", message),
                Some(Wanted::new(
                    DEGRADED,
                    true,
                    "IngestFailed",
                    format!("Job {} failed: {message}", at.job),
                )),
            )
        }
    };
    let wanted: Vec<Wanted> = [Some(ready), Some(indexing), degraded]
        .into_iter()
        .flatten()
        .collect();
    finish(next, phase, &wanted, at)
}

/// The status of an index that cannot be ingested until the user fixes something.
pub fn after_user_error(
    current: Option<&RagIndexStatus>,
    reason: &str,
    message: &str,
    at: &At,
) -> RagIndexStatus {
    let next = current.cloned().unwrap_or_default();
    let wanted = [
        ready_condition(&next),
        Wanted::new(INDEXING, false, reason, message),
        Wanted::new(DEGRADED, true, reason, message),
    ];
    finish(next, phase::DEGRADED, &wanted, at)
}

/// The status of an embedded index: every pipeline pod ingests the sources itself, so the index
/// is ready as soon as they exist, and its revision is theirs.
pub fn embedded(
    current: Option<&RagIndexStatus>,
    source_digest: &str,
    documents: i64,
    at: &At,
) -> RagIndexStatus {
    let mut next = current.cloned().unwrap_or_default();
    next.revision = Some(at.revision.into());
    next.documents = Some(documents);
    next.source_digest = Some(source_digest.into());
    let wanted = [
        Wanted::new(
            READY,
            true,
            "Embedded",
            "each pipeline pod ingests the sources when it starts",
        ),
        Wanted::new(INDEXING, false, "Embedded", "nothing is ingested centrally"),
        Wanted::new(DEGRADED, false, "Embedded", "the sources exist"),
    ];
    finish(next, phase::READY, &wanted, at)
}

fn adopt(next: &mut RagIndexStatus, report: &Report, at: &At, finished: Timestamp) {
    next.revision = Some(at.revision.into());
    next.documents = Some(report.documents);
    if report.unchanged {
        // Nothing was created for this revision: its intent record goes.
        if next.active_collection.as_deref() != Some(at.collection) {
            next.collections.retain(|c| c != at.collection);
        }
        return;
    }
    if let Some(collection) = &report.collection {
        record(next, collection);
        next.active_collection = Some(collection.clone());
        next.indexed_with = at.indexed_with.clone();
    }
    next.chunks = Some(report.chunks);
    next.source_digest = Some(report.source_digest.clone());
    next.last_indexed_at = Some(Time(finished));
}

/// Records `collection` as the index's newest.
fn record(next: &mut RagIndexStatus, collection: &str) {
    if collection.is_empty() {
        return;
    }
    next.collections.retain(|c| c != collection);
    next.collections.insert(0, collection.into());
}

fn ready_condition(s: &RagIndexStatus) -> Wanted {
    match &s.active_collection {
        Some(c) => Wanted::new(
            READY,
            true,
            "Indexed",
            format!(
                "collection {c} holds {} chunks of {} documents",
                s.chunks.unwrap_or(0),
                s.documents.unwrap_or(0)
            ),
        ),
        None => Wanted::new(READY, false, "NotIndexed", "no ingest has completed yet"),
    }
}

fn finish(mut next: RagIndexStatus, phase: &str, wanted: &[Wanted], at: &At) -> RagIndexStatus {
    next.phase = Some(phase.into());
    next.observed_generation = at.generation;
    next.conditions = conditions::merge(&next.conditions, wanted, at.generation, at.now);
    next
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
