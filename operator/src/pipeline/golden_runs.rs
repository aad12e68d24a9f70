//! Golden-set runs, outside the reconcile's critical path. A reconciliation loads the pipeline's
//! set ([`load`]: read once per content version, since the caches keep only a digest of a
//! ConfigMap), hands `decide` the results that came back ([`GoldenRuns::take`]), and starts the
//! run the decision holds for ([`GoldenRuns::start`]). A run sends every query of the set to the
//! new colour and to the active one (their Services' ready endpoints, the pod IPs, as the health
//! gate does), `concurrency` at a time per colour, under the time budget as a hard deadline;
//! its scores are kept in a small map and wake the pipeline. A crash loses only the run in
//! flight: the status still says `Running`, so the next reconciliation starts it again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use super::health::{QueryAnswer, root_cause};
use super::observe::{self, Snapshot};
use super::rollout::{CutoverStep, Decision, GoldenResult, GoldenScores};
use super::validate::UserError;
use super::{Context, uncached};
use crate::analysis::golden::{self, GoldenSet, Scores};
use crate::api::{Color, GoldenSetPhase, RagPipeline};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::watch::trim;

/// One run: which pipeline, revision, colour and start (as in status).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    namespace: String,
    pipeline: String,
    revision: String,
    color: Color,
    started_at: Timestamp,
}

enum Run {
    InFlight,
    Done(GoldenResult),
}

/// A parsed set, by the content digest and key it was parsed from.
type Loaded = (String, Result<Arc<GoldenSet>, UserError>);

/// What one run needs to know.
pub struct Job {
    pub namespace: String,
    pub pipeline: String,
    pub set: Arc<GoldenSet>,
    pub revision: String,
    pub started_at: Timestamp,
    /// The new colour and its pods.
    pub target: (Color, Vec<SocketAddr>),
    /// The active colour and its pods; none on a first deploy.
    pub active: Option<(Color, Vec<SocketAddr>)>,
    pub k: usize,
    pub concurrency: usize,
    pub budget: Duration,
    pub bearer: Option<String>,
}

/// The golden-set side of the pipeline controller, one per operator.
pub struct GoldenRuns {
    client: reqwest::Client,
    sets: Mutex<HashMap<(String, String), Loaded>>,
    runs: Arc<Mutex<HashMap<Key, Run>>>,
    wake: UnboundedSender<ObjectRef<RagPipeline>>,
    metrics: Arc<Metrics>,
}

impl GoldenRuns {
    pub fn new(wake: UnboundedSender<ObjectRef<RagPipeline>>, metrics: Arc<Metrics>) -> Self {
        Self {
            client: http_client(),
            sets: Mutex::default(),
            runs: Arc::default(),
            wake,
            metrics,
        }
    }

    /// Forgets the sets, runs and score gauges of pipelines that are gone or no longer have a
    /// golden set.
    pub fn prune(&self, wants: impl Fn(&str, &str) -> bool) {
        let mut sets = self.sets.lock().expect("never poisoned");
        sets.retain(|(ns, name), _| {
            let kept = wants(ns, name);
            if !kept {
                forget_scores(&self.metrics, ns, name);
            }
            kept
        });
        drop(sets);
        let mut runs = self.runs.lock().expect("never poisoned");
        runs.retain(|k, _| wants(&k.namespace, &k.pipeline));
    }

