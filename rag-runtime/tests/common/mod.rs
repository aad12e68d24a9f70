//! Test harness: a runtime serving on a loopback port with its own temporary data directory,
//! stopped (and drained) when the test ends.
#![allow(dead_code)]

pub mod qdrant;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rag_runtime::config::{EmbeddedConfig, RuntimeConfig, VectorStoreConfig};
use rag_runtime::ingest;
use rag_runtime::rag::Rag;
use rag_runtime::state::{ApiKeys, AppState};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/docs")
}

/// The embedded defaults, storing under `dir`.
pub fn embedded_config(dir: &Path) -> RuntimeConfig {
    RuntimeConfig {
        vector_store: VectorStoreConfig::Embedded(EmbeddedConfig {
            data_dir: dir.to_path_buf(),
        }),
        ..Default::default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Serves `config` with `keys`, after ingesting `sources` (if any).
    pub async fn start(config: RuntimeConfig, keys: ApiKeys, sources: &[PathBuf]) -> Self {
        rag_runtime::install_crypto_provider();
        let rag = Rag::from_config(config).await.expect("runtime starts");
        let state = AppState::new(rag, keys);
        if !sources.is_empty() {
            let report = ingest::ingest_paths(Arc::clone(&state.rag), sources, 2, false)
                .await
                .expect("ingest");
            assert!(
                report.failed.is_empty(),
                "ingest failures: {:?}",
                report.failed
            );
            assert!(report.chunks > 0);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(rag_runtime::server::serve(
            state.clone(),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            state,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            _dir: None,
        }
    }

    /// The embedded defaults in a fresh temporary directory, with the sample corpus ingested.
    pub async fn with_corpus(edit: impl FnOnce(&mut RuntimeConfig), keys: ApiKeys) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = embedded_config(dir.path());
        edit(&mut config);
        let mut server = Self::start(config, keys, &[corpus()]).await;
        server._dir = Some(dir);
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// The text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("request sent");
        response.text().await.expect("a text body")
    }

    /// Signals shutdown and waits for the server to drain and stop.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }

    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asserts an error body has the `{"error": {"code", "message"}}` shape and returns it.
pub async fn error_body(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("error bodies are JSON");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_string();
    let message = body["error"]["message"]
        .as_str()
        .expect("error.message")
        .to_string();
    assert!(!message.is_empty());
    (status, code, message)
}
