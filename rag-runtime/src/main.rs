//! `rag-runtime`: wires the CLI to the library. `serve` runs the HTTP service until SIGTERM;
//! `ingest` stores files and URLs, prints a summary and, with `--report-file`, writes the JSON
//! outcome a Kubernetes Job's termination message carries.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand};
use futures::FutureExt;
use rag_runtime::config::{RuntimeConfig, VectorStoreConfig};
use rag_runtime::ingest::{self, JobOptions, Outcome, Source, SourceLimits};
use rag_runtime::redact;
use rag_runtime::state::AppState;
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
    /// Chunk, embed and store the text files under each SOURCE, or fetched from it.
    Ingest {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ingest: IngestArgs,
    },
}

#[derive(Args)]
struct IngestArgs {
    /// Embedding batches in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// With a Qdrant server: fill `<collection>-<REVISION>`, then point the alias
    /// `<collection>` at it once every chunk is stored. A rerun of the same revision refills
    /// its collection, or succeeds at once when the alias already points at it, complete.
    #[arg(long)]
    revision: Option<String>,
    /// After switching the alias, drop the collection it pointed at before.
    #[arg(long, requires = "revision")]
    drop_previous: bool,
    /// Read every source and compute the source digest first; when it equals DIGEST, store
    /// nothing (no collection created, no alias changed) and report `"unchanged": true` with
    /// the documents, chunks and sourceDigest the sources make.
    #[arg(long, value_name = "DIGEST")]
    unless_digest: Option<String>,
    /// After the run, write one JSON object to PATH (under 4000 bytes, for a Kubernetes
    /// termination message): the summary plus `unchanged` and the `collection` written, with at most
    /// five `failed` entries and `failedTotal` when there were more; on any error
    /// `{"error": "..."}` (and exit code 1).
    #[arg(long, value_name = "PATH")]
    report_file: Option<PathBuf>,
    /// Largest body read from a URL SOURCE; a larger one fails that document.
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_name = "BYTES")]
    max_source_bytes: u64,
    /// Time limit for fetching each URL SOURCE, body included.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    source_timeout_seconds: u64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// Files, directories or `http://`/`https://` URLs. A file's document id is its path
    /// relative to the directory; a URL's is the URL (without user and password).
    #[arg(required = true, value_name = "SOURCE")]
    sources: Vec<OsString>,
}

impl IngestArgs {
    fn options(&self) -> JobOptions {
        JobOptions {
            concurrency: self.concurrency,
            revision: self.revision.clone(),
            drop_previous: self.drop_previous,
            unless_digest: self.unless_digest.clone(),
            limits: SourceLimits {
                max_bytes: self.max_source_bytes,
                timeout: Duration::from_secs(self.source_timeout_seconds),
            },
            show_progress: true,
        }
    }
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let report_file = match &cli.command {
        Command::Ingest { ingest, .. } => ingest.report_file.clone(),
        Command::Serve { .. } => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // A panic is an outcome too: the report file still says what happened.
    let result = runtime
        .block_on(AssertUnwindSafe(run(cli)).catch_unwind())
        .unwrap_or_else(|panic| Err(anyhow!("panicked: {}", panic_message(panic.as_ref()))));
    if let Some(path) = report_file {
        let json = match &result {
            Ok(Some(outcome)) => ingest::report_json(Ok(outcome)),
            Ok(None) => ingest::report_json(Err(&anyhow!("the ingest reported nothing"))),
            Err(err) => ingest::report_json(Err(err)),
        };
        if !write_report(&path, &json) {
            return ExitCode::FAILURE;
        }
    }
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{}", redact::urls_in(&format!("{err:#}")));
            ExitCode::FAILURE
        }
    }
}

/// A command line clap refuses. `ingest --report-file PATH` still gets its report, so a Job
/// given bad arguments says why in its termination message.
fn usage_error(err: clap::Error) -> ExitCode {
    let path = err.use_stderr().then(report_file_arg).flatten();
    let Some(path) = path else { err.exit() };
    let _ = err.print();
    write_report(
        &path,
        &ingest::report_json(Err(&anyhow!("{}", err.render()))),
    );
    ExitCode::FAILURE
}

fn write_report(path: &Path, json: &str) -> bool {
    let written = std::fs::write(path, json);
    if let Err(err) = &written {
        tracing::error!("writing the report file {}: {err}", path.display());
    }
    written.is_ok()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    (panic.downcast_ref::<&str>().copied())
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// `--report-file PATH` or `--report-file=PATH` among the raw arguments.
fn report_file_arg() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--report-file" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--report-file=")) {
            return Some(path.into());
        }
    }
    None
}

/// Serves until SIGTERM (no outcome), or runs an ingest and prints its summary.
async fn run(cli: Cli) -> anyhow::Result<Option<Outcome>> {
    match cli.command {
        Command::Serve { common, listen } => {
            let mut config = common.load()?;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            serve(config).await?;
            Ok(None)
        }
        Command::Ingest { common, ingest } => {
            let config = common.load()?;
            let sources: Vec<Source> = ingest
                .sources
                .iter()
                .cloned()
                .map(Source::from_arg)
                .collect();
            let outcome = ingest::run_ingest(config, &sources, &ingest.options()).await?;
            print_outcome(&outcome, ingest.json);
            Ok(Some(outcome))
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

fn print_outcome(outcome: &Outcome, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(outcome).expect("a report serialises")
        );
        return;
    }
    let report = &outcome.report;
    if outcome.unchanged {
        println!(
            "unchanged: {} documents, {} chunks, source digest {}; nothing stored",
            report.documents, report.chunks, report.source_digest
        );
        return;
    }
    println!(
        "ingested {} documents, {} chunks into {} in {:.2}s ({:.0} chunks/s); source digest {}",
        report.documents,
        report.chunks,
        outcome.collection.as_deref().unwrap_or_default(),
        report.elapsed.as_secs_f64(),
        report.chunks_per_second(),
        report.source_digest
    );
}
