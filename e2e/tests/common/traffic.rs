//! The one thing a blue-green cutover must never do, watched for: a Service selecting a colour
//! with no ready pod. While a canary splits the traffic (the Service selects both colours), also:
//! the new colour's share of the ready pods above the share its recorded weight plans.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use e2e::wait_for;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use rag_operator::api::RagPipeline;

use super::World;

/// How often the guard samples between changes.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Watches Service `name`, the pipeline's pods and the Service's EndpointSlices, and samples on
/// every change of any of them and every [`SAMPLE_EVERY`]: every moment the Service selected a
/// colour with no ready pod is a violation. A watch that fails, or the guard stopping, is a
/// violation too: a guard that went blind must not pass a test.
pub struct TrafficGuard {
    violations: Arc<Mutex<Vec<String>>>,
    switches: Arc<Mutex<Vec<String>>>,
    /// Samples taken, so a test can tell the guard was looking.
    samples: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

/// What wakes the guard.
enum Wake {
    /// The Service as the watch delivered it.
    Service(Box<Service>),
    Changed,
    Failed(String),
}

fn wakes<K>(api: Api<K>, config: watcher::Config, what: &'static str) -> BoxStream<'static, Wake>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher(api, config)
        .default_backoff()
        .map(move |event| match event {
            Ok(_) => Wake::Changed,
            Err(e) => Wake::Failed(format!("the guard's {what} watch failed: {e}")),
        })
        .boxed()
}

/// The colour Service `svc` selects, or `both` (a canary's split).
fn selected(svc: &Service) -> Option<String> {
    let selector = svc.spec.as_ref().and_then(|s| s.selector.as_ref())?;
    match selector.get("ragops.io/color") {
        Some(color) => Some(color.clone()),
        None => selector
            .contains_key("ragops.io/pipeline")
            .then(|| "both".to_string()),
    }
}

impl TrafficGuard {
    pub fn start(world: &World, name: &str) -> Self {
        let services: Api<Service> = world.ns.api();
        let pods: Api<Pod> = world.ns.api();
        let slices: Api<EndpointSlice> = world.ns.api();
        let pipelines: Api<RagPipeline> = world.ns.api();
        let violations = Arc::new(Mutex::new(vec![]));
        let switches = Arc::new(Mutex::new(vec![]));
        let samples = Arc::new(Mutex::new(0));
        let (v, s, n) = (violations.clone(), switches.clone(), samples.clone());
        let pipeline = name.to_string();
        let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let service = watcher(services.clone(), by_name)
            .default_backoff()
            .applied_objects()
            .map(|event| match event {
                Ok(svc) => Wake::Service(Box::new(svc)),
                Err(e) => Wake::Failed(format!("the guard's Service watch failed: {e}")),
            })
            .boxed();
        let own_pods = watcher::Config::default().labels(&format!("ragops.io/pipeline={name}"));
        let own_slices =
            watcher::Config::default().labels(&format!("kubernetes.io/service-name={name}"));
        let ticks = tokio_stream_interval(SAMPLE_EVERY);
        let mut wakes = futures::stream::select_all([
            service,
            wakes(pods.clone(), own_pods, "pod"),
            wakes(slices, own_slices, "EndpointSlice"),
            ticks,
        ]);
        let task = tokio::spawn(async move {
            while let Some(wake) = wakes.next().await {
                match wake {
                    Wake::Failed(why) => {
                        v.lock().unwrap().push(why);
                        continue;
                    }
                    Wake::Service(svc) => {
                        if let Some(color) = selected(&svc) {
                            let mut s = s.lock().unwrap();
                            if s.last() != Some(&color) {
                                s.push(color);
                            }
                        }
                    }
                    Wake::Changed => {}
                }
                *n.lock().unwrap() += 1;
                if let Err(why) = sample(&services, &pods, &pipelines, &pipeline).await {
                    v.lock().unwrap().push(why);
                }
            }
            v.lock().unwrap().push("the guard's watches ended".into());
        });
        Self {
            violations,
            switches,
            samples,
            task,
        }
    }

    /// Colours the Service selected, in order, without repeats.
    pub fn switches(&self) -> Vec<String> {
        self.switches.lock().unwrap().clone()
    }

