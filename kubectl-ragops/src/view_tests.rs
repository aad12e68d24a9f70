use serde_json::{Value, json};

use super::*;

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn pipeline(status: Value) -> RagPipeline {
    from(json!({
        "apiVersion": "ragops.io/v1alpha1", "kind": "RagPipeline",
        "metadata": { "name": "docs", "namespace": "ns", "generation": 2 },
        "spec": {
            "indexRef": { "name": "handbook" },
            "runtime": { "image": "rag-runtime:1" },
            "llm": { "provider": "extractive" }
        },
        "status": status
    }))
}

fn deployment(color: &str, replicas: i32, ready: i32, revision: &str) -> Deployment {
    from(json!({
        "metadata": { "name": format!("docs-{color}"), "namespace": "ns",
                      "labels": { "ragops.io/revision": revision } },
        "spec": { "replicas": replicas, "selector": {}, "template": {} },
        "status": { "readyReplicas": ready }
    }))
}

fn service(name: &str, color: &str) -> Service {
    from(json!({
        "metadata": { "name": name, "namespace": "ns" },
        "spec": { "selector": { "ragops.io/pipeline": "docs", "ragops.io/color": color } }
    }))
}

fn pod(name: &str, color: &str, ready: bool, ip: Option<&str>) -> Pod {
    from(json!({
        "metadata": { "name": name, "namespace": "ns",
                      "labels": { "ragops.io/pipeline": "docs", "ragops.io/color": color } },
        "status": {
            "podIP": ip,
            "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }]
        }
    }))
}

fn event(name: &str, at: &str, reason: &str, note: &str, kind: &str) -> Event {
    from(json!({
        "metadata": { "name": name, "namespace": "ns" },
        "eventTime": at,
        "type": if reason == "HealthCheckFailed" { "Warning" } else { "Normal" },
        "reason": reason, "note": note,
        "regarding": { "kind": kind, "name": "docs", "namespace": "ns" }
    }))
}

fn index(phase: Option<&str>) -> RagIndex {
    let mut v = json!({
        "apiVersion": "ragops.io/v1alpha1", "kind": "RagIndex",
        "metadata": { "name": "handbook", "namespace": "ns" },
        "spec": { "sources": [{ "configMap": { "name": "handbook-docs" } }],
                  "vectorStore": { "embedded": {} },
                  "embedding": { "provider": "local", "dimensions": 256 } }
    });
    if let Some(phase) = phase {
        v["status"] = json!({ "phase": phase });
    }
    from(v)
}

#[test]
fn a_rollout_in_flight_shows_both_colours_their_services_pods_index_and_events() {
    let p = pipeline(json!({
        "phase": "Progressing", "activeColor": "blue", "activeRevision": "aaaa",
        "targetColor": "green", "targetRevision": "bbbb"
    }));
    let mut events: Vec<Event> = (0..7)
        .map(|i| {
            let at = format!("2026-01-01T00:00:0{i}Z");
            event(
                &format!("e{i}"),
                &at,
                "RolloutStarted",
                &format!("step {i}"),
                "RagPipeline",
            )
        })
        .collect();
    events.push(event(
        "x",
        "2026-01-01T00:00:08Z",
        "Scaled",
        "not ours",
        "Deployment",
    ));
    events.push(event(
        "w",
        "2026-01-01T00:00:09Z",
        "HealthCheckFailed",
        "503 ",
        "RagPipeline",
    ));
    let s = Snapshot {
        deployments: vec![
            deployment("green", 2, 1, "bbbb"),
            deployment("blue", 2, 2, "aaaa"),
        ],
        services: vec![service("docs", "blue"), service("docs-preview", "green")],
        pods: vec![
            pod("docs-blue-2", "blue", true, Some("127.0.1.3")),
            pod("docs-blue-1", "blue", true, Some("127.0.1.2")),
            pod("docs-green-1", "green", false, None),
            pod("other-blue-1", "other", true, Some("127.0.1.9")),
        ],
        indexes: vec![index(Some("Ready"))],
        events,
    };
    let lines = pipeline_tree(&p, &s, ts("2026-01-01T00:03:09Z")).lines();
    assert_eq!(
        lines,
        [
            "ragpipeline ns/docs: Progressing, active blue (aaaa), rolling out green (bbbb)",
            "├─ blue: Deployment docs-blue, 2/2 ready, revision aaaa, serves active (Service docs)",
            "│  ├─ pod docs-blue-1: ready, 127.0.1.2",
            "│  └─ pod docs-blue-2: ready, 127.0.1.3",
            "├─ green: Deployment docs-green, 1/2 ready, revision bbbb, serves preview (Service docs-preview)",
            "│  └─ pod docs-green-1: not ready, no IP",
            "├─ index handbook: Ready",
            "└─ events (last 5):",
            "   ├─ 3m ago RolloutStarted: step 3",
            "   ├─ 3m ago RolloutStarted: step 4",
            "   ├─ 3m ago RolloutStarted: step 5",
            "   ├─ 3m ago RolloutStarted: step 6",
            "   └─ 3m ago HealthCheckFailed (Warning): 503",
        ]
    );
}

