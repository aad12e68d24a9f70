//! Sources given as `http://` or `https://` URLs: fetched with a size and time limit, one
//! document each, only from addresses the config's `urlSources` allows ([`address`]): the
//! resolved addresses of every host are checked before connecting, and so is every redirect.
//! Logs and errors show a URL only as `scheme://host[:port]/path` ([`redact::url`]); the
//! document id is the URL without user, password, query and fragment.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Client, Url, redirect};
use serde_json::{Map, Value};

use super::address;
use crate::config::UrlSourcesConfig;
use crate::error::{Error, Result};
use crate::rag::Document;
use crate::redact;

/// Redirects followed per URL source, each checked like the first address.
pub const MAX_REDIRECTS: usize = 5;

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

/// The document id of a URL: the URL without user, password, query and fragment (a query
/// often carries a token, and ids are shown to every client in the sources of an answer).
pub fn url_id(raw: &str) -> Result<String> {
    let mut url = parse(raw)?;
    // Only fails for URLs that cannot have a host, which `parse` has refused.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
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

/// Resolves host names as the system does, then keeps only the addresses the policy allows.
struct CheckedResolver(Arc<UrlSourcesConfig>);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let ips = address::filter(&policy, &host, found.map(|a| a.ip()))?;
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Why a URL's host is refused when it is an address itself (names go through the resolver).
fn literal_denied(policy: &UrlSourcesConfig, url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    (!address::host_allowed(policy, host))
        .then(|| address::denied(policy, ip))
        .flatten()
}

/// Fetches the URL sources of one ingest: one client, the limits and the address policy.
pub struct Fetcher {
    client: Client,
    limits: SourceLimits,
    policy: Arc<UrlSourcesConfig>,
}

impl Fetcher {
    pub fn new(limits: SourceLimits, policy: &UrlSourcesConfig) -> Result<Self> {
        crate::install_crypto_provider();
        let policy = Arc::new(policy.clone());
        let checked = Arc::clone(&policy);
        let redirects = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match literal_denied(&checked, attempt.url()) {
                Some(why) => attempt.error(format!("redirect refused: {why}")),
                None => attempt.follow(),
            }
        });
        let client = Client::builder()
            .timeout(limits.timeout)
            .user_agent(concat!("rag-runtime/", env!("CARGO_PKG_VERSION")))
            // A proxy would resolve and connect on our behalf, past every address check.
            .no_proxy()
            .redirect(redirects)
            .dns_resolver(Arc::new(CheckedResolver(Arc::clone(&policy))))
            .build()
            .map_err(|e| Error::Invalid(format!("building the HTTP client: {}", chain(e))))?;
        Ok(Self {
            client,
            limits,
            policy,
        })
    }

    /// Fetches `raw` into a document: a 2xx body of at most `limits.max_bytes` bytes of UTF-8.
    pub async fn fetch(&self, raw: &str) -> Result<Document> {
        let id = url_id(raw)?;
        let url = parse(raw)?;
        if let Some(why) = literal_denied(&self.policy, &url) {
            return Err(failure(raw, io::ErrorKind::PermissionDenied, why));
        }
        let text = self.body(raw, url).await?;
        let mut metadata = Map::new();
        metadata.insert("url".into(), Value::String(id.clone()));
        if let Some(title) = text.lines().find_map(|l| l.strip_prefix("# ")) {
            metadata.insert("title".into(), Value::String(title.trim().to_string()));
        }
        Ok(Document { id, text, metadata })
    }

    async fn body(&self, raw: &str, url: Url) -> Result<String> {
        let limits = &self.limits;
        let mut response =
            (self.client.get(url).send().await).map_err(|e| request_failure(raw, e, limits))?;
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
        while let Some(chunk) =
            (response.chunk().await).map_err(|e| request_failure(raw, e, limits))?
        {
            if (body.len() + chunk.len()) as u64 > limits.max_bytes {
                return Err(too_large(raw, limits));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body)
            .map_err(|_| failure(raw, io::ErrorKind::InvalidData, "not UTF-8 text".into()))
    }
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

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
