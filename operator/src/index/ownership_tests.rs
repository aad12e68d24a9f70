use super::*;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn only_recorded_collections_are_owned() {
    assert_eq!(owned(None), Vec::<String>::new());
    let s = RagIndexStatus {
        collections: names(&["a-2", "a-1"]),
        active_collection: Some("a-0".into()),
        ..RagIndexStatus::default()
    };
    assert_eq!(owned(Some(&s)), names(&["a-2", "a-1", "a-0"]));
    let s = RagIndexStatus {
        collections: names(&["a-2", "a-1"]),
        active_collection: Some("a-1".into()),
        ..RagIndexStatus::default()
    };
    assert_eq!(owned(Some(&s)), names(&["a-2", "a-1"]), "no duplicate");
}

/// What garbage collection sees (active, in flight, in use, retain) and should drop.
type GcCase<'a> = (
    &'a str,
    Option<&'a str>,
    BTreeSet<String>,
    BTreeSet<String>,
    usize,
    Vec<&'a str>,
);

#[test]
fn garbage_collection_drops_only_what_nothing_needs() {
    let recorded = names(&["h-5", "h-4", "h-3", "h-2", "h-1"]);
    let none = set(&[]);
    let cases: Vec<GcCase> = vec![
        (
            "retain 2 beyond the active",
            Some("h-5"),
            none.clone(),
            none.clone(),
            2,
            vec!["h-2", "h-1"],
        ),
        (
            "retain 0",
            Some("h-5"),
            none.clone(),
            none.clone(),
            0,
            vec!["h-4", "h-3", "h-2", "h-1"],
        ),
        (
            "served by a pipeline",
            Some("h-5"),
            none.clone(),
            set(&["h-1"]),
            2,
            vec!["h-2"],
        ),
        // A running Job fills the newest recorded one: never dropped, and it does not use up
        // the retention of the superseded ones.
        (
            "in flight",
            Some("h-4"),
            set(&["h-5"]),
            none.clone(),
            1,
            vec!["h-2", "h-1"],
        ),
        (
            "in flight, retain 0",
            Some("h-4"),
            set(&["h-5"]),
            none.clone(),
            0,
            vec!["h-3", "h-2", "h-1"],
        ),
        (
            "nothing active yet",
            None,
            set(&["h-5"]),
            none.clone(),
            0,
            vec!["h-4", "h-3", "h-2", "h-1"],
        ),
    ];
    for (what, active, in_flight, in_use, retain, want) in cases {
        assert_eq!(
            collections_to_drop(&recorded, active, &in_flight, &in_use, retain),
            names(&want),
            "{what}"
        );
    }
}

#[test]
fn a_collection_tagged_as_anothers_is_never_dropped() {
    assert!(may_drop(None, "u1"), "untagged: the record decides");
    assert!(may_drop(Some("u1"), "u1"));
    assert!(!may_drop(Some("u2"), "u1"));
}

#[test]
fn the_alias_goes_only_when_it_points_at_an_owned_collection() {
    let owned = names(&["a-2", "a-1"]);
    assert!(drops_alias(Some("a-1"), &owned));
    assert!(!drops_alias(Some("b-1"), &owned), "moved to another index");
    assert!(!drops_alias(None, &owned), "no alias");
    assert!(!drops_alias(Some("a-1"), &[]), "owns nothing");
}

