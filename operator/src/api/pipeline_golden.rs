//! `RagPipeline.spec.rollout.goldenSet` and `status.goldenSet`: retrieval regression analysis.
//! A ConfigMap of queries, each with the documents it should find, is run against the new colour
//! and the active one before traffic moves; the new colour must reach `minRecallAtK` and must not
//! fall more than `maxRegression` below the active colour on recall@K or MRR. The set is parsed
//! and scored by `crate::analysis::golden`; the gate is `pipeline/rollout/golden.rs`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Color;

/// A golden set and the bar the new colour must clear on it.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GoldenSetSpec {
    /// The key of a ConfigMap in the pipeline's namespace holding the set: JSON Lines
    /// (`{"query": "...", "expectSourceIDs": ["guides/a.md"]}` per line) or a YAML list of the
    /// same objects.
    pub config_map_ref: GoldenSetRef,
    /// How many sources of each answer count (recall@K); the pipeline's `retrieval.topK` when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub k: Option<i32>,
    /// The recall@K the new colour must reach, from 0 to 1 (the mean over queries of the share of
    /// expected documents found in the top K).
    #[serde(default, rename = "minRecallAtK")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_recall_at_k: f64,
    /// How far, in absolute points from 0 to 1, the new colour's recall@K and its MRR may fall
    /// below the active colour's on the same set.
    #[serde(default = "default_max_regression")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_regression: f64,
    /// Queries in flight at once against each colour.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 32))]
    pub concurrency: i32,
    /// Seconds the whole set may take on both colours; a run over budget is inconclusive, never a
    /// pass.
    #[serde(default = "default_time_budget")]
    #[schemars(range(min = 5, max = 3600))]
    pub time_budget_seconds: i32,
}

/// A key of a ConfigMap in the pipeline's namespace.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GoldenSetRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default = "default_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_key() -> String {
    "golden.jsonl".into()
}

fn default_max_regression() -> f64 {
    0.05
}

fn default_concurrency() -> i32 {
    4
}

fn default_time_budget() -> i32 {
    60
}

/// Where a golden-set run stands.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GoldenSetPhase {
    /// The queries are out.
    #[default]
    Running,
    /// The new colour cleared the bar.
    Passed,
    /// Below `minRecallAtK`, or regressed by more than `maxRegression`.
    Failed,
    /// Over the time budget, queries that got no answer, or no result at all: never a pass.
    Inconclusive,
}

/// recall@K and MRR of one colour on the set.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GoldenScore {
    pub color: Color,
    pub revision: String,
    #[serde(rename = "recallAtK")]
    pub recall_at_k: f64,
    /// Mean reciprocal rank of the first expected document (0 when none is in the top K).
    pub mrr: f64,
}

/// The golden-set run of the rollout in flight, or of the last one.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GoldenSetStatus {
    /// The revision measured.
    pub revision: String,
    /// The colour it runs on.
    pub color: Color,
    #[serde(default)]
    pub phase: GoldenSetPhase,
    pub started_at: Time,
    /// The new colour's scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<GoldenScore>,
    /// The active colour's scores on the same set (none on a first deploy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<GoldenScore>,
    /// Queries in the set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries: Option<i32>,
    /// Queries the new colour answers worse than the active one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regressed: Option<i32>,
    /// Why it ended as it did (the first regressed queries by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
