//! The stand-in for every pod: one HTTP server listening on port 8080 of every address of the
//! fake nodes' pod CIDRs, bound before any pod exists, so a pod answers the moment KWOK marks it
//! Ready (a server started per pod would race the operator's first probe). It answers the health
//! paths and `/v1/query` with the document the bench's smoke query expects.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::task::JoinSet;

pub const PORT: u16 = 8080;

pub struct StandIn {
    requests: Arc<AtomicU64>,
    _servers: JoinSet<()>,
    pub addresses: usize,
}

impl StandIn {
    /// Listens on every host address of `cidrs` (IPv4, /16 to /30).
    pub async fn start(cidrs: &[String]) -> Result<Self> {
        let requests = Arc::new(AtomicU64::new(0));
        let app = axum::Router::new()
            .route("/healthz", get(ok))
            .route("/readyz", get(ok))
            .route("/readyz/store", get(ok))
            .route("/v1/query", post(query))
            .with_state(requests.clone());
        let mut servers = JoinSet::new();
        let mut addresses = 0;
        for cidr in cidrs {
            for ip in hosts(cidr)? {
                let addr = SocketAddr::new(IpAddr::V4(ip), PORT);
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr} (raise `ulimit -n`?)"))?;
                let app = app.clone();
                servers.spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
                addresses += 1;
            }
        }
        Ok(Self {
            requests,
            _servers: servers,
            addresses,
        })
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

async fn ok(State(requests): State<Arc<AtomicU64>>) -> &'static str {
    requests.fetch_add(1, Ordering::Relaxed);
    "ok"
}

async fn query(State(requests): State<Arc<AtomicU64>>) -> Json<Value> {
    requests.fetch_add(1, Ordering::Relaxed);
    Json(json!({
        "answer": "By patching the Service selector.",
        "sources": [{"documentId": "rollouts.md", "chunk": 0, "score": 1.0,
            "text": "A blue-green rollout switches traffic by patching the Service selector."}],
    }))
}

/// The host addresses of an IPv4 CIDR (network and broadcast addresses left out).
pub fn hosts(cidr: &str) -> Result<impl Iterator<Item = Ipv4Addr>> {
    let (net, bits) = cidr
        .split_once('/')
        .with_context(|| format!("{cidr}: not a CIDR"))?;
    let net: Ipv4Addr = net.parse().with_context(|| format!("{cidr}: address"))?;
    let bits: u32 = bits.parse().with_context(|| format!("{cidr}: prefix"))?;
    if !(16..=30).contains(&bits) {
        bail!("{cidr}: prefix /{bits} outside /16../30");
    }
    let size = 1u32 << (32 - bits);
    let base = u32::from(net) & !(size - 1);
    Ok((base + 1..base + size - 1).map(Ipv4Addr::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_leave_out_network_and_broadcast() {
        let all: Vec<_> = hosts("127.9.1.0/24").unwrap().collect();
        assert_eq!(all.len(), 254);
        assert_eq!(all[0], Ipv4Addr::new(127, 9, 1, 1));
        assert_eq!(all[253], Ipv4Addr::new(127, 9, 1, 254));
        assert!(hosts("10.0.0.0/8").is_err());
        assert!(hosts("nonsense").is_err());
    }
}
