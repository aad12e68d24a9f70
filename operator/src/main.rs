//! The manager: wires telemetry, the HTTP endpoints and the RagPipeline controller.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::Parser;
use rag_operator::context::Shared;
use rag_operator::metrics::Metrics;
use rag_operator::pipeline::{self, Settings, health::HttpHealthChecker};
use rag_operator::server::{self, ServerState};
use rag_operator::telemetry::{self, LogFormat};

/// Kubernetes operator for RAG pipelines with blue-green rollouts.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "json")]
    log_format: LogFormat,
    /// Seconds between reconciliations of a steady pipeline (watch events drive everything
    /// else; this only catches what a watch might have missed).
    #[arg(long, env = "RESYNC_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    resync_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Two TLS stacks are linked in; kube's client needs the process-wide provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    telemetry::init(args.log_format);

    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (KUBECONFIG or in-cluster)")?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding {}", args.metrics_addr))?;
    let app = server::router(ServerState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });

    let shared = Arc::new(Shared::new(client, metrics));
    tracing::info!(
        namespace = args.namespace.as_deref().unwrap_or("*"),
        "starting the RagPipeline controller"
    );
    ready.store(true, Ordering::Relaxed);
    let settings = Settings {
        namespace: args.namespace,
        resync: std::time::Duration::from_secs(args.resync_seconds),
    };
    pipeline::run(shared, Arc::new(HttpHealthChecker::new()), settings).await;
    tracing::info!("shut down");
    Ok(())
}
