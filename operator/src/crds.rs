//! The CustomResourceDefinitions of the API, rendered as the YAML checked in under `crds/`.

use kube::CustomResourceExt;

use crate::api::{RagIndex, RagPipeline};

/// `(file name, YAML)` of every CRD, in a stable order.
pub fn rendered() -> Vec<(&'static str, String)> {
    let render = |crd| serde_yaml::to_string(&crd).expect("a CRD always serialises");
    vec![
        ("ragops.io_ragindexes.yaml", render(RagIndex::crd())),
        ("ragops.io_ragpipelines.yaml", render(RagPipeline::crd())),
    ]
}
