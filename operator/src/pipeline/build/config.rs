//! The runtime's YAML config, and the ConfigMap `<name>-config` that carries it.
//!
//! Every config version lives under its own key, named by its hash, and each Deployment mounts
//! only its own key. So an old colour's pods keep reading the config they were started with, even
//! when they restart in the middle of a rollout.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use rag_runtime::config::{
    self as rc, LlmConfig, PromptConfig, RateLimitConfig, RetrievalConfig, RuntimeConfig,
    ServerConfig,
};

use super::{RUNTIME_PORT, Validated, config_map_name};
use crate::api::LlmProvider;

pub use crate::index::config::DATA_DIR;

/// The runtime configuration the pipeline's pods run with: the index's part (store, embedding,
/// chunking) reading `collection` (see [`Validated::collection`]), and the pipeline's own.
pub fn runtime_config(v: &Validated) -> RuntimeConfig {
    let spec = &v.pipeline.spec;
    let embedding = crate::index::config::serving_embedding(&v.index);
    let index = crate::index::config::with_index(&v.index, v.collection.clone(), embedding);
    RuntimeConfig {
        server: server_config(v),
        retrieval: RetrievalConfig {
            top_k: u32::try_from(spec.retrieval.top_k).unwrap_or(5),
            score_threshold: spec.retrieval.score_threshold.map(|s| s as f32),
            hybrid: true,
            ..RetrievalConfig::default()
        },
        llm: LlmConfig {
            provider: match spec.llm.provider {
                LlmProvider::Openai => rc::LlmProvider::Openai,
                LlmProvider::Extractive => rc::LlmProvider::Extractive,
            },
            model: spec.llm.model.clone().unwrap_or_default(),
            endpoint: spec.llm.endpoint.clone(),
            temperature: spec.llm.temperature.map(|t| t as f32),
            max_tokens: spec.llm.max_tokens.and_then(|t| u32::try_from(t).ok()),
        },
        prompt: spec
            .prompt
            .as_ref()
            .map(|p| PromptConfig {
                system: p.system.clone(),
                template: p.template.clone(),
            })
            .unwrap_or_default(),
        ..index
    }
}

/// The runtime's HTTP settings from `spec.server`; the schema's defaults when it is absent.
/// (API keys are not here: they reach the pods as a mounted Secret.)
pub(super) fn server_config(v: &Validated) -> ServerConfig {
    let server = v.pipeline.spec.server.clone().unwrap_or_default();
    let positive = |n: i32| u32::try_from(n.max(1)).unwrap_or(1);
    ServerConfig {
        listen: format!("0.0.0.0:{RUNTIME_PORT}"),
        max_body_bytes: usize::try_from(server.max_body_bytes)
            .unwrap_or(ServerConfig::default().max_body_bytes),
        request_timeout_seconds: u64::from(positive(server.timeouts.request_seconds)),
        rate_limit: server.rate_limit.map(|r| RateLimitConfig {
            requests_per_second: positive(r.requests_per_second),
            burst: positive(r.burst.unwrap_or(r.requests_per_second)),
        }),
        shutdown_grace_seconds: u64::try_from(server.timeouts.shutdown_grace_seconds).unwrap_or(0),
        cors: false,
        allow_writes: server.allow_writes,
    }
}

/// Key of a config version in the ConfigMap: `config-<hash>.yaml`.
pub fn config_key(yaml: &str) -> String {
    let hex = crate::digest::short_hex(yaml.as_bytes(), 10);
    format!("config-{hex}.yaml")
}

