//! What every request handler shares: the RAG pipeline, the accepted API keys, the per-client
//! rate limiter, whether the process is draining and whether its store was ever reached.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::config::{API_KEYS_ENV, API_KEYS_FILE_ENV, ConfigError, RateLimitConfig, RuntimeConfig};
use crate::error::{Error, Result};
use crate::rag::Rag;

#[derive(Clone)]
pub struct AppState {
    pub rag: Arc<Rag>,
    pub api_keys: Arc<ApiKeys>,
    pub limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    pub draining: Arc<AtomicBool>,
    /// The store has answered a readiness check since the process started.
    pub store_reached: Arc<AtomicBool>,
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
            store_reached: Arc::new(AtomicBool::new(false)),
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

fn no_key(field: &'static str, message: String) -> Error {
    Error::Config(ConfigError::Invalid { field, message })
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
        let listed = std::env::var(API_KEYS_ENV).ok();
        let file = match std::env::var_os(API_KEYS_FILE_ENV) {
            Some(path) => {
                let path = path.to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                    path: format!("{API_KEYS_FILE_ENV} {path}"),
                    source,
                })?;
                Some((path, text))
            }
            None => None,
        };
        let file = file.as_ref().map(|(p, t)| (p.as_str(), t.as_str()));
        Self::from_sources(listed.as_deref(), file)
    }

    /// The keys of `RAG_API_KEYS` (its value when set) and of the keys file (path and text when
    /// set). Fails closed: a source that is set but holds no key (an empty Secret, one whose
    /// ExternalSecret has not synced yet) is an error, never "authentication off".
    pub fn from_sources(listed: Option<&str>, file: Option<(&str, &str)>) -> Result<Self> {
        let mut keys: Vec<&str> = Vec::new();
        if let Some(listed) = listed {
            let before = keys.len();
            keys.extend(listed.split(',').filter(|k| !k.trim().is_empty()));
            if keys.len() == before {
                return Err(no_key(
                    API_KEYS_ENV,
                    "is set but holds no key; refusing to serve without authentication \
                     (unset it to turn authentication off)"
                        .into(),
                ));
            }
        }
        if let Some((path, text)) = file {
            let before = keys.len();
            keys.extend(text.lines().filter(|k| !k.trim().is_empty()));
            if keys.len() == before {
                return Err(no_key(
                    API_KEYS_FILE_ENV,
                    format!(
                        "{path} holds no key (empty or blank lines only); refusing to serve \
                         without authentication"
                    ),
                ));
            }
        }
        Ok(Self::new(keys))
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

    #[test]
    fn a_keys_source_that_is_set_but_empty_fails_closed() {
        let none = ApiKeys::from_sources(None, None).unwrap();
        assert!(!none.enabled(), "nothing configured: authentication off");
        let both = ApiKeys::from_sources(Some("a, b"), Some(("/k", "c\n\n d \n"))).unwrap();
        assert_eq!(both.len(), 4);
        for (listed, file, names) in [
            (Some(""), None, API_KEYS_ENV),
            (Some(" , "), None, API_KEYS_ENV),
            (None, Some(("/keys", "")), "RAG_API_KEYS_FILE: /keys"),
            (None, Some(("/keys", " \n\t\n")), "RAG_API_KEYS_FILE: /keys"),
            // One good source does not excuse an empty one.
            (Some("a"), Some(("/keys", "\n")), "RAG_API_KEYS_FILE: /keys"),
        ] {
            let err = ApiKeys::from_sources(listed, file)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(names) && err.contains("no key"), "{err}");
        }
    }
}
