//! What reconciliations share. [`Shared`] is what every controller gets (client, event recorder,
//! metrics, the leadership gate every write passes); each controller adds its own caches and collaborators in its own context. [`Backoff`]
//! is the per-object retry delay after failures.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::warn;

use crate::client::{self, Call};
use crate::digest;
use crate::error::Error;
use crate::leader::{Gate, NotLeading};
use crate::metrics::Metrics;

/// What every controller shares, built once in `main`.
pub struct Shared {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// How long one request of a reconciliation may take (`--api-timeout-seconds`).
    pub api_timeout: Duration,
    /// Open while this replica leads (always without leader election).
    pub leader: Gate,
}

impl Shared {
    pub fn new(client: Client, metrics: Arc<Metrics>, api_timeout: Duration, leader: Gate) -> Self {
        let reporter = Reporter {
            controller: "ragops".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            api_timeout,
            leader,
        }
    }

    /// Whether this replica may write now (see [`Gate`]).
    pub fn ensure_leading(&self) -> Result<(), NotLeading> {
        self.leader.ensure()
    }

    /// Runs one request of a reconciliation under the API timeout (see [`client::bounded`]);
    /// `step` names its own failure. A write is sent only while this replica leads: otherwise,
    /// or when the client stack refused it at the wire for that reason, it fails with
    /// [`Error::NotLeading`].
    pub async fn call<T, E>(
        &self,
        call: Call<'_>,
        request: impl Future<Output = Result<T, E>>,
        step: impl FnOnce(E) -> Error,
    ) -> Result<T, Error> {
        let write = call.is_write();
        let refused = || Error::NotLeading {
            verb: call.verb,
            kind: call.kind,
            name: call.name.to_string(),
        };
        if write && !self.leader.leading() {
            return Err(refused());
        }
        let answer = client::bounded(self.api_timeout, &self.metrics, call, request, step).await;
        match answer {
            Err(_) if write && !self.leader.leading() => Err(refused()),
            answer => answer,
        }
    }

    /// Publishes an Event about `regarding`. An Event is a note to humans, so failing to publish
    /// one is logged and counted but never fails the reconciliation that wanted it.
    pub async fn publish(&self, regarding: &ObjectReference, note: Note<'_>) {
        let event = Event {
            type_: if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: note.reason.into(),
            // The recorder folds Events with the same reason and action into one series that
            // keeps the first note; ending the action in a digest of the note folds only true
            // repeats (counted), never two different things that happened.
            action: format!(
                "{}/{}",
                note.action,
                digest::short_hex(note.message.as_bytes(), 10)
            ),
            note: Some(note.message),
            secondary: None,
        };
        let call = Call {
            verb: "create",
            kind: "Event",
            name: note.reason,
        };
        // Bounded like every request, so a slow API server cannot hold a reconciliation here.
        let publish = async {
            let published = self.recorder.publish(&event, regarding).await;
            Ok::<_, std::convert::Infallible>(published.map_err(|e| e.to_string()))
        };
        let published = self.call(call, publish, |never| match never {}).await;
        if let Err(error) = published.map_err(|e| e.to_string()).and_then(|p| p) {
            self.metrics.event_failures.inc();
            warn!(%error, reason = note.reason, "publishing an event");
        }
    }
}

/// One Event to publish.
pub struct Note<'a> {
    pub warning: bool,
    pub reason: &'a str,
    /// What the operator did or tried (a digest of the message is appended, see [`Shared::publish`]).
    pub action: &'a str,
    pub message: String,
}

/// Exponential retry delay per object after failed reconciliations.
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Counts one more failure of `key` and returns how long to wait. Entries of objects that are
    /// gone (`exists` says no) are dropped here, so the map holds only live objects.
    pub fn next(&self, key: &str, exists: impl Fn(&str) -> bool) -> Duration {
        let mut failures = self.failures.lock().expect("never poisoned");
        failures.retain(|k, _| k == key || exists(k));
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        backoff_delay(*n)
    }

    pub fn reset(&self, key: &str) {
        self.failures.lock().expect("never poisoned").remove(key);
    }

    /// Objects with failures on record.
    pub fn len(&self) -> usize {
        self.failures.lock().expect("never poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 1s, 2s, 4s … capped at 5 minutes.
pub fn backoff_delay(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(9)).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let secs: Vec<u64> = [1, 2, 3, 9, 10, 40]
            .map(|n| backoff_delay(n).as_secs())
            .to_vec();
        assert_eq!(secs, [1, 2, 4, 256, 300, 300]);
    }

    #[test]
    fn backoff_forgets_objects_that_are_gone() {
        let b = Backoff::default();
        assert_eq!(b.next("ns/a", |_| true), Duration::from_secs(1));
        assert_eq!(b.next("ns/b", |_| true), Duration::from_secs(1));
        assert_eq!(b.next("ns/a", |_| true), Duration::from_secs(2));
        assert_eq!(b.len(), 2);
        // ns/a was deleted: the next failure of anything prunes it.
        b.next("ns/b", |k| k != "ns/a");
        assert_eq!(b.len(), 1);
        b.reset("ns/b");
        assert!(b.is_empty());
    }
}
