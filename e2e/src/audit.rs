//! Counting API requests by user from the API server's audit log (Metadata level, JSON lines).
//!
//! The API server writes an event when a request completes, which can be a moment after the
//! client got its response. [`AuditLog::sync`] makes a marker request and waits until it is in the
//! log, so every request that finished before the call is counted.

use std::ops::RangeBounds;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde::Deserialize;

use crate::cluster::Cluster;
use crate::wait::wait_for;

/// The verbs that change state.
pub const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// The verbs that read state once. `watch` is not among them: a watch is opened once and then
/// streams changes, which is how a controller is meant to read; what must not happen per
/// reconciliation is a GET or LIST.
pub const READ_VERBS: [&str; 2] = ["get", "list"];

/// One completed request, as the audit log records it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub verb: String,
    pub user: String,
    pub resource: Option<String>,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub code: Option<u16>,
    pub received: Timestamp,
    pub uri: String,
}

impl AuditEvent {
    pub fn is_write(&self) -> bool {
        WRITE_VERBS.contains(&self.verb.as_str())
    }

    /// A one-off read (`get`, `list`); watches are not (see [`READ_VERBS`]).
    pub fn is_read(&self) -> bool {
        READ_VERBS.contains(&self.verb.as_str())
    }
}

/// The audit log of the e2e cluster.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    pub fn new(cluster: &Cluster) -> Result<Self> {
        let path = cluster.audit_log.clone().context(
            "RAGOPS_E2E_AUDIT_LOG unknown (the audit log exists only on the cluster.sh cluster)",
        )?;
        Ok(Self { path })
    }

    /// All completed requests so far.
    pub fn events(&self) -> Result<Vec<AuditEvent>> {
        let text = std::fs::read_to_string(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))?;
        Ok(text.lines().filter_map(parse_line).collect())
    }

    /// Every request by `user` (any verb) received within `window`.
    pub fn requests_by(
        &self,
        user: &str,
        window: impl RangeBounds<Timestamp>,
    ) -> Result<Vec<AuditEvent>> {
        Ok(self
            .events()?
            .into_iter()
            .filter(|e| e.user == user && window.contains(&e.received))
            .collect())
    }

    /// Write requests (create/update/patch/delete) by `user` received within `window`.
    pub fn writes_by(
        &self,
        user: &str,
        window: impl RangeBounds<Timestamp>,
    ) -> Result<Vec<AuditEvent>> {
        let requests = self.requests_by(user, window)?;
        Ok(requests.into_iter().filter(AuditEvent::is_write).collect())
    }

    /// Read requests (get/list, not watch) by `user` received within `window`.
    pub fn reads_by(
        &self,
        user: &str,
        window: impl RangeBounds<Timestamp>,
    ) -> Result<Vec<AuditEvent>> {
        let requests = self.requests_by(user, window)?;
        Ok(requests.into_iter().filter(AuditEvent::is_read).collect())
    }

    /// Requests by `user` within `window` that the API server refused as forbidden (403).
    pub fn forbidden_for(
        &self,
        user: &str,
        window: impl RangeBounds<Timestamp>,
    ) -> Result<Vec<AuditEvent>> {
        Ok(self
            .requests_by(user, window)?
            .into_iter()
            .filter(|e| e.code == Some(403))
            .collect())
    }

    /// How many write requests `user` made within `window`.
    pub fn count_writes(&self, user: &str, window: impl RangeBounds<Timestamp>) -> Result<usize> {
        Ok(self.writes_by(user, window)?.len())
    }

    /// Makes a marker request and waits until the log shows it, so requests that completed
    /// before this call are all in the log. Returns the time after which the marker was sent.
    pub async fn sync(&self, client: &Client) -> Result<Timestamp> {
        let now = Timestamp::now();
        let name = format!(
            "e2e-audit-marker-{}-{}",
            std::process::id(),
            now.as_nanosecond()
        );
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.clone());
        api.create(&PostParams::default(), &cm).await?;
        wait_for(
            "the audit marker in the audit log",
            Duration::from_secs(30),
            || async {
                Ok(self
                    .events()?
                    .iter()
                    .any(|e| e.verb == "create" && e.name.as_deref() == Some(name.as_str()))
                    .then_some(()))
            },
        )
        .await?;
        api.delete(&name, &DeleteParams::default()).await?;
        Ok(now)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    stage: String,
    verb: String,
    // `requestURI`, which camelCase would spell `requestUri`.
    #[serde(default, rename = "requestURI")]
    request_uri: String,
    user: RawUser,
    object_ref: Option<RawObjectRef>,
    response_status: Option<RawStatus>,
    request_received_timestamp: String,
}

#[derive(Deserialize)]
struct RawUser {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
struct RawObjectRef {
    resource: Option<String>,
    subresource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    code: Option<u16>,
}

fn parse_line(line: &str) -> Option<AuditEvent> {
    let raw: RawEvent = serde_json::from_str(line).ok()?;
    // One event per request: the final stage (watches also log ResponseStarted).
    if raw.stage != "ResponseComplete" && raw.stage != "Panic" {
        return None;
    }
    let obj = raw.object_ref;
    Some(AuditEvent {
        verb: raw.verb,
        user: raw.user.username,
        resource: obj.as_ref().and_then(|o| o.resource.clone()),
        subresource: obj.as_ref().and_then(|o| o.subresource.clone()),
        namespace: obj.as_ref().and_then(|o| o.namespace.clone()),
        name: obj.and_then(|o| o.name),
        code: raw.response_status.and_then(|s| s.code),
        received: raw.request_received_timestamp.parse().ok()?,
        uri: raw.request_uri,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_metadata_level_event() {
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/n/configmaps","verb":"create","user":{"username":"ragops-operator","groups":["system:masters","system:authenticated"]},"sourceIPs":["127.0.0.1"],"objectRef":{"resource":"configmaps","namespace":"n","name":"c","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestReceivedTimestamp":"2026-11-25T02:00:00.123456Z","stageTimestamp":"2026-11-25T02:00:00.125000Z"}"#;
        let e = parse_line(line).expect("parsed");
        assert_eq!(e.user, "ragops-operator");
        assert!(e.is_write());
        assert_eq!(e.resource.as_deref(), Some("configmaps"));
        assert_eq!(e.code, Some(201));
        assert_eq!(e.uri, "/api/v1/namespaces/n/configmaps");
        assert_eq!(
            e.received,
            "2026-11-25T02:00:00.123456Z".parse::<Timestamp>().unwrap()
        );
        let started = line.replace("ResponseComplete", "ResponseStarted");
        assert!(parse_line(&started).is_none());
    }

    #[test]
    fn gets_and_lists_are_reads_watches_are_not() {
        let line = r#"{"stage":"ResponseComplete","verb":"VERB","user":{"username":"u"},"requestReceivedTimestamp":"2026-11-25T02:00:00Z"}"#;
        let read = |verb: &str| parse_line(&line.replace("VERB", verb)).unwrap().is_read();
        assert!(read("get") && read("list"));
        assert!(!read("watch") && !read("patch"));
    }
}
