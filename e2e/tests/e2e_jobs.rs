//! Jobs whose pods run for real: the SpecRunner runs `rag-runtime ingest` as the Job's pod spec
//! says and writes how it ended to the pod's status, as a kubelet would (exit code, and the
//! `--report-file` JSON as termination message); the real Job controller
//! then completes or fails the Job, retrying failed pods up to `backoffLimit`. KWOK's
//! `pod-complete` stage leaves these pods alone, and still completes Job pods of other images.

use std::time::Duration;

use anyhow::{Context, Result};
use e2e::{Cluster, PodServers, TestNamespace, spec_runtime, wait_for, wait_for_object};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, ContainerStateTerminated, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};

/// The Job controller waits 10 s before it replaces a failed pod; the runs take a second each.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);
/// Labels the operator's ingest Job pods carry; the runner is told to run exactly those.
const INGEST_LABELS: &str =
    "app.kubernetes.io/managed-by=ragops,app.kubernetes.io/component=ingest";
const RUNTIME_IMAGE: &str = "ghcr.io/ragops/rag-runtime:dev";

/// A Job of one `restartPolicy: Never` pod running `container`, with the ConfigMap `docs` at
/// `/sources` and an emptyDir at `/data`.
fn job(name: &str, backoff_limit: i32, container: Value) -> Result<Job> {
    let mut container = container;
    container["name"] = "ingest".into();
    container["volumeMounts"] = json!([
        {"name": "sources", "mountPath": "/sources", "readOnly": true},
        {"name": "data", "mountPath": "/data"},
    ]);
    Ok(serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "metadata": {"labels": {
                    "app.kubernetes.io/managed-by": "ragops",
                    "app.kubernetes.io/component": "ingest",
                    "ragops.io/index": name,
                }},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [
                        {"name": "sources", "configMap": {"name": "docs"}},
                        {"name": "data", "emptyDir": {}},
                    ],
                },
            },
        },
    }))?)
}

/// `rag-runtime ingest` with its outcome as the termination message (the kubelet's default path).
fn ingest(sources: &str) -> Value {
    json!({
        "image": RUNTIME_IMAGE,
        "args": ["ingest", "--data-dir", "/data", "--json",
                 "--report-file", "/dev/termination-log", sources],
    })
}

/// The termination message as the JSON object `--report-file` writes.
fn report(state: &ContainerStateTerminated) -> Result<Value> {
    let message = state.message.as_deref().unwrap_or_default();
    serde_json::from_str(message).with_context(|| format!("a JSON report: {message:?}"))
}

/// A namespace with the ConfigMap `docs` (two small documents) and the runner on ingest pods.
async fn setup(prefix: &str) -> Result<(TestNamespace, PodServers)> {
    let cluster = Cluster::from_env()?;
    let ns = TestNamespace::new(&cluster, prefix).await?;
    let docs: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "docs"},
        "data": {
            "wombats.md": "# Wombats\nWombats dig burrows and leave cube-shaped droppings.\n",
            "quokkas.md": "# Quokkas\nQuokkas live on Rottnest Island and are known for smiling.\n",
        },
    }))?;
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &docs)
        .await?;
    let pods = PodServers::start(
        &cluster,
        ns.name(),
        spec_runtime(Some(INGEST_LABELS.into())),
    )
    .await?;
    Ok((ns, pods))
}

/// Waits until the Job has condition `type_` True (`Complete` or `Failed`).
async fn wait_job(jobs: &Api<Job>, name: &str, type_: &'static str) -> Result<Job> {
    let has = move |job: Option<&Job>| {
        let conditions = job.and_then(|j| j.status.as_ref()?.conditions.as_ref());
        conditions
            .into_iter()
            .flatten()
            .any(|c| c.type_ == type_ && c.status == "True")
    };
    let job = wait_for_object(jobs, name, JOB_TIMEOUT, has).await?;
    job.context("the Job is gone")
}

/// The Job's pods, oldest first.
async fn job_pods(pods: &Api<Pod>, job: &str) -> Result<Vec<Pod>> {
    let selector = format!("batch.kubernetes.io/job-name={job}");
    let mut list = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    list.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    Ok(list)
}

