//! The Qdrant server store over gRPC, and `rag-runtime ingest --revision` / `serve` as processes
//! against a real server. The tests that need a server are ignored unless asked for
//! (`cargo test -- --include-ignored`) and then need `QDRANT_URL` naming a Qdrant gRPC port (e.g.
//! `http://localhost:6334`); without it they fail rather than pass having done nothing.
//! `make qdrant-test` runs them against a server started by `e2e/hack/qdrant.sh run`.

mod common;

use common::qdrant::{qdrant_url, unique};

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use rag_runtime::config::{QdrantConfig, RuntimeConfig, VectorStoreConfig};
use rag_runtime::ingest;
use rag_runtime::rag::Rag;
use rag_runtime::store::qdrant::QdrantStore;
use rag_runtime::store::{Filter, VectorStore};

fn config(url: &str, collection: &str) -> RuntimeConfig {
    let mut config = RuntimeConfig {
        vector_store: VectorStoreConfig::Qdrant(QdrantConfig {
            url: url.to_string(),
        }),
        ..Default::default()
    };
    config.collection.0 = collection.to_string();
    config
}

#[tokio::test]
#[ignore = "needs a Qdrant server: set QDRANT_URL to its gRPC port"]
async fn ingest_query_and_delete_on_a_qdrant_server() {
    let url = qdrant_url();
    rag_runtime::install_crypto_provider();
    let collection = unique("ragops-test");
    let rag = Arc::new(Rag::from_config(config(&url, &collection)).await.unwrap());
    rag.store
        .ensure_collection(rag.embedder.dimensions())
        .await
        .unwrap();
    rag.store.ready().await.unwrap();
    let report = ingest::ingest_paths(Arc::clone(&rag), &[common::corpus()], 2, false)
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(rag.store.count().await.unwrap(), report.chunks as u64);

    let hits = rag
        .retrieve(
            "How does traffic switch during a blue-green rollout?",
            3,
            Filter::default(),
        )
        .await
        .unwrap();
    assert_eq!(hits[0].document_id, "guides/blue-green.md");
    assert!(hits[0].score <= 1.0 + 1e-6);

    // Ingesting again stores the same points.
    ingest::ingest_paths(Arc::clone(&rag), &[common::corpus()], 2, false)
        .await
        .unwrap();
    assert_eq!(rag.store.count().await.unwrap(), report.chunks as u64);

    assert!(
        rag.store
            .delete_document("guides/blue-green.md", 0)
            .await
            .unwrap()
            >= 1
    );
    let hits = rag
        .retrieve("blue-green rollout cutover", 10, Filter::default())
        .await
        .unwrap();
    assert!(hits.iter().all(|h| h.document_id != "guides/blue-green.md"));

    let store = QdrantStore::connect(
        &QdrantConfig { url: url.clone() },
        &collection,
        Default::default(),
    )
    .unwrap();
    store.drop_collection(&collection).await.unwrap();
}

#[tokio::test]
#[ignore = "needs a Qdrant server: set QDRANT_URL to its gRPC port"]
async fn aliases_switch_to_a_new_revision() {
    let url = qdrant_url();
    rag_runtime::install_crypto_provider();
    let alias = unique("ragops-alias");
    let qdrant = QdrantConfig { url: url.clone() };
    let mut previous = None;
    for revision in ["r1", "r2"] {
        let target = format!("{alias}-{revision}");
        let rag = Arc::new(Rag::from_config(config(&url, &target)).await.unwrap());
        rag.store
            .ensure_collection(rag.embedder.dimensions())
            .await
            .unwrap();
        ingest::ingest_paths(Arc::clone(&rag), &[common::corpus()], 2, false)
            .await
            .unwrap();
        let store = QdrantStore::connect(&qdrant, &target, Default::default()).unwrap();
        assert_eq!(store.switch_alias(&alias).await.unwrap(), previous);
        previous = Some(target);
    }
    // Reading through the alias reaches the newest revision.
    let through_alias = QdrantStore::connect(&qdrant, &alias, Default::default()).unwrap();
    through_alias.ready().await.unwrap();
    assert!(through_alias.count().await.unwrap() > 0);
    for revision in ["r1", "r2"] {
        through_alias
            .drop_collection(&format!("{alias}-{revision}"))
            .await
            .unwrap();
    }
}

/// Qdrant's REST port is plain HTTP/1.1; a gRPC client there fails with an HTTP/2 framing error.
#[tokio::test]
async fn an_http_port_is_named_in_the_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let reply = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
            let _ = socket.write_all(reply.as_bytes()).await;
            // Open until the client gives up, as a real server would be.
            while socket.read(&mut request).await.is_ok_and(|n| n > 0) {}
        }
    });
    let store = QdrantStore::connect(&QdrantConfig { url }, "any", Default::default()).unwrap();
    let err = store.ready().await.unwrap_err().to_string();
    assert!(err.contains("must name Qdrant's gRPC port (6334"), "{err}");
}

