//! The parser against canned `/api/v1/query` bodies, and the client against a tiny in-process
//! HTTP server serving them: a test of our reading of Prometheus' API, not a stand-in for it.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;

use super::*;

fn number(value: f64, text: &str) -> Result<QueryValue, QueryError> {
    Ok(QueryValue::Number {
        value,
        text: text.into(),
    })
}

const VECTOR_ONE: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"ragops_io_color":"green"},"value":[1765000000.123,"0.25"]}]}}"#;
const VECTOR_EMPTY: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
const VECTOR_TWO: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"ragops_io_color":"blue","code":"200"},"value":[1,"1"]},{"metric":{"ragops_io_color":"green"},"value":[1,"2"]}]}}"#;
const SCALAR: &str =
    r#"{"status":"success","data":{"resultType":"scalar","result":[1765000000,"3"]}}"#;
const BAD_DATA: &str = r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#;

#[test]
fn responses_read_into_a_number_no_data_or_a_clear_error() {
    let cases: Vec<(u16, &str, Result<QueryValue, QueryError>)> = vec![
        (200, VECTOR_ONE, number(0.25, "0.25")),
        (200, SCALAR, number(3.0, "3")),
        (200, VECTOR_EMPTY, Ok(QueryValue::Empty)),
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"+Inf"]}]}}"#,
            number(f64::INFINITY, "+Inf"),
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#,
            Err(QueryError::NaN),
        ),
        (
            200,
            VECTOR_TWO,
            Err(QueryError::Shape(
                r#"2 series ({ragops_io_color="blue", code="200"}…)"#.into(),
            )),
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
            Err(QueryError::Shape(
                "a range vector (matrix); drop the [range] or wrap it in a function".into(),
            )),
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#,
            Err(QueryError::Shape("a string".into())),
        ),
        (
            400,
            BAD_DATA,
            Err(QueryError::Prometheus {
                kind: "bad_data".into(),
                message: "1:5: parse error: unexpected end of input".into(),
            }),
        ),
        (
            503,
            "Service Unavailable\n",
            Err(QueryError::Http {
                status: 503,
                body: "Service Unavailable".into(),
            }),
        ),
        (200, "<html>", Err(QueryError::Decode("<html>".into()))),
        (
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"abc"]}}"#,
            Err(QueryError::Decode(
                r#"a sample value that is not a number: "abc""#.into(),
            )),
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}"#,
            Err(QueryError::Decode(
                "a sample that is not [time, value]: null".into(),
            )),
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
            Err(QueryError::Decode("a vector that is not a list".into())),
        ),
        (
            200,
            r#"{"status":"success","data":{}}"#,
            Err(QueryError::Decode("result type None".into())),
        ),
    ];
    for (status, body, want) in cases {
        assert_eq!(parse_response(status, body.as_bytes()), want, "{body}");
    }
}

#[test]
fn long_bodies_are_cut_in_messages() {
    let body = "x".repeat(5000);
    let Err(QueryError::Http { body, .. }) = parse_response(502, body.as_bytes()) else {
        panic!("an HTTP error");
    };
    assert_eq!(body.chars().count(), 201);
    let quoted = format!(
        r#"{{"status":"error","errorType":"bad_data","error":"{}"}}"#,
        "q".repeat(5000)
    );
    let Err(QueryError::Prometheus { message, .. }) = parse_response(400, quoted.as_bytes()) else {
        panic!("a Prometheus error");
    };
    assert_eq!(message.chars().count(), 201);
}

