//! Waiting on conditions with a deadline, never on the clock alone.
//!
//! [`wait_for`] polls a check until it yields a value; [`wait_for_object`] watches one object until
//! a condition holds. Both fail with a message naming what was awaited and the last thing seen.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use anyhow::{Result, anyhow};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::runtime::wait::{Condition, await_condition};
use serde::de::DeserializeOwned;
use tokio::time::{Instant, sleep_until};

/// A generous default for anything the control plane does on its own (scheduling, kwok, controllers).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Polls `check` until it returns `Ok(Some(value))`, or fails after `timeout` with `what` and the
/// last error or "not yet" seen. Errors from `check` are retried (the cluster may be catching up).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("condition never checked");
    loop {
        let next_poll = Instant::now() + POLL_INTERVAL;
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(Ok(Some(v))) => return Ok(v),
            Ok(Ok(None)) => last = "condition not met yet".into(),
            Ok(Err(e)) => last = format!("last error: {e:#}"),
            Err(_) => last = format!("the check itself did not finish; before that: {last}"),
        }
        if Instant::now() >= deadline {
            return Err(anyhow!(
                "timed out after {timeout:?} waiting for {what} ({last})"
            ));
        }
        sleep_until(next_poll.min(deadline)).await;
    }
}

/// Watches object `name` until `cond` holds; returns the object (None if the condition accepts
/// absence). Fails after `timeout` with the object's last state in the message.
pub async fn wait_for_object<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    cond: impl Condition<K>,
) -> Result<Option<K>>
where
    K: kube::Resource + Clone + Debug + Send + DeserializeOwned + 'static,
    K::DynamicType: Default,
{
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, cond)).await {
        Ok(res) => Ok(res?),
        Err(_) => {
            let seen = match api.get_opt(name).await {
                Ok(Some(obj)) => serde_json_status(&obj),
                Ok(None) => "object does not exist".into(),
                Err(e) => format!("could not read it: {e}"),
            };
            Err(anyhow!(
                "timed out after {timeout:?} waiting for {} {name}: last seen {seen}",
                K::kind(&Default::default())
            ))
        }
    }
}

fn serde_json_status<K: Debug>(obj: &K) -> String {
    let s = format!("{obj:?}");
    // The status is at the end of the Debug output; keep the message readable.
    let start = s.find("status:").unwrap_or(0);
    s[start..].chars().take(1500).collect()
}

/// The Deployment has observed its latest generation, and `replicas` are updated and available
/// with condition Available=True.
pub fn deployment_available(replicas: i32) -> impl Condition<Deployment> {
    move |obj: Option<&Deployment>| {
        let Some(d) = obj else { return false };
        let (Some(status), Some(generation)) = (&d.status, d.metadata.generation) else {
            return false;
        };
        let available = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Available" && c.status == "True");
        available
            && status.observed_generation == Some(generation)
            && status.updated_replicas == Some(replicas)
            && status.available_replicas == Some(replicas)
            && status.replicas == Some(replicas)
    }
}

/// The CRD is Established (its API is served).
pub fn crd_established() -> impl Condition<CustomResourceDefinition> {
    kube::runtime::wait::conditions::is_crd_established()
}
