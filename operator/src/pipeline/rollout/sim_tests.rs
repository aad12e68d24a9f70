//! Whole rollouts, decided step by step against a small model of the cluster: new pods become
//! ready a few seconds after they are applied, the Service follows the guarded `active_service`.
//! Time steps to the next thing that wakes the pipeline, as in the controller: a watch event (a
//! write, pods becoming ready) or the decision's requeue. A decision that waits with neither
//! panics, so a gate that holds without a way to be woken is caught.
//!
//! Each reconciliation makes the writes of `reconcile` in its order (status under a version
//! precondition, Deployments, the live Service, the tidying of request annotations), and faults
//! are injected between and inside them: a crash after any write, a status write that fails
//! before or after taking effect, a tidy that fails, a decision made on a stale (older) copy of
//! the pipeline. Invariants are checked after every write: the Service never selects a colour
//! without a ready pod, it never flips back, each revision is promoted once, and a request id seen
//! again has no effect.

use std::collections::BTreeMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::*;
use crate::api::{Color::*, HandledRequests, HealthCheckSpec, RolloutSpec};

#[derive(Clone, Debug, Default)]
struct Deploy {
    revision: String,
    replicas: i32,
    ready: i32,
}

/// How long new pods take to become ready.
const POD_START: SignedDuration = SignedDuration::from_secs(3);
/// How soon a watch event or a failed reconciliation's retry wakes the pipeline.
const EVENT: SignedDuration = SignedDuration::from_secs(1);

#[derive(Default)]
struct Cluster {
    blue: Option<Deploy>,
    green: Option<Deploy>,
    service: Option<Live>,
    /// When pods that are starting become ready.
    ready_at: Option<Timestamp>,
}

impl Cluster {
    fn get(&mut self, c: Color) -> &mut Option<Deploy> {
        match c {
            Blue => &mut self.blue,
            Green => &mut self.green,
        }
    }

    fn observed(&self) -> Observed {
        let o = |d: &Option<Deploy>| {
            d.as_ref().map(|d| ColorObservation {
                revision: Some(d.revision.clone()),
                replicas: d.replicas,
                rolled_out: d.ready == d.replicas,
                ready_endpoints: d.ready,
            })
        };
        Observed {
            blue: o(&self.blue),
            green: o(&self.green),
        }
    }

    /// Carries out the decision's Deployment plans; whether anything changed (a watch event
    /// follows).
    fn apply(&mut self, d: &Decision, revision: &str, now: Timestamp) -> bool {
        let before = format!("{:?}{:?}{:?}", self.blue, self.green, self.service);
        for c in Color::ALL {
            match d.plan(c) {
                DeploymentPlan::Keep => {}
                DeploymentPlan::Apply { replicas } => {
                    let slot = self.get(c);
                    let same = slot
                        .as_ref()
                        .is_some_and(|x| x.revision == revision && x.replicas == replicas);
                    if !same {
                        // New pods start unready; old ones of a different revision are replaced.
                        let ready = slot
                            .as_ref()
                            .filter(|x| x.revision == revision)
                            .map_or(0, |x| x.ready.min(replicas));
                        *slot = Some(Deploy {
                            revision: revision.into(),
                            replicas,
                            ready,
                        });
                    }
                }
                DeploymentPlan::Scale { replicas } => {
                    if let Some(x) = self.get(c) {
                        x.replicas = replicas;
                        x.ready = x.ready.min(replicas);
                    }
                }
            }
        }
        let starting = [&self.blue, &self.green]
            .into_iter()
            .flatten()
            .any(|d| d.ready < d.replicas);
        if starting && self.ready_at.is_none() {
            self.ready_at = Some(now + POD_START);
        }
        before != format!("{:?}{:?}{:?}", self.blue, self.green, self.service)
    }

    /// Whether applying `d` would move the Service or take pods from a running colour (see
    /// `reconcile`).
    fn irreversible(&self, d: &Decision) -> bool {
        let observed = self.observed();
        live_color(d.live(), self.service, &observed) != self.service || shrinks(d, &observed)
    }

    fn ready(&self, c: Color) -> i32 {
        match c {
            Blue => self.blue.as_ref(),
            Green => self.green.as_ref(),
        }
        .map_or(0, |x| x.ready)
    }

    /// Time passes until `now`: pods due by then become ready; whether any did.
    fn tick(&mut self, now: Timestamp) -> bool {
        if self.ready_at.is_none_or(|at| at > now) {
            return false;
        }
        self.ready_at = None;
        for d in [&mut self.blue, &mut self.green].into_iter().flatten() {
            d.ready = d.replicas;
        }
        true
    }
}

