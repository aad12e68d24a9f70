use serde_json::{Value, json};

use super::*;
use crate::pod_runner::fixtures::{inputs, pod};

fn container(env: Value, env_from: Value) -> Container {
    serde_json::from_value(json!({"name": "c", "env": env, "envFrom": env_from})).unwrap()
}

fn resolved(env: Value, env_from: Value) -> Result<BTreeMap<String, String>> {
    let c = container(env, env_from);
    resolve(
        &c,
        &pod(json!({"containers": [], "nodeName": "kwok-node-0"})),
        &inputs(),
    )
}

#[test]
fn values_secrets_config_maps_and_pod_fields() {
    let env = resolved(
        json!([
            {"name": "PLAIN", "value": "v"},
            {"name": "EMPTY"},
            {"name": "RAG_LLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "token"}}},
            {"name": "DOC", "valueFrom": {"configMapKeyRef": {"name": "docs", "key": "a.md"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "COLOR", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ragops.io/color']"}}},
        ]),
        json!([]),
    )
    .unwrap();
    let expected = [
        ("PLAIN", "v"),
        ("EMPTY", ""),
        ("RAG_LLM_API_KEY", "sk-llm"),
        ("DOC", "# A\n"),
        ("POD", "handbook-blue-x"),
        ("NS", "ns"),
        ("IP", "127.1.0.5"),
        ("NODE", "kwok-node-0"),
        ("COLOR", "blue"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!(env, BTreeMap::from(expected));
}

#[test]
fn env_from_with_prefix_then_env_overrides() {
    let env = resolved(
        json!([{"name": "CFG_MODE", "value": "slow"}]),
        json!([
            {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
            {"secretRef": {"name": "api-keys"}},
            {"secretRef": {"name": "absent", "optional": true}},
        ]),
    )
    .unwrap();
    let keys: Vec<&str> = env.keys().map(String::as_str).collect();
    // `not=valid` is no variable name: skipped, as the kubelet does.
    assert_eq!(keys, ["CFG_LEVEL", "CFG_MODE", "keys"]);
    assert_eq!(env["CFG_LEVEL"], "debug");
    assert_eq!(env["CFG_MODE"], "slow");
    assert_eq!(env["keys"], "token-one\ntoken-two\n");
}

#[test]
fn optional_references_may_be_absent_required_ones_may_not() {
    let optional = json!([
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "nope", "optional": true}}},
        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": true}}},
    ]);
    assert_eq!(resolved(optional, json!([])).unwrap(), BTreeMap::new());
    let cases = [
        (
            json!([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "nope"}}}]),
            json!([]),
            "Secret llm has no key nope",
        ),
        (
            json!([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "raw"}}}]),
            json!([]),
            "not UTF-8",
        ),
        (
            json!([{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]),
            json!([]),
            "only secretKeyRef",
        ),
        (
            json!([{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}}]),
            json!([]),
            "fieldRef status.phase is not supported",
        ),
        (
            json!([]),
            json!([{"configMapRef": {"name": "nope"}}]),
            "ConfigMap nope not found",
        ),
    ];
    for (env, env_from, message) in cases {
        let err = resolved(env, env_from).unwrap_err();
        assert!(format!("{err:#}").contains(message), "{err:#}");
    }
}

#[test]
fn references_to_earlier_variables_are_expanded() {
    let env = resolved(
        json!([
            {"name": "DIR", "value": "/data"},
            {"name": "INDEX", "value": "$(DIR)/index"},
            {"name": "LATER", "value": "$(NEXT)"},
            {"name": "NEXT", "value": "n"},
            {"name": "ESCAPED", "value": "$$(DIR) costs $5"},
        ]),
        json!([]),
    )
    .unwrap();
    assert_eq!(env["INDEX"], "/data/index");
    assert_eq!(env["LATER"], "$(NEXT)");
    assert_eq!(env["ESCAPED"], "$(DIR) costs $5");
}

#[test]
fn expansion_edge_cases() {
    let vars = BTreeMap::from([("A".to_string(), "x".to_string())]);
    for (from, to) in [
        ("$(A)$(A)", "xx"),
        ("$(A", "$(A"),
        ("$", "$"),
        ("a$$b", "a$b"),
        ("$(B)-$(A)", "$(B)-x"),
        ("ümlaut $(A)", "ümlaut x"),
    ] {
        assert_eq!(expand(from, &vars), to, "{from}");
    }
}
