//! Real HTTP servers standing in for KWOK pods, each bound to its pod's IP.
//!
//! KWOK pods have no containers. [`PodServers`] watches the Pods of a namespace and, for every
//! Running pod with an IP, serves on `<podIP>:<port>`: by default a tiny axum server answering
//! `/healthz`, `/readyz` and `/readyz/store` with a status the test controls, any command per pod, or the pod's own
//! spec run by [`SpecRunner`] (init containers, volumes, environment: what the operator wrote).
//! The server stops when the pod stops or goes away.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::pod_runner::{self, PodRun, SpecRunner, Termination};
use crate::wait::wait_for;
use backends::{serve_command, serve_fake};

mod backends;

/// What serves on a pod's IP.
#[derive(Clone)]
pub enum PodBackend {
    /// Built-in server: `GET /healthz` and `GET /readyz` answer with the status set by
    /// [`PodServers::set_status`] / [`PodServers::set_pod_status`] (200 by default).
    Fake,
    /// One process per pod, built from the pod's coordinates; killed when the pod goes away.
    Command(Arc<dyn Fn(&ServedPod) -> Command + Send + Sync>),
    /// The pod's own spec, run as local processes (see [`SpecRunner`]). A pod is served on its
    /// container's first port. Pods with `restartPolicy: Never` or `OnFailure` run to completion
    /// (see [`PodServers::finished`]) and are never "serving".
    Spec(SpecRunner),
}

#[derive(Clone)]
pub struct PodServersOptions {
    /// Port to serve on at each pod IP (8080 by default; with [`PodBackend::Spec`], for pods
    /// whose container declares no port).
    pub port: u16,
    /// Only pods matching this label selector, e.g. `app=demo`.
    pub label_selector: Option<String>,
    pub backend: PodBackend,
}

impl Default for PodServersOptions {
    fn default() -> Self {
        Self {
            port: 8080,
            label_selector: None,
            backend: PodBackend::Fake,
        }
    }
}

/// A pod being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub ip: IpAddr,
    pub addr: SocketAddr,
}

pub(crate) struct Shared {
    status: AtomicU16,
    per_pod: Mutex<HashMap<String, u16>>,
    requests: AtomicU64,
    servers: Mutex<HashMap<String, Server>>,
    errors: Mutex<Vec<String>>,
    /// How each pod's container ended, by pod name.
    finished: Mutex<HashMap<String, Termination>>,
}

impl Shared {
    pub(crate) fn error(&self, message: String) {
        self.errors.lock().unwrap().push(message);
    }

    pub(crate) fn finish(&self, pod: &str, ended: Termination) {
        self.finished.lock().unwrap().insert(pod.to_string(), ended);
    }
}

/// What the watch task needs to start a pod's server.
struct Ctx {
    options: PodServersOptions,
    client: Client,
    logs_dir: PathBuf,
    pods_dir: PathBuf,
}

struct Server {
    pod: ServedPod,
    listening: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Aborting drops the listener (fake) or the ChildProcess (command, spec), which kills it.
        self.task.abort();
    }
}

/// Serves every Running pod of a namespace on its pod IP until dropped.
pub struct PodServers {
    shared: Arc<Shared>,
    watch: JoinHandle<()>,
}

