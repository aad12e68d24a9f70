//! The HTTP health checker against real HTTP servers on loopback.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::*;

/// Serves `router` on a free loopback port for the rest of the test.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn runtime(ready: StatusCode) -> Router {
    runtime_with_store(ready, StatusCode::OK)
}

fn runtime_with_store(ready: StatusCode, store: StatusCode) -> Router {
    Router::new()
        .route("/readyz", get(move || async move { ready }))
        .route(STORE_PATH, get(move || async move { store }))
        .route(
        "/v1/query",
        post(|Json(body): Json<Value>| async move {
            assert_eq!(body["topK"], 3, "the pipeline's topK is sent");
            Json(json!({
                "answer": "…",
                "sources": [
                    {"documentId": "guides/rollout.md", "chunk": 0, "score": 0.9, "text": "", "metadata": {}},
                    {"documentId": "guides/index.md", "chunk": 1, "score": 0.5, "text": "", "metadata": {}},
                ],
            }))
        }),
    )
}

const TOKEN: &str = "s3cret-token";

/// `router` behind bearer auth: 401 without [`TOKEN`], except on the `open` paths.
fn with_auth(router: Router, open: &'static [&'static str]) -> Router {
    router.layer(middleware::from_fn(
        move |req: Request, next: Next| async move {
            let sent = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|h| h.to_str().ok());
            if sent == Some(format!("Bearer {TOKEN}").as_str()) || open.contains(&req.uri().path())
            {
                next.run(req).await
            } else {
                StatusCode::UNAUTHORIZED.into_response()
            }
        },
    ))
}

fn health() -> HealthCheckSpec {
    HealthCheckSpec {
        timeout_seconds: 1,
        ..HealthCheckSpec::default()
    }
}

fn smoke(expect: &[&str], min_score: Option<f64>) -> SmokeQuery {
    SmokeQuery {
        query: "how do rollouts work?".into(),
        expect_source_ids: expect.iter().map(|s| s.to_string()).collect(),
        min_score,
    }
}

#[tokio::test]
async fn all_pods_must_answer_the_probe() {
    let good = serve(runtime(StatusCode::OK)).await;
    let bad = serve(runtime(StatusCode::SERVICE_UNAVAILABLE)).await;
    let checker = HttpHealthChecker::new();
    let h = health();
    let ok = checker
        .check(CheckRequest {
            pods: &[good, good],
            health: &h,
            smoke: None,
            bearer: None,
        })
        .await;
    assert_eq!(ok, ProbeOutcome::Healthy);
    let outcome = checker
        .check(CheckRequest {
            pods: &[good, bad],
            health: &h,
            smoke: None,
            bearer: None,
        })
        .await;
    let ProbeOutcome::Unhealthy(why) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        why.contains(&bad.to_string()) && why.contains("503"),
        "{why}"
    );
}

#[tokio::test]
async fn a_pod_whose_store_is_down_is_unhealthy_although_it_is_ready() {
    let store_down = serve(runtime_with_store(
        StatusCode::OK,
        StatusCode::SERVICE_UNAVAILABLE,
    ))
    .await;
    let good = serve(runtime(StatusCode::OK)).await;
    let checker = HttpHealthChecker::new();
    let h = health();
    let outcome = checker
        .check(CheckRequest {
            pods: &[good, store_down],
            health: &h,
            smoke: None,
            bearer: None,
        })
        .await;
    let ProbeOutcome::Unhealthy(why) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(why.starts_with("vector store check: "), "{why}");
    assert!(
        why.contains(&format!("{store_down}{STORE_PATH}")) && why.contains("503"),
        "{why}"
    );
}

#[tokio::test]
async fn unreachable_and_missing_pods_are_unhealthy() {
    // Bind then drop: nothing listens on this port any more.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let checker = HttpHealthChecker::new();
    let h = health();
    let outcome = checker
        .check(CheckRequest {
            pods: &[closed],
            health: &h,
            smoke: None,
            bearer: None,
        })
        .await;
    assert!(
        matches!(outcome, ProbeOutcome::Unhealthy(ref why) if why.contains(&closed.to_string())),
        "{outcome:?}"
    );
    let none = checker
        .check(CheckRequest {
            pods: &[],
            health: &h,
            smoke: None,
            bearer: None,
        })
        .await;
    assert!(matches!(none, ProbeOutcome::Unhealthy(_)));
}

#[tokio::test]
async fn smoke_queries_gate_on_ranking_and_score() {
    let pod = serve(runtime(StatusCode::OK)).await;
    let checker = HttpHealthChecker::new();
    let h = health();
    let cases = [
        (smoke(&["guides/rollout.md"], None), true),
        (
            smoke(&["guides/rollout.md", "guides/index.md"], Some(0.8)),
            true,
        ),
        (smoke(&["guides/missing.md"], None), false),
        (smoke(&[], Some(0.95)), false),
    ];
    for (query, passes) in cases {
        let queries = [query.clone()];
        let outcome = checker
            .check(CheckRequest {
                pods: &[pod],
                health: &h,
                smoke: Some((&queries, 3)),
                bearer: None,
            })
            .await;
        assert_eq!(
            outcome == ProbeOutcome::Healthy,
            passes,
            "{query:?}: {outcome:?}"
        );
        if !passes {
            assert!(
                matches!(outcome, ProbeOutcome::SmokeFailed(_)),
                "{outcome:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_gate_sends_the_bearer_token_to_probes_and_smoke_queries() {
    let checker = HttpHealthChecker::new();
    let h = health();
    let queries = [smoke(&["guides/rollout.md"], None)];
    let cases: [(&'static [&'static str], Option<&str>, &str); 5] = [
        // The runtime leaves its probes open and guards the API: the smoke query needs the token.
        (&["/readyz", STORE_PATH], Some(TOKEN), "Healthy"),
        (&["/readyz", STORE_PATH], None, "SmokeFailed"),
        (&["/readyz", STORE_PATH], Some("wrong"), "SmokeFailed"),
        // A probe path behind auth needs it too.
        (&[], Some(TOKEN), "Healthy"),
        (&[], None, "Unhealthy"),
    ];
    for (open, bearer, expected) in cases {
        let pod = serve(with_auth(runtime(StatusCode::OK), open)).await;
        let outcome = checker
            .check(CheckRequest {
                pods: &[pod],
                health: &h,
                smoke: Some((&queries, 3)),
                bearer,
            })
            .await;
        match (&outcome, expected) {
            (ProbeOutcome::Healthy, "Healthy") => {}
            (ProbeOutcome::SmokeFailed(why), "SmokeFailed")
            | (ProbeOutcome::Unhealthy(why), "Unhealthy") => {
                assert!(why.contains("401"), "{open:?} {bearer:?}: {why}");
                assert!(!why.contains(TOKEN), "the token never shows: {why}");
            }
            _ => panic!("{open:?} {bearer:?}: expected {expected}, got {outcome:?}"),
        }
    }
}

#[test]
fn expected_sources_must_be_within_top_k() {
    let sources = vec![
        Source {
            document_id: "a".into(),
            score: 0.9,
        },
        Source {
            document_id: "b".into(),
            score: 0.8,
        },
    ];
    assert!(judge(&smoke(&["b"], None), 2, &sources).is_ok());
    assert!(judge(&smoke(&["b"], None), 1, &sources).is_err());
}