#[test]
fn a_new_pipeline_shows_what_is_missing() {
    let p = pipeline(json!(null));
    let lines = pipeline_tree(&p, &Snapshot::default(), Timestamp::UNIX_EPOCH).lines();
    assert_eq!(
        lines,
        [
            "ragpipeline ns/docs: Unknown",
            "├─ blue: no Deployment docs-blue",
            "├─ green: no Deployment docs-green",
            "├─ index handbook: not found",
            "└─ events: none",
        ]
    );
}

#[test]
fn one_colour_serving_both_services_says_so() {
    let p = pipeline(json!({ "phase": "Healthy", "activeColor": "blue", "activeRevision": "a" }));
    let s = Snapshot {
        deployments: vec![deployment("blue", 1, 1, "a")],
        services: vec![service("docs", "blue"), service("docs-preview", "blue")],
        indexes: vec![index(None)],
        ..Snapshot::default()
    };
    let lines = pipeline_tree(&p, &s, Timestamp::UNIX_EPOCH).lines();
    assert_eq!(
        lines[1],
        "├─ blue: Deployment docs-blue, 1/1 ready, revision a, serves active (Service docs) + preview (Service docs-preview)"
    );
    assert_eq!(lines[3], "├─ index handbook: no phase yet");
}

#[test]
fn ages_read_like_kubectl() {
    let now = ts("2026-01-10T00:00:00Z");
    let ago = |secs: i64| age(Timestamp::from_second(now.as_second() - secs).unwrap(), now);
    assert_eq!(ago(0), "0s");
    assert_eq!(ago(119), "119s");
    assert_eq!(ago(120), "2m");
    assert_eq!(ago(2 * 3600 - 1), "119m");
    assert_eq!(ago(2 * 3600), "2h");
    assert_eq!(ago(48 * 3600), "2d");
    // Clock skew: an Event from the future is not negative.
    assert_eq!(ago(-5), "0s");
}

#[test]
fn pipelines_sort_by_namespace_then_name() {
    let named = |ns: &str, name: &str| {
        let mut p = pipeline(json!(null));
        p.metadata.namespace = Some(ns.into());
        p.metadata.name = Some(name.into());
        p
    };
    let sorted = sorted(vec![named("b", "a"), named("a", "z"), named("a", "b")]);
    let keys: Vec<_> = sorted
        .iter()
        .map(|p| format!("{}/{}", p.namespace().unwrap(), p.name_any()))
        .collect();
    assert_eq!(keys, ["a/b", "a/z", "b/a"]);
}

#[test]
fn a_canary_shows_its_step_and_both_colours_serving() {
    let mut p = pipeline(json!({
        "phase": "Paused", "activeColor": "blue", "activeRevision": "a",
        "targetColor": "green", "targetRevision": "b",
        "rollout": { "startedAt": "2026-01-01T00:00:00Z",
                     "canary": { "step": 1, "weight": 25, "stepStartedAt": "2026-01-01T00:00:00Z" } }
    }));
    p.spec.rollout = from(json!({
        "strategy": "canary",
        "canary": { "steps": [{ "setWeight": 25 }, { "pause": {} }, { "setWeight": 50 }] }
    }));
    let mut split = service("docs", "blue");
    split.spec.as_mut().unwrap().selector =
        Some([("ragops.io/pipeline".to_string(), "docs".to_string())].into());
    let s = Snapshot {
        deployments: vec![
            deployment("blue", 3, 3, "a"),
            deployment("green", 1, 1, "b"),
        ],
        services: vec![split],
        indexes: vec![index(None)],
        ..Snapshot::default()
    };
    let lines = pipeline_tree(&p, &s, Timestamp::UNIX_EPOCH).lines();
    assert_eq!(
        lines[0],
        "ragpipeline ns/docs: Paused, active blue (a), rolling out green (b), canary step 1 of 3 at 25%"
    );
    assert!(
        lines[1].ends_with("serves active (Service docs)"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].ends_with("serves active (Service docs)"),
        "{}",
        lines[2]
    );
}
