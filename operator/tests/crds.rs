//! The checked-in CRDs are exactly what the API types generate, and carry what users rely on.

use std::path::Path;

use rag_operator::crds::rendered;
use serde::Deserialize;

#[test]
fn checked_in_crds_match_the_api_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    for (name, yaml) in rendered() {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            on_disk == yaml,
            "crds/{name} is out of date: run `make crds`"
        );
    }
}

#[test]
fn pipeline_crd_has_printer_columns_short_names_and_cel_rules() {
    let crds = rendered();
    let (_, pipeline) = crds
        .iter()
        .find(|(n, _)| n.contains("ragpipelines"))
        .unwrap();
    let crd: serde_json::Value = serde_yaml::from_str(pipeline).unwrap();
    let names = &crd["spec"]["names"];
    assert_eq!(names["shortNames"], serde_json::json!(["ragp"]));
    assert_eq!(names["categories"], serde_json::json!(["rag"]));
    let version = &crd["spec"]["versions"][0];
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Phase", "Active", "Revision", "Ready", "Index", "Age"]
    );
    assert!(version["subresources"]["status"].is_object());
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    let rule = &spec["autoscaling"]["x-kubernetes-validations"][0];
    assert_eq!(rule["rule"], "self.minReplicas <= self.maxReplicas");
    assert_eq!(spec["retrieval"]["properties"]["topK"]["minimum"], 1.0);
    assert_eq!(spec["retrieval"]["properties"]["topK"]["maximum"], 100.0);
    assert_eq!(
        spec["rollout"]["properties"]["autoPromote"]["default"],
        true
    );
    assert_eq!(
        spec["llm"]["properties"]["provider"]["enum"],
        serde_json::json!(["openai", "extractive"])
    );
    assert!(
        spec["rollout"]["properties"]["healthCheck"]["properties"]["path"]["description"]
            .as_str()
            .is_some(),
        "field docs become kubectl explain text"
    );
}

#[test]
fn index_crd_requires_exactly_one_vector_store() {
    let crds = rendered();
    let (_, index) = crds.iter().find(|(n, _)| n.contains("ragindexes")).unwrap();
    let crd: serde_json::Value = serde_yaml::from_str(index).unwrap();
    assert_eq!(
        crd["spec"]["names"]["shortNames"],
        serde_json::json!(["ragi"])
    );
    let store = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["vectorStore"];
    assert_eq!(
        store["x-kubernetes-validations"][0]["rule"],
        "has(self.qdrant) != has(self.embedded)"
    );
}

/// The `spec` properties of the RagPipeline schema.
fn pipeline_spec() -> serde_json::Value {
    let crds = rendered();
    let (_, pipeline) = crds
        .iter()
        .find(|(n, _)| n.contains("ragpipelines"))
        .unwrap();
    let crd: serde_json::Value = serde_yaml::from_str(pipeline).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        .clone()
}

/// Every property name anywhere under `schema`.
fn property_names(schema: &serde_json::Value, names: &mut Vec<String>) {
    match schema {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                names.extend(props.keys().cloned());
            }
            map.values().for_each(|v| property_names(v, names));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| property_names(v, names)),
        _ => {}
    }
}

#[test]
fn field_names_keep_acronyms_in_capitals() {
    // Kubernetes API conventions: `targetCPUUtilization`, `podIPs`, `expectSourceIDs`; an acronym
    // that starts a name is all lower case (`apiKeySecretRef`, `url`).
    const ACRONYMS: [&str; 12] = [
        "Api", "Cpu", "Dns", "Gpu", "Http", "Id", "Ids", "Ip", "Ips", "Tls", "Uri", "Url",
    ];
    let mut names = vec![];
    for (_, yaml) in rendered() {
        let crd: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        property_names(&crd, &mut names);
    }
    let camel_acronym = |name: &str| {
        ACRONYMS.iter().any(|a| {
            name.match_indices(a).any(|(at, _)| {
                let after = name[at + a.len()..].chars().next();
                at > 0 && after.is_none_or(|c| c.is_ascii_uppercase())
            })
        })
    };
    let bad: Vec<&String> = names.iter().filter(|n| camel_acronym(n)).collect();
    assert!(bad.is_empty(), "acronyms in camel case: {bad:?}");
    let spec = pipeline_spec();
    let autoscaling = &spec["autoscaling"]["properties"];
    assert!(autoscaling["targetCPUUtilization"].is_object());
    let smoke = &spec["rollout"]["properties"]["smokeQueries"]["items"]["properties"];
    assert!(smoke["expectSourceIDs"].is_object());
}

