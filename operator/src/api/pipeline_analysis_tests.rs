//! The CEL rules of `spec.rollout.analysis`, evaluated as the API server would: each rule of the
//! generated CRD runs with `self` bound to the value at its node (with the `cel` crate, which
//! implements the same language, so a rule that does not say what it means fails here).

use kube::CustomResourceExt;
use serde_json::Value;

use crate::api::RagPipeline;

/// The schema of `spec.rollout.analysis` in the generated CRD.
fn schema() -> Value {
    let crd = serde_json::to_value(RagPipeline::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["rollout"]["properties"]["analysis"]
        .clone()
}

/// The messages of the rules `value` breaks, anywhere under `schema`.
pub(in crate::api) fn violations(schema: &Value, value: &Value, out: &mut Vec<String>) {
    for rule in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let source = rule["rule"].as_str().unwrap();
        let program = cel::Program::compile(source).unwrap();
        let mut context = cel::Context::default();
        context
            .add_variable("self", cel::to_value(value).unwrap())
            .unwrap();
        match program.execute(&context) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => out.push(rule["message"].as_str().unwrap().into()),
            other => panic!("rule {source} on {value}: {other:?}"),
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), value.as_object()) {
        for (key, v) in obj {
            if let Some(s) = props.get(key) {
                violations(s, v, out);
            }
        }
    }
    if let Some(items) = value.as_array() {
        for v in items {
            violations(&schema["items"], v, out);
        }
    }
}

fn check(yaml: &str) -> Vec<String> {
    let value: Value = serde_yaml::from_str(yaml).unwrap();
    let mut out = vec![];
    violations(&schema(), &value, &mut out);
    out
}

#[test]
fn a_good_analysis_passes_every_rule() {
    let good = r#"
metrics:
- {name: errors, builtin: errorRatio, threshold: 0.05}
- {name: custom, query: 'vector(1)', successCondition: 'result >= 1', failureCondition: 'result < 0'}
prePromotion: {metrics: [errors]}
postPromotion: {metrics: [errors, custom]}
"#;
    assert_eq!(check(good), Vec::<String>::new());
}

#[test]
fn bad_analyses_are_refused_with_a_message_naming_the_field() {
    let builtin = "{name: e, builtin: errorRatio, threshold: 0.1}";
    #[rustfmt::skip]
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("metrics: [{builtin}, {builtin}]\nprePromotion: {{metrics: [e]}}"),
         vec!["analysis.metrics: metric names must be unique"]),
        (format!("metrics: [{builtin}]\nprePromotion: {{metrics: [e, f]}}"),
         vec!["analysis.prePromotion.metrics: every name must be one of analysis.metrics"]),
        (format!("metrics: [{builtin}]\npostPromotion: {{metrics: [x]}}"),
         vec!["analysis.postPromotion.metrics: every name must be one of analysis.metrics"]),
        (format!("metrics: [{builtin}]"),
         vec!["analysis: name the metrics to run in prePromotion, postPromotion or canary"]),
        ("metrics: [{name: e}]\nprePromotion: {metrics: [e]}".into(),
         vec!["analysis.metrics: give exactly one of query or builtin"]),
        ("metrics: [{name: e, query: up, builtin: errorRatio, threshold: 1, successCondition: 'result > 0'}]\nprePromotion: {metrics: [e]}".into(),
         vec![
             "analysis.metrics: give exactly one of query or builtin",
             "analysis.metrics: a builtin metric takes a threshold, not successCondition or failureCondition",
             "analysis.metrics: threshold is for builtin metrics; write it into successCondition",
         ]),
        ("metrics: [{name: e, builtin: latencyP99}]\nprePromotion: {metrics: [e]}".into(),
         vec!["analysis.metrics: a builtin metric needs a threshold (success when result <= threshold)"]),
        ("metrics: [{name: e, builtin: latencyP99, threshold: 1, failureCondition: 'result > 2'}]\nprePromotion: {metrics: [e]}".into(),
         vec!["analysis.metrics: a builtin metric takes a threshold, not successCondition or failureCondition"]),
        ("metrics: [{name: e, query: up}]\nprePromotion: {metrics: [e]}".into(),
         vec!["analysis.metrics: a query needs a successCondition"]),
    ];
    for (yaml, want) in cases {
        assert_eq!(check(&yaml), want, "{yaml}");
    }
}

#[test]
fn limits_and_enums_are_in_the_schema() {
    let metric = &schema()["properties"]["metrics"];
    assert_eq!(metric["maxItems"], 10);
    let props = &metric["items"]["properties"];
    assert_eq!(props["count"]["minimum"], 1.0);
    assert_eq!(props["intervalSeconds"]["minimum"], 1.0);
    assert_eq!(props["failureLimit"]["minimum"], 0.0);
    assert_eq!(props["consecutiveSuccessLimit"]["minimum"], 1.0);
    assert_eq!(
        props["onEmpty"]["enum"],
        serde_json::json!(["inconclusive", "success", "failure"])
    );
    assert_eq!(props["onEmpty"]["default"], "inconclusive");
    assert_eq!(
        props["builtin"]["enum"],
        serde_json::json!(["errorRatio", "latencyP99"])
    );
    for (name, prop) in props.as_object().unwrap() {
        assert!(
            prop["description"].is_string(),
            "{name} has kubectl explain text"
        );
    }
}