#[test]
fn servers_compare_by_host_and_port_with_namespace_relative_names_qualified() {
    let cases = [
        ("http://qdrant.qdrant:6334", "a", "qdrant.qdrant:6334"),
        ("https://QDRANT.qdrant:6334/", "a", "qdrant.qdrant:6334"),
        (
            "http://qdrant.qdrant.svc.cluster.local:6334",
            "a",
            "qdrant.qdrant:6334",
        ),
        ("http://qdrant.qdrant.svc:6334", "a", "qdrant.qdrant:6334"),
        ("http://qdrant:6334", "team-a", "qdrant.team-a:6334"),
        ("http://qdrant:6334", "team-b", "qdrant.team-b:6334"),
        ("http://127.0.0.1:6334", "a", "127.0.0.1:6334"),
        ("http://[::1]:6334", "a", "[::1]:6334"),
        ("http://user:pw@qdrant.db:6334/x?y", "a", "qdrant.db:6334"),
        ("http://localhost:6334", "a", "localhost:6334"),
        ("http://qdrant.db.:6334", "a", "qdrant.db:6334"),
        ("grpc://Qdrant.DB:6334", "a", "qdrant.db:6334"),
        ("qdrant:6334", "a", "qdrant.a:6334"),
        ("http://[0:0::1]:6334", "a", "[::1]:6334"),
    ];
    for (url, ns, want) in cases {
        assert_eq!(server(url, ns), want, "{url} in {ns}");
    }
}

fn claim(ns: &str, name: &str, created: &str, uid: &str) -> Claim {
    Claim {
        namespace: ns.into(),
        name: name.into(),
        server: "qdrant.db:6334".into(),
        alias: "handbook".into(),
        created: Some(created.parse().unwrap()),
        uid: uid.into(),
    }
}

#[test]
fn the_oldest_index_holds_an_alias_and_both_sides_agree() {
    let a = claim("team-a", "h", "2026-12-01T00:00:00Z", "u-a");
    let b = claim("team-b", "h", "2026-12-02T00:00:00Z", "u-b");
    let twin = claim("team-c", "h", "2026-12-01T00:00:00Z", "u-0");
    let other_alias = Claim {
        alias: "faq".into(),
        ..claim("team-d", "h", "2026-11-01T00:00:00Z", "u-d")
    };
    let other_server = Claim {
        server: "qdrant.team-e:6334".into(),
        ..claim("team-e", "h", "2026-11-01T00:00:00Z", "u-e")
    };
    let all = [
        a.clone(),
        b.clone(),
        other_alias.clone(),
        other_server.clone(),
    ];
    assert_eq!(alias_holder(&a, &all), None, "the older keeps it");
    assert_eq!(
        alias_holder(&b, &all),
        Some(a.clone()),
        "the younger is refused"
    );
    assert_eq!(alias_holder(&other_alias, &all), None, "another alias");
    assert_eq!(alias_holder(&other_server, &all), None, "another server");
    // Created in the same second: the smaller uid wins, on both sides.
    let with_twin = [a.clone(), twin.clone()];
    assert_eq!(alias_holder(&a, &with_twin), Some(twin.clone()));
    assert_eq!(alias_holder(&twin, &with_twin), None);
    let message = conflict_message(&b, &a);
    assert!(
        message.starts_with("spec.vectorStore.qdrant.collection: ") && message.contains("team-a/h"),
        "{message}"
    );
}

#[test]
fn a_deletion_waits_for_users_then_stops_jobs_then_drops() {
    let in_use = names(&["h-1"]);
    let cases = [
        (
            "a pipeline serves h-1",
            Deleting {
                in_use: in_use.clone(),
                jobs: 1,
                ..Deleting::default()
            },
            DeletionStep::WaitInUse(in_use.clone()),
        ),
        (
            "the namespace goes, pipelines with it",
            Deleting {
                in_use: in_use.clone(),
                jobs: 0,
                namespace_terminating: true,
            },
            DeletionStep::Drop,
        ),
        (
            "an ingest may still write",
            Deleting {
                jobs: 2,
                ..Deleting::default()
            },
            DeletionStep::StopJobs,
        ),
        (
            "nothing in the way",
            Deleting::default(),
            DeletionStep::Drop,
        ),
    ];
    for (what, deleting, want) in cases {
        assert_eq!(deletion_step(&deleting), want, "{what}");
    }
}

#[test]
fn a_deletion_never_holds_on_what_cannot_come_back() {
    let gone = DropFailure::CredentialsGone("Secret qdrant is gone".into());
    let down = DropFailure::Server("unreachable".into());
    assert!(release_after(&gone, false));
    assert!(release_after(&down, true), "the namespace is going");
    assert!(!release_after(&down, false), "Qdrant may come back: retry");
}
