use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::api::MeasurementOutcome;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// The shape of the API, as a user writes it.
const SAMPLE: &str = r#"
prometheus: {address: "http://prometheus.monitoring:9090"}
metrics:
- name: errors
  builtin: errorRatio
  threshold: 0.05
- name: p99
  builtin: latencyP99
  threshold: 0.5
  count: 3
- name: success-rate
  query: 'sum(rate(rag_http_requests_total{namespace="{{namespace}}",ragops_io_pipeline="{{pipeline}}",ragops_io_revision="{{revision}}",code="200"}[1m])) / sum(rate(rag_http_requests_total{namespace="{{namespace}}",ragops_io_pipeline="{{pipeline}}",ragops_io_revision="{{revision}}"}[1m]))'
  successCondition: "result >= 0.95"
  failureCondition: "result < 0.5"
  onEmpty: success
  intervalSeconds: 10
  count: 5
  failureLimit: 2
  consecutiveFailureLimit: 1
  consecutiveSuccessLimit: 3
  inconclusiveLimit: 1
prePromotion: {metrics: [errors, p99]}
postPromotion: {metrics: [success-rate, errors, errors]}
"#;

fn spec(yaml: &str) -> AnalysisSpec {
    serde_yaml::from_str(yaml).unwrap()
}

#[test]
fn the_sample_compiles() {
    let a = compile(&spec(SAMPLE)).unwrap();
    assert_eq!(
        a.address(Some("http://default:9090")),
        Some("http://prometheus.monitoring:9090")
    );
    assert_eq!(a.stage(AnalysisStage::PrePromotion), [0, 1]);
    assert_eq!(
        a.stage(AnalysisStage::PostPromotion),
        [2, 0],
        "named twice, run once"
    );
    let m = &a.metrics[2];
    assert_eq!(m.conditions.success.source(), "result >= 0.95");
    assert_eq!(m.on_empty, OnEmpty::Success);
    assert_eq!(
        (
            m.limits.interval_seconds,
            m.limits.consecutive_failure_limit,
            m.limits.consecutive_success_limit
        ),
        (10, Some(1), Some(3))
    );
    assert_eq!(a.metrics[0].conditions.success.source(), "result <= 0.05");
    let without = compile(&spec(
        "metrics: [{name: e, builtin: errorRatio, threshold: 0.1}]\nprePromotion: {metrics: [e]}",
    ))
    .unwrap();
    assert_eq!(
        without.address(Some("http://default:9090")),
        Some("http://default:9090")
    );
    assert_eq!(without.address(None), None);
    assert!(without.stage(AnalysisStage::PostPromotion).is_empty());
}

