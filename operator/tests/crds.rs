//! The checked-in CRDs are exactly what the API types generate, and carry what users rely on.

use std::path::Path;

use rag_operator::crds::rendered;

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
