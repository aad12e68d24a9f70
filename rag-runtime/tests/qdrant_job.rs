//! `rag-runtime ingest --revision` as a Job step against a real Qdrant server: the report file
//! names the collection, `--unless-digest` creates nothing, and a retried Job of the same revision
//! (after a crash before or after the alias switch) succeeds. Like `qdrant_server.rs`, the tests
//! needing a server are ignored unless asked for and then need `QDRANT_URL` (a gRPC port);
//! `make qdrant-test` runs both files against a server it starts.

mod common;

use common::qdrant::{qdrant_url, unique};

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use serde_json::Value;
use tokio::process::Command;

use rag_runtime::config::{QdrantConfig, RuntimeConfig, VectorStoreConfig};
use rag_runtime::ingest;
use rag_runtime::rag::Rag;
use rag_runtime::store::VectorStore;
use rag_runtime::store::qdrant::QdrantStore;

/// A temp dir with the runtime's config file for `url`, reading through `alias`.
struct Job {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Job {
    fn new(url: &str, alias: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("runtime.yaml");
        let yaml = format!("vectorStore:\n  qdrant:\n    url: {url}\ncollection: {alias}\n");
        std::fs::write(&config, yaml).unwrap();
        Self { dir, config }
    }

    /// `rag-runtime ingest --config C --report-file R ARGS... SOURCE`: output and report.
    async fn ingest(&self, args: &[&str], source: &Path) -> (Output, Value) {
        let report = self.dir.path().join("report.json");
        let _ = std::fs::remove_file(&report);
        let output = Command::new(env!("CARGO_BIN_EXE_rag-runtime"))
            .arg("ingest")
            .arg("--config")
            .arg(&self.config)
            .arg("--report-file")
            .arg(&report)
            .args(args)
            .arg(source)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .output()
            .await
            .unwrap();
        let text = std::fs::read_to_string(&report).unwrap();
        assert!(text.len() < 4000);
        (output, serde_json::from_str(&text).unwrap())
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn store(url: &str, collection: &str) -> QdrantStore {
    QdrantStore::connect(
        &QdrantConfig { url: url.into() },
        collection,
        Default::default(),
    )
    .unwrap()
}

async fn collections(url: &str) -> Vec<String> {
    let client = qdrant_client::Qdrant::from_url(url)
        .skip_compatibility_check()
        .build()
        .unwrap();
    let list = client.list_collections().await.unwrap().collections;
    list.into_iter().map(|c| c.name).collect()
}

#[tokio::test]
#[ignore = "needs a Qdrant server: set QDRANT_URL to its gRPC port"]
async fn a_revision_reports_its_collection_and_an_unchanged_digest_creates_nothing() {
    let url = qdrant_url();
    let alias = unique("ragops-job");
    let job = Job::new(&url, &alias);
    let r1 = format!("{alias}-r1");

    let (output, first) = job.ingest(&["--revision", "r1"], &common::corpus()).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(first["collection"], r1.as_str());
    assert_eq!(first["unchanged"], false);
    assert_eq!(first["documents"], 6);
    let chunks = first["chunks"].as_u64().unwrap();
    assert_eq!(store(&url, &r1).count().await.unwrap(), chunks);
    let through = store(&url, &alias);
    assert_eq!(
        through.alias_target(&alias).await.unwrap(),
        Some(r1.clone())
    );

    // The same sources for a new revision: nothing is created and the alias stays.
    let digest = first["sourceDigest"].as_str().unwrap();
    let args = [
        "--revision",
        "r2",
        "--unless-digest",
        digest,
        "--drop-previous",
    ];
    let (output, same) = job.ingest(&args, &common::corpus()).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(same["unchanged"], true);
    assert!(
        same.get("collection").is_none(),
        "nothing was written: {same}"
    );
    assert_eq!(
        (same["documents"].clone(), same["chunks"].as_u64()),
        (6.into(), Some(chunks))
    );
    let names = collections(&url).await;
    assert!(!names.contains(&format!("{alias}-r2")), "{names:?}");
    assert!(
        names.contains(&r1),
        "--drop-previous dropped r1 with nothing to switch to"
    );
    assert_eq!(
        through.alias_target(&alias).await.unwrap(),
        Some(r1.clone())
    );

    // A retried Job of r1 after the switch: the alias already points at every chunk.
    let (output, again) = job.ingest(&["--revision", "r1"], &common::corpus()).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("already points at this revision"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        (again["collection"].as_str(), again["chunks"].as_u64()),
        (Some(r1.as_str()), Some(chunks))
    );
    assert_eq!(again["sourceDigest"], digest);
    assert_eq!(store(&url, &r1).count().await.unwrap(), chunks);
    through.drop_collection(&r1).await.unwrap();
}

/// A Job that crashed after creating and partly filling `<alias>-r1`, before the switch: the
/// retry refills the same collection, the count check passes and the alias is switched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Qdrant server: set QDRANT_URL to its gRPC port"]
async fn a_retried_revision_completes_a_partly_filled_collection() {
    let url = qdrant_url();
    rag_runtime::install_crypto_provider();
    let alias = unique("ragops-retry");
    let r1 = format!("{alias}-r1");
    let mut config = RuntimeConfig {
        vector_store: VectorStoreConfig::Qdrant(QdrantConfig { url: url.clone() }),
        ..Default::default()
    };
    config.collection.0 = r1.clone();
    let rag = Arc::new(Rag::from_config(config).await.unwrap());
    rag.store
        .ensure_collection(rag.embedder.dimensions())
        .await
        .unwrap();
    // Half of the documents, under the ids the full run gives them.
    let sources = [ingest::Source::Path(common::corpus())];
    let read = ingest::read_sources(&sources, &Default::default(), &Default::default())
        .await
        .unwrap();
    let half = read.documents[..read.documents.len() / 2].to_vec();
    let partial = ingest::ingest(rag, half, 2, |_| ingest::Progress::Silent).await;
    assert!(partial.failed.is_empty() && partial.chunks > 0);

    let job = Job::new(&url, &alias);
    let (output, report) = job.ingest(&["--revision", "r1"], &common::corpus()).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let chunks = report["chunks"].as_u64().unwrap();
    assert!(chunks > partial.chunks as u64, "{report}");
    assert_eq!(report["collection"], r1.as_str());
    assert_eq!(store(&url, &r1).count().await.unwrap(), chunks);
    let through = store(&url, &alias);
    assert_eq!(
        through.alias_target(&alias).await.unwrap(),
        Some(r1.clone())
    );
    through.drop_collection(&r1).await.unwrap();
}

/// No server needed: an unreachable Qdrant is an error in the report, and nothing else.
#[tokio::test]
async fn an_unreachable_qdrant_is_reported_as_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let job = Job::new(&format!("http://u:secret@127.0.0.1:{port}"), "handbook");
    let (output, report) = job.ingest(&["--revision", "r1"], &common::corpus()).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = report["error"].as_str().unwrap();
    assert_eq!(report.as_object().unwrap().len(), 1, "{report}");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(
        !error.contains("secret") && !stderr(&output).contains("secret"),
        "{error}"
    );
}