/// The pipeline as the API server stores it: the status's bookkeeping, the requests recorded as
/// handled and the request annotations, under a version every write bumps.
#[derive(Clone, Debug, Default)]
struct Stored {
    version: u64,
    state: RolloutState,
    handled: HandledRequests,
    annotations: BTreeMap<String, String>,
}

/// What goes wrong in one reconciliation, in the order of its writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// It decides on the pipeline as it was before the last write (a stale cache).
    StaleRead,
    /// The status write fails before it takes effect.
    StatusLost,
    /// The status write takes effect, but its reply is lost: the reconciliation errors.
    StatusUnacknowledged,
    /// A crash right after the status write.
    AfterStatus,
    /// A crash after the Deployments, before the Service.
    AfterDeployments,
    /// A crash after the Service moved, before the annotations are tidied.
    AfterService,
    /// Removing the handled request annotations fails.
    TidyFails,
}

const FAULTS: [Fault; 7] = [
    Fault::StaleRead,
    Fault::StatusLost,
    Fault::StatusUnacknowledged,
    Fault::AfterStatus,
    Fault::AfterDeployments,
    Fault::AfterService,
    Fault::TidyFails,
];

struct Run {
    cluster: Cluster,
    stored: Stored,
    /// Every earlier version of the pipeline, oldest first: what a stale cache may show.
    history: Vec<Stored>,
    now: Timestamp,
    /// Status writes that moved the active colour: promotions and rollbacks.
    cutovers: usize,
    failures: usize,
    /// What the Service selected, in order, without repeats.
    switches: Vec<Live>,
    /// The pipeline's analysis, and what Prometheus answers for a revision.
    analysis: Option<crate::analysis::CompiledAnalysis>,
    metric: fn(&str) -> f64,
    /// Query results back in memory, taken by the next reconciliation; a crash loses them.
    results: Vec<AnalysisResult>,
    /// Whether the last reconciliation's status write went through (then it measures).
    recorded: bool,
    spec: RolloutSpec,
    /// Pods the pipeline runs.
    total: i32,
    /// The recall@K a revision reaches on the golden set (`spec.goldenSet`).
    recall: fn(&str) -> f64,
    /// Golden-set results back in memory, taken by the next reconciliation; a crash loses them.
    golden: Vec<GoldenResult>,
}

impl Run {
    fn new() -> Self {
        Self {
            cluster: Cluster::default(),
            stored: Stored::default(),
            history: vec![],
            now: Timestamp::from_second(1_800_000_000).unwrap(),
            cutovers: 0,
            failures: 0,
            switches: vec![],
            analysis: None,
            metric: |_| 0.0,
            results: vec![],
            recorded: false,
            spec: RolloutSpec {
                health_check: HealthCheckSpec {
                    success_threshold: 2,
                    failure_threshold: 2,
                    ..HealthCheckSpec::default()
                },
                progress_deadline_seconds: 120,
                scale_down_delay_seconds: 20,
                ..RolloutSpec::default()
            },
            total: 3,
            recall: |_| 1.0,
            golden: vec![],
        }
    }

    fn store(&mut self, next: Stored) {
        let version = self.stored.version + 1;
        self.history.push(std::mem::take(&mut self.stored));
        self.stored = Stored { version, ..next };
    }

    /// A user sets annotation `key` to `id`.
    fn annotate(&mut self, key: &str, id: &str) {
        let mut next = self.stored.clone();
        next.annotations.insert(key.into(), id.into());
        self.store(next);
    }

    fn converge(&mut self, revision: &str, healthy: impl Fn(&str) -> bool) -> Decision {
        self.converge_with(revision, healthy, |_| None, |_| false)
    }

