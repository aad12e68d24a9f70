//! Analysis in the simulator: every fault at every point of a pre-promotion run that passes or
//! fails, and of a post-promotion run that passes or rolls back. Query results live in memory
//! until the next reconciliation records them, so a crash loses them and they are taken again.
//! Faults strike every third or fifth reconciliation: at every other one, each result would be
//! lost in the reconciliation after the one that took it, as in a cluster where every other
//! status write fails, and no analysis could ever finish.

use super::*;
use crate::api::{AnalysisPhase, AnalysisStage, RollbackState};

impl Run {
    /// After a reconciliation: the due metrics of a recorded decision are queried (at once,
    /// here), their results waiting for the next one; a crash loses what was in memory. Whether
    /// a result came back (it wakes the pipeline).
    pub(super) fn measure(&mut self, d: &Decision, fault: Option<Fault>) -> bool {
        if crashed(fault) {
            self.results.clear();
            return false;
        }
        // What the reconciliation measures: the due metrics of the run in status, whatever step
        // shows (a canary's background analysis measures while a pause shows).
        let (due, Some(run)) = (d.due, &d.state.analysis) else {
            return false;
        };
        if !self.recorded || due.is_empty() {
            return false;
        }
        for slot in due.iter() {
            let value = (self.metric)(&run.revision);
            self.results.push(AnalysisResult {
                stage: run.stage,
                revision: run.revision.clone(),
                color: run.color,
                slot,
                at: self.now,
                result: Ok(crate::analysis::prometheus::QueryValue::Number {
                    value,
                    text: value.to_string(),
                }),
            });
        }
        true
    }
}

/// Whether `fault` crashes the operator, losing what it held in memory.
pub(super) fn crashed(fault: Option<Fault>) -> bool {
    matches!(
        fault,
        Some(Fault::AfterStatus | Fault::AfterDeployments | Fault::AfterService)
    )
}

const PRE: AnalysisStage = AnalysisStage::PrePromotion;
const POST: AnalysisStage = AnalysisStage::PostPromotion;

pub(super) use super::super::tests::analysis::analysis;

/// r1, then r2 with `stage` analysis, where r2's error ratio is `r2_errors`; `fault` strikes
/// every `every`-th reconciliation.
fn roll_out_r2(
    stage: AnalysisStage,
    r2_errors: fn(&str) -> f64,
    fault: Option<(Fault, usize)>,
) -> Run {
    let faulty =
        move |step: usize| fault.and_then(|(f, every)| step.is_multiple_of(every).then_some(f));
    let mut run = Run::new();
    run.analysis = Some(analysis(stage));
    run.metric = r2_errors;
    run.converge_with("r1", |_| true, faulty, |_| false);
    run.converge_with("r2", |_| true, faulty, |_| false);
    run
}

pub(super) fn faults() -> impl Iterator<Item = Option<(Fault, usize)>> {
    let each = FAULTS
        .into_iter()
        .flat_map(|f| [3, 5].map(|every| Some((f, every))));
    std::iter::once(None).chain(each)
}

pub(super) fn bad_r2(revision: &str) -> f64 {
    if revision == "r2" { 0.5 } else { 0.0 }
}

#[test]
fn a_passing_pre_promotion_analysis_promotes_once_whatever_fails() {
    for fault in faults() {
        let run = roll_out_r2(PRE, |_| 0.01, fault);
        let case = format!("{fault:?}");
        assert_eq!(
            run.stored.state.active,
            Some((Green, "r2".into())),
            "{case}"
        );
        assert_eq!(run.switches, only([Blue, Green]), "{case}");
        assert_eq!(run.cutovers, 2, "{case}");
        let analysis = run.stored.state.analysis.as_ref().unwrap();
        assert_eq!(
            (analysis.stage, analysis.phase),
            (PRE, AnalysisPhase::Successful),
            "{case}"
        );
        assert_eq!(
            analysis.metrics[0].successful, 2,
            "{case}: measured twice, not more"
        );
        assert_eq!(run.cluster.blue.as_ref().unwrap().replicas, 0, "{case}");
    }
}

#[test]
fn a_failing_pre_promotion_analysis_never_takes_traffic_whatever_fails() {
    for fault in faults() {
        let run = roll_out_r2(PRE, bad_r2, fault);
        let case = format!("{fault:?}");
        assert_eq!(run.stored.state.active, Some((Blue, "r1".into())), "{case}");
        assert_eq!(run.switches, only([Blue]), "{case}");
        let failure = run.stored.state.failure.as_ref().unwrap();
        assert_eq!(failure.reason, reason::ANALYSIS_FAILED, "{case}");
        assert_eq!(run.cluster.green.as_ref().unwrap().replicas, 0, "{case}");
    }
}

#[test]
fn a_failing_post_promotion_analysis_rolls_back_once_whatever_fails() {
    for fault in faults() {
        let mut run = roll_out_r2(POST, bad_r2, fault);
        let case = format!("{fault:?}");
        assert_eq!(run.stored.state.active, Some((Blue, "r1".into())), "{case}");
        assert_eq!(
            run.switches,
            only([Blue, Green, Blue]),
            "{case}: no flip back"
        );
        let rollback = RollbackState {
            from: "r2".into(),
            to: "r1".into(),
        };
        assert_eq!(run.stored.state.rollback, Some(rollback), "{case}");
        assert_eq!(run.cluster.green.as_ref().unwrap().replicas, 0, "{case}");
        // Not promoted again while the spec stays on r2.
        run.converge("r2", |_| true);
        assert_eq!(run.switches, only([Blue, Green, Blue]), "{case}");
    }
}

#[test]
fn a_passing_post_promotion_analysis_then_scales_the_old_colour_down() {
    for fault in faults() {
        let run = roll_out_r2(POST, |_| 0.0, fault);
        let case = format!("{fault:?}");
        assert_eq!(
            run.stored.state.active,
            Some((Green, "r2".into())),
            "{case}"
        );
        assert_eq!(run.switches, only([Blue, Green]), "{case}");
        let analysis = run.stored.state.analysis.as_ref().unwrap();
        assert_eq!(
            (analysis.stage, analysis.phase),
            (POST, AnalysisPhase::Successful),
            "{case}"
        );
        assert_eq!(run.cluster.blue.as_ref().unwrap().replicas, 0, "{case}");
    }
}
