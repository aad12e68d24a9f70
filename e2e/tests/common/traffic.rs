//! The one thing a blue-green cutover must never do, watched for: a Service selecting a colour
//! with no ready pod.

use std::time::Duration;

use anyhow::{Context, Result};
use e2e::wait_for;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;

use super::World;

/// Watches Service `name` and records every moment it selected a colour with no ready pod: the
/// Watches Service `name` and records every moment it selected a colour with no ready pod: the
/// one thing a blue-green cutover must never do.
pub struct TrafficGuard {
    violations: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    switches: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TrafficGuard {
    pub fn start(world: &World, name: &str) -> Self {
        use futures::StreamExt;
        use k8s_openapi::api::core::v1::Pod;
        use kube::runtime::{WatchStreamExt, watcher};

        let services: Api<Service> = world.ns.api();
        let pods: Api<Pod> = world.ns.api();
        let violations = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let switches = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let (v, s) = (violations.clone(), switches.clone());
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let pipeline = name.to_string();
        let task = tokio::spawn(async move {
            let mut stream = watcher(services, config)
                .applied_objects()
                .default_backoff()
                .boxed();
            while let Some(Ok(svc)) = stream.next().await {
                let Some(color) = svc
                    .spec
                    .and_then(|s| s.selector)
                    .and_then(|s| s.get("ragops.io/color").cloned())
                else {
                    continue;
                };
                {
                    let mut s = s.lock().unwrap();
                    if s.last() != Some(&color) {
                        s.push(color.clone());
                    }
                }
                let selector = format!("ragops.io/pipeline={pipeline},ragops.io/color={color}");
                let ready = match pods
                    .list(&kube::api::ListParams::default().labels(&selector))
                    .await
                {
                    Ok(list) => list.items.iter().filter(|p| is_ready(p)).count(),
                    Err(e) => {
                        v.lock().unwrap().push(format!("listing pods: {e}"));
                        continue;
                    }
                };
                if ready == 0 {
                    v.lock().unwrap().push(format!(
                        "Service {pipeline} selected {color} with no ready pod"
                    ));
                }
            }
        });
        Self {
            violations,
            switches,
            task,
        }
    }

    /// Colours the Service selected, in order, without repeats.
    pub fn switches(&self) -> Vec<String> {
        self.switches.lock().unwrap().clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    /// Waits until the switches seen are `expected` (the watch may lag behind the API server).
    pub async fn wait_switches(&self, expected: &[&str], timeout: Duration) -> Result<()> {
        let result = wait_for(
            &format!("the Service to have selected {expected:?}"),
            timeout,
            || async { Ok((self.switches() == expected).then_some(())) },
        )
        .await;
        result.with_context(|| format!("switches seen: {:?}", self.switches()))
    }
}

impl Drop for TrafficGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn is_ready(p: &k8s_openapi::api::core::v1::Pod) -> bool {
    let status = p.status.as_ref();
    p.metadata.deletion_timestamp.is_none()
        && status.and_then(|s| s.pod_ip.as_ref()).is_some()
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