    /// Reconciles until the pipeline settles, or `stop` holds after a reconciliation. `healthy`
    /// answers the probe of a revision; `fault` says what goes wrong in the n-th reconciliation.
    fn converge_with(
        &mut self,
        revision: &str,
        healthy: impl Fn(&str) -> bool,
        fault: impl Fn(usize) -> Option<Fault>,
        stop: impl Fn(&Run) -> bool,
    ) -> Decision {
        let spec = self.spec.clone();
        for step in 1..300 {
            let fault = fault(step);
            let read = match fault {
                Some(Fault::StaleRead) => self.history.last().cloned().unwrap_or_default(),
                _ => self.stored.clone(),
            };
            let observed = self.cluster.observed();
            let results = std::mem::take(&mut self.results);
            let golden = std::mem::take(&mut self.golden);
            let input = |probe| RolloutInput {
                revision,
                scaling: Scaling::Fixed(self.total),
                spec: &spec,
                requests: requests::pending(&read.annotations, &read.handled),
                state: &read.state,
                observed: &observed,
                probe,
                analysis: self.analysis.as_ref(),
                results: &results,
                now: self.now,
                golden: &golden,
            };
            let mut d = decide(input(None));
            assert_eq!(d, decide(input(None)), "decide is deterministic");
            if let CutoverStep::HealthCheck { .. } = d.step {
                let outcome = if healthy(revision) {
                    ProbeOutcome::Healthy
                } else {
                    ProbeOutcome::Unhealthy("503".into())
                };
                d = decide(input(Some(outcome)));
            }
            let changed = self.reconcile(&read, &d, revision, fault, step);
            let measured = self.measure(&d, fault) | self.run_golden(&d, fault);
            let pending = requests::pending(&self.stored.annotations, &self.stored.handled);
            let settled = d.step == CutoverStep::Failed
                || (d.step == CutoverStep::Steady
                    && d.requeue_after.is_none()
                    && d.plan(Blue) != DeploymentPlan::Scale { replicas: 0 }
                    && d.plan(Green) != DeploymentPlan::Scale { replicas: 0 });
            // A failed tidy is retried by the next reconciliation, but nothing waits for it.
            let cut_short = !matches!(fault, None | Some(Fault::TidyFails));
            if !cut_short && ((settled && pending == Requests::default()) || stop(self)) {
                return d;
            }
            self.now = self.next_wake(&d, changed || measured || fault.is_some(), step);
        }
        panic!("did not settle; stored {:?}", self.stored);
    }

    /// The writes of one reconciliation of `d` (decided on `read`), in `reconcile`'s order, cut
    /// short by `fault`; whether anything changed (a watch event follows).
    fn reconcile(
        &mut self,
        read: &Stored,
        d: &Decision,
        revision: &str,
        fault: Option<Fault>,
        step: usize,
    ) -> bool {
        let handled = requests::handled_after(&read.annotations, &read.handled, d.consumed);
        let status_changed = d.state != read.state || handled != read.handled;
        let mut latest = read.version;
        self.recorded = false;
        if status_changed || self.cluster.irreversible(d) {
            if read.version != self.stored.version {
                // 409 Conflict: the decision was made on an older pipeline; nothing is written.
                return false;
            }
            if fault == Some(Fault::StatusLost) {
                return false;
            }
            if status_changed {
                self.cutovers += usize::from(d.state.active != read.state.active);
                self.failures +=
                    usize::from(d.state.failure.is_some() && d.state.failure != read.state.failure);
                let next = Stored {
                    state: d.state.clone(),
                    handled: handled.clone(),
                    ..self.stored.clone()
                };
                self.store(next);
                latest = self.stored.version;
            }
            if matches!(
                fault,
                Some(Fault::StatusUnacknowledged | Fault::AfterStatus)
            ) {
                return true;
            }
        }
        self.recorded = true;
        // Traffic leaves a colour before its pods do (see `apply`).
        let live = live_color(d.live(), self.cluster.service, &self.cluster.observed());
        let mut changed = false;
        if traffic_first(self.cluster.service, live) {
            changed |= self.move_traffic(d, step);
        }
        changed |= self.cluster.apply(d, revision, self.now);
        self.check_traffic(step);
        if fault == Some(Fault::AfterDeployments) {
            return true;
        }
        changed |= self.move_traffic(d, step);
        if fault == Some(Fault::AfterService) {
            return true;
        }
        let tidy = requests::tidy(&read.annotations, &handled);
        // Conditional on the version last read or written, like the real removal.
        if !tidy.is_empty() && fault != Some(Fault::TidyFails) && latest == self.stored.version {
            let mut next = self.stored.clone();
            for key in tidy {
                next.annotations.remove(key);
            }
            self.store(next);
            changed = true;
        }
        changed
    }

    /// When the pipeline is reconciled next: at the first of a watch event (`event`: a write just
    /// made, or a failed reconciliation's retry), pods becoming ready, or the requeue.
    fn next_wake(&mut self, d: &Decision, event: bool, step: usize) -> Timestamp {
        let requeue = d
            .requeue_after
            .map(|r| self.now + SignedDuration::try_from(r).unwrap());
        let wakes = [
            event.then_some(self.now + EVENT),
            self.cluster.ready_at,
            requeue,
        ];
        let Some(next) = wakes.into_iter().flatten().min() else {
            panic!(
                "step {step}: {:?} waits, but nothing would wake the pipeline",
                d.step
            );
        };
        self.cluster.tick(next);
        next
    }
}

/// Moves of the Service onto one colour after another.
fn only<const N: usize>(colors: [Color; N]) -> Vec<Live> {
    colors.into_iter().map(Live::Only).collect()
}

mod analysis;
mod canary;
mod golden;
mod scenarios;
mod traffic;
