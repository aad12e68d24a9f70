//! Every SOURCE of an ingest read into documents before anything is stored, so the source digest
//! is known first (`ingest --unless-digest`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use futures::stream::{self, StreamExt};

use super::fetch::{self, SourceLimits};
use super::files::{discover, read_document};
use super::source_digest;
use crate::config::{ChunkingConfig, UrlSourcesConfig};
use crate::error::{Error, Result};
use crate::rag::Document;

/// URL sources fetched at once.
const FETCH_CONCURRENCY: usize = 4;

/// One SOURCE argument: a file or directory, or an `http(s)://` URL.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Path(PathBuf),
    Url(String),
}

impl Source {
    /// A command-line SOURCE: a URL when it starts with `http://` or `https://`.
    pub fn from_arg(arg: OsString) -> Self {
        match arg.to_str() {
            Some(s) if fetch::is_url(s) => Self::Url(s.to_string()),
            _ => Self::Path(arg.into()),
        }
    }
}

/// The documents of an ingest, and those that could not be read, by id.
#[derive(Debug, Default)]
pub struct Read {
    pub documents: Vec<Document>,
    pub unreadable: BTreeMap<String, Error>,
    /// Entries skipped, never read, because they link out of their source directory.
    pub outside: Vec<String>,
}

impl Read {
    /// The digest an ingest of these documents reports as `sourceDigest`.
    pub fn digest(&self) -> String {
        source_digest(&self.documents)
    }

    /// How many chunks the documents make.
    pub fn chunks(&self, chunking: &ChunkingConfig) -> usize {
        (self.documents.iter())
            .map(|d| crate::chunk::split(&d.text, chunking).len())
            .sum()
    }
}

/// Reads every source: files as [`read_document`] does, URLs as [`fetch::Fetcher`] does, from
/// the addresses `policy` allows. A missing path fails the whole read; a document that cannot be
/// read is kept in `unreadable`.
pub async fn read_sources(
    sources: &[Source],
    limits: &SourceLimits,
    policy: &UrlSourcesConfig,
) -> Result<Read> {
    let mut read = Read::default();
    let mut urls = Vec::new();
    for source in sources {
        match source {
            Source::Path(path) => {
                let found = discover(std::slice::from_ref(path))?;
                for (id, target) in found.outside {
                    let target = target.display();
                    tracing::warn!(document = %id, %target, "skipped: links out of its source directory");
                    read.outside.push(id);
                }
                for (id, file) in found.files {
                    match read_document(&id, &file) {
                        Ok(d) => read.documents.push(d),
                        Err(err) => {
                            read.unreadable.insert(id, err);
                        }
                    }
                }
            }
            Source::Url(url) => urls.push(url.as_str()),
        }
    }
    if urls.is_empty() {
        return Ok(read);
    }
    let fetcher = fetch::Fetcher::new(limits.clone(), policy)?;
    let mut fetched = stream::iter(urls)
        .map(|url| {
            let fetcher = &fetcher;
            async move { (url, fetcher.fetch(url).await) }
        })
        .buffered(FETCH_CONCURRENCY);
    while let Some((url, result)) = fetched.next().await {
        match result {
            Ok(d) => read.documents.push(d),
            Err(err) => {
                // Named as in logs: a query string may carry a token.
                let id = crate::redact::url(url);
                tracing::warn!(url = %id, error = %err, "source not read");
                read.unreadable.insert(id, err);
            }
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_starting_with_a_scheme_are_urls() {
        let arg = |s: &str| Source::from_arg(s.into());
        assert_eq!(arg("https://h/a.md"), Source::Url("https://h/a.md".into()));
        assert_eq!(arg("docs"), Source::Path("docs".into()));
        assert_eq!(arg("./http://x"), Source::Path("./http://x".into()));
    }

    #[tokio::test]
    async fn files_read_before_anything_is_stored_give_the_ingest_digest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.md"), "# A\n\nalpha").unwrap();
        std::fs::write(dir.path().join("b.md"), [0xffu8, 0xfe]).unwrap();
        let sources = [Source::Path(dir.path().to_path_buf())];
        let read = read_sources(&sources, &SourceLimits::default(), &Default::default())
            .await
            .unwrap();
        assert_eq!(read.documents.len(), 1);
        assert!(read.unreadable["b.md"].to_string().contains("not UTF-8"));
        assert_eq!(read.digest(), source_digest(&read.documents));
        assert_eq!(read.chunks(&Default::default()), 1);
        let missing = [Source::Path(dir.path().join("nope"))];
        assert!(
            read_sources(&missing, &SourceLimits::default(), &Default::default())
                .await
                .is_err()
        );
    }
}
