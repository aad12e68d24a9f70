//! `make bench`: retrieval throughput and latency of `POST /v1/query` over loopback HTTP on the
//! embedded store with the local embedder and extractive answers (no model: retrieval only),
//! at 10k and 100k chunks; ingest chunks/s; resident memory.
//!
//! The corpus is synthetic (Zipf-like words from a fixed vocabulary, seeded, so every run
//! stores the same text). The load generator runs in this process on its own runtime and
//! shares the machine's cores with the server: the numbers are a floor, not a ceiling.
//!
//! Flags (after `--`): `--sizes 10000,100000`, `--seconds 10`, `--max-requests 1000000`,
//! `--connections 32`, `--server-threads 2`, `--client-threads 1`, `--dense-only` (no BM25).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rag_runtime::config::{EmbeddedConfig, RuntimeConfig, VectorStoreConfig};
use rag_runtime::ingest::{self, Progress};
use rag_runtime::rag::{Document, Rag};
use rag_runtime::state::{ApiKeys, AppState};
use rag_runtime::store::{ChunkRecord, Hit, SearchRequest, VectorStore};
use serde_json::{Map, json};

/// The same allocator as the `rag-runtime` binary, so the numbers are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    sizes: Vec<usize>,
    seconds: u64,
    max_requests: usize,
    connections: usize,
    server_threads: usize,
    client_threads: usize,
    dense_only: bool,
}

fn options() -> Options {
    let mut o = Options {
        sizes: vec![10_000, 100_000],
        seconds: 10,
        max_requests: 1_000_000,
        connections: 32,
        server_threads: 2,
        client_threads: 1,
        dense_only: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match flag.as_str() {
            "--sizes" => {
                o.sizes = value()
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect()
            }
            "--seconds" => o.seconds = value().parse().unwrap_or(o.seconds),
            "--max-requests" => o.max_requests = value().parse().unwrap_or(o.max_requests),
            "--connections" => o.connections = value().parse().unwrap_or(o.connections),
            "--server-threads" => o.server_threads = value().parse().unwrap_or(o.server_threads),
            "--client-threads" => o.client_threads = value().parse().unwrap_or(o.client_threads),
            "--dense-only" => o.dense_only = true,
            // cargo bench passes `--bench`; anything else unknown is ignored too.
            _ => {}
        }
    }
    o
}

/// xorshift64*: a seeded, dependency-free generator; the corpus must be the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// An index in `0..n` distributed like content-word frequencies: Zipf (s = 1) over ranks
    /// from 50 on, as if the 50 most frequent words were the stop words BM25 drops anyway. The
    /// most frequent index is about 0.4% of all words.
    fn zipfish(&mut self, n: usize) -> usize {
        const STOP_RANKS: f64 = 50.0;
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let rank = STOP_RANKS * ((STOP_RANKS + n as f64) / STOP_RANKS).powf(u);
        ((rank - STOP_RANKS) as usize).min(n - 1)
    }
}

fn vocabulary(size: usize) -> Vec<String> {
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zen", "bar", "dor", "fel", "gar", "hol",
        "jin", "kor", "lum", "mar", "nol", "per", "quin", "ros", "sul", "tor", "ul", "ven", "wis",
        "xan", "yor", "zul",
    ];
    let mut rng = Rng(0x5eed);
    (0..size)
        .map(|i| {
            let n = 2 + rng.below(3);
            let mut w: String = (0..n)
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                .collect();
            w.push_str(&(i % 97).to_string());
            w
        })
        .collect()
}

fn sentence(rng: &mut Rng, vocab: &[String], words: usize) -> String {
    let mut s: Vec<&str> = (0..words)
        .map(|_| vocab[rng.zipfish(vocab.len())].as_str())
        .collect();
    s.push(".");
    s.join(" ")
}

