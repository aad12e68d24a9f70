//! The load generator: a fixed number of keep-alive connections, each sending the next question
//! as soon as the previous answer is in, until the time or request budget runs out.

use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Load {
    pub connections: usize,
    pub seconds: u64,
    pub max_requests: usize,
}

pub struct LoadResult {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Sorted, in milliseconds.
    pub client_ms: Vec<f64>,
    /// Sorted, in milliseconds, from the `Server-Timing` header.
    pub server_ms: Vec<f64>,
}

impl LoadResult {
    pub fn print(&self, label: &str) {
        println!(
            "query, {label}: {:.0} req/s over {:.1} s ({} ok, {} errors)",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            self.elapsed.as_secs_f64(),
            self.requests,
            self.errors
        );
        println!(
            "  latency client-side p50 {:.3} ms  p99 {:.3} ms | server-side (Server-Timing) p50 {:.3} ms  p99 {:.3} ms",
            percentile(&self.client_ms, 0.5),
            percentile(&self.client_ms, 0.99),
            percentile(&self.server_ms, 0.5),
            percentile(&self.server_ms, 0.99)
        );
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn server_timing(response: &reqwest::Response) -> Option<f64> {
    let value = response.headers().get("server-timing")?.to_str().ok()?;
    value.split("dur=").nth(1)?.parse().ok()
}

pub async fn run(url: &str, bodies: Arc<Vec<String>>, load: &Load) -> LoadResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(load.connections)
        .build()
        .unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(load.seconds);
    let per_connection = load.max_requests.div_ceil(load.connections);
    let mut tasks = Vec::new();
    for c in 0..load.connections {
        let (client, url, bodies) = (client.clone(), url.to_string(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let (mut client_ms, mut server_ms, mut errors) = (Vec::new(), Vec::new(), 0usize);
            for i in 0..per_connection {
                if Instant::now() >= deadline {
                    break;
                }
                let body = bodies[(c * 7919 + i) % bodies.len()].clone();
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        let timing = server_timing(&r);
                        let _ = r.bytes().await;
                        client_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                        server_ms.extend(timing);
                    }
                    _ => errors += 1,
                }
            }
            (client_ms, server_ms, errors)
        }));
    }
    let mut result = LoadResult {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        client_ms: vec![],
        server_ms: vec![],
    };
    for t in tasks {
        let (c, s, e) = t.await.unwrap();
        result.requests += c.len();
        result.client_ms.extend(c);
        result.server_ms.extend(s);
        result.errors += e;
    }
    result.elapsed = started.elapsed();
    result.client_ms.sort_by(f64::total_cmp);
    result.server_ms.sort_by(f64::total_cmp);
    result
}
