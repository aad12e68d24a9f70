//! Real HTTP servers standing in for KWOK pods, each bound to its pod's IP.
//!
//! KWOK pods have no containers. [`PodServers`] watches the Pods of a namespace and, for every
//! Running pod with an IP, serves on `<podIP>:<port>`: by default a tiny axum server answering
//! `/healthz` and `/readyz` with a status the test controls, or any command per pod (e.g. the real
//! `rag-runtime serve --listen <ip>:<port>`). The server stops when the pod stops or goes away.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::process::ChildProcess;
use crate::wait::wait_for;

/// What serves on a pod's IP.
#[derive(Clone)]
pub enum PodBackend {
    /// Built-in server: `GET /healthz` and `GET /readyz` answer with the status set by
    /// [`PodServers::set_status`] / [`PodServers::set_pod_status`] (200 by default).
    Fake,
    /// One process per pod, built from the pod's coordinates; killed when the pod goes away.
    Command(Arc<dyn Fn(&ServedPod) -> Command + Send + Sync>),
}

#[derive(Clone)]
pub struct PodServersOptions {
    /// Port to serve on at each pod IP (8080 by default).
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

struct Shared {
    status: AtomicU16,
    per_pod: Mutex<HashMap<String, u16>>,
    requests: AtomicU64,
    servers: Mutex<HashMap<String, Server>>,
    errors: Mutex<Vec<String>>,
}

struct Server {
    pod: ServedPod,
    listening: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Aborting drops the listener (fake) or the ChildProcess (command), which kills it.
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
        });
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        let mut config = watcher::Config::default();
        if let Some(sel) = &options.label_selector {
            config = config.labels(sel);
        }
        let logs_dir = cluster.logs_dir();
        let s = shared.clone();
        let watch = tokio::spawn(async move {
            let mut events = watcher(pods, config).default_backoff().boxed();
            while let Some(ev) = events.next().await {
                match ev {
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                        reconcile_pod(&s, &options, &logs_dir, &pod)
                    }
                    Ok(watcher::Event::Delete(pod)) => {
                        if let Some(uid) = pod.metadata.uid {
                            s.servers.lock().unwrap().remove(&uid);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => s.errors.lock().unwrap().push(format!("pod watch: {e}")),
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

    /// Errors so far (binding, starting commands, watching).
    pub fn errors(&self) -> Vec<String> {
        self.shared.errors.lock().unwrap().clone()
    }
}

impl Drop for PodServers {
    fn drop(&mut self) {
        self.watch.abort();
        self.shared.servers.lock().unwrap().clear();
    }
}

fn reconcile_pod(
    s: &Arc<Shared>,
    options: &PodServersOptions,
    logs_dir: &std::path::Path,
    pod: &Pod,
) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    let status = pod.status.as_ref();
    let running = status.and_then(|st| st.phase.as_deref()) == Some("Running");
    let ip = status
        .and_then(|st| st.pod_ip.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    let mut servers = s.servers.lock().unwrap();
    let (Some(ip), true, None) = (ip, running, &pod.metadata.deletion_timestamp) else {
        servers.remove(&uid);
        return;
    };
    if servers.contains_key(&uid) {
        return;
    }
    let served = ServedPod {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: uid.clone(),
        ip,
        addr: SocketAddr::new(ip, options.port),
    };
    let listening = Arc::new(AtomicBool::new(false));
    let task = match &options.backend {
        PodBackend::Fake => tokio::spawn(serve_fake(s.clone(), served.clone(), listening.clone())),
        PodBackend::Command(build) => {
            let cmd = build(&served);
            tokio::spawn(serve_command(
                s.clone(),
                served.clone(),
                cmd,
                logs_dir.to_path_buf(),
                listening.clone(),
            ))
        }
    };
    servers.insert(
        uid,
        Server {
            pod: served,
            listening,
            task,
        },
    );
}

async fn serve_fake(s: Arc<Shared>, pod: ServedPod, listening: Arc<AtomicBool>) {
    // The IP may have belonged to a pod whose server is still shutting down: retry briefly.
    let listener = match wait_for(
        &format!("binding {}", pod.addr),
        Duration::from_secs(10),
        || async { Ok(tokio::net::TcpListener::bind(pod.addr).await.ok()) },
    )
    .await
    {
        Ok(l) => l,
        Err(e) => {
            s.errors
                .lock()
                .unwrap()
                .push(format!("{}: {e:#}", pod.name));
            return;
        }
    };
    let app = axum::Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(health))
        .with_state((s.clone(), pod.name.clone()));
    listening.store(true, Ordering::SeqCst);
    if let Err(e) = axum::serve(listener, app).await {
        s.errors
            .lock()
            .unwrap()
            .push(format!("{}: serve: {e}", pod.name));
    }
}

async fn health(State((s, pod)): State<(Arc<Shared>, String)>) -> (StatusCode, &'static str) {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let code = s
        .per_pod
        .lock()
        .unwrap()
        .get(&pod)
        .copied()
        .unwrap_or_else(|| s.status.load(Ordering::SeqCst));
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        if code.is_success() {
            "ok\n"
        } else {
            "unhealthy\n"
        },
    )
}

async fn serve_command(
    s: Arc<Shared>,
    pod: ServedPod,
    cmd: Command,
    logs_dir: std::path::PathBuf,
    listening: Arc<AtomicBool>,
) {
    let started = ChildProcess::spawn(&format!("pod-{}", pod.name), cmd, &logs_dir)
        .with_context(|| format!("pod {}", pod.name));
    let mut child = match started {
        Ok(c) => c,
        Err(e) => {
            s.errors.lock().unwrap().push(format!("{e:#}"));
            return;
        }
    };
    let what = format!("{} listening on {}", pod.name, pod.addr);
    let up = wait_for(&what, Duration::from_secs(60), || {
        let alive = child.ensure_running();
        async move {
            alive?;
            Ok(tokio::net::TcpStream::connect(pod.addr)
                .await
                .ok()
                .map(|_| ()))
        }
    })
    .await;
    match up {
        Ok(()) => listening.store(true, Ordering::SeqCst),
        Err(e) => s.errors.lock().unwrap().push(format!("{e:#}")),
    }
    // Hold the child until this task is aborted (pod gone); dropping it kills the process.
    std::future::pending::<()>().await;
    drop(child);
}