#[test]
fn server_settings_are_bounded_and_defaulted_by_the_schema() {
    let server = &pipeline_spec()["server"]["properties"];
    let body = &server["maxBodyBytes"];
    assert_eq!(
        (&body["minimum"], &body["maximum"], &body["default"]),
        (
            &serde_json::json!(1024.0),
            &serde_json::json!(1_073_741_824.0),
            &serde_json::json!(8_388_608)
        )
    );
    let timeouts = &server["timeouts"];
    assert_eq!(
        timeouts["default"],
        serde_json::json!({"requestSeconds": 60, "shutdownGraceSeconds": 25})
    );
    assert_eq!(timeouts["properties"]["requestSeconds"]["minimum"], 1.0);
    let rate = &server["rateLimit"];
    assert_eq!(rate["required"], serde_json::json!(["requestsPerSecond"]));
    assert_eq!(rate["properties"]["requestsPerSecond"]["minimum"], 1.0);
    assert_eq!(
        server["apiKeysSecretRef"]["required"],
        serde_json::json!(["name"])
    );
}

#[test]
fn pod_labels_cannot_take_the_operators_own_keys() {
    let runtime = &pipeline_spec()["runtime"]["properties"];
    let pod = &runtime["podTemplate"]["properties"];
    let labels = &pod["labels"];
    let rule = labels["x-kubernetes-validations"][0]["rule"]
        .as_str()
        .unwrap();
    for prefix in rag_operator::api::RESERVED_LABEL_PREFIXES {
        assert!(
            rule.contains(&format!("!k.startsWith('{prefix}')")),
            "{rule}"
        );
    }
    // Bounded, so the API server's CEL cost estimate stays small.
    assert_eq!(labels["maxProperties"], 64);
    for field in ["annotations", "serviceAccountName", "imagePullSecrets"] {
        assert!(pod[field].is_object(), "{field}");
    }
    for field in ["envFrom", "dataSizeLimit", "tmpSizeLimit"] {
        assert!(runtime[field].is_object(), "{field}");
    }
    for probe in ["startup", "readiness", "liveness"] {
        let tuning = &runtime["probes"]["properties"][probe]["properties"];
        assert_eq!(tuning["periodSeconds"]["minimum"], 1.0, "{probe}");
        assert_eq!(tuning["failureThreshold"]["minimum"], 1.0, "{probe}");
        assert_eq!(tuning["initialDelaySeconds"]["minimum"], 0.0, "{probe}");
    }
}

/// Keys of `value` the `schema` does not know, as paths; the API server would drop them silently.
fn unknown_fields(
    value: &serde_json::Value,
    schema: &serde_json::Value,
    path: &str,
) -> Vec<String> {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return vec![];
    }
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| {
                let path = format!("{path}.{k}");
                match schema["properties"]
                    .get(k)
                    .or(schema.get("additionalProperties"))
                {
                    Some(s) => unknown_fields(v, s, &path),
                    None => vec![path],
                }
            })
            .collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| unknown_fields(v, &schema["items"], &format!("{path}[{i}]")))
            .collect(),
        _ => vec![],
    }
}

#[test]
fn samples_and_the_readme_use_only_fields_the_schema_knows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut docs = vec![];
    for dir in ["config/samples", "config/samples/qdrant"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap();
            docs.extend(
                serde_yaml::Deserializer::from_str(&text).map(serde_json::Value::deserialize),
            );
        }
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for block in readme.split("```yaml\n").skip(1) {
        let yaml = block.split("```").next().unwrap();
        docs.extend(serde_yaml::Deserializer::from_str(yaml).map(serde_json::Value::deserialize));
    }
    let schemas: Vec<serde_json::Value> = rendered()
        .iter()
        .map(|(_, yaml)| serde_yaml::from_str(yaml).unwrap())
        .collect();
    let mut checked = 0;
    for doc in docs {
        let doc = doc.unwrap();
        let Some(crd) = schemas
            .iter()
            .find(|c| c["spec"]["names"]["kind"] == doc["kind"])
        else {
            continue;
        };
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let unknown = unknown_fields(&doc["spec"], schema, "spec");
        assert!(unknown.is_empty(), "{}: {unknown:?}", doc["kind"]);
        checked += 1;
    }
    assert!(
        checked >= 3,
        "the RagIndex and RagPipeline samples and the README example"
    );
}
