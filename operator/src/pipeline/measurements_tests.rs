//! The background queries: one per due metric, none twice while one is out, results taken once,
//! and the pipeline woken when one comes back.

use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::analysis::prometheus::QueryValue;
use crate::api::AnalysisSpec;

struct Fake(AtomicUsize);

#[async_trait::async_trait]
impl MetricSource for Fake {
    async fn query(&self, address: &str, promql: &str) -> Result<QueryValue, QueryError> {
        assert_eq!(address, "http://prom:9090");
        assert!(promql.contains(r#"ragops_io_revision="r2""#), "{promql}");
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(QueryValue::Number {
            value: 0.01,
            text: "0.01".into(),
        })
    }
}

/// One builtin metric, `errors`, measured three times before promotion.
fn spec() -> AnalysisSpec {
    serde_yaml::from_str(
        r#"
metrics:
- {name: errors, builtin: errorRatio, threshold: 0.05, intervalSeconds: 30, count: 3}
prePromotion: {metrics: [errors]}
"#,
    )
    .unwrap()
}

#[tokio::test]
async fn due_metrics_are_queried_once_and_their_results_wake_the_pipeline() {
    let fake = Arc::new(Fake(AtomicUsize::new(0)));
    let (wake, mut woken) = tokio::sync::mpsc::unbounded_channel();
    let metrics = Arc::new(Metrics::default());
    let analyses = Analyses::new(
        fake.clone(),
        Some("http://prom:9090".into()),
        wake,
        metrics.clone(),
    );
    let compiled = Arc::new(compile(&spec()).unwrap());
    let run = compiled.start(
        AnalysisStage::PrePromotion,
        "r2",
        Color::Green,
        Timestamp::now(),
    );
    let due = Slots::of(&[0]);
    analyses.measure(&compiled, &run, due, "ns", "handbook");
    // Asked again before the first came back: not sent twice.
    analyses.measure(&compiled, &run, due, "ns", "handbook");
    let pipeline = woken.recv().await.unwrap();
    assert_eq!(pipeline, ObjectRef::new("handbook").within("ns"));
    assert_eq!(fake.0.load(Ordering::SeqCst), 1);
    assert!(analyses.take("ns", "other").is_empty());
    let results = analyses.take("ns", "handbook");
    assert_eq!(results.len(), 1);
    assert_eq!((results[0].slot, results[0].color), (0, Color::Green));
    assert!(analyses.take("ns", "handbook").is_empty(), "taken once");
    let counted = metrics
        .analysis_measurements
        .with_label_values(&["handbook", "ns", "errors", "successful"])
        .get();
    assert_eq!(counted, 1);
}

#[tokio::test]
async fn a_pipeline_gone_is_forgotten_with_its_queries() {
    let fake = Arc::new(Fake(AtomicUsize::new(0)));
    let (wake, mut woken) = tokio::sync::mpsc::unbounded_channel();
    let analyses = Analyses::new(
        fake,
        Some("http://prom:9090".into()),
        wake,
        Arc::new(Metrics::default()),
    );
    let mut p = super::super::build::fixtures::validated().pipeline;
    p.spec.rollout.analysis = Some(spec());
    let compiled = analyses.compiled(&p).unwrap().unwrap();
    let run = compiled.start(
        AnalysisStage::PrePromotion,
        "r2",
        Color::Green,
        Timestamp::now(),
    );
    analyses.measure(&compiled, &run, Slots::of(&[0]), "ns", "handbook");
    // Deleted while its query is out: nothing is kept, not even the result that comes back.
    analyses.prune(|_, _| false);
    woken.recv().await.unwrap();
    assert!(analyses.take("ns", "handbook").is_empty());
    assert!(analyses.compiled.lock().unwrap().is_empty());
    assert!(analyses.queries.lock().unwrap().is_empty());
}

#[test]
fn compiles_once_per_generation() {
    let (wake, _woken) = tokio::sync::mpsc::unbounded_channel();
    let analyses = Analyses::new(
        Arc::new(Fake(AtomicUsize::new(0))),
        None,
        wake,
        Arc::new(Metrics::default()),
    );
    let mut p = super::super::build::fixtures::validated().pipeline;
    assert!(
        analyses.compiled(&p).is_none(),
        "no analysis, nothing to compile"
    );
    p.spec.rollout.analysis = Some(spec());
    p.metadata.generation = Some(1);
    let first = analyses.compiled(&p).unwrap().unwrap();
    let again = analyses.compiled(&p).unwrap().unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    p.metadata.generation = Some(2);
    assert!(!Arc::ptr_eq(
        &first,
        &analyses.compiled(&p).unwrap().unwrap()
    ));
}
