//! `RagPipeline.spec.server`: how the runtime serves HTTP — who may call it, how fast, how long a
//! request may take and how big it may be. Rendered into the runtime config's `server` section.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// Secret key holding the bearer tokens clients must send (`Authorization: Bearer <token>`),
    /// one per line. Without it every request is accepted. The operator's health gate
    /// authenticates with one of these tokens. `/healthz`, `/readyz` and `/metrics` stay open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys_secret_ref: Option<SecretKeyRef>,
    /// Per-client rate limit (by token, else by address); a client over it gets 429 with
    /// `Retry-After`. Unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,
    /// Request and shutdown timeouts.
    #[serde(default)]
    pub timeouts: TimeoutsSpec,
    /// Largest accepted request body, in bytes; larger requests get 413.
    #[serde(default = "default_max_body_bytes")]
    #[schemars(range(min = 1024, max = 1_073_741_824))]
    pub max_body_bytes: i64,
    /// Serve `POST /v1/documents` and `DELETE /v1/documents/{id}` (they answer 405 otherwise).
    /// Off by default: documents written through the API bypass the index, are lost when the
    /// index re-ingests, and a deleted one is not restored while the sources are unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_writes: bool,
}

impl Default for ServerSpec {
    fn default() -> Self {
        Self {
            api_keys_secret_ref: None,
            rate_limit: None,
            timeouts: TimeoutsSpec::default(),
            max_body_bytes: default_max_body_bytes(),
            allow_writes: false,
        }
    }
}

fn default_max_body_bytes() -> i64 {
    8 * 1024 * 1024
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// Sustained requests per second allowed to one client.
    #[schemars(range(min = 1, max = 100_000))]
    pub requests_per_second: i32,
    /// Requests one client may send at once before the sustained rate applies (the size of its
    /// token bucket); `requestsPerSecond` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub burst: Option<i32>,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutsSpec {
    /// Seconds a query or chat request may take before it is answered with 504 (document
    /// uploads get five times as long).
    #[serde(default = "default_request_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub request_seconds: i32,
    /// Seconds in-flight requests may take to finish after the pod is told to stop. The pod's
    /// termination grace period is set above it.
    #[serde(default = "default_shutdown_grace_seconds")]
    #[schemars(range(min = 0, max = 3600))]
    pub shutdown_grace_seconds: i32,
}

impl Default for TimeoutsSpec {
    fn default() -> Self {
        Self {
            request_seconds: default_request_seconds(),
            shutdown_grace_seconds: default_shutdown_grace_seconds(),
        }
    }
}

fn default_request_seconds() -> i32 {
    60
}

fn default_shutdown_grace_seconds() -> i32 {
    25
}
