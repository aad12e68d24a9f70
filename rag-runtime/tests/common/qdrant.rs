//! What the tests against a real Qdrant server share: its URL and collection names of their own.

use std::time::{SystemTime, UNIX_EPOCH};

pub const NEEDS_QDRANT: &str = "needs a Qdrant server: set QDRANT_URL to its gRPC port";

/// The server's gRPC URL (`QDRANT_URL`, which `make qdrant-test` sets).
pub fn qdrant_url() -> String {
    match std::env::var("QDRANT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("{NEEDS_QDRANT} (e.g. http://localhost:6334)"),
    }
}

/// `prefix` made unique to this run, so tests share one server without meeting.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}