#[tokio::test]
async fn store_errors_show_the_url_without_credentials() {
    let url = "http://user:secret@127.0.0.1:1/?api-key=secret".to_string();
    let store = QdrantStore::connect(&QdrantConfig { url }, "any", Default::default()).unwrap();
    let err = store.ready().await.unwrap_err().to_string();
    assert!(
        err.contains("127.0.0.1:1") && !err.contains("secret"),
        "{err}"
    );
}

// ---- `rag-runtime ingest --revision` and `serve` as processes ----

const DEADLINE: Duration = Duration::from_secs(60);
const QUESTION: &str = "How does traffic switch during a blue-green rollout?";

/// The runtime's config file for a Qdrant server, reading through `collection` (the alias).
fn config_file(dir: &Path, url: &str, collection: &str) -> PathBuf {
    let path = dir.join("runtime.yaml");
    let yaml = format!("vectorStore:\n  qdrant:\n    url: {url}\ncollection: {collection}\n");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn runtime(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rag-runtime"));
    cmd.arg(args[0])
        .arg("--config")
        .arg(config)
        .args(&args[1..])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    cmd
}

/// `rag-runtime ingest --json ARGS... SOURCE`; the chunk count when it succeeded.
async fn ingest_cli(config: &Path, args: &[&str], source: &Path) -> (Output, Option<u64>) {
    let output = runtime(config, &[&["ingest", "--json"], args].concat())
        .arg(source)
        .output()
        .await
        .unwrap();
    let chunks = output.status.success().then(|| {
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        report["chunks"].as_u64().unwrap()
    });
    (output, chunks)
}

fn stderr(output: &Output) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(&output.stderr)
}

/// The server's real collections (aliases are not collections) and its aliases.
async fn collections_and_aliases(url: &str) -> (Vec<String>, Vec<String>) {
    let client = qdrant_client::Qdrant::from_url(url)
        .skip_compatibility_check()
        .build()
        .unwrap();
    let collections = client.list_collections().await.unwrap().collections;
    let aliases = client.list_aliases().await.unwrap().aliases;
    (
        collections.into_iter().map(|c| c.name).collect(),
        aliases.into_iter().map(|a| a.alias_name).collect(),
    )
}

async fn drop_collection(url: &str, name: &str) {
    let store = QdrantStore::connect(&QdrantConfig { url: url.into() }, name, Default::default());
    store.unwrap().drop_collection(name).await.unwrap();
}

/// The pitfall: a plain `ingest` on a fresh server creates a real collection under the alias's
/// name. A `--revision` run then fails, and must do so before it creates its own collection.
#[tokio::test]
#[ignore = "needs a Qdrant server: set QDRANT_URL to its gRPC port"]
async fn a_collection_on_the_alias_name_fails_a_revision_before_it_writes() {
    let url = qdrant_url();
    let dir = tempfile::tempdir().unwrap();
    let alias = unique("ragops-squat");
    let config = config_file(dir.path(), &url, &alias);

    let (plain, chunks) = ingest_cli(&config, &[], &common::corpus()).await;
    assert!(chunks.is_some_and(|c| c > 0), "{}", stderr(&plain));
    let (collections, aliases) = collections_and_aliases(&url).await;
    assert!(collections.contains(&alias) && !aliases.contains(&alias));

    let (revision, _) = ingest_cli(&config, &["--revision", "r1"], &common::corpus()).await;
    let err = stderr(&revision);
    assert!(!revision.status.success(), "{err}");
    assert!(
        err.contains(&format!("{alias} is a collection, not an alias")),
        "{err}"
    );
    let (collections, aliases) = collections_and_aliases(&url).await;
    let orphan = format!("{alias}-r1");
    assert!(!collections.contains(&orphan), "{orphan} was left behind");
    assert!(!aliases.contains(&alias));
    drop_collection(&url, &alias).await;
}

/// A `rag-runtime serve` process, killed when dropped; its log is kept for failure messages.
struct ServeProcess {
    _child: Child,
    addr: String,
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServeProcess {
    async fn start(config: &Path) -> Self {
        let mut child = runtime(config, &["serve", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (addr_tx, mut addr_rx) = watch::channel(None::<String>);
        let sink = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                // `INFO rag_runtime: serving address=127.0.0.1:PORT ...`
                if let Some(rest) = line.split_once(" serving address=").map(|(_, r)| r) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    addr_tx.send_replace(Some(addr.to_string()));
                }
                sink.lock().unwrap().push(line);
            }
        });
        let waited = tokio::time::timeout(DEADLINE, addr_rx.wait_for(Option::is_some)).await;
        let addr = match waited {
            Ok(Ok(addr)) => addr.clone().unwrap(),
            _ => panic!("serve did not start: {:?}", log.lock().unwrap()),
        };
        Self {
            _child: child,
            addr,
            log,
        }
    }

    /// Every chunk of the collection behind the alias, sorted: with `topK` above the corpus size
    /// the hybrid query returns them all (both prefetches take twice the limit).
    async fn query(&self, client: &reqwest::Client) -> Result<Vec<String>, String> {
        let body = serde_json::json!({"query": QUESTION, "topK": 100});
        let url = format!("http://{}/v1/query", self.addr);
        let response = client.post(url).json(&body).send().await;
        let response = response.map_err(|e| e.to_string())?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        let sources = body["sources"].as_array().filter(|_| status.is_success());
        let sources = sources.ok_or_else(|| format!("{status}: {body}"))?;
        let mut chunks: Vec<String> = (sources.iter())
            .map(|s| format!("{}#{}: {}", s["documentId"], s["chunk"], s["text"]))
            .collect();
        chunks.sort();
        Ok(chunks)
    }
}

