//! A small kubelet stand-in: runs a KWOK pod's spec as real processes on this machine.
//!
//! For a pod [`crate::PodServers`] hands it, the runner reads the ConfigMaps and Secrets the spec
//! refers to, writes the pod's volumes into a directory of its own, runs the init containers in
//! order to completion, then the container, each as the local binary its image stands for, with
//! the arguments and environment of the spec (container paths rewritten into the pod's
//! directory, `--listen 0.0.0.0:P` bound to the pod IP). When the container exits, its exit code
//! and termination message are kept ([`crate::PodServers::finished`]); for a pod that runs to
//! completion (a Job's) they are also written to the pod's `status` like a kubelet does, so the
//! Job controller sees it succeed or fail. The processes are killed and the directory removed
//! when the pod goes away.

mod container;
mod env;
#[cfg(test)]
mod fixtures;
mod inputs;
mod status;
mod volumes;

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::Client;

use crate::pod_servers::{PodBackend, PodServersOptions, ServedPod, Shared};
use crate::process::{ChildProcess, runtime_binary};
use crate::wait::wait_for;
use container::{Launch, PodContext, plan, serving_port};
use status::ContainerRun;

/// How long a pod waits for the ConfigMaps and Secrets it needs to exist.
const INPUTS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a serving container has to accept connections on its port.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_POLL: Duration = Duration::from_millis(100);

/// Which local binary stands for which image. By default an image whose name contains
/// `rag-runtime` runs [`runtime_binary`]; any other image fails its pod (see
/// [`crate::PodServers::errors`]).
#[derive(Debug, Clone)]
pub struct SpecRunner {
    images: Vec<(String, PathBuf)>,
}

impl Default for SpecRunner {
    fn default() -> Self {
        Self {
            images: vec![("rag-runtime".into(), runtime_binary())],
        }
    }
}

impl SpecRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `binary` for images whose name (the last path segment, without tag or digest)
    /// contains `name_part`; checked before the mappings added earlier.
    pub fn with_image(mut self, name_part: &str, binary: impl Into<PathBuf>) -> Self {
        self.images.insert(0, (name_part.into(), binary.into()));
        self
    }

    /// The binary for `image`; an error when no mapping matches or it has not been built.
    pub(crate) fn binary_for(&self, image: &str) -> Result<PathBuf> {
        let name = image_name(image);
        let Some((_, binary)) = self.images.iter().find(|(part, _)| name.contains(part)) else {
            let known: Vec<&str> = self.images.iter().map(|(p, _)| p.as_str()).collect();
            bail!("image {image:?}: no local binary stands for it (known: {known:?})");
        };
        if !binary.is_file() {
            bail!(
                "image {image}: {} not found; build it with `cargo build --workspace --bins`",
                binary.display()
            );
        }
        Ok(binary.clone())
    }
}

/// `registry/path/name:tag@digest` → `name`.
fn image_name(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split(':').next().unwrap_or(last)
}

/// Pod servers that run each pod's spec with [`SpecRunner::new`].
pub fn spec_runtime(label_selector: Option<String>) -> PodServersOptions {
    PodServersOptions {
        label_selector,
        backend: PodBackend::Spec(SpecRunner::new()),
        ..PodServersOptions::default()
    }
}

/// How a pod's container ended: the init container that failed, or the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    pub container: String,
    /// The exit code; 128 + N when killed by signal N.
    pub exit_code: i32,
    /// The termination message file's content (see `terminationMessagePolicy`).
    pub message: String,
}

/// `Never` and `OnFailure` pods run to completion (Job pods); `Always` pods serve.
pub(crate) fn runs_to_completion(spec: Option<&PodSpec>) -> bool {
    let policy = spec.and_then(|s| s.restart_policy.as_deref());
    matches!(policy, Some("Never" | "OnFailure"))
}

/// Where a served pod listens: its container's first TCP port, else `default_port`.
pub(crate) fn pod_addr(pod: &Pod, ip: std::net::IpAddr, default_port: u16) -> SocketAddr {
    let port = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(serving_port);
    SocketAddr::new(ip, port.unwrap_or(default_port))
}

