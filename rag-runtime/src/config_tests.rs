//! Tests of the runtime's configuration: parsing, defaults and validation, and the sample files.

mod basics {
    use super::super::*;

    #[test]
    fn empty_config_is_the_embedded_defaults() {
        let config = RuntimeConfig::from_yaml("").unwrap();
        assert_eq!(config, RuntimeConfig::default());
        assert!(matches!(
            config.vector_store,
            VectorStoreConfig::Embedded(_)
        ));
        assert_eq!(config.embedding.provider, EmbeddingProvider::Local);
        assert_eq!(config.llm.provider, LlmProvider::Extractive);
        let embedded =
            RuntimeConfig::from_yaml("vectorStore: { embedded: { dataDir: /var/lib/rag } }")
                .unwrap();
        let expected = EmbeddedConfig {
            data_dir: "/var/lib/rag".into(),
        };
        assert_eq!(embedded.vector_store, VectorStoreConfig::Embedded(expected));
        assert!(
            config.to_yaml().contains("vectorStore:\n  embedded:"),
            "{}",
            config.to_yaml()
        );
    }

    #[test]
    fn yaml_round_trips() {
        let yaml = r#"
server: { listen: "0.0.0.0:8080", rateLimit: { requestsPerSecond: 10, burst: 20 } }
vectorStore: { qdrant: { url: "http://qdrant:6334" } }
collection: docs
distance: Dot
embedding: { provider: openai, model: text-embedding-3-small, dimensions: 1536, endpoint: "http://tei/v1" }
llm: { provider: openai, model: gpt-4o-mini, temperature: 0.2 }
retrieval: { topK: 8 }
"#;
        let written = "server: { allowWrites: true }\nurlSources: { allowHosts: [wiki], allowCIDRs: [10.20.0.0/16], denyCIDRs: ['fd00::/8'] }";
        let written = RuntimeConfig::from_yaml(written).unwrap();
        assert!(written.server.allow_writes);
        assert_eq!(
            RuntimeConfig::from_yaml(&written.to_yaml()).unwrap(),
            written
        );
        let config = RuntimeConfig::from_yaml(yaml).unwrap();
        assert!(
            !config.to_yaml().contains("allowWrites") && !config.to_yaml().contains("urlSources"),
            "settings at their defaults leave the text of older configs unchanged"
        );
        assert_eq!(config.distance, Distance::Dot);
        assert_eq!(config.collection.0, "docs");
        assert_eq!(RuntimeConfig::from_yaml(&config.to_yaml()).unwrap(), config);
    }

    #[test]
    fn invalid_configs_name_the_field() {
        for (yaml, field) in [
            (
                "chunking: { maxChars: 100, overlapChars: 100 }",
                "chunking.overlapChars",
            ),
            ("retrieval: { topK: 0 }", "retrieval.topK"),
            ("retrieval: { searchEf: 5000 }", "retrieval.searchEf"),
            ("embedding: { dimensions: 0 }", "embedding.dimensions"),
            ("llm: { provider: openai }", "llm.model"),
            (
                "vectorStore: { qdrant: { url: '' } }",
                "vectorStore.qdrant.url",
            ),
        ] {
            let err = RuntimeConfig::from_yaml(yaml).unwrap_err().to_string();
            assert!(err.starts_with(field), "{yaml}: {err}");
        }
        for yaml in [
            "vectorStore: {}",
            "vectorStore: { embedded: {}, qdrant: { url: x } }",
        ] {
            let err = RuntimeConfig::from_yaml(yaml).unwrap_err().to_string();
            assert!(err.contains("exactly one"), "{yaml}: {err}");
        }
        let err = RuntimeConfig::from_yaml("retrival: {}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("retrival"), "{err}");
    }
}

mod samples {
    use super::super::*;

    #[test]
    fn sample_configs_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/config");
        let embedded = RuntimeConfig::load(&dir.join("embedded.yaml")).unwrap();
        assert_eq!(embedded, RuntimeConfig::default());
        let cluster = RuntimeConfig::load(&dir.join("openai-qdrant.yaml")).unwrap();
        assert_eq!(
            cluster.vector_store,
            VectorStoreConfig::Qdrant(QdrantConfig {
                url: "http://qdrant:6334".into()
            })
        );
        assert_eq!(
            cluster.server.rate_limit,
            Some(RateLimitConfig {
                requests_per_second: 20,
                burst: 40
            })
        );
        assert_eq!(cluster.embedding.provider, EmbeddingProvider::Openai);
    }
}
