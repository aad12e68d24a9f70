//! rag-runtime: the RAG HTTP service and ingest CLI that every RagPipeline pod and RagIndex Job runs.
//!
//! With the `server` feature off only [`config`] is compiled: the one schema of the runtime's YAML
//! configuration, shared with the operator that renders it.
#![forbid(unsafe_code)]

pub mod config;
