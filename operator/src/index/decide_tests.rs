use std::collections::BTreeSet;

use super::*;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn status(revision: &str) -> RagIndexStatus {
    RagIndexStatus {
        revision: Some(revision.into()),
        ..RagIndexStatus::default()
    }
}

fn stored(collection: &str) -> Report {
    Report {
        documents: 2,
        chunks: 5,
        source_digest: "d1".into(),
        collection: Some(collection.into()),
        ..Report::default()
    }
}

#[test]
fn steps_follow_the_revision_and_its_job() {
    let now = at("2026-11-26T10:00:00Z");
    let finished = at("2026-11-26T09:59:00Z");
    let long_ago = at("2026-11-26T09:00:00Z");
    let ok = JobState::Succeeded {
        report: stored("h-r2"),
        finished,
    };
    let unchanged = JobState::Succeeded {
        report: Report {
            unchanged: true,
            ..Report::default()
        },
        finished,
    };
    let silent = JobState::Succeeded {
        report: Report::default(),
        finished,
    };
    let reported_error = JobState::Succeeded {
        report: Report {
            error: Some("boom".into()),
            ..Report::default()
        },
        finished,
    };
    let fresh_failure = JobState::Failed {
        message: "embedder down".into(),
        finished,
    };
    let old_failure = JobState::Failed {
        message: "embedder down".into(),
        finished: long_ago,
    };
    let r1 = status("r1");
    let cases: Vec<(&str, Option<&RagIndexStatus>, Option<&JobState>, Step)> = vec![
        ("first ingest", None, None, Step::Start),
        ("new revision", Some(&r1), None, Step::Start),
        (
            "running",
            Some(&r1),
            Some(&JobState::Running),
            Step::Indexing,
        ),
        (
            "stored",
            Some(&r1),
            Some(&ok),
            Step::Adopt {
                report: stored("h-r2"),
                finished,
            },
        ),
        (
            "unchanged content",
            Some(&r1),
            Some(&unchanged),
            Step::Adopt {
                report: Report {
                    unchanged: true,
                    ..Report::default()
                },
                finished,
            },
        ),
        (
            "no report",
            Some(&r1),
            Some(&silent),
            Step::Failed {
                message: "the Job succeeded but reported no collection".into(),
                retry_in: Duration::from_secs(240),
            },
        ),
        (
            "error report",
            None,
            Some(&reported_error),
            Step::Failed {
                message: "boom".into(),
                retry_in: Duration::from_secs(240),
            },
        ),
        (
            "fresh failure",
            Some(&r1),
            Some(&fresh_failure),
            Step::Failed {
                message: "embedder down".into(),
                retry_in: Duration::from_secs(240),
            },
        ),
        ("old failure", Some(&r1), Some(&old_failure), Step::Restart),
    ];
    for (what, status, job, want) in cases {
        assert_eq!(decide(status, "r2", job, None, now), want, "{what}");
    }
    // A new schedule tick never kills the Job of the previous one: it waits for it to end.
    let earlier = Some("h-ingest-r1");
    assert_eq!(
        decide(Some(&r1), "r2", None, earlier, now),
        Step::Waiting {
            job: "h-ingest-r1".into()
        }
    );
    assert_eq!(
        decide(Some(&r1), "r2", Some(&JobState::Running), earlier, now),
        Step::Indexing,
        "the wanted revision's own Job runs already"
    );
    // Once the status names the revision, its Job (whatever its state) changes nothing.
    let r2 = status("r2");
    for job in [
        None,
        Some(&ok),
        Some(&old_failure),
        Some(&JobState::Running),
    ] {
        assert_eq!(decide(Some(&r2), "r2", job, None, now), Step::UpToDate);
    }
}

#[test]
fn reports_parse_from_termination_messages() {
    let m = r#"{"documents":2,"chunks":5,"failed":{},"sourceDigest":"d1","elapsed":0.4,"collection":"h-r2","unchanged":false}"#;
    assert_eq!(Report::parse(m), Some(stored("h-r2")));
    let e = Report::parse("{\"error\":\"qdrant unreachable\"}\n").unwrap();
    assert_eq!(e.error.as_deref(), Some("qdrant unreachable"));
    assert_eq!(Report::parse("panicked at main.rs"), None);
}

#[test]
fn dropped_collections_spare_the_active_the_used_and_the_retained() {
    let created: Vec<String> = ["h-5", "h-4", "h-3", "h-2", "h-1"].map(String::from).into();
    let used = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let cases = [
        ("retain 2", Some("h-5"), used(&[]), 2, vec!["h-2", "h-1"]),
        (
            "retain 0",
            Some("h-5"),
            used(&[]),
            0,
            vec!["h-4", "h-3", "h-2", "h-1"],
        ),
        (
            "old colour",
            Some("h-5"),
            used(&["h-1"]),
            0,
            vec!["h-4", "h-3", "h-2"],
        ),
        (
            "rolled back",
            Some("h-5"),
            used(&["h-3", "h-4"]),
            1,
            vec!["h-2", "h-1"],
        ),
        ("retain all", Some("h-5"), used(&[]), 9, vec![]),
        ("no active", None, used(&[]), 4, vec!["h-1"]),
    ];
    for (what, active, in_use, retain, want) in cases {
        assert_eq!(
            crate::index::ownership::collections_to_drop(
                &created,
                active,
                &BTreeSet::new(),
                &in_use,
                retain
            ),
            want,
            "{what}"
        );
    }
}

#[test]
fn an_unchanged_corpus_is_skipped_only_when_the_vectors_would_be_the_same() {
    let mut index: RagIndex = serde_yaml::from_str(
        r#"
apiVersion: ragops.io/v1alpha1
kind: RagIndex
metadata: { name: handbook, namespace: team-a }
spec:
  vectorStore: { qdrant: { url: "http://qdrant:6334" } }
  embedding: { provider: local, dimensions: 64 }
"#,
    )
    .unwrap();
    assert_eq!(unless_digest(&index), None, "nothing serves yet");
    index.status = Some(RagIndexStatus {
        active_collection: Some("handbook-r1".into()),
        source_digest: Some("d1".into()),
        indexed_with: Some(crate::api::IndexedWith::of(&index.spec)),
        ..RagIndexStatus::default()
    });
    assert_eq!(unless_digest(&index), Some("d1"));
    index.spec.embedding.batch_size = Some(8);
    assert_eq!(
        unless_digest(&index),
        Some("d1"),
        "a batch size stores the same vectors"
    );
    for edit in [
        (|i: &mut RagIndex| i.spec.embedding.dimensions = 32) as fn(&mut RagIndex),
        |i| i.spec.chunking.max_chars = 200,
        |i| i.spec.distance = crate::api::Distance::Dot,
        |i| i.spec.embedding.endpoint = Some("http://e/v1".into()),
    ] {
        let mut edited = index.clone();
        edit(&mut edited);
        assert_eq!(unless_digest(&edited), None, "{:?}", edited.spec);
    }
}
