//! Metric analysis (`spec.rollout.analysis`): Prometheus queries that decide whether a new
//! revision may take traffic, and whether it may keep it.
//!
//! Everything here but [`prometheus`] is pure, so the rules are table-tested without a cluster or
//! a Prometheus. What flows through:
//!
//! 1. [`compile`] the spec once per generation (templates, CEL conditions, built-in queries); a
//!    problem is a [`SpecError`] naming the field, for the pipeline's validate step.
//! 2. [`CompiledAnalysis::start`] a run (an [`AnalysisRunStatus`](crate::api::AnalysisRunStatus),
//!    kept in `status.analysis`) when the rollout reaches a stage.
//! 3. On every decision, [`CompiledAnalysis::advance`] says which metrics are due now, when to
//!    look again, or how the run ended ([`run`] holds the rules).
//! 4. Outside the reconcile's critical path, each due metric's [`CompiledAnalysis::query`] is
//!    sent with [`prometheus::PrometheusClient`], and the result comes back through
//!    [`CompiledAnalysis::record`] ([`measure`] turns it into a measurement).
//!
//! The rollout runs them as steps of the cutover (`pipeline/rollout/analysis.rs`: a gate before
//! promotion, a window after it); `pipeline/measurements.rs` sends the queries in the background.

pub mod builtin;
pub mod compile;
pub mod condition;
pub mod golden;
pub mod measure;
pub mod prometheus;
pub mod run;
pub mod template;

pub use compile::{CompiledAnalysis, CompiledMetric, SpecError, compile};
