use std::time::Duration;

use super::*;

fn at(revision: &str) -> At<'_> {
    At {
        revision,
        job: "handbook-ingest-r",
        collection: "h-wanted",
        indexed_with: None,
        generation: Some(4),
        now: "2026-11-26T10:00:00Z".parse().unwrap(),
    }
}

fn condition<'a>(s: &'a RagIndexStatus, type_: &str) -> (&'a str, &'a str) {
    let c = s.conditions.iter().find(|c| c.type_ == type_).unwrap();
    (c.status.as_str(), c.reason.as_str())
}

fn adopted(collection: &str, revision: &str, current: Option<&RagIndexStatus>) -> RagIndexStatus {
    let report = Report {
        documents: 2,
        chunks: 7,
        source_digest: format!("digest-of-{collection}"),
        collection: Some(collection.into()),
        ..Report::default()
    };
    let finished = "2026-11-26T09:59:00Z".parse().unwrap();
    after_step(current, &Step::Adopt { report, finished }, &at(revision))
}

#[test]
fn an_adopted_ingest_becomes_the_serving_collection() {
    let first = adopted("h-r1", "r1", None);
    assert_eq!(first.phase.as_deref(), Some(phase::READY));
    assert_eq!(first.active_collection.as_deref(), Some("h-r1"));
    assert_eq!((first.documents, first.chunks), (Some(2), Some(7)));
    assert_eq!(first.revision.as_deref(), Some("r1"));
    assert_eq!(condition(&first, READY), ("True", "Indexed"));
    assert_eq!(condition(&first, DEGRADED), ("False", "Indexed"));
    assert_eq!(first.observed_generation, Some(4));
    let second = adopted("h-r2", "r2", Some(&first));
    assert_eq!(second.collections, ["h-r2", "h-r1"]);
    let again = adopted("h-r1", "r3", Some(&second));
    assert_eq!(
        again.collections,
        ["h-r1", "h-r2"],
        "no duplicates, newest first"
    );
}

#[test]
fn unchanged_content_moves_only_the_revision() {
    let first = adopted("h-r1", "r1", None);
    let report = Report {
        unchanged: true,
        documents: 2,
        ..Report::default()
    };
    let finished = "2026-11-26T09:59:30Z".parse().unwrap();
    let next = after_step(Some(&first), &Step::Adopt { report, finished }, &at("r2"));
    assert_eq!(next.revision.as_deref(), Some("r2"));
    assert_eq!(next.active_collection, first.active_collection);
    assert_eq!(next.collections, ["h-r1"]);
    assert_eq!(
        (next.chunks, next.last_indexed_at.clone()),
        (first.chunks, first.last_indexed_at.clone())
    );
}

#[test]
fn a_failed_reindex_keeps_what_serves() {
    let first = adopted("h-r1", "r1", None);
    let failed = Step::Failed {
        message: "embedder down".into(),
        retry_in: Duration::from_secs(60),
    };
    let next = after_step(Some(&first), &failed, &at("r2"));
    assert_eq!(next.phase.as_deref(), Some(phase::DEGRADED));
    assert_eq!(condition(&next, DEGRADED), ("True", "IngestFailed"));
    assert_eq!(
        condition(&next, READY),
        ("True", "Indexed"),
        "the old collection still serves"
    );
    assert_eq!(next.active_collection.as_deref(), Some("h-r1"));
    assert_eq!(next.revision.as_deref(), Some("r1"));
    let message = &next
        .conditions
        .iter()
        .find(|c| c.type_ == DEGRADED)
        .unwrap()
        .message;
    assert!(
        message.contains("embedder down") && message.contains("handbook-ingest-r"),
        "{message}"
    );
}

#[test]
fn indexing_before_the_first_collection_is_not_ready() {
    let running = after_step(None, &Step::Indexing, &at("r1"));
    assert_eq!(running.phase.as_deref(), Some(phase::INDEXING));
    assert_eq!(condition(&running, READY), ("False", "NotIndexed"));
    assert_eq!(condition(&running, INDEXING), ("True", "IngestRunning"));
    let user = after_user_error(
        Some(&running),
        "SourceNotFound",
        "spec.sources[0]: missing",
        &at("r1"),
    );
    assert_eq!(condition(&user, DEGRADED), ("True", "SourceNotFound"));
    assert_eq!(user.phase.as_deref(), Some(phase::DEGRADED));
}

#[test]
fn an_embedded_index_is_ready_with_its_sources_digest() {
    let s = embedded(None, "abc", 5, &at("r9"));
    assert_eq!(
        (s.revision.as_deref(), s.source_digest.as_deref()),
        (Some("r9"), Some("abc"))
    );
    assert_eq!(s.documents, Some(5), "kubectl get ragi shows them");
    assert_eq!(condition(&s, READY), ("True", "Embedded"));
}

#[test]
fn the_collection_of_a_job_is_recorded_before_the_job_starts() {
    let first = adopted("h-r1", "r1", None);
    let started = after_step(Some(&first), &Step::Start, &at("r2"));
    assert_eq!(
        started.collections,
        ["h-wanted", "h-r1"],
        "the intent first"
    );
    assert_eq!(started.active_collection.as_deref(), Some("h-r1"));
    // The ingest found the same content and created nothing: the record goes again.
    let report = Report {
        unchanged: true,
        ..Report::default()
    };
    let finished = "2026-11-26T09:59:30Z".parse().unwrap();
    let unchanged = after_step(Some(&started), &Step::Adopt { report, finished }, &at("r2"));
    assert_eq!(unchanged.collections, ["h-r1"]);
    let waiting = Step::Waiting {
        job: "handbook-ingest-r1".into(),
    };
    let next = after_step(Some(&first), &waiting, &at("r2"));
    assert_eq!(condition(&next, INDEXING), ("True", "WaitingForIngest"));
    assert_eq!(
        next.collections,
        ["h-r1"],
        "nothing starts, nothing is recorded"
    );
}
