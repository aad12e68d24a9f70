//! Ingest: files (or API documents) in, embedded chunks in the store out. Files under a source
//! directory get ids relative to it (`guides/a.md`); chunks are embedded in batches of
//! `embedding.batchSize`, several batches at once, and upserted under stable ids, so running
//! ingest twice stores the same points. A shorter new version of a document drops its old tail.
//! Every source (files, directories, `http(s)://` URLs) is read before anything is stored, so the
//! source digest is known first; [`job`] is the `rag-runtime ingest` command around that.

mod address;
mod fetch;
mod files;
pub mod job;
pub mod outcome;
mod progress;
mod sources;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use fetch::{Fetcher, MAX_REDIRECTS, SourceLimits, is_url, url_id};
pub use files::{TEXT_EXTENSIONS, discover, read_document};
pub use job::{JobOptions, run_ingest};
pub use outcome::{Outcome, report_json};
pub use progress::Progress;
pub use sources::{Read, Source, read_sources};

use crate::error::{Error, Result};
use crate::rag::{Document, Rag};

/// A large ingest builds the store's index after every this many chunks, not only at its end.
/// The embedded store writes into a segment where every insert costs time in proportion to the
/// length of its terms' BM25 posting lists (qdrant-edge 0.7 rewalks the whole list; 0.8 fixed it
/// but needs a newer rustc), so one write segment makes a large ingest quadratic. Indexing moves
/// the points into an immutable segment and the write segment starts empty. At 100k chunks the
/// extra graph builds cost about 25 s and save about 60 s of inserts (`make bench`,
/// `--index-every`); queries are as fast either way.
pub const INDEX_EVERY_CHUNKS: usize = 20_000;

