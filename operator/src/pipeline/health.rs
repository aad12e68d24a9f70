//! The gate a new colour passes before it gets traffic: an HTTP probe of every new pod and of its
//! vector store (the runtime's `/readyz` answers from local state so that a store blip does not
//! empty every Service; the gate asks `/readyz/store`), then (once the probes have passed often
//! enough) the smoke queries, a retrieval-quality check.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::rollout::ProbeOutcome;
use crate::api::{HealthCheckSpec, SmokeQuery};

/// The runtime's check of its vector store alone: reachable, with the collection present.
pub const STORE_PATH: &str = "/readyz/store";

/// What to check, against which pods.
pub struct CheckRequest<'a> {
    pub pods: &'a [SocketAddr],
    pub health: &'a HealthCheckSpec,
    /// Smoke queries to run after the probe passes, with the pipeline's topK.
    pub smoke: Option<(&'a [SmokeQuery], i32)>,
    /// A token the runtime accepts (`spec.server.apiKeysSecretRef`), sent as
    /// `Authorization: Bearer` with the probe and the smoke queries.
    pub bearer: Option<&'a str>,
}

#[async_trait::async_trait]
pub trait HealthChecker: Send + Sync {
    async fn check(&self, request: CheckRequest<'_>) -> ProbeOutcome;
}

/// Probes pods over plain HTTP on their pod IPs.
#[derive(Clone)]
pub struct HttpHealthChecker {
    client: reqwest::Client,
}

/// The part of a `POST /v1/query` answer the gates read (also the golden set's runner).
#[derive(Deserialize)]
pub(super) struct QueryAnswer {
    pub(super) sources: Vec<Source>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Source {
    pub(super) document_id: String,
    score: f64,
}

impl Default for HttpHealthChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpHealthChecker {
    pub fn new() -> Self {
        // reqwest insists on a process-wide TLS provider even for plain HTTP; installing one twice
        // is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            // No idle connections kept: every pod of every rollout is a host of its own, and
            // each idle connection holds its buffers (tens of MiB across a fleet rolling out
            // together). Like the kubelet's probes, each check connects anew.
            client: reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
                .expect("a plain HTTP client always builds"),
        }
    }

    /// A request with the bearer token, when there is one.
    fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        bearer: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn probe(
        &self,
        pod: SocketAddr,
        path: &str,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<(), String> {
        let url = format!("http://{pod}{path}");
        let request = self.request(reqwest::Method::GET, &url, bearer);
        match request.timeout(timeout).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("{url} answered {}", r.status())),
            Err(e) if e.is_timeout() => Err(format!(
                "{url} did not answer within {}s",
                timeout.as_secs()
            )),
            Err(e) => Err(format!("{url}: {}", root_cause(&e))),
        }
    }

    async fn smoke(
        &self,
        pod: SocketAddr,
        query: &SmokeQuery,
        top_k: i32,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<(), String> {
        let url = format!("http://{pod}/v1/query");
        let response = self
            .request(reqwest::Method::POST, &url, bearer)
            .timeout(timeout)
            .json(&json!({ "query": query.query, "topK": top_k }))
            .send()
            .await
            .map_err(|e| format!("{url}: {}", root_cause(&e)))?;
        if !response.status().is_success() {
            return Err(format!(
                "query {:?} answered {}",
                query.query,
                response.status()
            ));
        }
        let answer: QueryAnswer = response
            .json()
            .await
            .map_err(|e| format!("query {:?}: {e}", query.query))?;
        judge(query, top_k, &answer.sources)
    }
}

/// Whether an answer's sources satisfy a smoke query.
fn judge(query: &SmokeQuery, top_k: i32, sources: &[Source]) -> Result<(), String> {
    let top: Vec<&str> = sources
        .iter()
        .take(usize::try_from(top_k).unwrap_or(0))
        .map(|s| s.document_id.as_str())
        .collect();
    if let Some(missing) = query
        .expect_source_ids
        .iter()
        .find(|id| !top.contains(&id.as_str()))
    {
        return Err(format!(
            "query {:?}: {missing:?} not in the top {top_k} sources {top:?}",
            query.query
        ));
    }
    if let Some(min) = query.min_score {
        let best = sources.first().map_or(f64::NEG_INFINITY, |s| s.score);
        if best < min {
            return Err(format!(
                "query {:?}: best score {best} is below {min}",
                query.query
            ));
        }
    }
    Ok(())
}

pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[async_trait::async_trait]
impl HealthChecker for HttpHealthChecker {
    async fn check(&self, request: CheckRequest<'_>) -> ProbeOutcome {
        if request.pods.is_empty() {
            return ProbeOutcome::Unhealthy("no ready pods to probe".into());
        }
        let timeout =
            Duration::from_secs(u64::try_from(request.health.timeout_seconds.max(1)).unwrap_or(1));
        let probes = request.pods.iter().map(|pod| async move {
            self.probe(*pod, &request.health.path, request.bearer, timeout)
                .await?;
            if request.health.path != STORE_PATH {
                self.probe(*pod, STORE_PATH, request.bearer, timeout)
                    .await
                    .map_err(|e| format!("vector store check: {e}"))?;
            }
            Ok::<(), String>(())
        });
        if let Some(err) = futures::future::join_all(probes)
            .await
            .into_iter()
            .find_map(Result::err)
        {
            return ProbeOutcome::Unhealthy(err);
        }
        if let Some((queries, top_k)) = request.smoke {
            // Smoke queries may embed and generate: give them more time than a probe.
            let timeout = timeout.max(Duration::from_secs(30));
            for query in queries {
                let pod = request.pods[0];
                if let Err(err) = self.smoke(pod, query, top_k, request.bearer, timeout).await {
                    return ProbeOutcome::SmokeFailed(err);
                }
            }
        }
        ProbeOutcome::Healthy
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
