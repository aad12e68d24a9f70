//! A deadline on each request a reconciliation makes. Without one, a call to a saturated API
//! server can hold its reconciliation (and one of the controller's concurrent slots) for minutes:
//! kube 5's default client stack retries 429, 503 and 504 answers by itself (kube-client's
//! `RetryPolicy::server_retry`, up to 15 times with exponential backoff from 5 ms, honouring
//! `Retry-After`), and its read timeout is minutes long. The deadline wraps the whole call, so it
//! bounds those retries too. An expired call is a typed [`Error::Timeout`] naming the verb, kind
//! and object, a WARN line, and one more `ragops_api_timeouts_total{kind}`.

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use crate::error::Error;
use crate::metrics::Metrics;

/// One request: what it does to which object, for the error and the log.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// `get`, `apply`, `scale`, `delete`, `patch`, `list`, …
    pub verb: &'static str,
    pub kind: &'static str,
    pub name: &'a str,
}

impl Call<'_> {
    /// Whether the call changes anything: every verb but the reads (`get…`, `list…`, `watch…`).
    pub fn is_write(&self) -> bool {
        !["get", "list", "watch"]
            .iter()
            .any(|read| self.verb.starts_with(read))
    }
}

/// Runs `request` under `timeout`. Its own failure becomes a step error through `step`; running
/// out of time becomes [`Error::Timeout`], logged and counted.
pub async fn bounded<T, E>(
    timeout: Duration,
    metrics: &Metrics,
    call: Call<'_>,
    request: impl Future<Output = Result<T, E>>,
    step: impl FnOnce(E) -> Error,
) -> Result<T, Error> {
    match tokio::time::timeout(timeout, request).await {
        Ok(answer) => answer.map_err(step),
        Err(_) => {
            metrics.api_timeouts.with_label_values(&[call.kind]).inc();
            warn!(
                verb = call.verb,
                kind = call.kind,
                object = call.name,
                ?timeout,
                "the API server did not answer in time"
            );
            Err(Error::Timeout {
                verb: call.verb,
                kind: call.kind,
                name: call.name.to_string(),
                after: timeout,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Secret;
    use kube::Api;

    use super::*;

    /// A kube client whose API server never answers.
    fn silent_client() -> kube::Client {
        let never = tower::service_fn(|_: http::Request<kube::client::Body>| {
            futures::future::pending::<Result<http::Response<kube::client::Body>, std::io::Error>>()
        });
        kube::Client::new(never, "default")
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_with_no_answer_ends_at_the_deadline_as_a_typed_error_and_is_counted() {
        let metrics = Metrics::default();
        let api: Api<Secret> = Api::namespaced(silent_client(), "ns");
        let call = Call {
            verb: "get",
            kind: "Secret",
            name: "keys",
        };
        let start = tokio::time::Instant::now();
        let timeout = Duration::from_secs(30);
        let result = bounded(timeout, &metrics, call, api.get("keys"), |source| {
            Error::Read {
                what: "Secret keys".into(),
                source,
            }
        })
        .await;
        assert_eq!(start.elapsed(), timeout);
        let error = result.expect_err("no answer");
        assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
        assert_eq!(
            (error.category(), error.reason()),
            ("timeout", "APITimeout")
        );
        assert_eq!(
            error.to_string(),
            "get Secret keys: no answer from the API server within 30s"
        );
        assert!(!error.is_conflict());
        let text = metrics.render();
        assert!(
            text.contains(r#"ragops_api_timeouts_total{kind="Secret"} 1"#),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_time_is_passed_through_and_not_counted() {
        let metrics = Metrics::default();
        let call = Call {
            verb: "delete",
            kind: "Job",
            name: "j",
        };
        let answer = async { Ok::<_, kube::Error>(7) };
        let ok = bounded(
            Duration::from_secs(1),
            &metrics,
            call,
            answer,
            Error::Status,
        )
        .await;
        assert_eq!(ok.unwrap(), 7);
        assert!(!metrics.render().contains("ragops_api_timeouts_total{"));
    }
}
