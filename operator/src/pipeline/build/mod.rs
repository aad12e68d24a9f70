//! Desired children of a RagPipeline, built by pure functions from the validated pipeline.
//!
//! Nothing here talks to the API server or reads a clock: given the same pipeline, RagIndex and
//! observed config keys, the same objects come out, which is what the unit tests pin down.

mod config;
mod deployment;
mod hpa;
mod inputs;
mod monitoring;
mod pdb;
mod service;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::api::{Color, RagIndex, RagPipeline};

pub use config::{config_key, config_map, runtime_config};
pub use deployment::{deployment, pod_template, revision};
pub use hpa::hpa;
pub use inputs::{INPUTS_ANNOTATION, Inputs, Source, is_snapshot, pin, snapshot, snapshot_name};
pub use monitoring::{Monitoring, metrics_service_name, monitoring};
pub use pdb::pdb;
pub use service::{SERVICE_PORT, active_service, color_service, preview_service};

/// Label carrying the pipeline name on every child and pod.
pub const PIPELINE_LABEL: &str = "ragops.io/pipeline";
/// Label telling the two Deployments (and their pods) apart.
pub const COLOR_LABEL: &str = "ragops.io/color";
/// Label with the revision a Deployment's pods run.
pub const REVISION_LABEL: &str = "ragops.io/revision";
/// Port the runtime listens on in every pod.
pub const RUNTIME_PORT: i32 = 8080;
/// Where the runtime config is mounted.
pub const CONFIG_DIR: &str = "/etc/ragops";

/// A RagPipeline together with what it references, checked and ready to build from.
#[derive(Clone, Debug)]
pub struct Validated {
    pub pipeline: RagPipeline,
    pub index: RagIndex,
    /// Versions of the sources and Secrets the pods read.
    pub inputs: Inputs,
    /// The collection the pods query: the index's active collection on a Qdrant server (so a
    /// re-index is a new pipeline revision), the index's alias in the embedded store.
    pub collection: String,
}

impl Validated {
    pub fn name(&self) -> String {
        self.pipeline.name_any()
    }

    pub fn namespace(&self) -> String {
        self.pipeline.namespace().unwrap_or_default()
    }

    /// Labels every child carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let name = self.name();
        let mut labels = crate::meta::standard_labels("rag-runtime", &name, "runtime");
        labels.insert(PIPELINE_LABEL.into(), name);
        labels
    }

    /// The HTTPRoute a canary's weights go on, if the spec names one.
    pub fn http_route(&self) -> Option<&str> {
        let canary = self.pipeline.spec.rollout.canary()?;
        Some(canary.traffic_routing.as_ref()?.http_route.name.as_str())
    }

    /// Selector of one colour's pods.
    pub fn selector(&self, color: Color) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PIPELINE_LABEL.into(), self.name()),
            (COLOR_LABEL.into(), color.to_string()),
        ])
    }

    /// Metadata of a child called `name`, owned by the pipeline.
    fn meta(&self, name: String) -> ObjectMeta {
        crate::meta::owned_by(&self.pipeline, name, self.labels())
    }
}

pub fn deployment_name(pipeline: &str, color: Color) -> String {
    format!("{pipeline}-{color}")
}

pub fn config_map_name(pipeline: &str) -> String {
    format!("{pipeline}-config")
}

pub fn preview_service_name(pipeline: &str) -> String {
    format!("{pipeline}-preview")
}

/// Service `<name>-<colour>`, a traffic router's backend.
pub fn color_service_name(pipeline: &str, color: Color) -> String {
    format!("{pipeline}-{color}")
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::Validated;
    use crate::api::{RagIndex, RagPipeline};

    pub const PIPELINE: &str = r#"
apiVersion: ragops.io/v1alpha1
kind: RagPipeline
metadata: { name: docs, namespace: team-a, uid: 1f0c9a52-0000-4000-8000-000000000001, generation: 3 }
spec:
  indexRef: { name: handbook }
  runtime: { image: "rag-runtime:test", replicas: 2 }
  llm: { provider: openai, model: gpt-4o-mini, apiKeySecretRef: { name: llm, key: token } }
  retrieval: { topK: 4 }
"#;

    pub const INDEX: &str = r#"
apiVersion: ragops.io/v1alpha1
kind: RagIndex
metadata: { name: handbook, namespace: team-a }
status: { activeCollection: handbook-5f3c0a9e21 }
spec:
  vectorStore: { qdrant: { url: "http://qdrant:6334", apiKeySecretRef: { name: qdrant } } }
  embedding: { provider: openai, model: text-embedding-3-small, dimensions: 1536 }
"#;

    pub fn validated() -> Validated {
        validated_with(PIPELINE, INDEX)
    }

    pub fn validated_with(pipeline: &str, index: &str) -> Validated {
        let pipeline: RagPipeline = serde_yaml::from_str(pipeline).unwrap();
        let index: RagIndex = serde_yaml::from_str(index).unwrap();
        let collection = crate::index::config::serving_collection(&index).unwrap();
        Validated {
            pipeline,
            index,
            collection,
            inputs: super::Inputs::default(),
        }
    }
}
