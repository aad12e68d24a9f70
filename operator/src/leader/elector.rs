//! The election's requests: one look at the Lease (GET) and the write [`decide`] asks for, a
//! create or a merge patch carrying the resourceVersion it read, so two candidates never both
//! win (the second gets 409 Conflict). Runs on the Lease client (its own connection, short
//! timeouts, no rate limit) and keeps the [`Gate`] open while renewals succeed.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;
use tracing::{info, warn};

use super::decide::{Observed, Record, Step, Timing, decide, observe, released};
use super::gate::Gate;

/// How a look at the Lease ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This replica holds the Lease, renewed as of the look's start.
    Holding,
    /// Someone else does.
    HeldBy(String),
    /// Someone wrote the Lease between our read and our write; look again.
    Conflict,
}

pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    gate: Gate,
    observed: Option<Observed>,
}

impl Elector {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, timing: Timing, gate: Gate) -> Self {
        Self {
            api,
            name: name.into(),
            identity: identity.into(),
            timing,
            gate,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Tries until this replica holds the Lease, every retry period; opens the gate.
    pub async fn acquire(&mut self) {
        let mut waiting_for = String::new();
        loop {
            let started = Instant::now();
            match self.attempt().await {
                Ok(Outcome::Holding) => {
                    self.gate.open_until(started + self.timing.renew_deadline);
                    return;
                }
                Ok(Outcome::HeldBy(holder)) if holder != waiting_for => {
                    info!(%holder, "waiting for the Lease");
                    waiting_for = holder;
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "looking at the Lease"),
            }
            tokio::time::sleep_until(started + self.timing.retry_period).await;
        }
    }

    /// Renews every retry period until the Lease is lost: taken by another replica, or not
    /// renewed within the renew deadline. The gate is closed by then (by the clock, at the
    /// deadline, even before this returns). Returns why.
    pub async fn keep(&mut self) -> String {
        let mut last = Instant::now();
        loop {
            tokio::time::sleep_until(last + self.timing.retry_period).await;
            let Some(deadline) = self.gate.until() else {
                return "the gate was opened for good".into();
            };
            let started = Instant::now();
            last = started;
            let lost = match tokio::time::timeout_at(deadline, self.attempt()).await {
                Ok(Ok(Outcome::Holding)) => {
                    self.gate.open_until(started + self.timing.renew_deadline);
                    continue;
                }
                Ok(Ok(Outcome::HeldBy(holder))) => format!("the Lease is held by {holder}"),
                Ok(Ok(Outcome::Conflict)) => continue,
                Ok(Err(e)) if Instant::now() < deadline => {
                    warn!(error = %e, "renewing the Lease");
                    continue;
                }
                Ok(Err(e)) => format!("not renewed within the renew deadline ({e})"),
                Err(_) => "not renewed within the renew deadline".to_string(),
            };
            self.gate.close();
            return lost;
        }
    }

    /// Gives the Lease up, if this replica still holds it, so a standby takes over at once. The
    /// gate closes first: nothing is written once the Lease may be someone else's.
    pub async fn release(&mut self) {
        self.gate.close();
        let Some(o) = self
            .observed
            .as_ref()
            .filter(|o| o.record.holder == self.identity)
        else {
            return;
        };
        let record = released(&o.record, Timestamp::now());
        match self.write(&record, &o.version.clone()).await {
            Ok(_) => info!("released the Lease"),
            Err(e) => warn!(error = %e, "releasing the Lease; it expires by itself"),
        }
    }

    /// One look at the Lease and the write it calls for.
    pub async fn attempt(&mut self) -> Result<Outcome, kube::Error> {
        let now = Instant::now();
        let wall = Timestamp::now();
        match self.api.get_opt(&self.name).await? {
            None => self.observed = None,
            Some(lease) => {
                let (record, version) = record_of(&lease);
                self.observed = Some(observe(self.observed.as_ref(), record, version, now));
            }
        }
        let step = decide(
            self.observed.as_ref(),
            &self.identity,
            self.timing.duration,
            now,
            wall,
        );
        let written = match step {
            Step::Wait { holder, .. } => return Ok(Outcome::HeldBy(holder)),
            Step::Create(record) => self.create(&record).await,
            Step::Renew { record, version } => self.write(&record, &version).await,
            Step::Take { record, version } => {
                let taken = self.write(&record, &version).await;
                if taken.is_ok() {
                    info!(transitions = record.transitions, "took the Lease over");
                }
                taken
            }
        };
        match written {
            Ok(lease) => {
                let (record, version) = record_of(&lease);
                self.observed = Some(observe(self.observed.as_ref(), record, version, now));
                Ok(Outcome::Holding)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Outcome::Conflict),
            Err(e) => Err(e),
        }
    }

    async fn create(&self, record: &Record) -> Result<Lease, kube::Error> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(spec_of(record)),
        };
        self.api.create(&PostParams::default(), &lease).await
    }

    /// Writes `record` only if the Lease is still at `version` (409 otherwise).
    async fn write(&self, record: &Record, version: &str) -> Result<Lease, kube::Error> {
        let patch = json!({
            "metadata": { "resourceVersion": version },
            "spec": spec_of(record),
        });
        let params = PatchParams::default();
        self.api
            .patch(&self.name, &params, &Patch::Merge(&patch))
            .await
    }
}

