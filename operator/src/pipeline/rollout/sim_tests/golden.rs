//! The golden set in the simulator: every fault at every point of a run that passes, one that
//! regresses and a first deploy below the minimum. A run's result lives in memory until the next
//! reconciliation records it, so a crash while the run is out (or before its result is recorded)
//! loses it, and the run is started again from the status that still says `Running`.

use super::analysis::{crashed, faults};
use super::*;
use crate::analysis::golden::Scores;
use crate::api::{GoldenSetPhase, GoldenSetSpec};
use crate::pipeline::rollout::golden::reason as golden_reason;

impl Run {
    /// After a reconciliation: the run a recorded decision holds for comes back at once, here;
    /// a crash loses what was in memory. Whether a result came back (it wakes the pipeline).
    pub(super) fn run_golden(&mut self, d: &Decision, fault: Option<Fault>) -> bool {
        if crashed(fault) {
            self.golden.clear();
            return false;
        }
        let (CutoverStep::GoldenSet { color }, Some(run)) = (d.step, &d.state.golden) else {
            return false;
        };
        if !self.recorded || run.phase != GoldenSetPhase::Running {
            return false;
        }
        let active = d
            .state
            .active
            .as_ref()
            .map(|(_, r)| scores((self.recall)(r)));
        self.golden.push(GoldenResult {
            revision: run.revision.clone(),
            color,
            started_at: run.started_at.0,
            outcome: Ok(GoldenScores {
                target: scores((self.recall)(&run.revision)),
                active,
            }),
        });
        true
    }
}

/// Ten queries, `recall` of them answered with their document first.
fn scores(recall: f64) -> Scores {
    crate::pipeline::rollout::tests::golden::scores((recall * 10.0).round() as usize)
}

fn spec() -> GoldenSetSpec {
    serde_yaml::from_str("{configMapRef: {name: golden}, minRecallAtK: 0.5, maxRegression: 0.1}")
        .unwrap()
}

/// r1 (recall 1.0), then r2 with `r2` recall; `fault` strikes every `every`-th reconciliation.
fn roll_out_r2(r2: fn(&str) -> f64, fault: Option<(Fault, usize)>) -> Run {
    let faulty =
        move |step: usize| fault.and_then(|(f, every)| step.is_multiple_of(every).then_some(f));
    let mut run = Run::new();
    run.spec.golden_set = Some(spec());
    run.recall = r2;
    run.converge_with("r1", |_| true, faulty, |_| false);
    run.converge_with("r2", |_| true, faulty, |_| false);
    run
}

#[test]
fn a_set_that_keeps_recall_promotes_once_whatever_fails() {
    for fault in faults() {
        let run = roll_out_r2(|r| if r == "r2" { 0.9 } else { 1.0 }, fault);
        let case = format!("{fault:?}");
        assert_eq!(
            run.stored.state.active,
            Some((Green, "r2".into())),
            "{case}"
        );
        assert_eq!(run.switches, only([Blue, Green]), "{case}");
        assert_eq!(run.cutovers, 2, "{case}");
        let golden = run.stored.state.golden.as_ref().unwrap();
        assert_eq!(golden.phase, GoldenSetPhase::Passed, "{case}");
        assert_eq!(golden.regressed, Some(1), "{case}");
        assert_eq!(run.cluster.blue.as_ref().unwrap().replicas, 0, "{case}");
    }
}

#[test]
fn a_set_that_regresses_never_takes_traffic_whatever_fails() {
    for fault in faults() {
        let run = roll_out_r2(|r| if r == "r2" { 0.7 } else { 1.0 }, fault);
        let case = format!("{fault:?}");
        assert_eq!(run.stored.state.active, Some((Blue, "r1".into())), "{case}");
        assert_eq!(run.switches, only([Blue]), "{case}");
        let failure = run.stored.state.failure.as_ref().unwrap();
        assert_eq!(failure.reason, golden_reason::RETRIEVAL_REGRESSED, "{case}");
        assert!(
            failure.message.contains("3 of 10 queries regressed"),
            "{case}: {failure:?}"
        );
        assert_eq!(run.cluster.green.as_ref().unwrap().replicas, 0, "{case}");
    }
}

#[test]
fn a_first_deploy_below_the_minimum_never_takes_traffic_whatever_fails() {
    for fault in faults() {
        let faulty =
            move |step: usize| fault.and_then(|(f, every)| step.is_multiple_of(every).then_some(f));
        let mut run = Run::new();
        run.spec.golden_set = Some(spec());
        run.recall = |_| 0.2;
        run.converge_with("r1", |_| true, faulty, |_| false);
        let case = format!("{fault:?}");
        assert_eq!(run.stored.state.active, None, "{case}");
        assert!(run.switches.is_empty(), "{case}");
        let failure = run.stored.state.failure.as_ref().unwrap();
        assert_eq!(
            failure.reason,
            golden_reason::GOLDEN_SET_BELOW_MINIMUM,
            "{case}"
        );
    }
}
