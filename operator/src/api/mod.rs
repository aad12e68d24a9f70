//! The `ragops.io/v1alpha1` API: what users write (`spec`) and what the operator reports (`status`).
//!
//! Field doc comments become `kubectl explain` text. Defaults live in the schema (the API server
//! fills them in), so the operator never rewrites a spec and GitOps tools see no drift.

mod common;
mod index;
mod pipeline;
mod pipeline_analysis;
mod pipeline_analysis_status;
mod pipeline_canary;
mod pipeline_golden;
mod pipeline_monitoring;
mod pipeline_runtime;
mod pipeline_server;
mod pipeline_status;

pub use common::*;
pub use index::*;
pub use pipeline::*;
pub use pipeline_analysis::*;
pub use pipeline_analysis_status::*;
pub use pipeline_canary::*;
pub use pipeline_golden::*;
pub use pipeline_monitoring::*;
pub use pipeline_runtime::*;
pub use pipeline_server::*;
pub use pipeline_status::*;

/// API group of every ragops kind.
pub const GROUP: &str = "ragops.io";