impl PodServers {
    pub async fn start(
        cluster: &Cluster,
        namespace: &str,
        options: PodServersOptions,
    ) -> Result<Self> {
        let client = cluster.client().await?;
        let shared = Arc::new(Shared {
            status: AtomicU16::new(200),
            per_pod: Mutex::default(),
            requests: AtomicU64::new(0),
            servers: Mutex::default(),
            errors: Mutex::default(),
            finished: Mutex::default(),
        });
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let mut config = watcher::Config::default();
        if let Some(sel) = &options.label_selector {
            config = config.labels(sel);
        }
        let ctx = Ctx {
            options,
            client,
            logs_dir: cluster.logs_dir(),
            pods_dir: cluster.pods_dir(),
        };
        let s = shared.clone();
        let watch = tokio::spawn(async move {
            let mut events = watcher(pods, config).default_backoff().boxed();
            while let Some(ev) = events.next().await {
                match ev {
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                        reconcile_pod(&s, &ctx, &pod)
                    }
                    Ok(watcher::Event::Delete(pod)) => {
                        if let Some(uid) = pod.metadata.uid {
                            s.servers.lock().unwrap().remove(&uid);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => s.error(format!("pod watch: {e}")),
                }
            }
        });
        Ok(Self { shared, watch })
    }

    /// Status that every pod's `/healthz` and `/readyz` answer with (unless set per pod).
    pub fn set_status(&self, code: u16) {
        self.shared.status.store(code, Ordering::SeqCst);
    }

    /// Status for one pod, by name.
    pub fn set_pod_status(&self, pod: &str, code: u16) {
        self.shared
            .per_pod
            .lock()
            .unwrap()
            .insert(pod.to_string(), code);
    }

    /// Pods with a server listening now.
    pub fn serving(&self) -> Vec<ServedPod> {
        let mut v: Vec<ServedPod> = self
            .shared
            .servers
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.listening.load(Ordering::SeqCst))
            .map(|s| s.pod.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Waits until at least `n` pods are served.
    pub async fn wait_serving(&self, n: usize, timeout: Duration) -> Result<Vec<ServedPod>> {
        wait_for(&format!("{n} pod server(s) listening"), timeout, || async {
            let errors = self.errors();
            if !errors.is_empty() {
                anyhow::bail!("pod servers reported: {}", errors.join("; "));
            }
            let s = self.serving();
            Ok((s.len() >= n).then_some(s))
        })
        .await
    }

    /// Health requests answered by the built-in servers so far (e.g. to see the operator probing).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Errors so far (binding, starting commands, running pod specs, watching).
    pub fn errors(&self) -> Vec<String> {
        self.shared.errors.lock().unwrap().clone()
    }

    /// How pod `pod`'s container ended ([`PodBackend::Spec`]): its exit code and termination
    /// message, or those of the init container that failed. None while it runs.
    pub fn finished(&self, pod: &str) -> Option<Termination> {
        self.shared.finished.lock().unwrap().get(pod).cloned()
    }

    /// Waits until pod `pod` has [`finished`](Self::finished).
    pub async fn wait_finished(&self, pod: &str, timeout: Duration) -> Result<Termination> {
        wait_for(&format!("pod {pod} to finish"), timeout, || async {
            Ok(self.finished(pod))
        })
        .await
    }
}

impl Drop for PodServers {
    fn drop(&mut self) {
        self.watch.abort();
        self.shared.servers.lock().unwrap().clear();
    }
}

fn reconcile_pod(s: &Arc<Shared>, ctx: &Ctx, pod: &Pod) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    let status = pod.status.as_ref();
    let phase = status.and_then(|st| st.phase.as_deref());
    let ip = status
        .and_then(|st| st.pod_ip.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    let spec_backend = matches!(ctx.options.backend, PodBackend::Spec(_));
    let mut servers = s.servers.lock().unwrap();
    // A pod that runs to completion becomes Succeeded or Failed when the runner writes how it
    // ended (or, for other images, when KWOK's pod-complete stage does): it keeps its task,
    // and so its volumes, until the pod is deleted.
    let finishing = spec_backend
        && matches!(phase, Some("Succeeded" | "Failed"))
        && pod_runner::runs_to_completion(pod.spec.as_ref())
        && servers.contains_key(&uid);
    let wanted = phase == Some("Running") || finishing;
    let (Some(ip), true, None) = (ip, wanted, &pod.metadata.deletion_timestamp) else {
        servers.remove(&uid);
        return;
    };
    if servers.contains_key(&uid) {
        return;
    }
    let addr = match spec_backend {
        true => pod_runner::pod_addr(pod, ip, ctx.options.port),
        false => SocketAddr::new(ip, ctx.options.port),
    };
    let served = ServedPod {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: uid.clone(),
        ip,
        addr,
    };
    let listening = Arc::new(AtomicBool::new(false));
    let task = start_server(s, ctx, pod, &served, &listening);
    servers.insert(
        uid,
        Server {
            pod: served,
            listening,
            task,
        },
    );
}

fn start_server(
    s: &Arc<Shared>,
    ctx: &Ctx,
    pod: &Pod,
    served: &ServedPod,
    listening: &Arc<AtomicBool>,
) -> JoinHandle<()> {
    let (s, served, listening) = (s.clone(), served.clone(), listening.clone());
    match &ctx.options.backend {
        PodBackend::Fake => tokio::spawn(serve_fake(s, served, listening)),
        PodBackend::Command(build) => {
            let cmd = build(&served);
            tokio::spawn(serve_command(
                s,
                served,
                cmd,
                ctx.logs_dir.clone(),
                listening,
            ))
        }
        PodBackend::Spec(runner) => {
            // A new pod of this name starts afresh.
            s.finished.lock().unwrap().remove(&served.name);
            tokio::spawn(pod_runner::run(PodRun {
                shared: s,
                runner: runner.clone(),
                client: ctx.client.clone(),
                pod: pod.clone(),
                served,
                pods_dir: ctx.pods_dir.clone(),
                logs_dir: ctx.logs_dir.clone(),
                listening,
            }))
        }
    }
}
