//! `make bench`: retrieval throughput and latency of `POST /v1/query` over loopback HTTP on the
//! embedded store with the local embedder and extractive answers (no model: retrieval only),
//! at 10k and 100k chunks; ingest chunks/s; recall of the dense search; resident memory.
//!
//! The load generator runs in this process on its own runtime and shares the machine's cores
//! with the server: the numbers are a floor, not a ceiling.
//!
//! Flags (after `--`): `--sizes 10000,100000`, `--seconds 10`, `--max-requests 1000000`,
//! `--connections 1,32` (one load run each), `--server-threads 2`, `--client-threads 1`,
//! `--dense-only` (no BM25), `--search-ef 64` (`retrieval.searchEf`), `--index-every 20000`
//! (chunks an ingest writes between index builds).

mod corpus;
mod load;
mod recall;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rag_runtime::config::{EmbeddedConfig, RuntimeConfig, VectorStoreConfig};
use rag_runtime::ingest::{self, Progress};
use rag_runtime::rag::Rag;
use rag_runtime::state::{ApiKeys, AppState};
use rag_runtime::store::{ChunkRecord, Hit, SearchRequest, VectorStore};
use serde_json::json;

use load::Load;

/// The same allocator as the `rag-runtime` binary, so the numbers are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Questions whose dense results are checked against a brute-force scan.
const RECALL_QUESTIONS: usize = 200;
const TOP_K: usize = 5;
/// How deep each retriever's list is when hybrid retrieval fuses them for `TOP_K` results.
const FUSION_CANDIDATES: usize = 20;

struct Options {
    sizes: Vec<usize>,
    seconds: u64,
    max_requests: usize,
    connections: Vec<usize>,
    server_threads: usize,
    client_threads: usize,
    dense_only: bool,
    search_ef: Option<u32>,
    index_every: usize,
}