/// One pod being run: everything its task needs.
pub(crate) struct PodRun {
    pub shared: Arc<Shared>,
    pub runner: SpecRunner,
    pub client: Client,
    pub pod: Pod,
    pub served: ServedPod,
    /// Parent of the per-pod directories.
    pub pods_dir: PathBuf,
    pub logs_dir: PathBuf,
    pub listening: Arc<AtomicBool>,
}

/// Removes the pod's directory when the pod's task ends (the pod went away).
struct PodDir(PathBuf);

impl Drop for PodDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the pod until its task is aborted (the pod went away). Failures go to `errors()`.
pub(crate) async fn run(r: PodRun) {
    let uid: String = r.served.uid.chars().take(8).collect();
    let dir = r
        .pods_dir
        .join(&r.served.namespace)
        .join(format!("{}-{uid}", r.served.name));
    let _ = std::fs::remove_dir_all(&dir);
    // Declared before the processes: dropped (removed) after they are killed.
    let dir = PodDir(dir);
    if let Err(e) = run_containers(&r, &dir.0).await {
        r.shared.error(format!("pod {}: {e:#}", r.served.name));
    }
    // Like a kubelet, keep the pod's volumes until the pod is deleted.
    std::future::pending::<()>().await;
}

async fn run_containers(r: &PodRun, dir: &Path) -> Result<()> {
    let spec = r.pod.spec.as_ref().context("a pod without a spec")?;
    let [main] = &spec.containers[..] else {
        bail!("{} containers: the runner runs one", spec.containers.len());
    };
    let inits = spec.init_containers.as_deref().unwrap_or_default();
    if inits.iter().any(|c| c.restart_policy.is_some()) {
        bail!("sidecar init containers (restartPolicy) are not supported");
    }
    let refs = inputs::references(spec);
    let namespace = r.served.namespace.as_str();
    let what = format!("the ConfigMaps and Secrets of pod {}", r.served.name);
    let inputs = wait_for(&what, INPUTS_TIMEOUT, || async {
        inputs::fetch(&r.client, namespace, &refs).await.map(Some)
    })
    .await?;
    let volumes = volumes::materialise(spec, &inputs, &dir.join("volumes"))?;
    let ctx = PodContext {
        pod: &r.pod,
        inputs: &inputs,
        volumes: &volumes,
        dir,
        ip: r.served.ip,
    };
    // Every container is planned before any runs: a spec the runner cannot run fails at once.
    let inits = inits
        .iter()
        .map(|c| plan(&r.runner, c, &ctx))
        .collect::<Result<Vec<_>>>()?;
    let main_launch = plan(&r.runner, main, &ctx)?;
    let ran = run_inits(r, spec, &inits).await?;
    let serves = serving_port(main).is_some();
    if serves {
        wait_port_free(r.served.addr).await?;
    }
    let started = Timestamp::now();
    let mut child = start(r, &main_launch)?;
    if serves {
        let up = wait_listening(&mut child, r.served.addr).await?;
        r.listening.store(up, Ordering::SeqCst);
    }
    let status = wait_exit(&mut child).await?;
    r.listening.store(false, Ordering::SeqCst);
    let main_run = ContainerRun {
        ended: terminated(&main_launch, &child, status),
        started,
        finished: Timestamp::now(),
    };
    let code = main_run.ended.exit_code;
    finish(r, spec, &ran, Some(&main_run)).await;
    if !runs_to_completion(Some(spec)) {
        bail!(
            "container {} exited with {code} (a kubelet would restart it; the runner does not); log tail:\n{}",
            main.name,
            child.log_tail(20)
        );
    }
    Ok(())
}

/// Runs the init containers in order, each to completion. A failure ends the pod: its status is
/// written and the error names the container.
async fn run_inits(r: &PodRun, spec: &PodSpec, inits: &[Launch]) -> Result<Vec<ContainerRun>> {
    let mut ran = Vec::new();
    for init in inits {
        let started = Timestamp::now();
        let mut child = start(r, init)?;
        let status = wait_exit(&mut child).await?;
        let ended = terminated(init, &child, status);
        let code = ended.exit_code;
        ran.push(ContainerRun {
            ended,
            started,
            finished: Timestamp::now(),
        });
        if code != 0 {
            finish(r, spec, &ran, None).await;
            bail!(
                "init container {} exited with {code}; log tail:\n{}",
                init.container,
                child.log_tail(20)
            );
        }
    }
    Ok(ran)
}

