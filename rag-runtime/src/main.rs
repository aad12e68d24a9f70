//! `rag-runtime`: wires the CLI to the library. `serve` runs the HTTP service until SIGTERM;
//! `ingest` stores files and prints a summary.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use rag_runtime::config::{RuntimeConfig, VectorStoreConfig};
use rag_runtime::ingest::{self, Report};
use rag_runtime::rag::Rag;
use rag_runtime::state::AppState;
use rag_runtime::store::VectorStore;
use rag_runtime::store::qdrant::QdrantStore;
use tracing_subscriber::EnvFilter;

/// The engine allocates per query and per segment; mimalloc keeps that cheap across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "rag-runtime",
    version,
    about = "The ragops RAG service and ingest CLI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve queries, chat completions and documents over HTTP.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on (overrides `server.listen`).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Chunk, embed and store the text files under each SOURCE.
    Ingest {
        #[command(flatten)]
        common: Common,
        /// Embedding batches in flight at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// With a Qdrant server: fill `<collection>-<REVISION>`, then point the alias
        /// `<collection>` at it once every chunk is stored.
        #[arg(long)]
        revision: Option<String>,
        /// After switching the alias, drop the collection it pointed at before.
        #[arg(long, requires = "revision")]
        drop_previous: bool,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Files or directories; a file's document id is its path relative to the directory.
        #[arg(required = true, value_name = "SOURCE")]
        sources: Vec<PathBuf>,
    },
}

#[derive(Args)]
struct Common {
    /// Runtime config (YAML); the embedded defaults when absent.
    #[arg(long, env = "RAG_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of the embedded store (overrides `vectorStore.embedded.dataDir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl Common {
    fn load(&self) -> anyhow::Result<RuntimeConfig> {
        let mut config = match &self.config {
            Some(path) => RuntimeConfig::load(path)?,
            None => RuntimeConfig::default(),
        };
        if let Some(dir) = &self.data_dir {
            match &mut config.vector_store {
                VectorStoreConfig::Embedded(e) => e.data_dir = dir.clone(),
                VectorStoreConfig::Qdrant(_) => {
                    tracing::warn!("--data-dir is ignored with a Qdrant server store")
                }
            }
        }
        Ok(config)
    }
}

fn main() -> ExitCode {
    rag_runtime::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,qdrant_edge=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { common, listen } => {
            let mut config = common.load()?;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            serve(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest {
            common,
            concurrency,
            revision,
            drop_previous,
            json,
            sources,
        } => {
            let config = common.load()?;
            let report =
                ingest_command(config, &sources, concurrency, revision, drop_previous).await?;
            print_report(&report, json);
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn serve(config: RuntimeConfig) -> anyhow::Result<()> {
    let listen = config.server.listen.clone();
    let state = AppState::from_config(config)
        .await
        .context("starting the runtime")?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        collection = %state.rag.config.collection.0,
        embedder = %state.rag.embedder.describe(),
        generator = %state.rag.generator.describe(),
        auth = state.api_keys.enabled(),
        "serving"
    );
    rag_runtime::server::serve(state, listener, rag_runtime::server::shutdown_signal()).await?;
    Ok(())
}

async fn ingest_command(
    mut config: RuntimeConfig,
    sources: &[PathBuf],
    concurrency: usize,
    revision: Option<String>,
    drop_previous: bool,
) -> anyhow::Result<Report> {
    let alias = config.collection.0.clone();
    let qdrant = match (&config.vector_store, &revision) {
        (VectorStoreConfig::Qdrant(q), Some(rev)) => {
            // Checked before the revision's collection exists, so a failure leaves nothing behind.
            QdrantStore::connect(q, &alias, config.distance)?
                .ensure_alias_free(&alias)
                .await?;
            config.collection.0 = format!("{alias}-{rev}");
            Some(q.clone())
        }
        (VectorStoreConfig::Embedded(_), Some(_)) => {
            tracing::warn!(
                "--revision applies to a Qdrant server; the embedded store is written in place"
            );
            None
        }
        _ => None,
    };
    let rag = Arc::new(Rag::from_config(config.clone()).await?);
    rag.store
        .ensure_collection(rag.embedder.dimensions())
        .await?;
    let report = ingest::ingest_paths(Arc::clone(&rag), sources, concurrency, true).await?;
    if let Some(q) = qdrant {
        if !report.failed.is_empty() {
            bail!(
                "{} documents failed; alias {alias} left unchanged",
                report.failed.len()
            );
        }
        let target = QdrantStore::connect(&q, &config.collection.0, config.distance)?;
        let stored = target.count().await?;
        if stored != report.chunks as u64 {
            bail!(
                "collection {} holds {stored} chunks, expected {}; alias {alias} left unchanged",
                target.collection(),
                report.chunks
            );
        }
        let previous = target.switch_alias(&alias).await?;
        tracing::info!(
            alias,
            collection = target.collection(),
            ?previous,
            "alias switched"
        );
        if let (Some(previous), true) = (previous, drop_previous) {
            target.drop_collection(&previous).await?;
            tracing::info!(collection = previous, "previous collection dropped");
        }
    }
    Ok(report)
}

fn print_report(report: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("a report serialises")
        );
        return;
    }
    println!(
        "ingested {} documents, {} chunks in {:.2}s ({:.0} chunks/s); {} failed; source digest {}",
        report.documents,
        report.chunks,
        report.elapsed.as_secs_f64(),
        report.chunks_per_second(),
        report.failed.len(),
        report.source_digest
    );
    for (id, reason) in &report.failed {
        println!("failed: {id}: {reason}");
    }
}