/// What an ingest stored.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub documents: usize,
    pub chunks: usize,
    /// Documents that could not be read or stored, with the reason.
    pub failed: BTreeMap<String, String>,
    /// Entries of source directories skipped, never read, because they link out of them.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// Digest of every document id and text: equal digests mean nothing changed.
    pub source_digest: String,
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl Report {
    pub fn chunks_per_second(&self) -> f64 {
        self.chunks as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The digest of a set of documents, independent of their order.
pub fn source_digest(documents: &[Document]) -> String {
    let mut sorted: Vec<&Document> = documents.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut hasher = Sha256::new();
    for d in sorted {
        hasher.update(d.id.as_bytes());
        hasher.update([0]);
        hasher.update(Sha256::digest(d.text.as_bytes()));
    }
    hex::encode(hasher.finalize())
}

/// Chunks, embeds and stores documents, `concurrency` batches at a time.
pub async fn ingest(
    rag: Arc<Rag>,
    documents: Vec<Document>,
    concurrency: usize,
    progress: impl FnOnce(u64) -> Progress,
) -> Report {
    ingest_in_rounds(rag, documents, concurrency, INDEX_EVERY_CHUNKS, progress).await
}

/// [`ingest`], building the index after every `round_chunks` chunks (evened out) and at the end.
pub async fn ingest_in_rounds(
    rag: Arc<Rag>,
    documents: Vec<Document>,
    concurrency: usize,
    round_chunks: usize,
    progress: impl FnOnce(u64) -> Progress,
) -> Report {
    let started = Instant::now();
    let mut report = Report {
        source_digest: source_digest(&documents),
        ..Default::default()
    };
    let mut chunk_counts = Vec::with_capacity(documents.len());
    let mut chunks = Vec::new();
    for document in &documents {
        let doc_chunks = rag.chunk(document);
        chunk_counts.push((document.id.clone(), doc_chunks.len()));
        chunks.extend(doc_chunks);
    }
    let mut progress = progress(chunks.len() as u64);
    let batch_size = rag.config.embedding.batch_size.max(1);
    let mut batches = Vec::with_capacity(chunks.len() / batch_size + 1);
    let mut rest = chunks.into_iter().peekable();
    while rest.peek().is_some() {
        batches.push(rest.by_ref().take(batch_size).collect::<Vec<_>>());
    }
    let mut failed_ids: HashSet<String> = HashSet::new();
    // Even rounds: a short last round would stay below the store's indexing threshold and be
    // searched by a scan beside the graph.
    let rounds = batches.len().div_ceil((round_chunks / batch_size).max(1));
    let batches_per_round = batches.len().div_ceil(rounds.max(1));
    let mut batches = batches.into_iter().peekable();
    while batches.peek().is_some() {
        let round: Vec<_> = batches.by_ref().take(batches_per_round).collect();
        let mut results = stream::iter(round)
            .map(|batch| {
                let rag = Arc::clone(&rag);
                let ids: Vec<String> = batch.iter().map(|c| c.document_id.clone()).collect();
                let n = batch.len();
                // Spawned, so CPU-bound embedding (the local embedder, BM25) uses every core.
                let task = tokio::spawn(async move { rag.store_chunks(batch).await });
                async move {
                    let result = match task.await {
                        Ok(r) => r,
                        Err(e) => Err(Error::Store(format!("ingest task failed: {e}"))),
                    };
                    (ids, n, result)
                }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((ids, n, result)) = results.next().await {
            progress.advance(n as u64);
            if let Err(err) = result {
                count_failure(&rag, &err);
                for id in ids {
                    report
                        .failed
                        .entry(id.clone())
                        .or_insert_with(|| err.to_string());
                    failed_ids.insert(id);
                }
            }
        }
        if batches.peek().is_some() {
            build_index(&rag, &mut report).await;
        }
    }
    progress.finish();
    for (id, n) in chunk_counts {
        if failed_ids.contains(&id) {
            continue;
        }
        if let Err(err) = rag.drop_stale_chunks(&id, n).await {
            count_failure(&rag, &err);
            report.failed.insert(id, err.to_string());
            continue;
        }
        report.documents += 1;
        report.chunks += n;
    }
    build_index(&rag, &mut report).await;
    rag.metrics
        .documents_ingested
        .inc_by(report.documents as u64);
    rag.metrics.chunks_ingested.inc_by(report.chunks as u64);
    report.elapsed = started.elapsed();
    report
}

/// Indexes what the ingest has written so far; a failure is reported under `(index)`.
async fn build_index(rag: &Rag, report: &mut Report) {
    if let Err(err) = rag.store.build_index().await {
        count_failure(rag, &err);
        report.failed.insert("(index)".into(), err.to_string());
    }
}

fn count_failure(rag: &Rag, err: &Error) {
    rag.metrics
        .ingest_failures
        .with_label_values(&[err.category()])
        .inc();
}

/// Reads every file under `paths` and ingests it; unreadable files are reported, not fatal.
/// With `show_progress`, progress goes to stderr (a bar on a terminal, lines otherwise).
pub async fn ingest_paths(
    rag: Arc<Rag>,
    paths: &[PathBuf],
    concurrency: usize,
    show_progress: bool,
) -> Result<Report> {
    let sources: Vec<Source> = paths.iter().cloned().map(Source::Path).collect();
    let read = read_sources(&sources, &SourceLimits::default(), &Default::default()).await?;
    Ok(ingest_read(rag, read, concurrency, show_progress).await)
}

/// Ingests documents already read ([`read_sources`]); the unreadable ones are reported as failed.
pub async fn ingest_read(
    rag: Arc<Rag>,
    read: Read,
    concurrency: usize,
    show_progress: bool,
) -> Report {
    for err in read.unreadable.values() {
        count_failure(&rag, err);
    }
    let progress = |total| {
        if show_progress {
            Progress::for_stderr(total)
        } else {
            Progress::Silent
        }
    };
    let mut report = ingest(rag, read.documents, concurrency, progress).await;
    report.skipped = read.outside.len();
    let unreadable = read.unreadable.into_iter();
    report
        .failed
        .extend(unreadable.map(|(id, err)| (id, err.to_string())));
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use serde_json::Map;

    use crate::config::{EmbeddedConfig, RuntimeConfig, VectorStoreConfig};
    use crate::store::{ChunkRecord, Filter, Hit, SearchRequest, VectorStore};

    #[test]
    fn digests_ignore_order_and_see_changes() {
        let doc = |id: &str, text: &str| Document {
            id: id.into(),
            text: text.into(),
            metadata: Map::new(),
        };
        let a = source_digest(&[doc("a", "1"), doc("b", "2")]);
        assert_eq!(a, source_digest(&[doc("b", "2"), doc("a", "1")]));
        assert_ne!(a, source_digest(&[doc("a", "1"), doc("b", "3")]));
    }

    /// The embedded store, counting index builds.
    struct CountingBuilds {
        inner: Arc<dyn VectorStore>,
        builds: AtomicUsize,
    }

    #[async_trait]
    impl VectorStore for CountingBuilds {
        async fn ensure_collection(&self, dimensions: usize) -> Result<()> {
            self.inner.ensure_collection(dimensions).await
        }
        async fn upsert(&self, chunks: Vec<ChunkRecord>) -> Result<()> {
            self.inner.upsert(chunks).await
        }
        async fn delete_document(&self, document_id: &str, from_chunk: u32) -> Result<u64> {
            self.inner.delete_document(document_id, from_chunk).await
        }
        async fn search(&self, request: SearchRequest) -> Result<Vec<Hit>> {
            self.inner.search(request).await
        }
        async fn count(&self) -> Result<u64> {
            self.inner.count().await
        }
        async fn ready(&self) -> Result<()> {
            self.inner.ready().await
        }
        async fn build_index(&self) -> Result<()> {
            self.builds.fetch_add(1, Ordering::SeqCst);
            self.inner.build_index().await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_ingest_builds_the_index_between_rounds_and_keeps_every_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = RuntimeConfig {
            vector_store: VectorStoreConfig::Embedded(EmbeddedConfig {
                data_dir: dir.path().to_path_buf(),
            }),
            ..Default::default()
        };
        config.embedding.batch_size = 8;
        let mut rag = Rag::from_config(config).await.unwrap();
        let store = Arc::new(CountingBuilds {
            inner: Arc::clone(&rag.store),
            builds: AtomicUsize::new(0),
        });
        rag.store = store.clone();
        let rag = Arc::new(rag);
        // One chunk each: 40 chunks in batches of 8, at most 16 chunks (2 batches) a round: 2, 2, 1.
        let documents: Vec<Document> = (0..40)
            .map(|i| Document {
                id: format!("doc-{i}.md"),
                text: format!("Runbook {i}: the service number{i} restarts after alert{i}."),
                metadata: Map::new(),
            })
            .collect();
        let report = ingest_in_rounds(rag.clone(), documents, 2, 16, |_| Progress::Silent).await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!((report.documents, report.chunks), (40, 40));
        assert_eq!(
            store.builds.load(Ordering::SeqCst),
            3,
            "two builds between the rounds, one at the end"
        );
        assert_eq!(rag.store.count().await.unwrap(), 40);
        let hits = rag
            .retrieve("number27 alert27", 1, Filter::default())
            .await
            .unwrap();
        assert_eq!(hits[0].document_id, "doc-27.md");
    }
}
