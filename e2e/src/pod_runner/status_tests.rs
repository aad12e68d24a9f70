use k8s_openapi::api::core::v1::PodStatus;
use serde_json::json;

use super::*;

fn spec(inits: &[&str]) -> PodSpec {
    let init: Vec<Value> = inits
        .iter()
        .map(|n| json!({"name": n, "image": format!("example.com/{n}:1")}))
        .collect();
    serde_json::from_value(json!({
        "restartPolicy": "Never",
        "initContainers": init,
        "containers": [{"name": "ingest", "image": "ghcr.io/ragops/rag-runtime:dev"}],
    }))
    .unwrap()
}

fn ran(container: &str, exit_code: i32, message: &str) -> ContainerRun {
    ContainerRun {
        ended: Termination {
            container: container.into(),
            exit_code,
            message: message.into(),
        },
        started: "2026-11-26T10:00:00.750Z".parse().unwrap(),
        finished: "2026-11-26T10:00:02.250Z".parse().unwrap(),
    }
}

fn now() -> Timestamp {
    "2026-11-26T10:00:03.5Z".parse().unwrap()
}

/// The status as the API server would read it: a valid `PodStatus`.
fn parsed(v: &Value) -> PodStatus {
    serde_json::from_value(v.clone()).unwrap()
}

fn condition_status(s: &PodStatus, type_: &str) -> Option<(String, Option<String>)> {
    let c = s.conditions.iter().flatten().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

#[test]
fn a_container_that_exits_0_completes_the_pod() {
    let v = terminal_status(
        &spec(&[]),
        &[],
        Some(&ran("ingest", 0, r#"{"documents":2}"#)),
        now(),
    );
    let s = parsed(&v);
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    assert!(v.get("initContainerStatuses").is_none(), "{v}");
    let [c] = &s.container_statuses.clone().unwrap()[..] else {
        panic!("one container status: {v}")
    };
    assert_eq!(c.name, "ingest");
    assert_eq!(c.image, "ghcr.io/ragops/rag-runtime:dev");
    assert!(!c.ready);
    assert_eq!(c.started, Some(false));
    let t = c.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(t.exit_code, 0);
    assert_eq!(t.reason.as_deref(), Some("Completed"));
    assert_eq!(t.message.as_deref(), Some(r#"{"documents":2}"#));
    // metav1.Time: whole seconds.
    let state = &v["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(state["startedAt"], "2026-11-26T10:00:00Z");
    assert_eq!(state["finishedAt"], "2026-11-26T10:00:02Z");
    for type_ in ["Ready", "ContainersReady"] {
        let expected = ("False".to_string(), Some("PodCompleted".to_string()));
        assert_eq!(condition_status(&s, type_), Some(expected), "{type_}");
    }
    // Scheduled and Initialized stay as KWOK wrote them (conditions merge by type).
    assert_eq!(condition_status(&s, "Initialized"), None);
}

#[test]
fn a_container_that_fails_fails_the_pod_with_reason_error() {
    let v = terminal_status(
        &spec(&["fetch"]),
        &[ran("fetch", 0, "")],
        Some(&ran("ingest", 1, "")),
        now(),
    );
    let s = parsed(&v);
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    let t = &v["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 1);
    assert_eq!(t["reason"], "Error");
    assert!(
        t.get("message").is_none(),
        "an empty message is left out: {t}"
    );
    let init = &v["initContainerStatuses"][0];
    assert_eq!(init["name"], "fetch");
    assert_eq!(init["state"]["terminated"]["reason"], "Completed");
}

#[test]
fn a_failed_init_container_fails_the_pod_before_the_container_starts() {
    let inits = [ran("fetch", 0, ""), ran("check", 137, "killed")];
    let v = terminal_status(&spec(&["fetch", "check", "warm"]), &inits, None, now());
    let s = parsed(&v);
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    let init = s.init_container_statuses.clone().unwrap();
    let names: Vec<&str> = init.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["fetch", "check", "warm"]);
    let state = |i: usize| init[i].state.clone().unwrap();
    assert_eq!(state(0).terminated.unwrap().exit_code, 0);
    let failed = state(1).terminated.unwrap();
    assert_eq!(
        (failed.exit_code, failed.reason.as_deref()),
        (137, Some("Error"))
    );
    assert_eq!(failed.message.as_deref(), Some("killed"));
    assert_eq!(
        state(2).waiting.unwrap().reason.as_deref(),
        Some("PodInitializing")
    );
    let main = &s.container_statuses.clone().unwrap()[0];
    let waiting = main.state.clone().unwrap().waiting.unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("PodInitializing"));
    let initialized = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Initialized");
    let initialized = initialized.expect("Initialized condition");
    assert_eq!(initialized.status, "False");
    assert_eq!(
        initialized.message.as_deref(),
        Some("containers with incomplete status: [check]")
    );
}
