//! Analysis queries, outside the reconcile's critical path. A reconcile compiles the pipeline's
//! analysis (once per generation: compiling starts a parser thread), hands `decide` the results
//! that came back since the last one ([`Analyses::take`]), and starts a task per metric the
//! decision says is due ([`Analyses::measure`]). Each task asks Prometheus, keeps its result in a
//! small map keyed by pipeline, run and slot, and wakes the pipeline, so the next reconcile
//! records it. A crash loses at most the queries in flight: due times come from the last
//! measurement recorded in status, so they are simply taken again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc::UnboundedSender;

use super::rollout::{AnalysisResult, Slots};
use crate::analysis::prometheus::{MetricSource, QueryError};
use crate::analysis::{CompiledAnalysis, SpecError, compile, measure};
use crate::api::{AnalysisRunStatus, AnalysisStage, Color, MeasurementOutcome, RagPipeline};
use crate::metrics::Metrics;

/// One query of one run: which pipeline, run and metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    namespace: String,
    pipeline: String,
    stage: AnalysisStage,
    revision: String,
    color: Color,
    slot: usize,
}

enum Query {
    InFlight,
    Done(AnalysisResult),
}

type Compiled = Result<Arc<CompiledAnalysis>, SpecError>;
/// By namespace and name: the generation compiled, and what came of it.
type CompiledByPipeline = HashMap<(String, String), (Option<i64>, Compiled)>;

/// The analysis side of the pipeline controller, one per operator.
pub struct Analyses {
    source: Arc<dyn MetricSource>,
    /// `--prometheus-url`, when given.
    default_address: Option<String>,
    compiled: Mutex<CompiledByPipeline>,
    queries: Arc<Mutex<HashMap<Key, Query>>>,
    wake: UnboundedSender<ObjectRef<RagPipeline>>,
    metrics: Arc<Metrics>,
}