    /// The results of `namespace/pipeline`'s runs that came back, taken out of the map.
    pub fn take(&self, namespace: &str, pipeline: &str) -> Vec<GoldenResult> {
        let mut runs = self.runs.lock().expect("never poisoned");
        let done: Vec<Key> = runs
            .iter()
            .filter(|(k, r)| {
                k.namespace == namespace && k.pipeline == pipeline && matches!(r, Run::Done(_))
            })
            .map(|(k, _)| k.clone())
            .collect();
        done.into_iter()
            .filter_map(|k| match runs.remove(&k) {
                Some(Run::Done(r)) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Whether a run of `job`'s key is out or waiting to be taken; if not, marks it out.
    fn claim(&self, key: &Key) -> bool {
        let mut runs = self.runs.lock().expect("never poisoned");
        if runs.contains_key(key) {
            return false;
        }
        runs.insert(key.clone(), Run::InFlight);
        true
    }

    /// Starts `job` in the background unless its run is out already. `bearer` is asked for
    /// only when it starts (it reads a Secret).
    pub async fn start<F>(&self, job: impl FnOnce() -> Job, bearer: F) -> Result<(), Error>
    where
        F: Future<Output = Result<Option<String>, Error>>,
    {
        let mut job = job();
        let key = Key {
            namespace: job.namespace.clone(),
            pipeline: job.pipeline.clone(),
            revision: job.revision.clone(),
            color: job.target.0,
            started_at: job.started_at,
        };
        if !self.claim(&key) {
            return Ok(());
        }
        job.bearer = match bearer.await {
            Ok(b) => b,
            Err(e) => {
                self.runs.lock().expect("never poisoned").remove(&key);
                return Err(e);
            }
        };
        let (client, runs, wake) = (self.client.clone(), self.runs.clone(), self.wake.clone());
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let outcome = run(&client, &job).await;
            if let Ok(scores) = &outcome {
                report(&metrics, &job, scores);
            }
            let result = GoldenResult {
                revision: key.revision.clone(),
                color: key.color,
                started_at: key.started_at,
                outcome,
            };
            let wake_ref = ObjectRef::new(&key.pipeline).within(&key.namespace);
            // Kept only while it is still wanted (see `GoldenRuns::prune`).
            if let Some(r) = runs.lock().expect("never poisoned").get_mut(&key) {
                *r = Run::Done(result);
            }
            let _ = wake.send(wake_ref);
        });
        Ok(())
    }
}

/// A plain HTTP client; its connections to the pods are reused across the queries of a run.
fn http_client() -> reqwest::Client {
    // reqwest insists on a process-wide TLS provider even for plain HTTP; installing one twice
    // is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a plain HTTP client always builds")
}

/// recall@K and MRR per pipeline and colour, as operator metrics.
/// Removes the score gauges of `namespace/pipeline`.
fn forget_scores(metrics: &Metrics, namespace: &str, pipeline: &str) {
    for color in Color::ALL {
        let labels = [namespace, pipeline, color.as_str()];
        // An error only says the series was never set.
        let _ = metrics.golden_recall.remove_label_values(&labels);
        let _ = metrics.golden_mrr.remove_label_values(&labels);
    }
}

fn report(metrics: &Metrics, job: &Job, scores: &GoldenScores) {
    let colours = std::iter::once((job.target.0, &scores.target))
        .chain(job.active.as_ref().map(|a| a.0).zip(scores.active.as_ref()));
    for (color, s) in colours {
        let labels = [
            job.namespace.as_str(),
            job.pipeline.as_str(),
            color.as_str(),
        ];
        metrics
            .golden_recall
            .with_label_values(&labels)
            .set(s.recall_at_k());
        metrics.golden_mrr.with_label_values(&labels).set(s.mrr());
    }
}

/// Both colours, under the budget.
async fn run(client: &reqwest::Client, job: &Job) -> Result<GoldenScores, String> {
    let work = async {
        let target = colour(client, job, &job.target);
        let active = async {
            match &job.active {
                Some(a) => colour(client, job, a).await.map(Some),
                None => Ok(None),
            }
        };
        let (target, active) = futures::join!(target, active);
        Ok(GoldenScores {
            target: target?,
            active: active?,
        })
    };
    tokio::time::timeout(job.budget, work)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "{} queries per colour did not finish within the time budget of {}s",
                job.set.queries.len(),
                job.budget.as_secs()
            ))
        })
}

/// Every query of the set against one colour's pods, spread over them.
async fn colour(
    client: &reqwest::Client,
    job: &Job,
    (color, pods): &(Color, Vec<SocketAddr>),
) -> Result<Scores, String> {
    if pods.is_empty() {
        return Err(format!("{color} has no ready pods to query"));
    }
    let asks = (0..job.set.queries.len()).map(|i| async move {
        let q = &job.set.queries[i];
        let ids = ask(client, pods[i % pods.len()], &q.query, job).await?;
        Ok::<_, String>((i, golden::score(q, &ids, job.k)))
    });
    let mut scored: Vec<_> = futures::stream::iter(asks)
        .buffer_unordered(job.concurrency.max(1))
        .try_collect()
        .await
        .map_err(|e| format!("{color}: {e}"))?;
    scored.sort_by_key(|(i, _)| *i);
    Ok(Scores {
        queries: scored.into_iter().map(|(_, s)| s).collect(),
    })
}

