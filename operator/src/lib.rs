//! rag-operator: runs RAG pipelines on Kubernetes as `RagIndex` and `RagPipeline` resources and ships
//! every change to a pipeline as a blue-green rollout.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod api;
pub mod apply;
pub mod client;
pub mod conditions;
pub mod context;
pub mod controller;
pub mod crash;
pub mod crds;
pub mod digest;
pub mod error;
pub mod index;
pub mod leader;
pub mod meta;
pub mod metrics;
pub mod monitoring;
pub mod pipeline;
pub mod security;
pub mod server;
pub mod telemetry;
pub mod watch;