impl Analyses {
    pub fn new(
        source: Arc<dyn MetricSource>,
        default_address: Option<String>,
        wake: UnboundedSender<ObjectRef<RagPipeline>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            source,
            default_address: default_address.filter(|a| !a.trim().is_empty()),
            compiled: Mutex::default(),
            queries: Arc::default(),
            wake,
            metrics,
        }
    }

    pub fn default_address(&self) -> Option<&str> {
        self.default_address.as_deref()
    }

    /// The pipeline's analysis compiled, from the cache while its generation is the same.
    pub fn compiled(&self, p: &RagPipeline) -> Option<Compiled> {
        let spec = p.spec.rollout.analysis.as_ref()?;
        let key = (
            p.metadata.namespace.clone().unwrap_or_default(),
            p.metadata.name.clone().unwrap_or_default(),
        );
        let generation = p.metadata.generation;
        let mut cache = self.compiled.lock().expect("never poisoned");
        if let Some((_, c)) = cache.get(&key).filter(|(g, _)| *g == generation) {
            return Some(c.clone());
        }
        let c = compile(spec).map(Arc::new);
        cache.insert(key, (generation, c.clone()));
        Some(c)
    }

    /// Forgets what is kept for pipelines that are gone or no longer ask for analysis (`wants`
    /// says which still do): their compiled analysis, and their queries, waiting or in flight (a
    /// query in flight then keeps no result). Run once a reconciliation; both maps are small.
    pub fn prune(&self, wants: impl Fn(&str, &str) -> bool) {
        let mut compiled = self.compiled.lock().expect("never poisoned");
        compiled.retain(|(ns, name), _| wants(ns, name));
        drop(compiled);
        let mut queries = self.queries.lock().expect("never poisoned");
        queries.retain(|k, _| wants(&k.namespace, &k.pipeline));
    }

    /// The results of `namespace/pipeline`'s queries that came back, taken out of the map.
    pub fn take(&self, namespace: &str, pipeline: &str) -> Vec<AnalysisResult> {
        let mut queries = self.queries.lock().expect("never poisoned");
        let done: Vec<Key> = queries
            .iter()
            .filter(|(k, q)| {
                k.namespace == namespace && k.pipeline == pipeline && matches!(q, Query::Done(_))
            })
            .map(|(k, _)| k.clone())
            .collect();
        done.into_iter()
            .filter_map(|k| match queries.remove(&k) {
                Some(Query::Done(r)) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Starts a query for each `due` metric of `run` that has none out or waiting to be taken.
    pub fn measure(
        &self,
        compiled: &Arc<CompiledAnalysis>,
        run: &AnalysisRunStatus,
        due: Slots,
        namespace: &str,
        pipeline: &str,
    ) {
        let address = compiled.address(self.default_address()).map(str::to_string);
        for slot in due.iter() {
            let key = Key {
                namespace: namespace.to_string(),
                pipeline: pipeline.to_string(),
                stage: run.stage,
                revision: run.revision.clone(),
                color: run.color,
                slot,
            };
            {
                let mut queries = self.queries.lock().expect("never poisoned");
                if queries.contains_key(&key) {
                    continue;
                }
                queries.insert(key.clone(), Query::InFlight);
            }
            let promql = compiled.query(run, slot, namespace, pipeline);
            let metric = run.metrics.get(slot).map(|m| m.name.clone());
            let task = Task {
                source: self.source.clone(),
                queries: self.queries.clone(),
                wake: self.wake.clone(),
                metrics: self.metrics.clone(),
                compiled: compiled.clone(),
                address: address.clone(),
                metric: metric.unwrap_or_default(),
            };
            tokio::spawn(task.run(key, promql));
        }
    }
}

/// One query in the background.
struct Task {
    source: Arc<dyn MetricSource>,
    queries: Arc<Mutex<HashMap<Key, Query>>>,
    wake: UnboundedSender<ObjectRef<RagPipeline>>,
    metrics: Arc<Metrics>,
    compiled: Arc<CompiledAnalysis>,
    address: Option<String>,
    metric: String,
}

impl Task {
    async fn run(
        self,
        key: Key,
        promql: Option<Result<String, crate::analysis::template::TemplateError>>,
    ) {
        let at = Timestamp::now();
        let result = match (promql, &self.address) {
            (None, _) => Err(QueryError::Shape("no such metric in the run".into())),
            (Some(Err(e)), _) => Err(QueryError::Prometheus {
                kind: "template".into(),
                message: e.to_string(),
            }),
            (Some(Ok(_)), None) => Err(QueryError::NoAddress),
            (Some(Ok(q)), Some(address)) => self.source.query(address, &q).await,
        };
        let outcome = self
            .compiled
            .metrics
            .iter()
            .find(|m| m.name == self.metric)
            .map_or(MeasurementOutcome::Inconclusive, |m| {
                measure::measurement(at, &result, &m.conditions, m.on_empty).outcome
            });
        let outcome = match outcome {
            MeasurementOutcome::Successful => "successful",
            MeasurementOutcome::Failed => "failed",
            MeasurementOutcome::Inconclusive => "inconclusive",
        };
        self.metrics
            .analysis_measurements
            .with_label_values(&[&key.pipeline, &key.namespace, &self.metric, outcome])
            .inc();
        let done = AnalysisResult {
            stage: key.stage,
            revision: key.revision.clone(),
            color: key.color,
            slot: key.slot,
            at,
            result,
        };
        let wake = ObjectRef::new(&key.pipeline).within(&key.namespace);
        // Kept only while it is still wanted (see `Analyses::prune`).
        if let Some(q) = self.queries.lock().expect("never poisoned").get_mut(&key) {
            *q = Query::Done(done);
        }
        // The controller may be shutting down; then nobody needs waking.
        let _ = self.wake.send(wake);
    }
}

#[cfg(test)]
#[path = "measurements_tests.rs"]
mod tests;
