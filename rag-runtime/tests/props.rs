//! Property tests: the HTTP API under arbitrary methods, paths, headers and bodies never panics
//! and answers every error as JSON; the parsers of user content (chunker, URLs, configs, files)
//! never panic. Case counts keep the whole file to a few seconds.

mod common;

use std::sync::{Arc, LazyLock};

use axum::body::{Body, to_bytes};
use axum::http::{HeaderName, HeaderValue, Method, Request};
use proptest::prelude::*;
use rag_runtime::config::{ChunkingConfig, RuntimeConfig};
use rag_runtime::ingest::{self, Source};
use rag_runtime::rag::Rag;
use rag_runtime::state::{ApiKeys, AppState};
use serde_json::{Value, json};
use tower::ServiceExt;

/// One runtime for every case: the sample corpus on the embedded store, writes on (so the
/// document routes run too), bearer auth with one key.
struct Subject {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    _dir: tempfile::TempDir,
}

static SUBJECT: LazyLock<Subject> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::embedded_config(dir.path());
    config.server.allow_writes = true;
    config.server.max_body_bytes = 64 * 1024;
    let app = runtime.block_on(async {
        rag_runtime::install_crypto_provider();
        let rag = Rag::from_config(config).await.unwrap();
        let state = AppState::new(rag, ApiKeys::new(["k"]));
        let report = ingest::ingest_paths(Arc::clone(&state.rag), &[common::corpus()], 2, false)
            .await
            .unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        rag_runtime::router(state)
    });
    Subject {
        runtime,
        app,
        _dir: dir,
    }
});

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
        Just(Method::OPTIONS),
        "[A-Z]{1,8}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let known = prop_oneof![
        Just("/v1/query"),
        Just("/v1/chat/completions"),
        Just("/v1/documents"),
        Just("/v1/documents/guides/blue-green.md"),
        Just("/healthz"),
        Just("/readyz"),
        Just("/readyz/store"),
        Just("/metrics"),
    ];
    prop_oneof![
        known.prop_map(String::from),
        "/[a-zA-Z0-9/%._~?=&-]{0,40}",
        "/v1/documents/[a-zA-Z0-9/%._~-]{0,30}",
    ]
}

/// A JSON value of some depth with the fields the routes read, often of the wrong type.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        let key = prop_oneof![
            Just("query".to_string()),
            Just("topK".to_string()),
            Just("top_k".to_string()),
            Just("filter".to_string()),
            Just("messages".to_string()),
            Just("role".to_string()),
            Just("content".to_string()),
            Just("stream".to_string()),
            Just("documents".to_string()),
            Just("id".to_string()),
            Just("text".to_string()),
            Just("metadata".to_string()),
            Just("documentId".to_string()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..256),
        Just(Vec::new()),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        Just("content-type".to_string()),
        Just("authorization".to_string()),
        Just("accept".to_string()),
        Just("content-encoding".to_string()),
        "[a-z-]{1,12}",
    ];
    let value = prop_oneof![
        Just(b"application/json".to_vec()),
        Just(b"Bearer k".to_vec()),
        Just(b"text/plain".to_vec()),
        prop::collection::vec(any::<u8>(), 0..24),
    ];
    prop::collection::vec((name, value), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_request_gets_an_answer_and_every_error_is_json(
        method in method(), path in path(), headers in headers(), body in body(), authorized in any::<bool>(),
    ) {
        let mut request = Request::builder().method(method.clone()).uri(path.as_str());
        for (name, value) in &headers {
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_bytes(value)) {
                request = request.header(name, value);
            }
        }
        if authorized {
            request = request.header("authorization", "Bearer k");
        }
        // A path the URI grammar refuses never reaches a server.
        let Ok(request) = request.body(Body::from(body)) else { return Ok(()) };
        let subject = &*SUBJECT;
        let (status, content_type, bytes) = subject.runtime.block_on(async {
            let response = subject.app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let content_type = response.headers().get("content-type").map(|v| v.as_bytes().to_vec());
            (status, content_type, to_bytes(response.into_body(), 1 << 20).await.unwrap())
        });
        if status.is_client_error() || status.is_server_error() {
            prop_assert!(content_type.is_some_and(|c| c.starts_with(b"application/json")), "{status} {path}");
            let body: Value = serde_json::from_slice(&bytes).map_err(|e| TestCaseError::fail(format!("{status} {path}: {e}")))?;
            prop_assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{body}");
        }
        // Nothing a client sends is the server's own failure.
        prop_assert!(status != 500, "{method} {path}: 500 {}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn the_chunker_covers_any_text_within_its_limits(
        text in ".{0,600}", max in 1usize..200, overlap in 0usize..200,
    ) {
        let config = ChunkingConfig { max_chars: max, overlap_chars: overlap.min(max - 1) };
        let chunks = rag_runtime::chunk::split(&text, &config);
        for chunk in &chunks {
            prop_assert!(!chunk.trim().is_empty());
        }
        if !text.trim().is_empty() {
            prop_assert!(!chunks.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn sources_urls_and_configs_parse_or_fail_without_panicking(arg in ".{0,80}", yaml in ".{0,200}") {
        let source = Source::from_arg(arg.clone().into());
        if let Source::Url(url) = source
            && let Ok(id) = ingest::url_id(&url)
        {
            let parsed = reqwest::Url::parse(&id).unwrap();
            prop_assert!(parsed.query().is_none() && parsed.fragment().is_none(), "{id}");
            prop_assert!(parsed.username().is_empty() && parsed.password().is_none(), "{id}");
        }
        let _ = rag_runtime::redact::urls_in(&arg);
        let _ = RuntimeConfig::from_yaml(&yaml);
    }

    #[test]
    fn any_file_reads_as_a_document_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.md");
        std::fs::write(&path, &bytes).unwrap();
        match ingest::read_document("doc.md", &path) {
            Ok(doc) => prop_assert_eq!(doc.text.as_bytes(), &bytes[..]),
            Err(err) => prop_assert!(err.to_string().contains("not UTF-8"), "{err}"),
        }
    }
}
