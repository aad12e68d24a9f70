//! Whole rollouts, decided step by step against a small model of the cluster: new pods become
//! ready a few seconds after they are applied, the Service follows `active_service`. Time steps to
//! the next thing that wakes the pipeline, as in the controller: a watch event (a write, pods
//! becoming ready) or the decision's requeue. A decision that waits with neither panics, so a gate
//! that holds without a way to be woken is caught. Invariants are checked after every step,
//! including with the operator "crashing" between applying and writing status.

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::*;
use crate::api::{Color::*, HealthCheckSpec, RolloutSpec};

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
    service: Option<Color>,
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

    /// Carries out the decision; whether anything changed (a watch event follows).
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
        self.service = d.active_service;
        let starting = [&self.blue, &self.green]
            .into_iter()
            .flatten()
            .any(|d| d.ready < d.replicas);
        if starting && self.ready_at.is_none() {
            self.ready_at = Some(now + POD_START);
        }
        before != format!("{:?}{:?}{:?}", self.blue, self.green, self.service)
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

struct Run {
    cluster: Cluster,
    state: RolloutState,
    now: Timestamp,
    promotions: usize,
    failures: usize,
}

impl Run {
    fn new() -> Self {
        Self {
            cluster: Cluster::default(),
            state: RolloutState::default(),
            now: Timestamp::from_second(1_800_000_000).unwrap(),
            promotions: 0,
            failures: 0,
        }
    }

    /// Reconciles until the pipeline settles (or `steps` run out). `healthy` answers the probe of a
    /// revision; `crash_every` drops the status write of every n-th reconcile.
    fn converge(
        &mut self,
        revision: &str,
        healthy: impl Fn(&str) -> bool,
        crash_every: Option<usize>,
    ) -> Decision {
        let spec = RolloutSpec {
            health_check: HealthCheckSpec {
                success_threshold: 2,
                failure_threshold: 2,
                ..HealthCheckSpec::default()
            },
            progress_deadline_seconds: 120,
            scale_down_delay_seconds: 20,
            ..RolloutSpec::default()
        };
        for step in 1..200 {
            let observed = self.cluster.observed();
            let input = |probe| RolloutInput {
                revision,
                scaling: Scaling::Fixed(3),
                spec: &spec,
                requests: Requests::default(),
                state: &self.state,
                observed: &observed,
                probe,
                now: self.now,
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
            let changed = self.cluster.apply(&d, revision, self.now);
            if let Some(active) = self.cluster.service {
                let ready = self.cluster.get(active).as_ref().map_or(0, |x| x.ready);
                assert!(
                    ready > 0,
                    "step {step}: the Service points at {active}, which has no ready pods"
                );
            }
            let crashed = crash_every.is_some_and(|n| step % n == 0);
            if !crashed {
                self.promotions += usize::from(matches!(d.step, CutoverStep::Promoted { .. }));
                self.failures +=
                    usize::from(d.events.iter().any(|e| e.reason == reason::ROLLOUT_FAILED));
                self.state = d.state.clone();
            }
            let settled = d.step == CutoverStep::Failed
                || (d.step == CutoverStep::Steady
                    && d.requeue_after.is_none()
                    && d.plan(Blue) != DeploymentPlan::Scale { replicas: 0 }
                    && d.plan(Green) != DeploymentPlan::Scale { replicas: 0 });
            if settled && !crashed {
                return d;
            }
            self.now = self.next_wake(&d, changed || crashed, step);
        }
        panic!("did not settle; state {:?}", self.state);
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

#[test]
fn deploy_then_update_ends_on_the_new_colour_with_the_old_one_at_zero() {
    let mut run = Run::new();
    run.converge("r1", |_| true, None);
    assert_eq!(run.state.active, Some((Blue, "r1".into())));
    assert_eq!(run.cluster.service, Some(Blue));

    run.converge("r2", |_| true, None);
    assert_eq!(run.state.active, Some((Green, "r2".into())));
    assert_eq!(run.cluster.service, Some(Green));
    assert_eq!(
        run.cluster.blue.as_ref().unwrap().replicas,
        0,
        "old colour scaled down after the delay"
    );
    assert_eq!(run.cluster.green.as_ref().unwrap().replicas, 3);
    assert_eq!(run.promotions, 2);
}

#[test]
fn an_unhealthy_update_never_takes_traffic() {
    let mut run = Run::new();
    run.converge("r1", |_| true, None);
    let d = run.converge("r2", |rev| rev != "r2", None);
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(run.cluster.service, Some(Blue));
    assert_eq!(run.cluster.green.as_ref().unwrap().replicas, 0);
    assert_eq!(run.cluster.blue.as_ref().unwrap().ready, 3);
    assert_eq!((run.promotions, run.failures), (1, 1));

    // A fixed spec rolls out.
    run.converge("r3", |_| true, None);
    assert_eq!(run.state.active, Some((Green, "r3".into())));
    assert_eq!(run.state.failure, None);
}

#[test]
fn crashes_between_apply_and_status_write_still_converge_to_one_cutover() {
    for every in [2, 3, 5] {
        let mut run = Run::new();
        run.converge("r1", |_| true, Some(every));
        run.converge("r2", |_| true, Some(every));
        assert_eq!(
            run.state.active,
            Some((Green, "r2".into())),
            "crash every {every}"
        );
        assert_eq!(run.cluster.service, Some(Green));
        assert_eq!(
            run.promotions, 2,
            "crash every {every}: each revision is promoted exactly once"
        );
    }
}