/// One query; the document ids of its sources, best first.
async fn ask(
    client: &reqwest::Client,
    pod: SocketAddr,
    query: &str,
    job: &Job,
) -> Result<Vec<String>, String> {
    let url = format!("http://{pod}/v1/query");
    let mut request = client
        .post(&url)
        .json(&json!({ "query": query, "topK": job.k }));
    if let Some(token) = &job.bearer {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("query {query:?}: {url}: {}", root_cause(&e)))?;
    if !response.status().is_success() {
        return Err(format!("query {query:?} answered {}", response.status()));
    }
    let answer: QueryAnswer = response
        .json()
        .await
        .map_err(|e| format!("query {query:?}: {e}"))?;
    Ok(answer.sources.into_iter().map(|s| s.document_id).collect())
}

const FIELD: &str = "spec.rollout.goldenSet.configMapRef";

/// The pipeline's golden set, parsed: read (uncached) when the cached digest of its ConfigMap
/// changes, else from memory. A missing ConfigMap or key, or a line that does not parse, is a
/// user error naming the field and the line.
pub(super) async fn load(
    ctx: &Context,
    p: &RagPipeline,
) -> Result<Result<Option<Arc<GoldenSet>>, UserError>, Error> {
    let Some(spec) = p.spec.rollout.golden_set.as_ref() else {
        return Ok(Ok(None));
    };
    let (ns, r) = (p.namespace().unwrap_or_default(), &spec.config_map_ref);
    let invalid = |field: String, message: String| UserError::InvalidGoldenSet { field, message };
    let Some(cached) = crate::watch::get(&ctx.stores.config_maps, &ns, &r.name) else {
        let message = format!("ConfigMap {:?} not found in this namespace", r.name);
        return Ok(Err(invalid(format!("{FIELD}.name"), message)));
    };
    let digest = |cm: &ConfigMap| {
        let ann = cm.annotations().get(trim::CONTENT_DIGEST).cloned();
        format!(
            "{}/{}",
            ann.unwrap_or_else(|| trim::config_map_digest(cm)),
            r.key
        )
    };
    let id = (ns.clone(), p.name_any());
    let goldens = &ctx.goldens;
    if let Some((_, loaded)) = goldens
        .sets
        .lock()
        .expect("never poisoned")
        .get(&id)
        .filter(|(d, _)| *d == digest(&cached))
    {
        return Ok(loaded.clone().map(Some));
    }
    let content: ConfigMap = super::uncached::get(ctx, &ns, &r.name).await?;
    let text = content.data.as_ref().and_then(|d| d.get(&r.key));
    let loaded = match text {
        None => Err(invalid(
            format!("{FIELD}.key"),
            format!("ConfigMap {:?} has no key {:?}", r.name, r.key),
        )),
        Some(text) => golden::parse(text).map(Arc::new).map_err(|e| {
            let field = format!("{FIELD} (ConfigMap {:?} key {:?})", r.name, r.key);
            invalid(field, e.to_string())
        }),
    };
    let key = format!("{}/{}", trim::config_map_digest(&content), r.key);
    let mut sets = goldens.sets.lock().expect("never poisoned");
    sets.insert(id, (key, loaded.clone()));
    Ok(loaded.map(Some))
}

/// After the status recording `decision` is written: starts the run it holds for, unless it is
/// out already.
pub(super) async fn start(
    p: &RagPipeline,
    ctx: &Context,
    decision: &Decision,
    observed: &Snapshot,
    set: Arc<GoldenSet>,
) -> Result<(), Error> {
    let (CutoverStep::GoldenSet { color }, Some(run), Some(spec)) = (
        decision.step,
        &decision.state.golden,
        p.spec.rollout.golden_set.as_ref(),
    ) else {
        return Ok(());
    };
    if run.phase != GoldenSetPhase::Running {
        return Ok(());
    }
    let pods = |c: Color, revision: &str| observe::serving_addrs(&observed.pods, c, revision);
    let k = spec.k.unwrap_or(p.spec.retrieval.top_k).max(1);
    let job = || Job {
        namespace: p.namespace().unwrap_or_default(),
        pipeline: p.name_any(),
        set,
        revision: run.revision.clone(),
        started_at: run.started_at.0,
        target: (color, pods(color, &run.revision)),
        active: decision
            .state
            .active
            .as_ref()
            .map(|(c, r)| (*c, pods(*c, r))),
        k: usize::try_from(k).unwrap_or(1),
        concurrency: usize::try_from(spec.concurrency).unwrap_or(1),
        budget: Duration::from_secs(u64::try_from(spec.time_budget_seconds).unwrap_or(60)),
        bearer: None,
    };
    ctx.goldens.start(job, uncached::gate_token(p, ctx)).await
}

#[cfg(test)]
#[path = "golden_runs_tests.rs"]
mod tests;