/// The ConfigMap with every config version still referenced (`keys`: key → YAML).
pub fn config_map(v: &Validated, keys: BTreeMap<String, String>) -> ConfigMap {
    ConfigMap {
        metadata: v.meta(config_map_name(&v.name())),
        data: Some(keys),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use rag_runtime::config::{EmbeddedConfig, QdrantConfig, VectorStoreConfig};

    use super::super::fixtures::{INDEX, PIPELINE, validated, validated_with};
    use super::*;

    #[test]
    fn renders_the_index_and_pipeline_into_one_valid_config() {
        let config = runtime_config(&validated());
        config.validate().unwrap();
        assert_eq!(config.collection.0, "handbook-5f3c0a9e21");
        assert_eq!(
            config.vector_store,
            VectorStoreConfig::Qdrant(QdrantConfig {
                url: "http://qdrant:6334".into()
            })
        );
        assert_eq!(config.embedding.dimensions, 1536);
        assert_eq!(config.llm.model, "gpt-4o-mini");
        assert_eq!(config.retrieval.top_k, 4);
        assert_eq!(config.server.listen, "0.0.0.0:8080");
        // The YAML the pods read parses back to the same config.
        assert_eq!(RuntimeConfig::from_yaml(&config.to_yaml()).unwrap(), config);
    }

    #[test]
    fn server_settings_come_from_the_spec_with_the_runtimes_defaults() {
        let runtime_defaults = ServerConfig {
            listen: "0.0.0.0:8080".into(),
            ..ServerConfig::default()
        };
        let cases = [
            ("", runtime_defaults.clone()),
            // The schema's defaults are the runtime's own.
            ("  server: {}\n", runtime_defaults.clone()),
            (
                "  server: { rateLimit: { requestsPerSecond: 20, burst: 40 }, maxBodyBytes: 1048576 }\n",
                ServerConfig {
                    rate_limit: Some(RateLimitConfig {
                        requests_per_second: 20,
                        burst: 40,
                    }),
                    max_body_bytes: 1_048_576,
                    ..runtime_defaults.clone()
                },
            ),
            (
                "  server: { rateLimit: { requestsPerSecond: 5 } }\n",
                ServerConfig {
                    rate_limit: Some(RateLimitConfig {
                        requests_per_second: 5,
                        burst: 5,
                    }),
                    ..runtime_defaults.clone()
                },
            ),
            (
                "  server: { timeouts: { requestSeconds: 30, shutdownGraceSeconds: 10 } }\n",
                ServerConfig {
                    request_timeout_seconds: 30,
                    shutdown_grace_seconds: 10,
                    ..runtime_defaults.clone()
                },
            ),
            (
                "  server: { apiKeysSecretRef: { name: keys } }\n",
                runtime_defaults.clone(),
            ),
            (
                "  server: { allowWrites: true }\n",
                ServerConfig {
                    allow_writes: true,
                    ..runtime_defaults.clone()
                },
            ),
        ];
        for (server, expected) in cases {
            let config = runtime_config(&validated_with(&format!("{PIPELINE}{server}"), INDEX));
            assert_eq!(config.server, expected, "{server}");
            config.validate().unwrap();
            let yaml = config.to_yaml();
            assert_eq!(RuntimeConfig::from_yaml(&yaml).unwrap(), config);
            // Tokens reach the pods as a mounted file, never through the ConfigMap.
            assert!(!yaml.contains("keys"), "{yaml}");
        }
    }

    #[test]
    fn embedded_store_lives_in_the_pod_data_dir() {
        let index = INDEX.replace(
            r#"{ qdrant: { url: "http://qdrant:6334", apiKeySecretRef: { name: qdrant } } }"#,
            "{ embedded: {} }",
        );
        let config = runtime_config(&validated_with(PIPELINE, &index));
        assert_eq!(
            config.vector_store,
            VectorStoreConfig::Embedded(EmbeddedConfig {
                data_dir: DATA_DIR.into()
            })
        );
    }

    #[test]
    fn config_key_follows_the_content() {
        assert_eq!(config_key("a: 1"), config_key("a: 1"));
        assert_ne!(config_key("a: 1"), config_key("a: 2"));
        assert!(config_key("a: 1").starts_with("config-") && config_key("a: 1").ends_with(".yaml"));
    }
}