fn list(value: String) -> Vec<usize> {
    value
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn options() -> Options {
    let mut o = Options {
        sizes: vec![10_000, 100_000],
        seconds: 10,
        max_requests: 1_000_000,
        connections: vec![1, 32],
        server_threads: 2,
        client_threads: 1,
        dense_only: false,
        search_ef: None,
        index_every: ingest::INDEX_EVERY_CHUNKS,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match flag.as_str() {
            "--sizes" => o.sizes = list(value()),
            "--seconds" => o.seconds = value().parse().unwrap_or(o.seconds),
            "--max-requests" => o.max_requests = value().parse().unwrap_or(o.max_requests),
            "--connections" => o.connections = list(value()),
            "--server-threads" => o.server_threads = value().parse().unwrap_or(o.server_threads),
            "--client-threads" => o.client_threads = value().parse().unwrap_or(o.client_threads),
            "--dense-only" => o.dense_only = true,
            "--search-ef" => o.search_ef = value().parse().ok(),
            "--index-every" => o.index_every = value().parse().unwrap_or(o.index_every),
            // cargo bench passes `--bench`; anything else unknown is ignored too.
            _ => {}
        }
    }
    o
}

struct Timed {
    inner: Arc<dyn VectorStore>,
    index_time: std::sync::Mutex<Duration>,
}

#[async_trait]
impl VectorStore for Timed {
    async fn ensure_collection(&self, d: usize) -> rag_runtime::error::Result<()> {
        self.inner.ensure_collection(d).await
    }
    async fn upsert(&self, c: Vec<ChunkRecord>) -> rag_runtime::error::Result<()> {
        self.inner.upsert(c).await
    }
    async fn delete_document(&self, id: &str, from: u32) -> rag_runtime::error::Result<u64> {
        self.inner.delete_document(id, from).await
    }
    async fn search(&self, r: SearchRequest) -> rag_runtime::error::Result<Vec<Hit>> {
        self.inner.search(r).await
    }
    async fn count(&self) -> rag_runtime::error::Result<u64> {
        self.inner.count().await
    }
    async fn ready(&self) -> rag_runtime::error::Result<()> {
        self.inner.ready().await
    }
    async fn build_index(&self) -> rag_runtime::error::Result<()> {
        let started = Instant::now();
        let r = self.inner.build_index().await;
        *self.index_time.lock().unwrap() += started.elapsed();
        r
    }
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    rag_runtime::install_crypto_provider();
    let o = options();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "rag-runtime benchmark: embedded store, local embedder (256 dims), {}, searchEf {}, extractive answers,\n\
         index built every {} chunks of an ingest\n\
         machine: {cores} cores available; server runtime {} threads, load generator {}; {} s per load run",
        if o.dense_only {
            "dense only"
        } else {
            "hybrid BM25 + dense"
        },
        o.search_ef
            .unwrap_or(rag_runtime::config::RetrievalConfig::default().search_ef),
        o.index_every,
        o.server_threads,
        o.client_threads,
        o.seconds
    );
    let vocab = corpus::vocabulary(5000);
    let questions = corpus::questions(&vocab, 2000);
    let bodies: Arc<Vec<String>> = Arc::new(
        questions
            .iter()
            .map(|q| json!({"query": q, "topK": TOP_K}).to_string())
            .collect(),
    );
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.client_threads)
        .thread_name("loadgen")
        .enable_all()
        .build()
        .unwrap();
    for &size in &o.sizes {
        let server_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(o.server_threads)
            .thread_name("server")
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = RuntimeConfig {
            vector_store: VectorStoreConfig::Embedded(EmbeddedConfig {
                data_dir: dir.path().to_path_buf(),
            }),
            ..Default::default()
        };
        config.retrieval.hybrid = !o.dense_only;
        if let Some(ef) = o.search_ef {
            config.retrieval.search_ef = ef;
        }
        let documents = corpus::corpus(size, &vocab);
        let (state, report, index_time, recall) = server_rt.block_on(async {
            let mut rag = Rag::from_config(config).await.unwrap();
            let timed = Arc::new(Timed {
                inner: rag.store.clone(),
                index_time: Default::default(),
            });
            rag.store = timed.clone();
            let rag = Arc::new(rag);
            let report =
                ingest::ingest_in_rounds(rag.clone(), documents, 2 * cores, o.index_every, |_| {
                    Progress::Silent
                })
                .await;
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            let index_time = *timed.index_time.lock().unwrap();
            // Ingest consumed the documents; the corpus is seeded, so this is the same text.
            let stored = corpus::corpus(size, &vocab);
            let sample = &questions[..RECALL_QUESTIONS];
            let limits = [TOP_K, FUSION_CANDIDATES];
            let recall = recall::dense_recall(&rag, &stored, sample, TOP_K, &limits).await;
            let rag = Arc::into_inner(rag).expect("ingest released the pipeline");
            (
                AppState::new(rag, ApiKeys::default()),
                report,
                index_time,
                recall,
            )
        });
        let embed_upsert = report.elapsed.saturating_sub(index_time);
        println!(
            "\n== {} chunks ({} documents)",
            report.chunks, report.documents
        );
        println!(
            "ingest: {:.0} chunks/s embed+upsert ({:.1} s), HNSW index build {:.1} s, {:.0} chunks/s overall",
            report.chunks as f64 / embed_upsert.as_secs_f64(),
            embed_upsert.as_secs_f64(),
            index_time.as_secs_f64(),
            report.chunks_per_second()
        );
        println!(
            "dense search against a brute-force scan ({RECALL_QUESTIONS} questions): recall@{TOP_K} {:.3}; \
             exact top {TOP_K} within the {FUSION_CANDIDATES} candidates hybrid fusion ranks {:.3}",
            recall[0], recall[1]
        );

        let listener = server_rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/v1/query", listener.local_addr().unwrap());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = server_rt.spawn(rag_runtime::server::serve(state, listener, async {
            let _ = stop_rx.await;
        }));
        let warm_up = Load {
            connections: 4,
            seconds: 1,
            max_requests: 2_000,
        };
        client_rt.block_on(load::run(&url, bodies.clone(), &warm_up));
        for &connections in &o.connections {
            let run = Load {
                connections,
                seconds: o.seconds,
                max_requests: o.max_requests,
            };
            let result = client_rt.block_on(load::run(&url, bodies.clone(), &run));
            let plural = if connections == 1 { "" } else { "s" };
            result.print(&format!("{connections} connection{plural}"));
        }
        let _ = stop_tx.send(());
        server_rt.block_on(server).unwrap().unwrap();
        println!(
            "memory: RSS {} MiB, peak {} MiB (server, store and load generator in one process)",
            rss_kib("VmRSS:") / 1024,
            rss_kib("VmHWM:") / 1024
        );
        drop(server_rt);
        drop(dir);
    }
}
