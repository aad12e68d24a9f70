//! A golden-set run against real HTTP servers on loopback standing in for each colour's pods.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::*;
use crate::analysis::golden::GoldenQuery;

/// Answers `query` with `answer(query)` as the only source after `delay`, counting the most
/// queries it had in flight at once.
fn runtime(answer: fn(&str) -> String, delay: Duration, most: Arc<AtomicUsize>) -> Router {
    let now = Arc::new(AtomicUsize::new(0));
    Router::new().route(
        "/v1/query",
        post(move |Json(body): Json<Value>| {
            let (now, most) = (now.clone(), most.clone());
            async move {
                let in_flight = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(in_flight, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                now.fetch_sub(1, Ordering::SeqCst);
                assert_eq!(body["topK"], 3);
                let id = answer(body["query"].as_str().unwrap());
                Json(json!({"answer": "", "sources": [{"documentId": id, "score": 1.0}]}))
            }
        }),
    )
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// `q0`..`q39`, each expecting `dN.md`.
fn set() -> Arc<GoldenSet> {
    Arc::new(GoldenSet {
        queries: (0..40)
            .map(|i| GoldenQuery {
                query: format!("q{i}"),
                expect_source_ids: vec![format!("d{i}.md")],
            })
            .collect(),
    })
}

fn job(target: Vec<SocketAddr>, active: Option<Vec<SocketAddr>>, budget: Duration) -> Job {
    Job {
        namespace: "ns".into(),
        pipeline: "p".into(),
        set: set(),
        revision: "r2".into(),
        started_at: Timestamp::UNIX_EPOCH,
        target: (Color::Green, target),
        active: active.map(|pods| (Color::Blue, pods)),
        k: 3,
        concurrency: 3,
        budget,
        bearer: None,
    }
}

fn right(query: &str) -> String {
    format!("d{}.md", &query[1..])
}

/// Every other query finds the wrong document.
fn half(query: &str) -> String {
    let n: usize = query[1..].parse().unwrap();
    if n.is_multiple_of(2) {
        "other.md".into()
    } else {
        right(query)
    }
}

#[tokio::test]
async fn scores_both_colours_a_few_queries_at_a_time() {
    let (most_new, most_active) = (Arc::default(), Arc::default());
    let delay = Duration::from_millis(10);
    let new = serve(runtime(half, delay, Arc::clone(&most_new))).await;
    let active = serve(runtime(right, delay, Arc::clone(&most_active))).await;
    let client = http_client();
    let scores = run(
        &client,
        &job(vec![new], Some(vec![active]), Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert_eq!(scores.target.recall_at_k(), 0.5);
    assert_eq!(scores.active.as_ref().unwrap().recall_at_k(), 1.0);
    assert_eq!(scores.target.queries[3].query, "q3", "in the set's order");
    for most in [most_new, most_active] {
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=3).contains(&most),
            "at most `concurrency` in flight: {most}"
        );
    }
}

#[tokio::test]
async fn a_run_over_its_budget_is_no_result() {
    let slow = serve(runtime(right, Duration::from_secs(5), Arc::default())).await;
    let client = http_client();
    let e = run(&client, &job(vec![slow], None, Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        "40 queries per colour did not finish within the time budget of 0s"
    );
}

#[tokio::test]
async fn a_query_without_an_answer_is_no_result_and_named() {
    let failing = Router::new().route(
        "/v1/query",
        post(|| async { axum::http::StatusCode::SERVICE_UNAVAILABLE }),
    );
    let new = serve(runtime(right, Duration::ZERO, Arc::default())).await;
    let active = serve(failing).await;
    let client = http_client();
    let e = run(
        &client,
        &job(vec![new], Some(vec![active]), Duration::from_secs(30)),
    )
    .await
    .unwrap_err();
    assert!(e.starts_with("blue: query \"q"), "{e}");
    assert!(e.ends_with("answered 503 Service Unavailable"), "{e}");
    let e = run(&client, &job(vec![], None, Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(e, "green has no ready pods to query");
}

#[test]
fn scores_are_operator_metrics_per_pipeline_and_colour() {
    let metrics = Metrics::default();
    let set = set();
    let answers = set
        .queries
        .iter()
        .map(|q| golden::score(q, &[half(&q.query)], 3));
    let half = Scores {
        queries: answers.collect(),
    };
    let scores = GoldenScores {
        target: half,
        active: Some(Scores::default()),
    };
    report(
        &metrics,
        &job(vec![], Some(vec![]), Duration::ZERO),
        &scores,
    );
    let text = metrics.render();
    for line in [
        r#"ragops_golden_set_recall_at_k{color="green",namespace="ns",pipeline="p"} 0.5"#,
        r#"ragops_golden_set_mrr{color="green",namespace="ns",pipeline="p"} 0.5"#,
        r#"ragops_golden_set_recall_at_k{color="blue",namespace="ns",pipeline="p"} 0"#,
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    // The pipeline gone (pruned): its series go with it.
    forget_scores(&metrics, "ns", "p");
    let text = metrics.render();
    assert!(!text.contains(r#"pipeline="p""#), "{text}");
}
