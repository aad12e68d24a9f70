//! The containers' environment: provider keys from Secrets (never in the config), the API keys
//! file of the runtime, then the user's own variables, which may refer to the ones before them.

use k8s_openapi::api::core::v1::EnvVar;
use rag_runtime::config::{
    API_KEYS_FILE_ENV, EMBEDDING_API_KEY_ENV, LLM_API_KEY_ENV, QDRANT_API_KEY_ENV,
};

use super::super::Validated;
use super::volumes;
use crate::meta::env_from_secret as from_secret;

/// The runtime container's environment.
pub(super) fn runtime(v: &Validated) -> Vec<EnvVar> {
    let api_keys = volumes::api_keys_path(v).map(|path| EnvVar {
        name: API_KEYS_FILE_ENV.into(),
        value: Some(path),
        ..EnvVar::default()
    });
    with_secrets(v, api_keys)
}

/// The ingest init container's environment: it embeds, so it needs the provider keys, but it
/// serves nothing, so it gets no API keys.
pub(super) fn ingest(v: &Validated) -> Vec<EnvVar> {
    with_secrets(v, None)
}

fn with_secrets(v: &Validated, api_keys: Option<EnvVar>) -> Vec<EnvVar> {
    let index = &v.index.spec;
    let secrets = [
        (
            EMBEDDING_API_KEY_ENV,
            index.embedding.api_key_secret_ref.as_ref(),
        ),
        (
            LLM_API_KEY_ENV,
            v.pipeline.spec.llm.api_key_secret_ref.as_ref(),
        ),
        (
            QDRANT_API_KEY_ENV,
            index
                .vector_store
                .qdrant
                .as_ref()
                .and_then(|q| q.api_key_secret_ref.as_ref()),
        ),
    ];
    secrets
        .into_iter()
        .filter_map(|(n, r)| r.map(|r| from_secret(n, r)))
        .chain(api_keys)
        .chain(v.pipeline.spec.runtime.env.iter().cloned())
        .collect()
}
