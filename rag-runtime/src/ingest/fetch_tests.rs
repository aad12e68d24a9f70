//! URL sources against a loopback HTTP server, and the address rules on every hop.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::routing::get;
use futures::stream;

use super::*;

/// What the server sent of `/endless` so far, in bytes.
type Sent = Arc<AtomicU64>;

async fn server() -> (String, Sent) {
    let sent: Sent = Arc::default();
    let counter = Arc::clone(&sent);
    let app = Router::new()
        .route(
            "/doc.md",
            get(|| async { "# Handbook\n\nBlue-green rollouts." }),
        )
        .route("/big", get(|| async { "x".repeat(2048) }))
        .route("/gone", get(|| async { (StatusCode::NOT_FOUND, "no") }))
        .route("/latin1", get(|| async { Bytes::from_static(b"caf\xe9") }))
        .route("/hang", get(std::future::pending::<&'static str>))
        .route("/to", get(redirect_to))
        .route(
            "/endless",
            // No content-length, and never ending: only a reader that stops at the limit returns.
            get(move || async move {
                let chunks = stream::repeat_with(move || {
                    counter.fetch_add(1024, Ordering::SeqCst);
                    Ok::<_, Infallible>(Bytes::from(vec![b'y'; 1024]))
                });
                Body::from_stream(chunks)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, sent)
}

fn limits(max_bytes: u64) -> SourceLimits {
    SourceLimits {
        max_bytes,
        timeout: Duration::from_secs(10),
    }
}

/// `/to?<url>` redirects there.
async fn redirect_to(uri: axum::http::Uri) -> axum::response::Redirect {
    axum::response::Redirect::temporary(uri.query().unwrap_or("/"))
}

/// The test servers listen on loopback, which the default policy refuses.
fn loopback_allowed() -> UrlSourcesConfig {
    UrlSourcesConfig {
        allow_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
        ..Default::default()
    }
}

async fn fetch(url: &str, limits: &SourceLimits) -> Result<Document> {
    fetch_with(url, limits, &loopback_allowed()).await
}

async fn fetch_with(
    url: &str,
    limits: &SourceLimits,
    policy: &UrlSourcesConfig,
) -> Result<Document> {
    Fetcher::new(limits.clone(), policy)
        .unwrap()
        .fetch(url)
        .await
}

#[tokio::test]
async fn a_url_is_a_document_named_by_the_url_without_credentials_or_query() {
    let (base, _) = server().await;
    let with_user = base.replace("http://", "http://reader:secret@");
    let doc = fetch(
        &format!("{with_user}/doc.md?token=secret#top"),
        &limits(1024),
    )
    .await
    .unwrap();
    assert_eq!(doc.id, format!("{base}/doc.md"));
    assert_eq!(doc.text, "# Handbook\n\nBlue-green rollouts.");
    assert_eq!(doc.metadata["title"], "Handbook");
    assert_eq!(doc.metadata["url"], doc.id.as_str());
}

#[tokio::test]
async fn a_body_over_the_limit_fails_naming_the_limit_and_the_url() {
    let (base, _) = server().await;
    // Refused by its content-length.
    let err = fetch(&format!("{base}/big"), &limits(2047))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        format!("{base}/big: larger than the 2047-byte limit (--max-source-bytes)")
    );
    assert!(fetch(&format!("{base}/big"), &limits(2048)).await.is_ok());
}

#[tokio::test]
async fn reading_stops_at_the_limit_without_a_content_length() {
    let (base, sent) = server().await;
    let max = 64 * 1024;
    let err = fetch(&format!("{base}/endless"), &limits(max))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("65536-byte limit"), "{err}");
    // The server keeps producing into socket buffers after the client stops; never much more.
    let produced = sent.load(Ordering::SeqCst);
    assert!(produced < 64 * max, "{produced} bytes produced");
}

#[tokio::test]
async fn a_status_other_than_2xx_fails_with_the_status_and_no_credentials() {
    let (base, _) = server().await;
    let url = format!(
        "{}/gone?token=secret",
        base.replace("http://", "http://u:secret@")
    );
    let err = fetch(&url, &limits(1024)).await.unwrap_err().to_string();
    assert_eq!(err, format!("{base}/gone: HTTP 404 Not Found"));
}

#[tokio::test]
async fn invalid_utf8_fails_naming_the_url() {
    let (base, _) = server().await;
    let err = fetch(&format!("{base}/latin1"), &limits(1024))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), format!("{base}/latin1: not UTF-8 text"));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (base, _) = server().await;
    let limits = SourceLimits {
        max_bytes: 1024,
        timeout: Duration::from_millis(300),
    };
    let err = fetch(&format!("{base}/hang"), &limits).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{base}/hang: timed out after 0.3s (--source-timeout-seconds)")
    );
}

