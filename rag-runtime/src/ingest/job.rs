//! `rag-runtime ingest` as one step of a Kubernetes Job: read every source, stop when the digest
//! is the one the caller already has, otherwise store, and with `--revision` on a Qdrant server
//! fill `<alias>-<revision>` and switch the alias once every chunk is there. A retried Job of the
//! same revision finds its collection, refills it (point ids are stable, so nothing doubles) or,
//! when the alias already points at it with every chunk, succeeds at once.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};

use super::fetch::SourceLimits;
use super::outcome::Outcome;
use super::sources::{Read, Source, read_sources};
use super::{Report, ingest_read};
use crate::config::{QdrantConfig, RuntimeConfig, VectorStoreConfig};
use crate::rag::Rag;
use crate::redact;
use crate::store::VectorStore;
use crate::store::qdrant::QdrantStore;

/// Failed documents named in an error message.
const FAILED_NAMED: usize = 3;

/// How an ingest runs, beside its config and sources.
#[derive(Clone, Debug, Default)]
pub struct JobOptions {
    /// Embedding batches in flight at once.
    pub concurrency: usize,
    /// Qdrant server only: fill `<collection>-<revision>`, then switch the alias `<collection>`.
    pub revision: Option<String>,
    /// After the switch, drop the collection the alias pointed at before.
    pub drop_previous: bool,
    /// Store nothing when the sources' digest equals this.
    pub unless_digest: Option<String>,
    pub limits: SourceLimits,
    /// Progress on stderr.
    pub show_progress: bool,
}

/// Runs an ingest. Any failed document, a count mismatch or a failed alias step is an error.
pub async fn run_ingest(
    mut config: RuntimeConfig,
    sources: &[Source],
    options: &JobOptions,
) -> anyhow::Result<Outcome> {
    config.validate().context("runtime config")?;
    let started = Instant::now();
    let alias = config.collection.0.clone();
    let qdrant = match (&config.vector_store, &options.revision) {
        (VectorStoreConfig::Qdrant(q), Some(rev)) => {
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
    let collection = config.collection.0.clone();
    let read = read_sources(sources, &options.limits, &config.url_sources).await?;
    let digest = read.digest();
    if read.unreadable.is_empty() && options.unless_digest.as_deref() == Some(digest.as_str()) {
        tracing::info!(digest, "sources unchanged; nothing stored");
        let report = summary(&read, &config, started);
        return Ok(Outcome {
            report,
            collection: None,
            unchanged: true,
        });
    }
    if let Some(q) = &qdrant {
        // Before the revision's collection exists, so a failure leaves nothing behind.
        if !read.unreadable.is_empty() {
            let failed = read.unreadable.iter().map(|(id, e)| (id, e.to_string()));
            bail!("{}; nothing written", failed_message(failed, Some(&alias)));
        }
        let target = QdrantStore::connect(q, &collection, config.distance)?;
        target.ensure_alias_free(&alias).await?;
        if already_done(&target, &alias, &read, &config).await? {
            tracing::info!(
                alias,
                collection,
                "the alias already points at this revision"
            );
            let report = summary(&read, &config, started);
            return Ok(written(report, collection));
        }
    }
    let rag = Arc::new(Rag::from_config(config.clone()).await?);
    rag.store
        .ensure_collection(rag.embedder.dimensions())
        .await?;
    let mut report = ingest_read(rag, read, options.concurrency, options.show_progress).await;
    if !report.failed.is_empty() {
        for (id, reason) in &report.failed {
            tracing::warn!(document = %redact::urls_in(id), %reason, "document failed");
        }
        let alias = qdrant.as_ref().map(|_| alias.as_str());
        bail!("{}", failed_message(report.failed.iter(), alias));
    }
    if let Some(q) = qdrant {
        switch(&q, &config, &alias, &report, options.drop_previous).await?;
    }
    report.elapsed = started.elapsed();
    Ok(written(report, collection))
}

fn written(report: Report, collection: String) -> Outcome {
    Outcome {
        report,
        collection: Some(collection),
        unchanged: false,
    }
}

/// The report of a run that stored nothing: the documents and chunks the sources make.
fn summary(read: &Read, config: &RuntimeConfig, started: Instant) -> Report {
    Report {
        documents: read.documents.len(),
        chunks: read.chunks(&config.chunking),
        source_digest: read.digest(),
        skipped: read.outside.len(),
        elapsed: started.elapsed(),
        ..Default::default()
    }
}

/// "N documents failed (id: reason; ...)" naming the first few, and the alias not switched.
fn failed_message<'a>(
    failed: impl ExactSizeIterator<Item = (&'a String, impl std::fmt::Display)>,
    alias: Option<&str>,
) -> String {
    let total = failed.len();
    let named: Vec<String> = (failed.take(FAILED_NAMED))
        .map(|(id, reason)| format!("{id}: {reason}"))
        .collect();
    let more = if total > FAILED_NAMED { "; …" } else { "" };
    let alias = alias.map_or(String::new(), |a| format!("; alias {a} left unchanged"));
    format!(
        "{total} documents failed ({}{more}){alias}",
        named.join("; ")
    )
}

/// The alias already points at `target`, which holds every chunk of `read`: a retried Job
/// whose earlier attempt switched the alias.
async fn already_done(
    target: &QdrantStore,
    alias: &str,
    read: &Read,
    config: &RuntimeConfig,
) -> anyhow::Result<bool> {
    if target.alias_target(alias).await?.as_deref() != Some(target.collection()) {
        return Ok(false);
    }
    Ok(target.count().await? == read.chunks(&config.chunking) as u64)
}

/// Checks the revision's collection holds exactly the chunks stored, then points the alias at it.
async fn switch(
    q: &QdrantConfig,
    config: &RuntimeConfig,
    alias: &str,
    report: &Report,
    drop_previous: bool,
) -> anyhow::Result<()> {
    let target = QdrantStore::connect(q, &config.collection.0, config.distance)?;
    let stored = target.count().await?;
    if stored != report.chunks as u64 {
        bail!(
            "collection {} holds {stored} chunks, expected {}; alias {alias} left unchanged",
            target.collection(),
            report.chunks
        );
    }
    let previous = target.switch_alias(alias).await?;
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
    Ok(())
}
