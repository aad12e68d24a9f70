//! The CEL rules of `spec.rollout.strategy` and `spec.rollout.canary`, evaluated as the API
//! server would (see `pipeline_analysis_tests`).

use kube::CustomResourceExt;
use serde_json::Value;

use super::super::pipeline_analysis::tests::violations;
use crate::api::RagPipeline;

fn check(yaml: &str) -> Vec<String> {
    let crd = serde_json::to_value(RagPipeline::crd()).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["rollout"];
    let value: Value = serde_yaml::from_str(yaml).unwrap();
    let mut out = vec![];
    violations(schema, &value, &mut out);
    out
}

const ANALYSIS: &str = "analysis: {metrics: [{name: e, builtin: errorRatio, threshold: 0.05}], canary: {metrics: [e]}}";

#[test]
fn good_canaries_pass_every_rule() {
    let good = [
        "strategy: canary\ncanary: {steps: [{setWeight: 25}, {pause: {}}, {setWeight: 50}, {pause: {durationSeconds: 60}}]}".to_string(),
        format!("strategy: canary\ncanary: {{steps: [{{setWeight: 20}}, {{analysis: {{}}}}]}}\n{ANALYSIS}"),
        format!("strategy: canary\ncanary: {{steps: [{{setWeight: 20}}, {{pause: {{}}}}], analysis: {{startingStep: 1}}}}\n{ANALYSIS}"),
        "strategy: blueGreen".to_string(),
    ];
    for yaml in good {
        assert_eq!(check(&yaml), Vec::<String>::new(), "{yaml}");
    }
}

#[test]
fn bad_canaries_are_refused_with_a_message_naming_the_field() {
    let cases = [
        (
            "strategy: canary".to_string(),
            vec!["rollout.canary is required when rollout.strategy is canary"],
        ),
        (
            "strategy: canary\ncanary: {steps: [{setWeight: 20, pause: {}}, {}]}".to_string(),
            vec!["a canary step is exactly one of setWeight, pause or analysis"; 2],
        ),
        (
            "strategy: canary\ncanary: {steps: [{setWeight: 20}, {analysis: {}}]}".to_string(),
            vec!["rollout.canary runs analysis: name its metrics in rollout.analysis.canary"],
        ),
        (
            format!(
                "strategy: canary\ncanary: {{steps: [{{setWeight: 20}}], analysis: {{startingStep: 1}}}}\n{ANALYSIS}"
            ),
            vec!["canary.analysis.startingStep must name one of canary.steps (counted from 0)"],
        ),
        (
            format!(
                "strategy: canary\ncanary: {{steps: [{{analysis: {{}}}}], analysis: {{startingStep: 0}}}}\n{ANALYSIS}"
            ),
            vec![
                "canary: run the analysis in the background (canary.analysis) or as steps, not both",
            ],
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(check(&yaml), want, "{yaml}");
    }
}