#[tokio::test]
async fn an_unreachable_host_fails_without_credentials() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://u:secret@127.0.0.1:{port}/a.md?k=secret");
    let err = fetch(&url, &limits(1024)).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("http://127.0.0.1:{port}/a.md: ")),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn only_http_and_https_are_urls() {
    assert!(is_url("https://h/a.md") && is_url("http://h"));
    assert!(!is_url("docs/a.md") && !is_url("file:///a.md"));
    assert_eq!(
        url_id("https://u:p@h:8443/a.md?token=2#x").unwrap(),
        "https://h:8443/a.md"
    );
    assert!(url_id("http://").is_err());
}

#[tokio::test]
async fn loopback_metadata_and_private_addresses_are_refused_naming_the_rule() {
    let (base, _) = server().await;
    let port = base.rsplit(':').next().unwrap();
    let default = UrlSourcesConfig::default();
    for (url, rule) in [
        (format!("{base}/doc.md"), "127.0.0.1 is a loopback address"),
        // By name: refused after resolution, not by the name's spelling.
        (
            format!("http://localhost:{port}/doc.md"),
            "is a loopback address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/iam".into(),
            "169.254.169.254 is a link-local (cloud metadata) address",
        ),
        (
            "http://10.1.2.3/wiki".into(),
            "10.1.2.3 is a private address",
        ),
        (
            "http://[::ffff:192.168.0.1]/".into(),
            "192.168.0.1 is a private address",
        ),
    ] {
        let err = fetch_with(&url, &limits(1024), &default)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(rule), "{url}: {err}");
        assert!(
            err.contains("(denied; allow it with urlSources.allowCIDRs"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn every_redirect_is_checked_like_the_first_address() {
    let (base, _) = server().await;
    let port = base.rsplit(':').next().unwrap();
    // The test server itself is allowed by its name in the URL; where it redirects is not.
    let policy = UrlSourcesConfig {
        allow_hosts: vec!["127.0.0.1".into()],
        ..Default::default()
    };
    for (target, rule) in [
        (
            "http://169.254.169.254/latest/meta-data",
            "169.254.169.254 is a link-local",
        ),
        (
            "http://192.168.1.1/admin",
            "192.168.1.1 is a private address",
        ),
        (
            &format!("http://localhost:{port}/doc.md"),
            "is a loopback address",
        ),
    ] {
        let url = format!("{base}/to?{target}");
        let err = fetch_with(&url, &limits(1024), &policy)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(rule), "{target}: {err}");
    }
    // A redirect to an allowed place is followed.
    let url = format!("{base}/to?{base}/doc.md");
    let doc = fetch_with(&url, &limits(1024), &policy).await.unwrap();
    assert!(doc.text.starts_with("# Handbook"));
    assert_eq!(doc.id, format!("{base}/to"));
}

#[tokio::test]
async fn redirects_are_limited() {
    let (base, _) = server().await;
    let mut url = format!("{base}/doc.md");
    for _ in 0..=MAX_REDIRECTS {
        url = format!("{base}/to?{url}");
    }
    let err = fetch(&url, &limits(1024)).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("more than {MAX_REDIRECTS} redirects")),
        "{err}"
    );
}