#[test]
fn problems_name_the_field() {
    let one = |metric: &str| {
        format!(
            "metrics: [{{name: ok, builtin: errorRatio, threshold: 0.1}}, {metric}]\nprePromotion: {{metrics: [ok]}}"
        )
    };
    #[rustfmt::skip]
    let cases: Vec<(String, &str)> = vec![
        (one("{name: ok, builtin: latencyP99, threshold: 1}"),
         r#"spec.rollout.analysis.metrics[1].name: metric name "ok" is used twice"#),
        (one("{name: b, query: 'up', builtin: errorRatio, threshold: 1}"),
         "spec.rollout.analysis.metrics[1]: give exactly one of query or builtin"),
        (one("{name: b}"),
         "spec.rollout.analysis.metrics[1]: give exactly one of query or builtin"),
        (one("{name: b, builtin: errorRatio}"),
         "spec.rollout.analysis.metrics[1].threshold: a builtin metric needs a threshold (success when result <= threshold)"),
        (one("{name: b, builtin: errorRatio, threshold: 1, successCondition: 'result < 1'}"),
         "spec.rollout.analysis.metrics[1].successCondition: a builtin metric takes a threshold, not conditions"),
        (one("{name: b, query: up}"),
         "spec.rollout.analysis.metrics[1].successCondition: a query needs one"),
        (one("{name: b, query: up, threshold: 1, successCondition: 'result > 0'}"),
         "spec.rollout.analysis.metrics[1].threshold: threshold is for builtin metrics; write it into successCondition"),
        (one("{name: b, query: up, successCondition: 'result >= '}"),
         "spec.rollout.analysis.metrics[1].successCondition: 1:11: Syntax error: mismatched input '<EOF>'"),
        (one("{name: b, query: up, successCondition: 'result > 0', failureCondition: 'value < 0'}"),
         "spec.rollout.analysis.metrics[1].failureCondition: unknown variable value: a condition can only use `result`"),
        (one("{name: b, query: up, successCondition: result}"),
         "spec.rollout.analysis.metrics[1].successCondition: evaluates to a number, not true or false"),
        (one(r#"{name: b, query: 'up{pod="{{pod}}"}', successCondition: 'result > 0'}"#),
         "spec.rollout.analysis.metrics[1].query: unknown placeholder {{pod}}"),
        (one("{name: b, query: 'up > {{revision}}', successCondition: 'result > 0'}"),
         "spec.rollout.analysis.metrics[1].query: placeholder {{revision}} stands outside a quoted string"),
        ("metrics: [{name: a, builtin: errorRatio, threshold: 0.1}]\npostPromotion: {metrics: [a, nope]}".into(),
         r#"spec.rollout.analysis.postPromotion.metrics[1]: no metric named "nope" in spec.rollout.analysis.metrics"#),
    ];
    for (yaml, want) in cases {
        let err = compile(&spec(&yaml)).unwrap_err().to_string();
        assert!(err.starts_with(want), "{yaml}\n got: {err}\nwant: {want}");
    }
}

fn number(value: f64) -> Result<QueryValue, QueryError> {
    Ok(QueryValue::Number {
        value,
        text: value.to_string(),
    })
}

#[test]
fn a_run_starts_measures_and_fails_on_the_failing_metric() {
    let a = compile(&spec(SAMPLE)).unwrap();
    let mut run = a.start(AnalysisStage::PrePromotion, "r2", Color::Green, at(0));
    let names: Vec<&str> = run.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["errors", "p99"]);
    let step = a.advance(&mut run, at(0));
    assert_eq!(step.measure, [0, 1]);
    let query = a.query(&run, 1, "team-a", "docs").unwrap().unwrap();
    assert!(
        query.contains(r#"ragops_io_revision="r2",ragops_io_color="green""#),
        "{query}"
    );
    assert!(a.query(&run, 7, "team-a", "docs").is_none());
    a.record(&mut run, 0, &number(0.01), at(0));
    a.record(&mut run, 1, &number(0.2), at(0));
    let step = a.advance(&mut run, at(10));
    assert_eq!(
        (step.phase, step.measure.len(), step.wake_at),
        (AnalysisPhase::Running, 0, Some(at(30)))
    );
    a.record(&mut run, 0, &number(0.01), at(30));
    a.record(&mut run, 1, &number(0.9), at(30));
    let step = a.advance(&mut run, at(30));
    assert_eq!(run.phase, AnalysisPhase::Failed);
    assert_eq!(run.metrics[1].phase, AnalysisPhase::Failed);
    assert_eq!(run.metrics[0].phase, AnalysisPhase::Running);
    let message = run.message.clone().unwrap();
    assert_eq!(
        message,
        "metric p99 failed with result 0.9: not (result <= 0.5) (1 failed, failureLimit 0)"
    );
    assert_eq!(step.failure.unwrap().metric, "p99");
    // An ended run stays as it ended, whatever comes after.
    a.record(&mut run, 1, &number(0.1), at(60));
    a.advance(&mut run, at(60));
    assert_eq!(
        (run.phase, run.message.as_deref()),
        (AnalysisPhase::Failed, Some(message.as_str()))
    );
}

#[test]
fn a_run_with_prometheus_unreachable_is_inconclusive_never_successful() {
    let a = compile(&spec(SAMPLE)).unwrap();
    let mut run = a.start(AnalysisStage::PostPromotion, "r2", Color::Blue, at(0));
    let unreachable = Err(QueryError::Transport("connection refused".into()));
    a.advance(&mut run, at(0));
    for slot in 0..2 {
        a.record(&mut run, slot, &unreachable, at(0));
    }
    let step = a.advance(&mut run, at(0));
    let rate = &run.metrics[0];
    assert_eq!(
        (rate.name.as_str(), rate.phase),
        ("success-rate", AnalysisPhase::Running),
        "tolerates one"
    );
    let errors = &run.metrics[1];
    assert_eq!(
        (errors.name.as_str(), errors.phase),
        ("errors", AnalysisPhase::Inconclusive)
    );
    // One inconclusive metric ends the run: it can no longer pass.
    assert_eq!(
        (step.phase, run.phase),
        (AnalysisPhase::Inconclusive, AnalysisPhase::Inconclusive)
    );
    assert_eq!(
        run.message.as_deref(),
        Some(
            "metric errors: 1 inconclusive, inconclusiveLimit 0; last: Prometheus unreachable: connection refused"
        )
    );
}

#[test]
fn a_run_passes_when_every_metric_has() {
    let a = compile(&spec(SAMPLE)).unwrap();
    let mut run = a.start(AnalysisStage::PostPromotion, "r2", Color::Blue, at(0));
    // success-rate: three in a row pass it early (consecutiveSuccessLimit 3), empty counts as
    // success (onEmpty: success); errors: five good measurements.
    for i in 0..5 {
        let t = at(30 * i);
        let step = a.advance(&mut run, t);
        for slot in step.measure {
            let result = if slot == 0 {
                Ok(QueryValue::Empty)
            } else {
                number(0.0)
            };
            a.record(&mut run, slot, &result, t);
        }
    }
    assert_eq!(run.metrics[0].taken(), 3);
    assert_eq!(
        run.metrics[0].measurements[0].outcome,
        MeasurementOutcome::Successful
    );
    let step = a.advance(&mut run, at(150));
    assert_eq!(
        (step.phase, run.phase),
        (AnalysisPhase::Successful, AnalysisPhase::Successful)
    );
}

#[test]
fn a_metric_dropped_from_the_spec_makes_its_run_inconclusive() {
    let a = compile(&spec(SAMPLE)).unwrap();
    let mut run = a.start(AnalysisStage::PrePromotion, "r2", Color::Green, at(0));
    run.metrics[1].name = "gone".into();
    a.record(&mut run, 1, &number(0.0), at(0));
    assert_eq!(
        run.metrics[1].taken(),
        0,
        "nothing recorded for an unknown metric"
    );
    let step = a.advance(&mut run, at(0));
    assert_eq!(step.phase, AnalysisPhase::Inconclusive);
    assert_eq!(
        run.message.as_deref(),
        Some("metric gone is no longer in the spec")
    );
}
