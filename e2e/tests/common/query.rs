//! Asking the real runtimes: one query to one pod, and a client that queries whatever colour
//! the pipeline's Service selects, throughout a change, counting every answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use rag_operator::api::Color;
use serde_json::{Value, json};

use super::World;

/// A ready pod of `color` of pipeline `name`, by its IP.
pub async fn pod_of(world: &World, name: &str, color: Color) -> Result<SocketAddr> {
    ready_pod(&world.ns.api(), name, &color.to_string())
        .await?
        .with_context(|| format!("no ready {color} pod"))
}

pub async fn ready_pod(pods: &Api<Pod>, name: &str, color: &str) -> Result<Option<SocketAddr>> {
    let selector = format!("ragops.io/pipeline={name},ragops.io/color={color}");
    let list = pods.list(&ListParams::default().labels(&selector)).await?;
    let ip = list
        .items
        .iter()
        .filter(|p| super::is_ready(p))
        .find_map(|p| p.status.as_ref()?.pod_ip.clone());
    Ok(match ip {
        Some(ip) => Some(SocketAddr::new(ip.parse()?, 8080)),
        None => None,
    })
}

/// `POST /v1/query` to one pod: the status code and the cited document ids.
pub async fn query(
    addr: SocketAddr,
    question: &str,
    token: Option<&str>,
) -> Result<(u16, Vec<String>)> {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/v1/query"))
        .timeout(Duration::from_secs(10))
        .json(&json!({ "query": question, "topK": 3 }));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await?;
    let code = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let sources = body["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["documentId"].as_str().map(String::from))
        .collect();
    Ok((code, sources))
}

/// A client asking `question` again and again through pipeline `name`'s Service: each time the
/// colour the Service selects, one of its ready pods. An answer that is not a 200 citing
/// `expect` is a failure.
pub struct QueryLoop {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl QueryLoop {
    pub fn start(world: &World, name: &str, question: &str, expect: &str) -> Self {
        let (services, pods): (Api<Service>, Api<Pod>) = (world.ns.api(), world.ns.api());
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, a, f) = (stop.clone(), answered.clone(), failures.clone());
        let (name, question, expect) = (name.to_string(), question.to_string(), expect.to_string());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                match ask(&services, &pods, &name, &question).await {
                    Ok(sources) if sources.contains(&expect) => {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(sources) => f
                        .lock()
                        .unwrap()
                        .push(format!("answered without {expect}: {sources:?}")),
                    Err(e) => f.lock().unwrap().push(format!("{e:#}")),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self {
            stop,
            answered,
            failures,
            task,
        }
    }

    /// Stops the client; the count of good answers and every failure.
    pub async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        let failures = self.failures.lock().unwrap().clone();
        (self.answered.load(Ordering::SeqCst), failures)
    }
}

async fn ask(
    services: &Api<Service>,
    pods: &Api<Pod>,
    name: &str,
    question: &str,
) -> Result<Vec<String>> {
    let svc = services.get(name).await?;
    let color = svc
        .spec
        .and_then(|s| s.selector)
        .and_then(|s| s.get("ragops.io/color").cloned())
        .context("the Service selects no colour")?;
    let addr = ready_pod(pods, name, &color)
        .await?
        .with_context(|| format!("the Service selects {color}, which has no ready pod"))?;
    let (code, sources) = query(addr, question, None).await?;
    anyhow::ensure!(code == 200, "{color} answered {code}");
    Ok(sources)
}