/// An answer's chunks, and whether its query started while the second `ingest --revision` ran.
type Answer = (bool, Result<Vec<String>, String>);

/// Queries `serve` back to back until told to stop.
async fn query_loop(
    serve: Arc<ServeProcess>,
    ingesting: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) -> Vec<Answer> {
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    while !*stop.borrow_and_update() {
        let during_ingest = ingesting.load(Ordering::SeqCst);
        answers.push((during_ingest, serve.query(&client).await));
    }
    answers
}

/// A serve process queried in a loop while a second `ingest --revision --drop-previous` fills a
/// new collection and switches the alias: every answer holds exactly the chunks of one complete
/// revision, none fails, and once the new revision answers the old one never does again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Qdrant server: set QDRANT_URL to its gRPC port"]
async fn queries_during_an_alias_switch_are_answered_from_a_complete_collection() {
    let url = qdrant_url();
    rag_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let alias = unique("ragops-switch");
    let config = config_file(dir.path(), &url, &alias);
    let (first, n1) = ingest_cli(&config, &["--revision", "r1"], &common::corpus()).await;
    let n1 = n1.unwrap_or_else(|| panic!("{}", stderr(&first)));
    let serve = Arc::new(ServeProcess::start(&config).await);
    let client = reqwest::Client::new();
    let r1 = serve.query(&client).await.unwrap();
    assert_eq!(r1.len() as u64, n1, "{:?}", serve.log);

    let ingesting = Arc::new(AtomicBool::new(true));
    let (stop, stopped) = watch::channel(false);
    let looper = tokio::spawn(query_loop(
        Arc::clone(&serve),
        Arc::clone(&ingesting),
        stopped,
    ));
    let started = Instant::now();
    let args = ["--revision", "r2", "--drop-previous"];
    let (second, n2) = ingest_cli(&config, &args, &second_corpus(dir.path())).await;
    ingesting.store(false, Ordering::SeqCst);
    let ingest_time = started.elapsed();
    let n2 = n2.unwrap_or_else(|| panic!("{}", stderr(&second)));
    // A query after the switch reads all of the new revision.
    let r2 = serve.query(&client).await.unwrap();
    assert_eq!(r2.len() as u64, n2);
    assert!(n2 < 100, "topK 100 must cover every chunk");
    stop.send_replace(true);
    let answers = looper.await.unwrap();

    let is = |a: &Answer, chunks: &Vec<String>| a.1.as_ref() == Ok(chunks);
    let failed: Vec<_> = (answers.iter())
        .filter(|a| !is(a, &r1) && !is(a, &r2))
        .map(|a| &a.1)
        .collect();
    let during = answers.iter().filter(|a| a.0).count();
    let from = |chunks| answers.iter().filter(|a| is(a, chunks)).count();
    println!(
        "alias switch: {} queries, {during} while the second ingest ran ({ingest_time:?}); \
         {} answered from r1 ({n1} chunks), {} from r2 ({n2} chunks), {} failed",
        answers.len(),
        from(&r1),
        from(&r2),
        failed.len()
    );
    assert!(failed.is_empty(), "failed or partial answers: {failed:?}");
    assert!(during > 0, "no query overlapped the second ingest");
    let switched = answers.iter().position(|a| is(a, &r2));
    let back = switched.and_then(|i| answers[i..].iter().position(|a| is(a, &r1)));
    assert_eq!(back, None, "an answer from r1 after r2 had answered");
    let (collections, _) = collections_and_aliases(&url).await;
    assert!(
        !collections.contains(&format!("{alias}-r1")),
        "--drop-previous left r1"
    );
    drop_collection(&url, &format!("{alias}-r2")).await;
}

/// The sample corpus with every document changed and one added: no chunk set of a partly
/// filled second revision equals either complete one.
fn second_corpus(dir: &Path) -> PathBuf {
    let root = dir.join("corpus-r2");
    for entry in walkdir::WalkDir::new(common::corpus()) {
        let entry = entry.unwrap();
        let target = root.join(entry.path().strip_prefix(common::corpus()).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(target).unwrap();
        } else {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(target, format!("Revision two.\n\n{text}")).unwrap();
        }
    }
    let extra = "# Release notes\n\nRevision two adds these notes about alias switches.\n";
    std::fs::write(root.join("release-notes.md"), extra).unwrap();
    root
}
