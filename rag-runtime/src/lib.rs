//! rag-runtime: the RAG HTTP service and ingest CLI that every RagPipeline pod and RagIndex Job runs.
//!
//! With the `server` feature off only [`config`] is compiled: the one schema of the runtime's YAML
//! configuration, shared with the operator that renders it. With it on, a question flows
//! `server` → [`rag::Rag`] (embed the question, search the [`store::VectorStore`], hand the passages
//! to a [`generate::Generator`]) → JSON or SSE; documents flow [`ingest`] → [`chunk`] → [`embed`] →
//! [`store`].
#![forbid(unsafe_code)]

pub mod config;
pub mod metric_names;

#[cfg(feature = "server")]
pub mod chunk;
#[cfg(feature = "server")]
pub mod embed;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod generate;
#[cfg(feature = "server")]
pub mod ingest;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod rag;
#[cfg(feature = "server")]
pub mod redact;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod state;
#[cfg(feature = "server")]
pub mod store;

#[cfg(feature = "server")]
pub use server::router;
#[cfg(feature = "server")]
pub use state::AppState;

/// Installs ring as the process-wide rustls crypto provider.
///
/// Several crates in the dependency graph enable rustls with different backends; without an
/// explicit choice the first TLS client panics. Safe to call more than once.
#[cfg(feature = "server")]
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
