//! A client-side rate limit on the requests to the API server: a token bucket (governor's GCRA)
//! of `qps` tokens a second holding at most `burst`. A request waits for its token; it is never
//! refused. A watch takes one token when it starts, however long it then streams.
//!
//! The wait happens in `poll_ready`, like tower's own `RateLimit`: kube's `Client` drives its
//! stack from one buffer worker, which readies the service before each call, so requests are
//! released in order while their responses are awaited concurrently.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tower::{Layer, Service};

/// Governor's clock on tokio's time, so the limit follows tokio's clock (and a paused one in tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> Self::Instant {
        tokio::time::Instant::now().into_std()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<std::time::Instant>>;

/// Wraps a service so each request first takes a token.
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<Limiter>,
}

impl RateLimitLayer {
    /// `qps` requests a second on average, up to `burst` at once after a quiet spell.
    pub fn new(qps: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_second(qps).allow_burst(burst);
        Self {
            limiter: Arc::new(RateLimiter::direct_with_clock(quota, TokioClock)),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
            state: State::Acquire,
        }
    }
}

enum State {
    /// The next request needs a token.
    Acquire,
    /// No token until this sleep ends.
    Waiting(Pin<Box<tokio::time::Sleep>>),
    /// A token is held for the next call.
    Holding,
}

pub struct RateLimit<S> {
    inner: S,
    limiter: Arc<Limiter>,
    state: State,
}

impl<S, R> Service<R> for RateLimit<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            match &mut self.state {
                State::Holding => return self.inner.poll_ready(cx),
                State::Waiting(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    self.state = State::Acquire;
                }
                State::Acquire => match self.limiter.check() {
                    Ok(()) => self.state = State::Holding,
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(TokioClock.now());
                        self.state = State::Waiting(Box::pin(tokio::time::sleep(wait)));
                    }
                },
            }
        }
    }

    fn call(&mut self, request: R) -> Self::Future {
        debug_assert!(
            matches!(self.state, State::Holding),
            "call without poll_ready"
        );
        self.state = State::Acquire;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tower::ServiceExt;

    use super::*;

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    /// When each of `count` requests through one limited service went out, from the start.
    async fn send_times(layer: &RateLimitLayer, count: usize) -> Vec<Duration> {
        let start = tokio::time::Instant::now();
        let inner = tower::service_fn(move |()| async move {
            Ok::<_, std::convert::Infallible>(start.elapsed())
        });
        let mut svc = layer.layer(inner);
        let mut times = vec![];
        for _ in 0..count {
            times.push(svc.ready().await.unwrap().call(()).await.unwrap());
        }
        times
    }

    #[tokio::test(start_paused = true)]
    async fn the_burst_passes_at_once_then_requests_wait_for_the_rate() {
        let layer = RateLimitLayer::new(n(10), n(5));
        let ms: Vec<u128> = send_times(&layer, 8)
            .await
            .iter()
            .map(Duration::as_millis)
            .collect();
        assert_eq!(ms, [0, 0, 0, 0, 0, 100, 200, 300]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_kube_client_on_the_layer_is_limited_too() {
        let start = tokio::time::Instant::now();
        let answer = tower::service_fn(|_: http::Request<kube::client::Body>| async {
            let body = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}"#;
            let body = kube::client::Body::from(body.as_bytes().to_vec());
            Ok::<_, std::convert::Infallible>(http::Response::new(body))
        });
        let layer = RateLimitLayer::new(n(5), n(1));
        let client = kube::Client::new(layer.layer(answer), "default");
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        for _ in 0..3 {
            api.get("a").await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn services_from_one_layer_share_the_bucket_and_it_refills() {
        let layer = RateLimitLayer::new(n(10), n(2));
        assert_eq!(send_times(&layer, 2).await, [Duration::ZERO; 2]);
        // The bucket is empty: another service of the same layer waits too.
        assert_eq!(send_times(&layer, 1).await, [Duration::from_millis(100)]);
        // A quiet second refills the burst, never more.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let ms: Vec<u128> = send_times(&layer, 3)
            .await
            .iter()
            .map(Duration::as_millis)
            .collect();
        assert_eq!(ms, [0, 0, 100]);
    }
}
