//! What the ragops scenarios share: a namespace with the CRDs and an operator of its own, the
//! sample RagIndex, pipelines built from the sample, and readers for status, Services and Events.
#![allow(dead_code)] // each test file uses a different part

use std::time::Duration;

use anyhow::{Context, Result};
use e2e::{
    ChildProcess, Cluster, PodServers, PodServersOptions, TestNamespace, crd_established, wait_for,
};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rag_operator::api::{Color, Phase, RagIndex, RagPipeline};
use serde_json::{Value, json};

pub mod crash;
mod events;
pub mod index;
pub mod model;
pub mod query;
mod traffic;
#[allow(unused_imports)] // each test file uses a different part
pub use traffic::{TrafficGuard, is_ready};

/// Long enough for KWOK, the controllers and a few health-check periods.
pub const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(90);

pub fn samples() -> std::path::PathBuf {
    e2e::workspace_root().join("config/samples")
}

pub fn read_sample<T: serde::de::DeserializeOwned>(file: &str) -> Result<T> {
    let text =
        std::fs::read_to_string(samples().join(file)).with_context(|| format!("reading {file}"))?;
    Ok(serde_yaml::from_str(&text)?)
}

/// Applies the CRDs from `crds/` (idempotent) and waits until they are served.
pub async fn install_crds(cluster: &Cluster) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client().await?);
    for entry in std::fs::read_dir(e2e::workspace_root().join("crds"))? {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&std::fs::read_to_string(entry?.path())?)?;
        let name = crd.metadata.name.clone().context("CRD without a name")?;
        api.patch(
            &name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&crd),
        )
        .await?;
        e2e::wait_for_object(&api, &name, Duration::from_secs(30), crd_established()).await?;
    }
    Ok(())
}

/// One test's world: a namespace with the CRDs, the sample documents and RagIndex, an operator
/// watching only this namespace, and HTTP servers on the pod IPs of the pipeline's pods.
pub struct World {
    pub cluster: Cluster,
    pub ns: TestNamespace,
    pub operator: Option<ChildProcess>,
    pub pods: PodServers,
    /// Arguments the operator was started with beyond `--namespace` (kept for restarts).
    pub operator_args: Vec<String>,
}

impl World {
    pub async fn new(prefix: &str) -> Result<Self> {
        Self::with_pods(prefix, PodServersOptions::default()).await
    }

    pub async fn with_pods(prefix: &str, pods: PodServersOptions) -> Result<Self> {
        Self::with_options(prefix, pods, &[]).await
    }

    /// Fake pod servers and an operator started with `extra` operator arguments as well (see
    /// [`operator_args`]).
    pub async fn with_operator_args(prefix: &str, extra: &[&str]) -> Result<Self> {
        Self::with_options(prefix, PodServersOptions::default(), extra).await
    }

    pub async fn with_options(
        prefix: &str,
        pods: PodServersOptions,
        operator_extra: &[&str],
    ) -> Result<Self> {
        let operator_args = operator_args(operator_extra);
        let args = operator_args.clone();
        let start = move |cluster: &Cluster, ns: &str| start_operator_with(cluster, ns, &args);
        let mut world = Self::with_operator(prefix, pods, start).await?;
        world.operator_args = operator_args;
        Ok(world)
    }

    /// A world for the monitoring bed: real runtimes on pod IPs a ServiceMonitor can target, and an
    /// operator that rechecks for the monitoring CRDs every second.
    pub async fn monitored(prefix: &str) -> Result<Self> {
        let pods = e2e::spec_runtime(None);
        let world =
            Self::with_options(prefix, pods, &["--monitoring-recheck-seconds", "1"]).await?;
        world.require_routed_pod_ips()?;
        Ok(world)
    }

    /// Fails unless the pods have addresses EndpointSlices accept (not loopback ones): only then
    /// can a ServiceMonitor target exist. `make e2e-monitoring` provides them.
    pub fn require_routed_pod_ips(&self) -> Result<()> {
        let cidrs = &self.cluster.pod_cidrs;
        anyhow::ensure!(
            !cidrs.iter().any(|c| c.starts_with("127.")),
            "pod CIDRs {cidrs:?} are loopback: EndpointSlices refuse those addresses, so no \
             ServiceMonitor target can exist; run `make e2e-monitoring`"
        );
        Ok(())
    }

    /// Like [`World::with_options`], with the operator started by `start` (cluster, namespace):
    /// another identity or kubeconfig, say.
    pub async fn with_operator(
        prefix: &str,
        pods: PodServersOptions,
        start: impl FnOnce(&Cluster, &str) -> Result<ChildProcess>,
    ) -> Result<Self> {
        e2e::install_crypto_provider();
        let cluster = Cluster::from_env()?;
        install_crds(&cluster).await?;
        let ns = TestNamespace::new(&cluster, prefix).await?;
        let docs: ConfigMap = read_sample("handbook-docs.yaml")?;
        ns.api::<ConfigMap>()
            .create(&PostParams::default(), &docs)
            .await?;
        let index: RagIndex = read_sample("ragindex.yaml")?;
        ns.api::<RagIndex>()
            .create(&PostParams::default(), &index)
            .await?;
        let pods = PodServers::start(&cluster, ns.name(), pods).await?;
        let operator = Some(start(&cluster, ns.name())?);
        Ok(Self {
            cluster,
            ns,
            operator,
            pods,
            operator_args: vec![],
        })
    }