fn start(r: &PodRun, launch: &Launch) -> Result<ChildProcess> {
    launch.prepare()?;
    let name = format!("pod-{}-{}", r.served.name, launch.container);
    ChildProcess::spawn(&name, launch.command(), &r.logs_dir)
}

/// KWOK may hand a deleted pod's IP to a new pod while the old process is still being killed.
async fn wait_port_free(addr: SocketAddr) -> Result<()> {
    wait_for(&format!("{addr} free"), LISTEN_TIMEOUT, || async {
        Ok(std::net::TcpListener::bind(addr).ok().map(drop))
    })
    .await
}

/// Ok(true) once `addr` accepts connections, Ok(false) if the process exits first.
async fn wait_listening(child: &mut ChildProcess, addr: SocketAddr) -> Result<bool> {
    wait_for(&format!("listening on {addr}"), LISTEN_TIMEOUT, || {
        let exited = child.try_wait().map(|s| s.is_some());
        async move {
            if exited? {
                return Ok(Some(false));
            }
            let connected = tokio::net::TcpStream::connect(addr).await.is_ok();
            Ok(connected.then_some(true))
        }
    })
    .await
}

async fn wait_exit(child: &mut ChildProcess) -> Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        tokio::time::sleep(EXIT_POLL).await;
    }
}

fn terminated(launch: &Launch, child: &ChildProcess, status: ExitStatus) -> Termination {
    let exit_code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Termination {
        container: launch.container.clone(),
        exit_code,
        message: launch.termination_message(exit_code, |n| child.log_tail(n)),
    }
}

/// Records how the pod ended: the init container that failed, else the container. A pod that
/// runs to completion also gets its terminal status written to the API server (phase,
/// `containerStatuses[].state.terminated`, Ready false), as a kubelet would; a serving pod's
/// container exiting is an error instead (a kubelet would restart it).
async fn finish(r: &PodRun, spec: &PodSpec, inits: &[ContainerRun], main: Option<&ContainerRun>) {
    if runs_to_completion(Some(spec)) {
        let status = status::terminal_status(spec, inits, main, Timestamp::now());
        if let Err(e) = status::write(&r.client, &r.served, status).await {
            r.shared.error(format!("pod {}: {e:#}", r.served.name));
        }
    }
    if let Some(ran) = main.or(inits.last()) {
        r.shared.finish(&r.served.name, ran.ended.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_map_to_binaries_by_name() {
        assert_eq!(
            image_name("ghcr.io/ragops/rag-runtime:0.1.0"),
            "rag-runtime"
        );
        assert_eq!(
            image_name("localhost:5000/rag-runtime@sha256:ab"),
            "rag-runtime"
        );
        assert_eq!(image_name("busybox"), "busybox");
        let exe = std::env::current_exe().unwrap();
        let runner = SpecRunner::new().with_image("rag-runtime", &exe);
        assert_eq!(
            runner
                .binary_for("ghcr.io/ragops/rag-runtime:0.1.0")
                .unwrap(),
            exe
        );
        // Only the name counts, not the registry or the tag.
        let err = runner.binary_for("rag-runtime.example/busybox:rag-runtime");
        assert!(format!("{:#}", err.unwrap_err()).contains("no local binary"));
        let missing = SpecRunner::new().with_image("tool", "/nonexistent/tool");
        let err = missing.binary_for("example.com/tool:1").unwrap_err();
        assert!(format!("{err:#}").contains("cargo build"), "{err:#}");
    }

    #[test]
    fn only_never_and_on_failure_pods_run_to_completion() {
        let spec = |policy: Option<&str>| PodSpec {
            restart_policy: policy.map(String::from),
            ..PodSpec::default()
        };
        assert!(runs_to_completion(Some(&spec(Some("Never")))));
        assert!(runs_to_completion(Some(&spec(Some("OnFailure")))));
        assert!(!runs_to_completion(Some(&spec(Some("Always")))));
        assert!(!runs_to_completion(Some(&spec(None))));
    }
}
