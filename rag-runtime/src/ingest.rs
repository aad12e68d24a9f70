//! Ingest: files (or API documents) in, embedded chunks in the store out. Files under a source
//! directory get ids relative to it (`guides/a.md`); chunks are embedded in batches of
//! `embedding.batchSize`, several batches at once, and upserted under stable ids, so running
//! ingest twice stores the same points. A shorter new version of a document drops its old tail.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::rag::{Document, Rag};

/// File types read as text.
pub const TEXT_EXTENSIONS: &[&str] = &[
    "md", "markdown", "mdx", "txt", "text", "rst", "adoc", "asciidoc",
];

/// What an ingest stored.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub documents: usize,
    pub chunks: usize,
    /// Documents that could not be read or stored, with the reason.
    pub failed: BTreeMap<String, String>,
    /// Digest of every document id and text: equal digests mean nothing changed.
    pub source_digest: String,
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl Report {
    pub fn chunks_per_second(&self) -> f64 {
        self.chunks as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Every text file under the given paths, with its document id. A path that is a file is its
/// own document, named by its file name.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root).map_err(|source| Error::Io {
            path: root.display().to_string(),
            source,
        })?;
        if meta.is_file() {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, root.clone()));
            continue;
        }
        // Links are followed: a mounted ConfigMap's files are symlinks into its hidden `..data`.
        let walker = walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            let entry = entry.map_err(|e| Error::Io {
                path: root.display().to_string(),
                source: e.into(),
            })?;
            if entry.file_type().is_file() && is_text(entry.path()) {
                let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
                let id = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push((id, entry.path().to_path_buf()));
            }
        }
    }
    Ok(files)
}

fn is_text(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TEXT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// A file as a document; metadata records its path and, for Markdown, its first heading.
pub fn read_document(id: &str, path: &Path) -> Result<Document> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Invalid(format!("{}: not UTF-8 text", path.display())))?;
    let mut metadata = Map::new();
    metadata.insert("path".into(), Value::String(id.to_string()));
    if let Some(title) = text.lines().find_map(|l| l.strip_prefix("# ")) {
        metadata.insert("title".into(), Value::String(title.trim().to_string()));
    }
    Ok(Document {
        id: id.to_string(),
        text,
        metadata,
    })
}

/// Progress as a bar on a terminal, as a line per tenth otherwise, or not at all.
pub enum Progress {
    Bar(ProgressBar),
    Lines {
        total: u64,
        done: u64,
        next_tenth: u64,
    },
    Silent,
}

impl Progress {
    pub fn for_stderr(total: u64) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} chunks ({per_sec}, eta {eta})")
                    .expect("valid template"),
            );
            Self::Bar(bar)
        } else {
            Self::Lines {
                total,
                done: 0,
                next_tenth: 1,
            }
        }
    }

    fn advance(&mut self, n: u64) {
        match self {
            Self::Bar(bar) => bar.inc(n),
            Self::Lines {
                total,
                done,
                next_tenth,
            } => {
                *done += n;
                // One line per tenth reached, however many a batch crosses.
                let tenth = (*done * 10).checked_div(*total).unwrap_or(10);
                if tenth >= *next_tenth {
                    eprintln!("ingest: {done}/{total} chunks");
                    *next_tenth = tenth + 1;
                }
            }
            Self::Silent => {}
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish();
        }
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
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Chunks, embeds and stores documents, `concurrency` batches at a time.
pub async fn ingest(
    rag: Arc<Rag>,
    documents: Vec<Document>,
    concurrency: usize,
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
    let mut results = stream::iter(batches)
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
        match result {
            Ok(_) => {}
            Err(err) => {
                rag.metrics
                    .ingest_failures
                    .with_label_values(&[err.category()])
                    .inc();
                for id in ids {
                    report
                        .failed
                        .entry(id.clone())
                        .or_insert_with(|| err.to_string());
                    failed_ids.insert(id);
                }
            }
        }
    }
    progress.finish();
    for (id, n) in chunk_counts {
        if failed_ids.contains(&id) {
            continue;
        }
        if let Err(err) = rag.drop_stale_chunks(&id, n).await {
            rag.metrics
                .ingest_failures
                .with_label_values(&[err.category()])
                .inc();
            report.failed.insert(id, err.to_string());
            continue;
        }
        report.documents += 1;
        report.chunks += n;
    }
    if let Err(err) = rag.store.finish_ingest().await {
        rag.metrics
            .ingest_failures
            .with_label_values(&[err.category()])
            .inc();
        report.failed.insert("(index)".into(), err.to_string());
    }
    rag.metrics
        .documents_ingested
        .inc_by(report.documents as u64);
    rag.metrics.chunks_ingested.inc_by(report.chunks as u64);
    report.elapsed = started.elapsed();
    report
}

/// Reads every file under `paths` and ingests it; unreadable files are reported, not fatal.
/// With `show_progress`, progress goes to stderr (a bar on a terminal, lines otherwise).
pub async fn ingest_paths(
    rag: Arc<Rag>,
    paths: &[PathBuf],
    concurrency: usize,
    show_progress: bool,
) -> Result<Report> {
    let mut documents = Vec::new();
    let mut unreadable = BTreeMap::new();
    for (id, path) in discover(paths)? {
        match read_document(&id, &path) {
            Ok(d) => documents.push(d),
            Err(err) => {
                rag.metrics
                    .ingest_failures
                    .with_label_values(&[err.category()])
                    .inc();
                unreadable.insert(id, err.to_string());
            }
        }
    }
    let progress = |total| {
        if show_progress {
            Progress::for_stderr(total)
        } else {
            Progress::Silent
        }
    };
    let mut report = ingest(rag, documents, concurrency, progress).await;
    report.failed.extend(unreadable);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_names_documents_relative_to_their_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("guides/.hidden")).unwrap();
        std::fs::write(dir.path().join("guides/a.md"), "# A\n\ntext").unwrap();
        std::fs::write(dir.path().join("guides/.hidden/b.md"), "x").unwrap();
        std::fs::write(dir.path().join("readme.txt"), "x").unwrap();
        std::fs::write(dir.path().join("image.png"), [0u8, 1]).unwrap();
        let found = discover(&[dir.path().to_path_buf()]).unwrap();
        let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["guides/a.md", "readme.txt"]);
        let single = discover(&[dir.path().join("guides/a.md")]).unwrap();
        assert_eq!(single[0].0, "a.md");
        let doc = read_document("guides/a.md", &found[0].1).unwrap();
        assert_eq!(doc.metadata["title"], "A");
    }

    /// A ConfigMap volume: visible names are symlinks into a hidden, timestamped directory.
    #[cfg(unix)]
    #[test]
    fn configmap_volumes_are_read_through_their_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let stamped = dir.path().join("..2026_11_25_01_00_00.123");
        std::fs::create_dir(&stamped).unwrap();
        std::fs::write(stamped.join("a.md"), "# A").unwrap();
        std::os::unix::fs::symlink(&stamped, dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/a.md", dir.path().join("a.md")).unwrap();
        let found = discover(&[dir.path().to_path_buf()]).unwrap();
        let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a.md"]);
        let doc = read_document("a.md", &found[0].1).unwrap();
        assert_eq!(doc.metadata["title"], "A");
    }

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
}
