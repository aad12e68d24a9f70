//! What every request handler shares: the RAG pipeline, the accepted API keys, the per-client
//! rate limiter and whether the process is draining.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::config::{API_KEYS_ENV, API_KEYS_FILE_ENV, RateLimitConfig, RuntimeConfig};
use crate::error::{Error, Result};
use crate::rag::Rag;

#[derive(Clone)]
pub struct AppState {
    pub rag: Arc<Rag>,
    pub api_keys: Arc<ApiKeys>,
    pub limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    pub draining: Arc<AtomicBool>,
}

impl AppState {
    /// Everything from the config, API keys from the environment.
    pub async fn from_config(config: RuntimeConfig) -> Result<Self> {
        let api_keys = ApiKeys::from_env()?;
        Ok(Self::new(Rag::from_config(config).await?, api_keys))
    }

    pub fn new(rag: Rag, api_keys: ApiKeys) -> Self {
        let limiter = rag
            .config
            .server
            .rate_limit
            .as_ref()
            .map(|r| Arc::new(RateLimiter::keyed(quota(r))));
        Self {
            rag: Arc::new(rag),
            api_keys: Arc::new(api_keys),
            limiter,
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

fn quota(config: &RateLimitConfig) -> Quota {
    let rps = NonZeroU32::new(config.requests_per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(config.burst).unwrap_or(rps);
    Quota::per_second(rps).allow_burst(burst)
}

/// Accepted bearer tokens, kept only as SHA-256 digests. Empty means authentication is off.
#[derive(Default)]
pub struct ApiKeys {
    digests: HashSet<[u8; 32]>,
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl ApiKeys {
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let digests = keys
            .into_iter()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(digest)
            .collect();
        Self { digests }
    }

    /// `RAG_API_KEYS` (comma separated) plus the lines of the file `RAG_API_KEYS_FILE` names.
    pub fn from_env() -> Result<Self> {
        let mut keys: Vec<String> = std::env::var(API_KEYS_ENV)
            .unwrap_or_default()
            .split(',')
            .map(String::from)
            .collect();
        if let Some(path) = std::env::var_os(API_KEYS_FILE_ENV).filter(|p| !p.is_empty()) {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.to_string_lossy().into_owned(),
                source,
            })?;
            keys.extend(text.lines().map(String::from));
        }
        Ok(Self::new(keys.iter().map(String::as_str)))
    }

    pub fn enabled(&self) -> bool {
        !self.digests.is_empty()
    }

    pub fn accepts(&self, token: &str) -> bool {
        self.digests.contains(&digest(token))
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_and_blank_ones_ignored() {
        let keys = ApiKeys::new(["a", " b ", "", "  "]);
        assert_eq!(keys.len(), 2);
        assert!(keys.accepts("a") && keys.accepts("b"));
        assert!(!keys.accepts("c") && !keys.accepts(""));
        assert!(!ApiKeys::new([""]).enabled());
    }
}
