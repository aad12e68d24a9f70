//! What a kubelet writes when a Job pod's containers have ended: the pod's terminal `status`,
//! built purely from how each container ran, then sent as a strategic merge patch on
//! `pods/status` (the kubelet's own way: conditions merge by type, container statuses are
//! replaced whole).
//!
//! Nothing overwrites it: KWOK's `pod-ready` stage acts on Pending pods only, and its
//! `pod-complete` stage skips pods whose image the runner runs (`rag-runtime`; see
//! `e2e/hack/build-control-plane.sh`). The API server refuses to move a pod out of a terminal
//! phase, so whichever wrote first would win.

use std::time::Duration;

use anyhow::{Result, anyhow};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Error};
use serde_json::{Map, Value, json};

use super::Termination;
use crate::pod_servers::ServedPod;
use crate::wait::wait_for;

/// How long a status write is retried while the API server is unreachable.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One container that ran to its end.
#[derive(Debug, Clone)]
pub(crate) struct ContainerRun {
    pub ended: Termination,
    pub started: Timestamp,
    pub finished: Timestamp,
}

/// The pod's `status` once it ran: every init container that ran (in order; the last one may have
/// failed) and the container, `None` when an init container failed and it never started.
pub(crate) fn terminal_status(
    spec: &PodSpec,
    inits: &[ContainerRun],
    main: Option<&ContainerRun>,
    now: Timestamp,
) -> Value {
    let succeeded = main.is_some_and(|m| m.ended.exit_code == 0);
    let init_specs = spec.init_containers.as_deref().unwrap_or_default();
    let init_statuses: Vec<Value> = init_specs
        .iter()
        .map(|c| container_status(c, inits.iter().find(|r| r.ended.container == c.name)))
        .collect();
    let statuses: Vec<Value> = spec
        .containers
        .iter()
        .map(|c| container_status(c, main.filter(|r| r.ended.container == c.name)))
        .collect();
    let mut conditions = vec![
        condition("Ready", now, "PodCompleted", ""),
        condition("ContainersReady", now, "PodCompleted", ""),
    ];
    if main.is_none() {
        let failed = inits.last().map(|r| r.ended.container.as_str());
        let message = format!(
            "containers with incomplete status: [{}]",
            failed.unwrap_or_default()
        );
        conditions.push(condition(
            "Initialized",
            now,
            "ContainersNotInitialized",
            &message,
        ));
    }
    let mut status = json!({
        "phase": if succeeded { "Succeeded" } else { "Failed" },
        "conditions": conditions,
        "containerStatuses": statuses,
    });
    if !init_statuses.is_empty() {
        status["initContainerStatuses"] = Value::Array(init_statuses);
    }
    status
}

/// A container's status: terminated if it ran, else waiting (it never started).
fn container_status(c: &Container, ran: Option<&ContainerRun>) -> Value {
    let state = match ran {
        Some(r) => json!({ "terminated": terminated(r) }),
        None => json!({ "waiting": { "reason": "PodInitializing" } }),
    };
    json!({
        "name": c.name,
        "image": c.image.as_deref().unwrap_or_default(),
        "imageID": "",
        "ready": false,
        "started": false,
        "restartCount": 0,
        "state": state,
    })
}

fn terminated(r: &ContainerRun) -> Value {
    let mut t = Map::new();
    t.insert("exitCode".into(), r.ended.exit_code.into());
    let reason = if r.ended.exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    t.insert("reason".into(), reason.into());
    if !r.ended.message.is_empty() {
        t.insert("message".into(), r.ended.message.clone().into());
    }
    t.insert("startedAt".into(), time(r.started).into());
    t.insert("finishedAt".into(), time(r.finished).into());
    Value::Object(t)
}

fn condition(type_: &str, now: Timestamp, reason: &str, message: &str) -> Value {
    let mut c = json!({
        "type": type_,
        "status": "False",
        "reason": reason,
        "lastTransitionTime": time(now),
    });
    if !message.is_empty() {
        c["message"] = message.into();
    }
    c
}

/// `metav1.Time`: RFC 3339 in whole seconds.
fn time(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// Patches the pod's status subresource, retried on transient errors. The pod's uid is a
/// precondition, so a new pod of the same name is never touched; a pod that is gone needs nothing.
pub(crate) async fn write(client: &Client, pod: &ServedPod, status: Value) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let patch = json!({ "metadata": { "uid": pod.uid }, "status": status });
    let what = format!("the status of pod {} written", pod.name);
    // Ok(Some(outcome)) ends the wait; Err is retried (the API server may be catching up).
    wait_for(&what, WRITE_TIMEOUT, || async {
        let params = PatchParams::default();
        match api
            .patch_status(&pod.name, &params, &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => Ok(Some(Ok(()))),
            Err(Error::Api(e)) if e.code == 404 => Ok(Some(Ok(()))),
            Err(Error::Api(e)) if matches!(e.code, 400 | 409 | 422) => Ok(Some(Err(anyhow!(
                "writing the status of pod {}: refused ({}): {}",
                pod.name,
                e.code,
                e.message
            )))),
            Err(e) => Err(e.into()),
        }
    })
    .await?
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
