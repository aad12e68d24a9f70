//! The leadership gate in the client stack, the last check before a request goes out: a write
//! (any method but GET, HEAD, OPTIONS) is refused while the replica does not lead, after the
//! client-side rate limit's wait and before each of kube's retries, so neither can carry a write
//! past the renew deadline. Reads and watches pass. `Shared::call` checks first and names the
//! refused call; this layer also covers what bypasses it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request};
use tower::{BoxError, Layer, Service};

use crate::leader::{Gate, NotLeading};

#[derive(Clone)]
pub struct GateLayer {
    gate: Gate,
}

impl GateLayer {
    pub fn new(gate: Gate) -> Self {
        Self { gate }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gated {
            inner,
            gate: self.gate.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Gated<S> {
    inner: S,
    gate: Gate,
}

/// Whether a request of `method` changes anything.
pub fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

type Answer<R> = Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>;

impl<S, B> Service<Request<B>> for Gated<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Answer<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if is_write(request.method()) && !self.gate.leading() {
            let refused: BoxError = Box::new(NotLeading);
            return Box::pin(async move { Err(refused) });
        }
        let answer = self.inner.call(request);
        Box::pin(async move { answer.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, DeleteParams};
    use tokio::time::Instant;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn past_the_deadline_writes_never_reach_the_wire_and_reads_still_do() {
        let (wire, sent) = crate::client::counting_wire();
        let gate = Gate::closed();
        gate.open_until(Instant::now() + Duration::from_secs(10));
        let client = kube::Client::new(GateLayer::new(gate.clone()).layer(wire), "default");
        let api: Api<ConfigMap> = Api::namespaced(client, "ns");
        api.delete("a", &DeleteParams::default()).await.unwrap();
        assert_eq!(
            sent.load(Ordering::SeqCst),
            1,
            "a write while leading goes out"
        );

        tokio::time::advance(Duration::from_secs(10)).await;
        let refused = api.delete("a", &DeleteParams::default()).await;
        let error = refused.expect_err("past the deadline");
        assert!(error.to_string().contains("no longer leads"), "{error}");
        assert_eq!(sent.load(Ordering::SeqCst), 1, "the write never went out");
        api.get("a").await.unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), 2, "reads pass");
    }

    #[test]
    fn only_safe_methods_count_as_reads() {
        let writes: Vec<bool> = [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ]
        .iter()
        .map(is_write)
        .collect();
        assert_eq!(writes, [false, false, false, true, true, true, true]);
    }
}