    pub fn pipelines(&self) -> Api<RagPipeline> {
        self.ns.api()
    }

    /// Creates a pipeline from the sample, with `patch` merged into its spec.
    pub async fn create_pipeline(&self, name: &str, spec_patch: Value) -> Result<RagPipeline> {
        let mut value: Value = read_sample("ragpipeline.yaml")?;
        value["metadata"]["name"] = json!(name);
        merge(&mut value["spec"], spec_patch);
        let pipeline: RagPipeline = serde_json::from_value(value)?;
        Ok(self
            .pipelines()
            .create(&PostParams::default(), &pipeline)
            .await?)
    }

    /// Merge-patches the keys of the sample documents (`null` removes one), as a user editing
    /// the corpus would.
    pub async fn edit_docs(&self, data: Value) -> Result<()> {
        let patch = json!({ "data": data });
        self.ns
            .api::<ConfigMap>()
            .patch(
                "handbook-docs",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    /// Merge-patches the pipeline's spec (as a user editing it would).
    pub async fn patch_spec(&self, name: &str, spec_patch: Value) -> Result<()> {
        let patch = json!({ "spec": spec_patch });
        self.pipelines()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    pub async fn annotate(&self, name: &str, key: &str) -> Result<()> {
        let patch = json!({ "metadata": { "annotations": { key: "" } } });
        self.pipelines()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Sets request annotation `key` to `id` (`ragops.io/promote`, ...).
    pub async fn request(&self, name: &str, key: &str, id: &str) -> Result<()> {
        let patch = json!({ "metadata": { "annotations": { key: id } } });
        self.pipelines()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Waits until a canary pauses at `step` with `weight` recorded.
    pub async fn wait_canary_paused(&self, name: &str, step: i32, weight: i32) -> Result<()> {
        let what = format!("paused at canary step {step}, {weight}%");
        self.wait_pipeline(name, &what, |p: &RagPipeline| {
            let s = p.status.as_ref();
            let c = s.and_then(|s| s.rollout.as_ref()?.canary.as_ref());
            s.and_then(|s| s.phase) == Some(Phase::Paused)
                && c.is_some_and(|c| c.step == step && c.weight == weight)
        })
        .await?;
        Ok(())
    }

    /// Waits until the pipeline is Degraded for `reason`; returns the condition's message.
    pub async fn wait_degraded(&self, name: &str, reason: &str) -> Result<String> {
        let degraded = |p: &RagPipeline| {
            let status = p.status.as_ref()?;
            let c = status
                .conditions
                .iter()
                .find(|c| c.type_ == "Degraded" && c.status == "True")?;
            (status.phase == Some(Phase::Degraded) && c.reason == reason).then(|| c.message.clone())
        };
        let p = self
            .wait_pipeline(name, &format!("Degraded: {reason}"), |p| {
                degraded(p).is_some()
            })
            .await?;
        Ok(degraded(&p).unwrap_or_default())
    }

    /// Waits until the pipeline's status satisfies `done`; returns the pipeline.
    pub async fn wait_pipeline(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&RagPipeline) -> bool,
    ) -> Result<RagPipeline> {
        self.wait_pipeline_within(name, what, ROLLOUT_TIMEOUT, done)
            .await
    }

    /// [`Self::wait_pipeline`] with a deadline of its own: for what must happen sooner than a
    /// rollout may take (e.g. well before a periodic recheck could have done it).
    pub async fn wait_pipeline_within(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&RagPipeline) -> bool,
    ) -> Result<RagPipeline> {
        let api = self.pipelines();
        let last = std::sync::Mutex::new(None::<String>);
        let result = wait_for(&format!("RagPipeline {name}: {what}"), timeout, || async {
            let p = api.get(name).await?;
            *last.lock().unwrap() = Some(format!("{:?}", p.status));
            Ok(done(&p).then_some(p))
        })
        .await;
        result.with_context(|| {
            let operator = self
                .operator
                .as_ref()
                .map(|o| o.log_tail(30))
                .unwrap_or_default();
            format!(
                "last status: {:?}\noperator log:\n{operator}",
                last.lock().unwrap()
            )
        })
    }

    /// Waits for a finished rollout: phase Healthy on `color`, the observed generation current.
    pub async fn wait_healthy_on(&self, name: &str, color: Color) -> Result<RagPipeline> {
        self.wait_healthy_on_within(name, color, ROLLOUT_TIMEOUT)
            .await
    }

    /// [`Self::wait_healthy_on`] with a deadline of its own.
    pub async fn wait_healthy_on_within(
        &self,
        name: &str,
        color: Color,
        timeout: Duration,
    ) -> Result<RagPipeline> {
        let p = self
            .wait_pipeline_within(name, &format!("Healthy on {color}"), timeout, |p| {
                let s = p.status.as_ref();
                s.and_then(|s| s.phase) == Some(Phase::Healthy)
                    && s.and_then(|s| s.active_color) == Some(color)
                    && s.and_then(|s| s.observed_generation) == p.metadata.generation
            })
            .await?;
        // The status recording a cutover is written before the Service moves (see README, "What
        // the operator writes, in which order"): the traffic follows within the reconciliation.
        let want = color.to_string();
        wait_for(&format!("Service {name} on {want}"), timeout, || async {
            Ok((self.service_color(name).await?.as_deref() == Some(want.as_str())).then_some(()))
        })
        .await?;
        Ok(p)
    }

    /// Waits until Service `name` selects `color`. The status recording a cutover is written
    /// before the Service moves (README, "What the operator writes, in which order"), so a test
    /// that has seen the status waits for the Service rather than reading it once.
    pub async fn wait_service_color(&self, name: &str, color: &str) -> Result<()> {
        let what = format!("Service {name} on {color}");
        wait_for(&what, Duration::from_secs(15), || async {
            Ok((self.service_color(name).await?.as_deref() == Some(color)).then_some(()))
        })
        .await
    }

    /// The colour Service `name` selects, if it exists.
    pub async fn service_color(&self, name: &str) -> Result<Option<String>> {
        let svc = self.ns.api::<Service>().get_opt(name).await?;
        Ok(svc.and_then(|s| s.spec?.selector?.get("ragops.io/color").cloned()))
    }

    /// Replicas the Deployment of `color` asks for.
    pub async fn replicas(&self, name: &str, color: &str) -> Result<Option<i32>> {
        let api: Api<k8s_openapi::api::apps::v1::Deployment> = self.ns.api();
        Ok(api
            .get_opt(&format!("{name}-{color}"))
            .await?
            .and_then(|d| d.spec?.replicas))
    }

    /// Stops the operator (SIGTERM, then SIGKILL) and starts a new one.
    pub fn restart_operator(&mut self) -> Result<()> {
        if let Some(mut old) = self.operator.take() {
            old.terminate(Duration::from_secs(10))?;
        }
        self.operator = Some(start_operator_with(
            &self.cluster,
            self.ns.name(),
            &self.operator_args,
        )?);
        Ok(())
    }
}

pub fn start_operator(cluster: &Cluster, ns: &str) -> Result<ChildProcess> {
    start_operator_with(cluster, ns, &operator_args(&[]))
}

pub fn start_operator_with(cluster: &Cluster, ns: &str, args: &[String]) -> Result<ChildProcess> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    e2e::start_operator(cluster, ns, &args)
}

/// The operator's arguments in these scenarios, plus `extra`. Metrics go to an ephemeral loopback
/// port (pod servers own <podIP>:8080) unless `extra` names a `--metrics-addr` of its own; the
/// operator takes each option once.
pub fn operator_args(extra: &[&str]) -> Vec<String> {
    let mut args = vec![];
    if !extra.contains(&"--metrics-addr") {
        args.extend(["--metrics-addr", "127.0.0.1:0"]);
    }
    if !extra.contains(&"--log-format") {
        args.extend(["--log-format", "text"]);
    }
    args.extend(extra);
    args.into_iter().map(String::from).collect()
}

/// A loopback address nothing listens on right now, for an operator's `--metrics-addr`.
pub fn free_loopback_addr() -> Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// `ragops_reconciliations_total{kind="RagPipeline",result=...}` from the operator's /metrics.
pub async fn reconciliations(metrics: std::net::SocketAddr, result: &str) -> Result<u64> {
    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    let series = format!(r#"ragops_reconciliations_total{{kind="RagPipeline",result="{result}"}}"#);
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map(str::trim);
    // Absent until the first reconciliation with that result.
    Ok(value.map(str::parse).transpose()?.unwrap_or(0))
}

/// RFC 7386 merge of `patch` into `target`.
pub fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    merge(t.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p,
    }
}

/// A spec patch that changes the pod template (a new revision) and nothing else.
pub fn new_revision(marker: &str) -> Value {
    json!({ "runtime": { "env": [{ "name": "ROLLOUT_MARKER", "value": marker }] } })
}

/// Spec patch for scenarios served by the built-in fake pod servers: quick checks and no smoke
/// queries (the fake servers answer only /healthz and /readyz).
/// A spec patch under which failing probes hold a rollout (between "the new colour is up" and
/// "switch") for as long as a test needs, instead of failing it.
pub fn hold_on_failing_probes() -> Value {
    json!({ "rollout": { "healthCheck": { "failureThreshold": 100 } } })
}

pub fn fast_rollout() -> Value {
    json!({
        "rollout": {
            "smokeQueries": null,
            "healthCheck": { "periodSeconds": 1, "successThreshold": 2, "failureThreshold": 2, "timeoutSeconds": 1 },
            "scaleDownDelaySeconds": 3,
            "progressDeadlineSeconds": 60
        }
    })
}