/// Documents of ~10 chunks each (default chunking: 1000 chars, 150 overlap).
fn corpus(chunks: usize, vocab: &[String]) -> Vec<Document> {
    let mut rng = Rng(0xC0FFEE);
    let docs = chunks.div_ceil(10);
    (0..docs)
        .map(|d| {
            let paragraphs: Vec<String> = (0..10)
                .map(|_| {
                    (0..7)
                        .map(|_| sentence(&mut rng, vocab, 12))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            Document {
                id: format!("synthetic/{d:06}.md"),
                text: paragraphs.join("\n\n"),
                metadata: Map::new(),
            }
        })
        .collect()
}

/// Times the index build separately from embedding and upserting.
struct Timed {
    inner: Arc<dyn VectorStore>,
    finish: std::sync::Mutex<Duration>,
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
    async fn finish_ingest(&self) -> rag_runtime::error::Result<()> {
        let started = Instant::now();
        let r = self.inner.finish_ingest().await;
        *self.finish.lock().unwrap() = started.elapsed();
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct LoadResult {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    client_ms: Vec<f64>,
    server_ms: Vec<f64>,
}

async fn load(
    url: String,
    bodies: Arc<Vec<String>>,
    o: &Options,
    seconds: u64,
    max: usize,
) -> LoadResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.connections)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let per_connection = max.div_ceil(o.connections);
    let mut tasks = Vec::new();
    for c in 0..o.connections {
        let (client, url, bodies, stop) =
            (client.clone(), url.clone(), bodies.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut client_ms, mut server_ms, mut errors) = (Vec::new(), Vec::new(), 0usize);
            for i in 0..per_connection {
                if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                    break;
                }
                let body = bodies[(c * 7919 + i) % bodies.len()].clone();
                let sent = Instant::now();
                match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let timing = r
                            .headers()
                            .get("server-timing")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| {
                                v.split("dur=").nth(1).and_then(|d| d.parse::<f64>().ok())
                            });
                        let _ = r.bytes().await;
                        client_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                        if let Some(t) = timing {
                            server_ms.push(t);
                        }
                    }
                    _ => errors += 1,
                }
            }
            (client_ms, server_ms, errors)
        }));
    }
    let mut result = LoadResult {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        client_ms: vec![],
        server_ms: vec![],
    };
    for t in tasks {
        let (c, s, e) = t.await.unwrap();
        result.requests += c.len();
        result.client_ms.extend(c);
        result.server_ms.extend(s);
        result.errors += e;
    }
    stop.store(true, Ordering::Relaxed);
    result.elapsed = started.elapsed();
    result.client_ms.sort_by(f64::total_cmp);
    result.server_ms.sort_by(f64::total_cmp);
    result
}

fn main() {
    rag_runtime::install_crypto_provider();
    let o = options();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "rag-runtime benchmark: embedded store, local embedder (256 dims), {}, extractive answers\n\
         machine: {cores} cores available; server runtime {} threads, load generator {}; {} connections; {} s per size",
        if o.dense_only {
            "dense only"
        } else {
            "hybrid BM25 + dense"
        },
        o.server_threads,
        o.client_threads,
        o.connections,
        o.seconds
    );
    let vocab = vocabulary(5000);
    let mut rng = Rng(42);
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..2000)
            .map(|_| {
                let q: Vec<&str> = (0..6)
                    .map(|_| vocab[rng.zipfish(vocab.len() / 4)].as_str())
                    .collect();
                json!({"query": q.join(" "), "topK": 5}).to_string()
            })
            .collect(),
    );
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
        let documents = corpus(size, &vocab);
        let (state, report, index_time) = server_rt.block_on(async {
            let mut rag = Rag::from_config(config).await.unwrap();
            let timed = Arc::new(Timed {
                inner: rag.store.clone(),
                finish: Default::default(),
            });
            rag.store = timed.clone();
            let rag = Arc::new(rag);
            let report =
                ingest::ingest(rag.clone(), documents, 2 * cores, |_| Progress::Silent).await;
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            let index_time = *timed.finish.lock().unwrap();
            let rag = Arc::into_inner(rag).expect("ingest released the pipeline");
            (AppState::new(rag, ApiKeys::default()), report, index_time)
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

        let listener = server_rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/v1/query", listener.local_addr().unwrap());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = server_rt.spawn(rag_runtime::server::serve(state, listener, async {
            let _ = stop_rx.await;
        }));
        let client_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(o.client_threads)
            .thread_name("loadgen")
            .enable_all()
            .build()
            .unwrap();
        client_rt.block_on(load(url.clone(), bodies.clone(), &o, 1, 2_000)); // warm-up
        let r = client_rt.block_on(load(url, bodies.clone(), &o, o.seconds, o.max_requests));
        let _ = stop_tx.send(());
        server_rt.block_on(server).unwrap().unwrap();
        println!(
            "query: {:.0} req/s over {:.1} s ({} ok, {} errors)",
            r.requests as f64 / r.elapsed.as_secs_f64(),
            r.elapsed.as_secs_f64(),
            r.requests,
            r.errors
        );
        println!(
            "latency client-side: p50 {:.3} ms  p99 {:.3} ms | server-side (Server-Timing): p50 {:.3} ms  p99 {:.3} ms",
            percentile(&r.client_ms, 0.5),
            percentile(&r.client_ms, 0.99),
            percentile(&r.server_ms, 0.5),
            percentile(&r.server_ms, 0.99)
        );
        println!(
            "memory: RSS {} MiB, peak {} MiB (server, store and load generator in one process)",
            rss_kib("VmRSS:") / 1024,
            rss_kib("VmHWM:") / 1024
        );
        drop(server_rt);
        drop(dir);
    }
}
