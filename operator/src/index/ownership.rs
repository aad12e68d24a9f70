//! What an index may do on its Qdrant server, decided from its own records: which collections it
//! owns (those in `status.collections`, recorded before the Job that creates one starts), which
//! of them garbage collection or a deletion drops, whether its alias is its own to use, and what
//! a deletion does next. Pure: the tables in `ownership_tests.rs` pin it down.

use std::collections::BTreeSet;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use url::{Host, Url};

use crate::api::{RagIndex, RagIndexStatus};

/// Every collection the index recorded as its own: the list of created ones and the active one.
pub fn owned(status: Option<&RagIndexStatus>) -> Vec<String> {
    let Some(s) = status else {
        return Vec::new();
    };
    let mut owned = s.collections.clone();
    if let Some(active) = &s.active_collection
        && !owned.contains(active)
    {
        owned.push(active.clone());
    }
    owned
}

/// The recorded collections garbage collection drops (`recorded` newest first): all but the
/// serving one, those an ingest Job still running may fill (`in_flight`), the newest `retain`
/// superseded ones and those a pipeline Deployment names (`in_use`).
pub fn collections_to_drop(
    recorded: &[String],
    active: Option<&str>,
    in_flight: &BTreeSet<String>,
    in_use: &BTreeSet<String>,
    retain: usize,
) -> Vec<String> {
    recorded
        .iter()
        .filter(|c| Some(c.as_str()) != active && !in_flight.contains(*c))
        .skip(retain)
        .filter(|c| !in_use.contains(*c))
        .cloned()
        .collect()
}

/// Whether the index `uid` may drop a collection its records name, given the owner tag the
/// server holds for it: an untagged one (a Job killed before its ingest was adopted) is the
/// record's; one tagged with another uid is not, whatever the records say.
pub fn may_drop(tag: Option<&str>, uid: &str) -> bool {
    tag.is_none_or(|t| t == uid)
}

/// Whether a deletion removes the alias: only when it points at a collection the index owns
/// (an alias some other index or tool moved elsewhere is theirs).
pub fn drops_alias(target: Option<&str>, owned: &[String]) -> bool {
    target.is_some_and(|t| owned.iter().any(|o| o == t))
}

/// The server an index writes to, as comparable text: the host and port of its URL with the
/// scheme and a trailing path dropped; a bare Service name is qualified with the index's
/// namespace (`qdrant` in `team-a` is `qdrant.team-a`, another server than `qdrant` in
/// `team-b`), and the cluster domain suffixes are removed (`qdrant.db.svc.cluster.local` is
/// `qdrant.db`). Two spellings this cannot relate (an IP and a name) count as two servers.
pub fn server(url: &str, namespace: &str) -> String {
    let url = url.trim();
    let parsed = match url.contains("://") {
        true => Url::parse(url),
        false => Url::parse(&format!("http://{url}")),
    };
    // The API server validates the URL; text that still does not parse is its own server.
    let Ok(parsed) = parsed else {
        return url.to_lowercase();
    };
    let (mut host, ip) = match parsed.host() {
        Some(Host::Domain(d)) => (d.trim_end_matches('.').to_lowercase(), false),
        Some(Host::Ipv4(ip)) => (ip.to_string(), true),
        Some(Host::Ipv6(ip)) => (format!("[{ip}]"), true),
        None => return url.to_lowercase(),
    };
    for suffix in [".svc.cluster.local", ".svc"] {
        if let Some(short) = host.strip_suffix(suffix) {
            host = short.to_string();
        }
    }
    if !ip && !host.contains('.') && host != "localhost" {
        host = format!("{host}.{namespace}");
    }
    match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// An index's claim on an alias of a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub namespace: String,
    pub name: String,
    pub server: String,
    pub alias: String,
    /// Who is older wins: creation time, then uid, so every reconciliation agrees.
    pub created: Option<Timestamp>,
    pub uid: String,
}

impl Claim {
    /// The claim of a Qdrant-backed index; none for the embedded store.
    pub fn of(index: &RagIndex) -> Option<Self> {
        let q = index.spec.vector_store.qdrant.as_ref()?;
        let namespace = index.namespace().unwrap_or_default();
        Some(Self {
            server: server(&q.url, &namespace),
            alias: super::config::alias(index),
            name: index.name_any(),
            created: index.metadata.creation_timestamp.as_ref().map(|t| t.0),
            uid: index.uid().unwrap_or_default(),
            namespace,
        })
    }

    fn key(&self) -> (Timestamp, &str) {
        (self.created.unwrap_or(Timestamp::MAX), self.uid.as_str())
    }
}

/// The index that holds `me`'s alias on its server, when it is another one: the oldest of all
/// claiming it. `None` means the alias is `me`'s to use.
pub fn alias_holder<'a>(me: &Claim, all: impl IntoIterator<Item = &'a Claim>) -> Option<Claim> {
    let holder = all
        .into_iter()
        .filter(|c| c.server == me.server && c.alias == me.alias)
        .filter(|c| c.uid != me.uid)
        .min_by(|a, b| a.key().cmp(&b.key()))?;
    (holder.key() < me.key()).then(|| holder.clone())
}

/// The `AliasConflict` message of `me`, refused because `holder` holds the alias.
pub fn conflict_message(me: &Claim, holder: &Claim) -> String {
    format!(
        "spec.vectorStore.qdrant.collection: alias {:?} on {} is already used by RagIndex {}/{} (created first); choose another collection",
        me.alias, me.server, holder.namespace, holder.name
    )
}

/// What a deletion with `deletionPolicy: Delete` sees.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deleting {
    /// The index's own collections a pipeline Deployment in its namespace names.
    pub in_use: Vec<String>,
    /// The index's ingest Jobs still in the cluster (a deleted one stays until its pods are gone).
    pub jobs: usize,
    /// The namespace is being deleted: everything in it goes, the pipelines too.
    pub namespace_terminating: bool,
}

/// The next step of a deletion, before anything is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeletionStep {
    /// A pipeline serves a collection: wait (condition `InUse`).
    WaitInUse(Vec<String>),
    /// Delete the index's Jobs and wait until they and their pods are gone, so no ingest
    /// recreates a collection or moves the alias once the finalizer is gone.
    StopJobs,
    /// Drop the owned collections (and the alias if it points at one).
    Drop,
}

pub fn deletion_step(d: &Deleting) -> DeletionStep {
    if !d.in_use.is_empty() && !d.namespace_terminating {
        return DeletionStep::WaitInUse(d.in_use.clone());
    }
    if d.jobs > 0 {
        return DeletionStep::StopJobs;
    }
    DeletionStep::Drop
}

/// Why dropping could not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropFailure {
    /// The Secret with the Qdrant API key is gone (deleted before the index, or with the namespace).
    CredentialsGone(String),
    /// Qdrant could not be reached or refused.
    Server(String),
}

impl std::fmt::Display for DropFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CredentialsGone(m) | Self::Server(m) => f.write_str(m),
        }
    }
}

/// After a failed drop: `true` releases the finalizer anyway (what is left is named in a
/// Warning Event), `false` retries. A deletion never holds forever on what cannot come back:
/// credentials that are gone, or a namespace that is going.
pub fn release_after(failure: &DropFailure, namespace_terminating: bool) -> bool {
    namespace_terminating || matches!(failure, DropFailure::CredentialsGone(_))
}

#[cfg(test)]
#[path = "ownership_tests.rs"]
mod tests;