#[test]
fn addresses_become_query_urls() {
    let timeout = Duration::from_secs(5);
    let url = query_url(
        "http://prometheus.monitoring:9090/",
        "sum(x{a=\"b\"})",
        timeout,
    )
    .unwrap();
    assert_eq!(
        url.as_str(),
        "http://prometheus.monitoring:9090/api/v1/query?query=sum%28x%7Ba%3D%22b%22%7D%29&timeout=5000ms"
    );
    let prefixed = query_url("https://example.org/prom", "up", timeout).unwrap();
    assert_eq!(prefixed.path(), "/prom/api/v1/query");
    assert_eq!(query_url("", "up", timeout), Err(QueryError::NoAddress));
    assert_eq!(
        query_url("prometheus:9090", "up", timeout),
        Err(QueryError::Address("prometheus:9090".into()))
    );
    assert_eq!(
        query_url("not a url", "up", timeout),
        Err(QueryError::Address("not a url".into()))
    );
}

/// Answers each query with the canned response of the same name; `hang` never answers.
async fn serve() -> SocketAddr {
    async fn query(Query(params): Query<HashMap<String, String>>) -> (StatusCode, String) {
        let query = params.get("query").map(String::as_str).unwrap_or_default();
        match query {
            "one" => (StatusCode::OK, VECTOR_ONE.into()),
            "empty" => (StatusCode::OK, VECTOR_EMPTY.into()),
            "two" => (StatusCode::OK, VECTOR_TWO.into()),
            "bad" => (StatusCode::BAD_REQUEST, BAD_DATA.into()),
            "huge" => (StatusCode::OK, " ".repeat(MAX_BODY + 1)),
            "hang" => std::future::pending().await,
            // Echo what arrived, so the test sees the query and timeout parameters.
            _ => (
                StatusCode::OK,
                format!(
                    r#"{{"status":"success","data":{{"resultType":"scalar","result":[1,"{}"]}}}}"#,
                    query.len() + params.get("timeout").map_or(0, |_| 1000)
                ),
            ),
        }
    }
    let app = Router::new()
        .route("/api/v1/query", get(query))
        .route("/prefix/api/v1/query", get(query));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn the_client_reads_what_a_server_answers() {
    let addr = serve().await;
    let client = PrometheusClient::new(Duration::from_secs(5));
    let base = format!("http://{addr}");
    let ask = |q: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move { client.query(&base, q).await }
    };
    assert_eq!(ask("one").await, number(0.25, "0.25"));
    assert_eq!(ask("empty").await, Ok(QueryValue::Empty));
    assert!(matches!(ask("two").await, Err(QueryError::Shape(_))));
    assert!(matches!(
        ask("bad").await,
        Err(QueryError::Prometheus { kind, .. }) if kind == "bad_data"
    ));
    assert_eq!(
        ask("huge").await,
        Err(QueryError::Decode(format!("a body over {MAX_BODY} bytes")))
    );
    // `sum(rate(x[1m]))` is 16 characters; 1000 more says the timeout parameter was sent.
    assert_eq!(ask("sum(rate(x[1m]))").await, number(1016.0, "1016"));
    let prefixed = client.query(&format!("http://{addr}/prefix/"), "one").await;
    assert_eq!(prefixed, number(0.25, "0.25"));
}

#[tokio::test]
async fn the_client_is_a_metric_source() {
    let addr = serve().await;
    let source: Box<dyn MetricSource> = Box::new(PrometheusClient::new(Duration::from_secs(5)));
    let result = source.query(&format!("http://{addr}"), "empty").await;
    assert_eq!(result, Ok(QueryValue::Empty));
}

#[tokio::test]
async fn a_server_that_hangs_is_a_timeout() {
    let addr = serve().await;
    let client = PrometheusClient::new(Duration::from_millis(200));
    let result = client.query(&format!("http://{addr}"), "hang").await;
    assert_eq!(result, Err(QueryError::Timeout(Duration::from_millis(200))));
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error_without_the_address_credentials() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = PrometheusClient::new(Duration::from_secs(5));
    let result = client
        .query(&format!("http://user:s3cret@{addr}"), "up")
        .await;
    let Err(QueryError::Transport(message)) = result else {
        panic!("a transport error: {result:?}");
    };
    assert!(!message.contains("s3cret"), "{message}");
    let text = QueryError::Transport(message).to_string();
    assert!(text.starts_with("Prometheus unreachable: "), "{text}");
}
