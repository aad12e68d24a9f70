//! `rag-runtime ingest` as a Job step, run as a process on the embedded store: the report file
//! on success and on every kind of error, `--unless-digest`, and URL sources served on loopback.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;
use tokio::process::Command;

/// `rag-runtime ingest --data-dir DATA --report-file REPORT ARGS...`; the output and the report.
/// The config (beside DATA) allows URL sources on loopback, where these tests serve them; the
/// default refuses loopback.
async fn ingest(data: &Path, report: &Path, args: &[&str]) -> (Output, Value) {
    let config = data.with_extension("yaml");
    std::fs::write(&config, "urlSources: { allowCIDRs: [127.0.0.0/8] }\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rag-runtime"))
        .arg("ingest")
        // An explicit `--config` among ARGS overrides it.
        .env("RAG_CONFIG", &config)
        .arg("--data-dir")
        .arg(data)
        .arg("--report-file")
        .arg(report)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    (output, read_report(report))
}

fn read_report(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.len() < 4000, "{} bytes", text.len());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn corpus() -> String {
    common::corpus().display().to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The report of a failed run: exit code 1 and `{"error": ...}` alone.
fn error_of(output: &Output, report: &Value) -> String {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    let object = report.as_object().unwrap();
    assert_eq!(object.keys().collect::<Vec<_>>(), ["error"], "{report}");
    let error = report["error"].as_str().unwrap().to_string();
    assert!(!error.contains('\n'), "{error}");
    error
}

struct Dirs {
    _root: tempfile::TempDir,
    root: PathBuf,
}

impl Dirs {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        Self {
            root: root.path().to_path_buf(),
            _root: root,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

#[tokio::test]
async fn a_successful_ingest_reports_its_collection_in_the_report_file() {
    let dirs = Dirs::new();
    let (output, report) =
        ingest(&dirs.path("data"), &dirs.path("report.json"), &[&corpus()]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(report["documents"], 6);
    assert!(report["chunks"].as_u64().unwrap() >= 6, "{report}");
    assert_eq!(report["failed"], serde_json::json!({}));
    assert_eq!(report["collection"], "documents");
    assert_eq!(report["unchanged"], false);
    assert_eq!(report["sourceDigest"].as_str().unwrap().len(), 64);
    assert!(report["elapsed"].as_f64().unwrap() > 0.0);
    assert!(report.get("failedTotal").is_none());
}

#[tokio::test]
async fn every_error_is_reported_as_one_line_with_exit_code_1() {
    let dirs = Dirs::new();
    let report = dirs.path("report.json");

    let missing = dirs.path("no-such-dir");
    let (output, value) = ingest(&dirs.path("data"), &report, &[missing.to_str().unwrap()]).await;
    let error = error_of(&output, &value);
    assert!(error.contains("no-such-dir"), "{error}");

    let config = dirs.path("bad.yaml");
    std::fs::write(&config, "collection: docs\nnonsense: 1\n").unwrap();
    let args = ["--config", config.to_str().unwrap(), &corpus()];
    let (output, value) = ingest(&dirs.path("data"), &report, &args).await;
    assert!(error_of(&output, &value).contains("nonsense"), "{value}");

    let docs = dirs.path("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("good.md"), "# Good\n\nreadable").unwrap();
    std::fs::write(docs.join("bad.md"), [0xffu8, 0xfe, 0x00]).unwrap();
    let (output, value) = ingest(&dirs.path("data"), &report, &[docs.to_str().unwrap()]).await;
    let error = error_of(&output, &value);
    assert!(
        error.starts_with("1 documents failed (bad.md: ") && error.contains("not UTF-8"),
        "{error}"
    );

    // No SOURCE: clap refuses the command line, and the report still says why.
    let (output, value) = ingest(&dirs.path("data"), &report, &[]).await;
    assert!(error_of(&output, &value).contains("<SOURCE>"), "{value}");
}

#[tokio::test]
async fn an_unchanged_digest_stores_nothing() {
    let dirs = Dirs::new();
    let report = dirs.path("report.json");
    let (output, first) = ingest(&dirs.path("first"), &report, &[&corpus()]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let digest = first["sourceDigest"].as_str().unwrap();

    let fresh = dirs.path("fresh");
    let args = ["--unless-digest", digest, &corpus()];
    let (output, same) = ingest(&fresh, &report, &args).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(same["unchanged"], true);
    assert_eq!(same["sourceDigest"], digest);
    assert_eq!(same["documents"], first["documents"]);
    assert_eq!(same["chunks"], first["chunks"]);
    assert!(
        same.get("collection").is_none(),
        "nothing was written: {same}"
    );
    assert!(
        !fresh.exists(),
        "the unchanged run created {}",
        fresh.display()
    );

    let args = ["--unless-digest", "0123", &corpus()];
    let (output, changed) = ingest(&fresh, &report, &args).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(changed["unchanged"], false);
    assert_eq!(changed["chunks"], first["chunks"]);
    assert!(fresh.exists());
}

/// Serves two documents, a 404 and a body of 64 bytes.
async fn http_server() -> String {
    let app = Router::new()
        .route(
            "/a.md",
            get(|| async { "# Alpha\n\nAlpha rolls out blue-green." }),
        )
        .route("/b.txt", get(|| async { "Bravo is a plain text page." }))
        .route("/gone", get(|| async { (StatusCode::NOT_FOUND, "gone") }))
        .route("/big", get(|| async { "z".repeat(64) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_sources_are_fetched_digested_and_failed_without_credentials() {
    let base = http_server().await;
    let dirs = Dirs::new();
    let report = dirs.path("report.json");
    let (a, b) = (format!("{base}/a.md"), format!("{base}/b.txt"));

    let (output, first) = ingest(&dirs.path("data"), &report, &[&a, &b, &corpus()]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(first["documents"], 8);
    let digest = first["sourceDigest"].as_str().unwrap();
    let (output, only_files) = ingest(&dirs.path("data"), &report, &[&corpus()]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_ne!(
        only_files["sourceDigest"], digest,
        "URL documents count in the digest"
    );

    // The same URLs again, in another order: the same digest, so nothing to do.
    let args = ["--unless-digest", digest, &corpus(), &b, &a];
    let (output, same) = ingest(&dirs.path("data"), &report, &args).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(same["unchanged"], true, "{same}");

    let gone = format!(
        "{}/gone?token=secret",
        base.replace("http://", "http://u:secret@")
    );
    let (output, value) = ingest(&dirs.path("data"), &report, &[&a, &gone]).await;
    let error = error_of(&output, &value);
    assert!(
        error.contains(&format!("{base}/gone: HTTP 404 Not Found")),
        "{error}"
    );
    assert!(
        !error.contains("secret") && !stderr(&output).contains("secret"),
        "{error}"
    );

    let args = ["--max-source-bytes", "63", &format!("{base}/big")];
    let (output, value) = ingest(&dirs.path("data"), &report, &args).await;
    let error = error_of(&output, &value);
    assert!(
        error.contains(&format!(
            "{base}/big: larger than the 63-byte limit (--max-source-bytes)"
        )),
        "{error}"
    );
}
