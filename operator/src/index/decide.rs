//! What the next step of an index is, from its status, the revision wanted now and the state of
//! that revision's ingest Job. Pure: the tables below pin it down.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::api::{RagIndex, RagIndexStatus};

/// How long a failed ingest stays failed before the operator starts it again (the Job's own
/// `backoffLimit` retries come first).
pub const RETRY_AFTER: Duration = Duration::from_secs(300);

/// What an ingest Job wrote to its termination message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    #[serde(default)]
    pub documents: i64,
    #[serde(default)]
    pub chunks: i64,
    #[serde(default)]
    pub source_digest: String,
    /// The collection written; absent when nothing changed.
    #[serde(default)]
    pub collection: Option<String>,
    /// The sources held what the serving collection was built from: nothing was stored.
    #[serde(default)]
    pub unchanged: bool,
    #[serde(default)]
    pub error: Option<String>,
}

impl Report {
    /// Parses a termination message; `None` when it is not a report.
    pub fn parse(message: &str) -> Option<Self> {
        serde_json::from_str(message.trim()).ok()
    }
}

/// The ingest Job of the wanted revision, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded {
        report: Report,
        finished: Timestamp,
    },
    Failed {
        message: String,
        finished: Timestamp,
    },
}

/// The next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The status describes the wanted revision: nothing to run.
    UpToDate,
    /// Create the ConfigMap and Job of the wanted revision.
    Start,
    /// The Job runs; its status changes wake the index.
    Indexing,
    /// The Job succeeded: record what it stored.
    Adopt { report: Report, finished: Timestamp },
    /// The Job failed; it is started again after `retry_in`.
    Failed { message: String, retry_in: Duration },
    /// The failure is old enough: delete the failed Job so the next pass starts a new one.
    Restart,
    /// The Job of an earlier schedule tick still runs: a tick never kills it, the next waits.
    Waiting { job: String },
}

/// The next step of the index wanting `revision`, whose Job is in `job`; `earlier` names a Job
/// of the same spec at an earlier schedule tick that still runs.
pub fn decide(
    status: Option<&RagIndexStatus>,
    revision: &str,
    job: Option<&JobState>,
    earlier: Option<&str>,
    now: Timestamp,
) -> Step {
    let done = status.and_then(|s| s.revision.as_deref()) == Some(revision);
    match job {
        _ if done => Step::UpToDate,
        None => match earlier {
            Some(job) => Step::Waiting { job: job.into() },
            None => Step::Start,
        },
        Some(JobState::Running) => Step::Indexing,
        Some(JobState::Succeeded { report, finished }) => match &report.error {
            None if report.unchanged || report.collection.is_some() => Step::Adopt {
                report: report.clone(),
                finished: *finished,
            },
            error => failed(
                error
                    .as_deref()
                    .unwrap_or("the Job succeeded but reported no collection"),
                *finished,
                now,
            ),
        },
        Some(JobState::Failed { message, finished }) => failed(message, *finished, now),
    }
}

fn failed(message: &str, finished: Timestamp, now: Timestamp) -> Step {
    let elapsed = now.duration_since(finished).unsigned_abs();
    match RETRY_AFTER.checked_sub(elapsed) {
        Some(left) if !left.is_zero() => Step::Failed {
            message: message.into(),
            retry_in: left,
        },
        _ => Step::Restart,
    }
}

/// The source digest of the serving collection, when only the sources can have changed since it
/// was built: an ingest that reads the same content then stores nothing. After an edit of the
/// embedding, chunking or distance everything is embedded again.
pub fn unless_digest(index: &RagIndex) -> Option<&str> {
    let s = index.status.as_ref()?;
    s.active_collection.as_ref()?;
    s.indexed_with
        .as_ref()
        .filter(|w| w.same_vectors(&index.spec))?;
    s.source_digest.as_deref()
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