    /// Every violation seen, and the guard having stopped if it did.
    pub fn violations(&self) -> Vec<String> {
        let mut v = self.violations.lock().unwrap().clone();
        if self.task.is_finished() {
            v.push("the traffic guard stopped".into());
        }
        if *self.samples.lock().unwrap() == 0 {
            v.push("the traffic guard never sampled".into());
        }
        v
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

/// One look, read fresh from the API server (so watches lagging each other never raise a false
/// alarm): the colour Service `pipeline` selects has a ready pod.
async fn sample(
    services: &Api<Service>,
    pods: &Api<Pod>,
    pipelines: &Api<RagPipeline>,
    pipeline: &str,
) -> Result<(), String> {
    let svc = services
        .get_opt(pipeline)
        .await
        .map_err(|e| format!("the guard reading Service {pipeline}: {e}"))?;
    let Some(color) = svc.as_ref().and_then(selected) else {
        return Ok(());
    };
    if color == "both" {
        return sample_split(services, pods, pipelines, pipeline).await;
    }
    let selector = format!("ragops.io/pipeline={pipeline},ragops.io/color={color}");
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| format!("the guard listing pods: {e}"))?;
    if list.items.iter().any(is_ready) {
        return Ok(());
    }
    // The pods were listed after the Service was read; the Service may have moved on since.
    // Confirm it still selects that colour before calling it a violation.
    let again = services.get_opt(pipeline).await.ok().flatten();
    if again.as_ref().and_then(selected).as_deref() != Some(color.as_str()) {
        return Ok(());
    }
    Err(format!(
        "Service {pipeline} selected {color} with no ready pod"
    ))
}

/// One look at a canary's split: both colours have a ready pod, and the new colour's share of
/// the ready pods is at most `ceil(weight × replicas / 100) / replicas` for the weight recorded in
/// status. The pods are listed before the status is read: a weight only rises during a canary
/// and is recorded before the pods that follow it, so the order never raises a false alarm.
async fn sample_split(
    services: &Api<Service>,
    pods: &Api<Pod>,
    pipelines: &Api<RagPipeline>,
    pipeline: &str,
) -> Result<(), String> {
    let selector = format!("ragops.io/pipeline={pipeline}");
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| format!("the guard listing pods: {e}"))?;
    let p = pipelines
        .get(pipeline)
        .await
        .map_err(|e| format!("the guard reading RagPipeline {pipeline}: {e}"))?;
    let again = services.get_opt(pipeline).await.ok().flatten();
    let status = p.status.unwrap_or_default();
    let split = status.rollout.as_ref().and_then(|r| r.canary.as_ref());
    let (Some("both"), Some(target), Some(split)) = (
        again.as_ref().and_then(selected).as_deref(),
        status.target_color,
        split,
    ) else {
        // The split ended since (promoted or aborted).
        return Ok(());
    };
    let ready = |color: String| {
        list.items
            .iter()
            .filter(|p| is_ready(p))
            .filter(|p| p.labels().get("ragops.io/color") == Some(&color))
            .count()
    };
    let (new, old) = (ready(target.to_string()), ready(target.other().to_string()));
    if new == 0 || old == 0 {
        return Err(format!(
            "Service {pipeline} selected both colours with {new} ready {target} and {old} ready {} pods",
            target.other()
        ));
    }
    let replicas = f64::from(p.spec.runtime.replicas.max(1));
    let planned = (f64::from(split.weight) * replicas / 100.0).ceil() / replicas;
    let share = new as f64 / (new + old) as f64;
    if share > planned + 1e-9 {
        return Err(format!(
            "{target} had {new} of {} ready pods at weight {}% (planned share {planned})",
            new + old,
            split.weight
        ));
    }
    Ok(())
}

/// A wake every `period`.
fn tokio_stream_interval(period: Duration) -> BoxStream<'static, Wake> {
    futures::stream::unfold(tokio::time::interval(period), |mut interval| async move {
        interval.tick().await;
        Some((Wake::Changed, interval))
    })
    .boxed()
}

impl Drop for TrafficGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn is_ready(p: &Pod) -> bool {
    let status = p.status.as_ref();
    p.metadata.deletion_timestamp.is_none()
        && status.and_then(|s| s.pod_ip.as_ref()).is_some()
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
