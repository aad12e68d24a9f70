//! The one Prometheus call analysis makes: an instant query (`GET /api/v1/query`) under a
//! deadline, read into one number or "no data".
//!
//! Anything else a query can come back with (several series, a range, a string, NaN, an HTTP or
//! Prometheus error, a connection that fails or hangs) is a [`QueryError`] whose message says
//! what happened: the caller records it as an inconclusive measurement and goes on. Nothing
//! here panics on what a server sends.

use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

/// Bodies larger than this are refused: an analysis result is one number, and a query that
/// forgot to aggregate over a big fleet should not be read into memory.
const MAX_BODY: usize = 1 << 20;

/// What an instant query returned.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryValue {
    /// One sample: the number and the text Prometheus wrote (`0.25`, `+Inf`).
    Number { value: f64, text: String },
    /// An empty vector: no series matched.
    Empty,
}

/// Why a query gave no usable result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error(
        "no Prometheus address: set spec.rollout.analysis.prometheus.address or the operator's --prometheus-url"
    )]
    NoAddress,
    #[error("Prometheus address {0:?} is not a URL")]
    Address(String),
    #[error("Prometheus did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Prometheus unreachable: {0}")]
    Transport(String),
    #[error("Prometheus answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("Prometheus refused the query ({kind}): {message}")]
    Prometheus { kind: String, message: String },
    #[error("the query returned {0}; it must return a scalar or a one-element vector")]
    Shape(String),
    #[error("the query returned NaN (a division by zero, for example no requests in the window)")]
    NaN,
    #[error("Prometheus sent a response that is not its API's JSON: {0}")]
    Decode(String),
}

/// Where measurements come from: Prometheus in the operator, a fake in tests of the code that
/// schedules them (as `HealthChecker` is for probes).
#[async_trait::async_trait]
pub trait MetricSource: Send + Sync {
    /// Runs `promql` as an instant query against the Prometheus at `address`.
    async fn query(&self, address: &str, promql: &str) -> Result<QueryValue, QueryError>;
}

#[async_trait::async_trait]
impl MetricSource for PrometheusClient {
    async fn query(&self, address: &str, promql: &str) -> Result<QueryValue, QueryError> {
        PrometheusClient::query(self, address, promql).await
    }
}

/// A Prometheus HTTP API client; one per operator, shared by every pipeline (the address is per
/// query, since each pipeline may name its own).
#[derive(Clone)]
pub struct PrometheusClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl PrometheusClient {
    /// A client whose queries fail after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        // reqwest insists on a process-wide TLS provider even for plain HTTP; installing one twice
        // is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("an HTTP client with a timeout always builds");
        Self { http, timeout }
    }

    /// Runs `promql` as an instant query against the Prometheus at `address`.
    pub async fn query(&self, address: &str, promql: &str) -> Result<QueryValue, QueryError> {
        let url = query_url(address, promql, self.timeout)?;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.failed(e))?;
        let status = response.status();
        let body = read_capped(response)
            .await
            .map_err(|e| self.failed(e))?
            .ok_or_else(|| QueryError::Decode(format!("a body over {MAX_BODY} bytes")))?;
        parse_response(status.as_u16(), &body)
    }

    fn failed(&self, e: reqwest::Error) -> QueryError {
        if e.is_timeout() {
            return QueryError::Timeout(self.timeout);
        }
        // The URL may carry credentials; the message never shows it.
        let e = e.without_url();
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        QueryError::Transport(message)
    }
}

fn query_url(address: &str, promql: &str, timeout: Duration) -> Result<Url, QueryError> {
    if address.trim().is_empty() {
        return Err(QueryError::NoAddress);
    }
    let base = format!("{}/api/v1/query", address.trim_end_matches('/'));
    let mut url = Url::parse(&base).map_err(|_| QueryError::Address(address.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(QueryError::Address(address.to_string()));
    }
    url.query_pairs_mut()
        .append_pair("query", promql)
        .append_pair("timeout", &format!("{}ms", timeout.as_millis()));
    Ok(url)
}

/// The body, or `None` once it passes [`MAX_BODY`].
async fn read_capped(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Reads an `/api/v1/query` response (any HTTP status) into a value or a clear error.
pub fn parse_response(status: u16, body: &[u8]) -> Result<QueryValue, QueryError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let Some(json) = json.filter(|j| j.get("status").is_some()) else {
        return Err(if (200..300).contains(&status) {
            QueryError::Decode(snippet(body))
        } else {
            QueryError::Http {
                status,
                body: snippet(body),
            }
        });
    };
    if json["status"] != "success" {
        // Cut like a body: Prometheus may quote the whole query back, and this ends up in status.
        let text = |key: &str| snippet(json[key].as_str().unwrap_or("unknown").as_bytes());
        return Err(QueryError::Prometheus {
            kind: text("errorType"),
            message: text("error"),
        });
    }
    let data = &json["data"];
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("scalar") => sample(result),
        Some("vector") => match result.as_array().map(Vec::as_slice) {
            Some([]) => Ok(QueryValue::Empty),
            Some([one]) => sample(&one["value"]),
            Some(many) => Err(QueryError::Shape(format!(
                "{} series ({}…)",
                many.len(),
                labels(&many[0]["metric"])
            ))),
            None => Err(QueryError::Decode("a vector that is not a list".into())),
        },
        Some("matrix") => Err(QueryError::Shape(
            "a range vector (matrix); drop the [range] or wrap it in a function".into(),
        )),
        Some("string") => Err(QueryError::Shape("a string".into())),
        other => Err(QueryError::Decode(format!("result type {other:?}"))),
    }
}

/// `[<time>, "<value>"]` into a number.
fn sample(pair: &Value) -> Result<QueryValue, QueryError> {
    let text = pair
        .get(1)
        .and_then(Value::as_str)
        .ok_or_else(|| QueryError::Decode(format!("a sample that is not [time, value]: {pair}")))?;
    let value: f64 = text.parse().map_err(|_| {
        QueryError::Decode(format!("a sample value that is not a number: {text:?}"))
    })?;
    if value.is_nan() {
        return Err(QueryError::NaN);
    }
    Ok(QueryValue::Number {
        value,
        text: text.to_string(),
    })
}

/// `{a="1", b="2"}` of a series, for messages.
fn labels(metric: &Value) -> String {
    let pairs: Vec<String> = metric
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map_or(v.to_string(), |s| format!("{s:?}"))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!("{{{}}}", pairs.join(", "))
}

/// The start of a body, for messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
