//! Sources given as `http://` or `https://` URLs: fetched with a size and time limit, one
//! document each. Logs and errors show a URL only as `scheme://host[:port]/path`
//! ([`redact::url`]); the document id keeps the query but never a user or password.

use std::io;
use std::time::Duration;

use reqwest::{Client, Url};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::rag::Document;
use crate::redact;

/// How much of a URL source is read, and for how long.
#[derive(Clone, Debug)]
pub struct SourceLimits {
    /// A larger body fails its document; reading stops there (`--max-source-bytes`).
    pub max_bytes: u64,
    /// For the whole request, body included (`--source-timeout-seconds`).
    pub timeout: Duration,
}

impl Default for SourceLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Whether a SOURCE argument names a URL rather than a path.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// The document id of a URL: the URL without user, password and fragment.
pub fn url_id(raw: &str) -> Result<String> {
    let mut url = parse(raw)?;
    // Only fails for URLs that cannot have a host, which `parse` has refused.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    Ok(url.to_string())
}

fn parse(raw: &str) -> Result<Url> {
    Url::parse(raw)
        .ok()
        .filter(Url::has_host)
        .ok_or_else(|| failure(raw, io::ErrorKind::InvalidInput, "not a valid URL".into()))
}

/// An error naming the URL (redacted).
fn failure(raw: &str, kind: io::ErrorKind, message: String) -> Error {
    Error::Io {
        path: redact::url(raw),
        source: io::Error::new(kind, message),
    }
}

/// The client every URL source of one ingest is fetched with.
pub fn client(limits: &SourceLimits) -> Result<Client> {
    crate::install_crypto_provider();
    Client::builder()
        .timeout(limits.timeout)
        .user_agent(concat!("rag-runtime/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Invalid(format!("building the HTTP client: {}", chain(e))))
}

/// A reqwest error with its causes, without the URL (the error names it once) and with any other
/// URL redacted (a redirect's, say).
fn chain(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    redact::urls_in(&text)
}

fn request_failure(raw: &str, err: reqwest::Error, limits: &SourceLimits) -> Error {
    if err.is_timeout() {
        let secs = limits.timeout.as_secs_f64();
        let message = format!("timed out after {secs}s (--source-timeout-seconds)");
        return failure(raw, io::ErrorKind::TimedOut, message);
    }
    failure(raw, io::ErrorKind::Other, chain(err))
}

fn too_large(raw: &str, limits: &SourceLimits) -> Error {
    let message = format!(
        "larger than the {}-byte limit (--max-source-bytes)",
        limits.max_bytes
    );
    failure(raw, io::ErrorKind::InvalidData, message)
}

/// Fetches `raw` into a document: a 2xx body of at most `limits.max_bytes` bytes of UTF-8.
pub async fn fetch_document(client: &Client, raw: &str, limits: &SourceLimits) -> Result<Document> {
    let id = url_id(raw)?;
    let url = parse(raw)?;
    let mut response =
        (client.get(url).send().await).map_err(|e| request_failure(raw, e, limits))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failure(raw, io::ErrorKind::Other, format!("HTTP {status}")));
    }
    if response
        .content_length()
        .is_some_and(|n| n > limits.max_bytes)
    {
        return Err(too_large(raw, limits));
    }
    let expected = response.content_length().unwrap_or(0).min(limits.max_bytes);
    let mut body = Vec::with_capacity(expected as usize);
    while let Some(chunk) = (response.chunk().await).map_err(|e| request_failure(raw, e, limits))? {
        if (body.len() + chunk.len()) as u64 > limits.max_bytes {
            return Err(too_large(raw, limits));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body)
        .map_err(|_| failure(raw, io::ErrorKind::InvalidData, "not UTF-8 text".into()))?;
    let mut metadata = Map::new();
    metadata.insert("url".into(), Value::String(id.clone()));
    if let Some(title) = text.lines().find_map(|l| l.strip_prefix("# ")) {
        metadata.insert("title".into(), Value::String(title.trim().to_string()));
    }
    Ok(Document { id, text, metadata })
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