fn spec_of(r: &Record) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(r.holder.clone()),
        lease_duration_seconds: Some(i32::try_from(r.duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: r.acquired.map(MicroTime),
        renew_time: r.renewed.map(MicroTime),
        lease_transitions: Some(r.transitions),
        ..LeaseSpec::default()
    }
}

fn record_of(lease: &Lease) -> (Record, String) {
    let spec = lease.spec.clone().unwrap_or_default();
    let seconds = spec.lease_duration_seconds.unwrap_or(0).max(0);
    let record = Record {
        holder: spec.holder_identity.unwrap_or_default(),
        duration: std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
        acquired: spec.acquire_time.map(|t| t.0),
        renewed: spec.renew_time.map(|t| t.0),
        transitions: spec.lease_transitions.unwrap_or(0),
    };
    let version = lease.metadata.resource_version.clone().unwrap_or_default();
    (record, version)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A Lease API that never answers: a frozen connection.
    fn frozen() -> Api<Lease> {
        let never = tower::service_fn(|_: http::Request<kube::client::Body>| {
            futures::future::pending::<Result<http::Response<kube::client::Body>, std::io::Error>>()
        });
        Api::namespaced(kube::Client::new(never, "default"), "default")
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_cannot_renew_stops_at_the_renew_deadline_on_its_own_clock() {
        let s = Duration::from_secs(1);
        let timing = Timing::new(15 * s, 10 * s, 2 * s).unwrap();
        let gate = Gate::closed();
        let t0 = Instant::now();
        // Leading since a renewal that began at t0.
        gate.open_until(t0 + timing.renew_deadline);
        let mut elector = Elector::new(frozen(), "lease", "me", timing, gate.clone());
        let why = elector.keep().await;
        assert_eq!(Instant::now(), t0 + timing.renew_deadline);
        assert!(why.contains("renew deadline"), "{why}");
        assert!(!gate.leading());
        assert!(
            !gate.leading_at(t0 + timing.renew_deadline),
            "closed at the deadline, before a standby may take over at {:?}",
            timing.duration
        );
    }

    #[test]
    fn a_record_survives_the_round_trip_through_a_lease() {
        let record = Record {
            holder: "a".into(),
            duration: Duration::from_secs(15),
            acquired: Some(Timestamp::from_second(10).unwrap()),
            renewed: Some(Timestamp::from_second(20).unwrap()),
            transitions: 2,
        };
        let lease = Lease {
            metadata: ObjectMeta {
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            spec: Some(spec_of(&record)),
        };
        assert_eq!(record_of(&lease), (record, "7".to_string()));
    }
}
