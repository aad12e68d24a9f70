//! The manager: wires telemetry, the HTTP endpoints and the RagPipeline and RagIndex controllers.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use rag_operator::analysis::prometheus::PrometheusClient;
use rag_operator::client;
use rag_operator::context::Shared;
use rag_operator::index;
use rag_operator::leader::{Gate, Leadership, LeaseSettings, Timing};
use rag_operator::metrics::Metrics;
use rag_operator::pipeline::cache::SharedConfigMaps;
use rag_operator::pipeline::{self, Settings, health::HttpHealthChecker};
use rag_operator::server::{self, ServerState};
use rag_operator::telemetry::{self, LogFormat};
use rag_operator::watch::Scope;

/// Kubernetes operator for RAG pipelines with blue-green rollouts.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Serve only these namespaces (comma separated, or the flag repeated; default: all). The
    /// operator then lists and watches nothing cluster-wide, so Roles in them are all it needs.
    #[arg(long = "namespace", env = "WATCH_NAMESPACE", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// The Prometheus that metric analysis asks when a pipeline names none
    /// (`spec.rollout.analysis.prometheus.address`); empty for none.
    #[arg(long, env = "PROMETHEUS_URL")]
    prometheus_url: Option<String>,
    /// Seconds one analysis query may take; past that it counts as inconclusive.
    #[arg(long, env = "PROMETHEUS_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    prometheus_timeout_seconds: u64,
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
    /// Run only while holding a Lease, so several replicas can run with one reconciling.
    #[arg(long, env = "LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the Lease.
    #[arg(long, default_value = "ragops-operator")]
    lease_name: String,
    /// Seconds a Lease holds without renewal; a standby takes over this long after it last saw
    /// the leader renew.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..))]
    lease_duration_seconds: u64,
    /// Seconds after the start of its last successful renewal at which a leader stops writing and
    /// exits; shorter than the lease duration.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    renew_deadline_seconds: u64,
    /// Seconds between attempts to acquire or renew the Lease.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    retry_period_seconds: u64,
    /// Seconds between looks for the Prometheus Operator's CRDs while a pipeline's
    /// `spec.monitoring` needs them and they are missing.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    monitoring_recheck_seconds: u64,
    /// Reconciliations each controller runs at once (a pipeline is never reconciled twice at
    /// once); bounds the writes a fleet of pipelines created together sends in one go.
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    max_concurrent_reconciles: u16,
    /// Requests a second to the Kubernetes API on average (client-side token bucket; requests
    /// wait, never fail; a watch takes one token when it starts).
    #[arg(long, env = "KUBE_API_QPS", default_value_t = NonZeroU32::new(100).expect("non-zero"))]
    kube_api_qps: NonZeroU32,
    /// Requests to the Kubernetes API allowed at once after a quiet spell.
    #[arg(long, env = "KUBE_API_BURST", default_value_t = NonZeroU32::new(200).expect("non-zero"))]
    kube_api_burst: NonZeroU32,
    /// Seconds one request of a reconciliation may take, kube's own retries of 429/503/504
    /// included; then the reconciliation fails with reason APITimeout and backs off.
    #[arg(long, env = "API_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    api_timeout_seconds: u64,
    /// rag-runtime image of the ingest Jobs of RagIndexes that name none (`spec.ingest.image`).
    #[arg(long, env = "RUNTIME_IMAGE", default_value = concat!("ghcr.io/ragops/rag-runtime:", env!("CARGO_PKG_VERSION")))]
    runtime_image: String,
    /// The cluster's pod and service networks (comma separated, e.g. `10.244.0.0/16,10.96.0.0/12`):
    /// ingest Jobs refuse `url` sources there, besides loopback, link-local and private addresses.
    #[arg(long, env = "CLUSTER_CIDRS", value_delimiter = ',')]
    cluster_cidrs: Vec<ipnet::IpNet>,
    /// Images a RagIndex may run its ingest Job with (`spec.ingest.image`), comma-separated: a
    /// repository (any tag or digest of it), an exact reference, or a prefix ending in `*`.
    /// Empty: only the repository of `--runtime-image`.
    #[arg(long, env = "INGEST_IMAGE_ALLOW", value_delimiter = ',')]
    ingest_image_allow: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Two TLS stacks are linked in; kube's client needs the process-wide provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    telemetry::init(args.log_format);

    let lease = args
        .leader_elect
        .then(|| lease_settings(&args))
        .transpose()?;
    let gate = match lease {
        Some(_) => Gate::closed(),
        None => Gate::always(),
    };
    let limits = client::Limits {
        qps: args.kube_api_qps,
        burst: args.kube_api_burst,
    };
    let client = client::connect(limits, gate.clone()).await?;
    let metrics = Arc::new(Metrics::default());
    let caches = [
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    ];
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding {}", args.metrics_addr))?;
    let app = server::router(ServerState {
        metrics: metrics.clone(),
        synced: caches.to_vec(),
        leader: gate.clone(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });

    let leadership = match &lease {
        None => None,
        Some(s) => {
            let lease_client = client::lease_client(s.request_timeout()).await?;
            tokio::select! {
                leading = Leadership::acquire(lease_client, s, gate.clone()) => Some(leading),
                () = shutdown_signal() => return Ok(()),
            }
        }
    };
    let api_timeout = Duration::from_secs(args.api_timeout_seconds);
    let shared = Arc::new(Shared::new(client, metrics, api_timeout, gate));
    let [pipelines_synced, indexes_synced] = caches;
    let scope = Scope::new(args.namespaces);
    tracing::info!(
        namespaces = %scope.describe(),
        "starting the RagPipeline and RagIndex controllers"
    );
    let resync = Duration::from_secs(args.resync_seconds);
    let config_maps = SharedConfigMaps::watch(&shared.client, &scope);
    let indexes = index::run(
        shared.clone(),
        index::Settings {
            scope: scope.clone(),
            resync,
            ingest_image_allow: index::image::AllowList::new(
                &args.ingest_image_allow,
                &args.runtime_image,
            ),
            runtime_image: args.runtime_image,
            concurrency: args.max_concurrent_reconciles,
            cluster_cidrs: args.cluster_cidrs,
        },
        config_maps.for_indexes,
        indexes_synced,
    );
    let settings = Settings {
        scope,
        resync,
        monitoring_recheck: Duration::from_secs(args.monitoring_recheck_seconds),
        concurrency: args.max_concurrent_reconciles,
        prometheus_url: args.prometheus_url.filter(|u| !u.trim().is_empty()),
    };
    let health = Arc::new(HttpHealthChecker::new());
    let prometheus = Arc::new(PrometheusClient::new(Duration::from_secs(
        args.prometheus_timeout_seconds,
    )));
    let for_pipelines = config_maps.for_pipelines;
    let pipelines = pipeline::run(
        shared,
        health,
        prometheus,
        settings,
        for_pipelines,
        pipelines_synced,
    );
    let controller = async {
        futures::future::join(pipelines, indexes).await;
    };
    match leadership {
        None => controller.await,
        Some(mut leadership) => tokio::select! {
            () = controller => leadership.release().await,
            why = leadership.lost() => {
                // The gate closed at the renew deadline already; nothing more is written.
                tracing::error!(%why, "lost the Lease; exiting so that only the leader writes");
                std::process::exit(1);
            }
        },
    }
    tracing::info!("shut down");
    Ok(())
}

fn lease_settings(args: &Args) -> anyhow::Result<LeaseSettings> {
    let seconds = Duration::from_secs;
    let timing = Timing::new(
        seconds(args.lease_duration_seconds),
        seconds(args.renew_deadline_seconds),
        seconds(args.retry_period_seconds),
    )
    .map_err(|e| anyhow::anyhow!("leader election: {e}"))?;
    Ok(LeaseSettings {
        namespace: args.lease_namespace.clone(),
        name: args.lease_name.clone(),
        identity: std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("{}-{}", hostname(), std::process::id())),
        timing,
    })
}

/// SIGTERM or Ctrl-C: a standby waiting for the Lease stops at once.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "rag-operator".into())
}