/// The phase and the `ingest` container's terminated state, as the API server has them.
fn terminated(pod: &Pod) -> Result<(String, ContainerStateTerminated)> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref().context("a pod without status")?;
    let phase = status.phase.clone().unwrap_or_default();
    let state = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == "ingest")
        .and_then(|c| c.state.as_ref()?.terminated.clone())
        .with_context(|| format!("pod {name}: no terminated state in {status:?}"))?;
    Ok((phase, state))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_job_runs_for_real_and_completes() -> Result<()> {
    let (ns, runner) = setup("job-ok").await?;
    let jobs: Api<Job> = ns.api();
    jobs.create(
        &PostParams::default(),
        &job("ingest-ok", 0, ingest("/sources"))?,
    )
    .await?;
    let done = wait_job(&jobs, "ingest-ok", "Complete").await?;
    assert_eq!(done.status.as_ref().and_then(|s| s.succeeded), Some(1));

    let pods = job_pods(&ns.api(), "ingest-ok").await?;
    let [pod] = &pods[..] else {
        panic!("one pod ran, not {}", pods.len())
    };
    let (phase, state) = terminated(pod)?;
    assert_eq!(phase, "Succeeded");
    assert_eq!(state.exit_code, 0);
    assert_eq!(state.reason.as_deref(), Some("Completed"));
    assert_eq!(report(&state)?["documents"], 2, "{:?}", state.message);
    let (started, finished) = (state.started_at.context("startedAt")?, state.finished_at);
    assert!(finished.context("finishedAt")?.0 >= started.0);
    let ready = pod.status.as_ref().and_then(|s| s.conditions.clone());
    let ready = ready.into_iter().flatten().find(|c| c.type_ == "Ready");
    assert_eq!(ready.map(|c| c.status).as_deref(), Some("False"));
    // The runner's own record agrees with the API server's.
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let ended = runner.finished(name).context("the runner ran the pod")?;
    assert_eq!((ended.container.as_str(), ended.exit_code), ("ingest", 0));
    assert_eq!(Some(ended.message), state.message);
    assert_eq!(runner.errors(), Vec::<String>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_ingest_job_is_retried_up_to_its_backoff_limit_then_fails() -> Result<()> {
    let (ns, runner) = setup("job-fail").await?;
    let jobs: Api<Job> = ns.api();
    let spec = job("ingest-bad", 1, ingest("/sources/missing"))?;
    jobs.create(&PostParams::default(), &spec).await?;
    let failed = wait_job(&jobs, "ingest-bad", "Failed").await?;
    let status = failed.status.context("job status")?;
    assert_eq!(status.failed, Some(2), "backoffLimit 1: two pods ran");
    assert_eq!(status.succeeded.unwrap_or(0), 0);

    let pod_api: Api<Pod> = ns.api();
    // The Job controller may still be removing its tracking finalizer: read until both settle.
    let pods = wait_for("two failed pods", Duration::from_secs(30), || async {
        let pods = job_pods(&pod_api, "ingest-bad").await?;
        let failed = pods
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"));
        Ok((failed.count() == 2).then_some(pods))
    })
    .await?;
    assert_eq!(pods.len(), 2, "no third pod");
    for pod in &pods {
        let (phase, state) = terminated(pod)?;
        assert_eq!(phase, "Failed");
        assert_ne!(state.exit_code, 0);
        assert_eq!(state.reason.as_deref(), Some("Error"));
        let error = report(&state)?["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            error.contains("missing"),
            "the report names the source: {error:?}"
        );
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        assert_eq!(
            runner.finished(name).map(|t| t.exit_code),
            Some(state.exit_code)
        );
    }
    assert_eq!(runner.errors(), Vec::<String>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_pods_of_other_images_are_still_completed_by_kwok() -> Result<()> {
    let cluster = Cluster::from_env()?;
    let ns = TestNamespace::new(&cluster, "job-kwok").await?;
    let jobs: Api<Job> = ns.api();
    let other = json!({"image": "registry.example/batch/report:1", "args": ["run"]});
    // No runner and no ConfigMap here: nothing but KWOK acts on the pod.
    jobs.create(&PostParams::default(), &job("report", 0, other)?)
        .await?;
    wait_job(&jobs, "report", "Complete").await?;
    let pods = job_pods(&ns.api(), "report").await?;
    let (phase, state) = terminated(pods.first().context("a pod")?)?;
    assert_eq!((phase.as_str(), state.exit_code), ("Succeeded", 0));
    Ok(())
}
