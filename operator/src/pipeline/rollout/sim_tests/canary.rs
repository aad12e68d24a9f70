//! Canary rollouts through the simulator, every fault at every point: the steps walk to the new
//! colour, and an abort at any step puts traffic and pods back on the old one. After every write
//! the simulator checks that each colour the Service selects has a ready pod and that the new
//! colour's share of the ready pods never exceeds the share its recorded weight plans.

use super::analysis::{analysis, bad_r2, faults};
use super::*;
use crate::api::{AnalysisStage, CanarySpec, RolloutStrategy};

/// 4 pods: 25 % → 10 s → 50 % → until promoted → 75 %, then 100 %.
fn canary_run() -> Run {
    let mut run = Run::new();
    run.total = 4;
    run.spec.strategy = RolloutStrategy::Canary;
    let steps = "steps: [{setWeight: 25}, {pause: {durationSeconds: 10}}, {setWeight: 50}, \
                 {pause: {}}, {setWeight: 75}]";
    run.spec.canary = Some(serde_yaml::from_str::<CanarySpec>(steps).unwrap());
    run
}

/// The canary step in force, once the rollout reached its steps.
fn step(run: &Run) -> Option<i32> {
    let progress = run.stored.state.progress.as_ref()?;
    progress.canary.as_ref().map(|c| c.step)
}

fn replicas(run: &Run, c: Color) -> (i32, i32) {
    let d = match c {
        Blue => run.cluster.blue.as_ref(),
        Green => run.cluster.green.as_ref(),
    };
    d.map_or((0, 0), |d| (d.replicas, d.ready))
}

#[test]
fn a_canary_walks_its_steps_under_every_fault_and_ends_on_the_new_colour() {
    for fault in FAULTS {
        for every in [2, 3, 5] {
            let faulty = move |n: usize| n.is_multiple_of(every).then_some(fault);
            let case = format!("{fault:?} every {every}");
            let mut run = canary_run();
            run.converge_with("r1", |_| true, faulty, |_| false);
            let paused =
                |run: &Run| step(run) == Some(3) && run.cluster.service == Some(Live::Both);
            run.converge_with("r2", |_| true, faulty, paused);
            assert_eq!(replicas(&run, Green).0, 2, "{case}: half the pods");
            run.annotate(annotation::PROMOTE, "p-1");
            run.converge_with("r2", |_| true, faulty, |_| false);
            assert_eq!(
                run.stored.state.active,
                Some((Green, "r2".into())),
                "{case}"
            );
            assert_eq!(run.cluster.service, Some(Live::Only(Green)), "{case}");
            assert_eq!(
                (replicas(&run, Green), replicas(&run, Blue)),
                ((4, 4), (0, 0)),
                "{case}"
            );
            assert_eq!(
                run.switches,
                [Live::Only(Blue), Live::Both, Live::Only(Green)],
                "{case}: one split, one cutover"
            );
            assert_eq!(run.cutovers, 2, "{case}");
        }
    }
}

#[test]
fn an_abort_at_every_step_under_every_fault_puts_everything_back_on_the_old_colour() {
    for at in 0..=4 {
        for fault in FAULTS {
            let every = 3;
            let faulty = move |n: usize| n.is_multiple_of(every).then_some(fault);
            let case = format!("step {at}, {fault:?} every {every}");
            let mut run = canary_run();
            run.converge_with("r1", |_| true, faulty, |_| false);
            let reached = |at: i32| move |run: &Run| step(run).is_some_and(|s| s >= at);
            run.converge_with("r2", |_| true, faulty, reached(at.min(3)));
            if at > 3 {
                // Past the pause that waits for a promotion.
                run.annotate(annotation::PROMOTE, "p-1");
                run.converge_with("r2", |_| true, faulty, reached(at));
            }
            run.annotate(annotation::ABORT, "ab-1");
            let d = run.converge_with("r2", |_| true, faulty, |_| false);
            assert_eq!(d.step, CutoverStep::Failed, "{case}");
            assert_eq!(run.cluster.service, Some(Live::Only(Blue)), "{case}");
            assert_eq!(replicas(&run, Blue).0, 4, "{case}: every pod back");
            assert_eq!(replicas(&run, Green).0, 0, "{case}");
            assert!(
                !run.switches.contains(&Live::Only(Green)),
                "{case}: green never took all traffic"
            );
            assert_eq!(
                run.stored.state.failure.as_ref().map(|f| f.reason.as_str()),
                Some(reason::ABORTED),
                "{case}"
            );
        }
    }
}

#[test]
fn an_unhealthy_canary_never_splits() {
    let mut run = canary_run();
    run.converge("r1", |_| true);
    let d = run.converge("r2", |rev| rev != "r2");
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(run.switches, only([Blue]));
    assert_eq!(replicas(&run, Blue), (4, 4));
}

/// 4 pods: 25 %, the canary stage's error ratio (inline as a step, or in the background from the
/// pause on), 50 %, where r2's error ratio is `errors`.
fn analysed_canary(errors: fn(&str) -> f64, background: bool) -> Run {
    let mut run = canary_run();
    let steps = if background {
        "steps: [{setWeight: 25}, {pause: {durationSeconds: 40}}, {setWeight: 50}]\n\
         analysis: {startingStep: 1}"
    } else {
        "steps: [{setWeight: 25}, {analysis: {}}, {setWeight: 50}]"
    };
    run.spec.canary = Some(serde_yaml::from_str::<CanarySpec>(steps).unwrap());
    run.analysis = Some(analysis(AnalysisStage::Canary));
    run.metric = errors;
    run
}

#[test]
fn an_analysed_canary_promotes_when_it_passes_and_goes_back_when_it_fails_whatever_fails() {
    for background in [false, true] {
        for fault in faults() {
            let faulty =
                move |n: usize| fault.and_then(|(f, every)| n.is_multiple_of(every).then_some(f));
            let case = format!("background {background}, {fault:?}");
            let mut run = analysed_canary(|_| 0.01, background);
            run.converge_with("r1", |_| true, faulty, |_| false);
            run.converge_with("r2", |_| true, faulty, |_| false);
            assert_eq!(
                run.stored.state.active,
                Some((Green, "r2".into())),
                "{case}"
            );
            let passed = [Live::Only(Blue), Live::Both, Live::Only(Green)];
            assert_eq!(run.switches, passed, "{case}");

            let mut run = analysed_canary(bad_r2, background);
            run.converge_with("r1", |_| true, faulty, |_| false);
            run.converge_with("r2", |_| true, faulty, |_| false);
            let failure = run.stored.state.failure.as_ref().map(|f| f.reason.as_str());
            assert_eq!(failure, Some(reason::ANALYSIS_FAILED), "{case}");
            assert_eq!(run.cluster.service, Some(Live::Only(Blue)), "{case}");
            assert_eq!(replicas(&run, Blue).0, 4, "{case}: every pod back");
            let back = [Live::Only(Blue), Live::Both, Live::Only(Blue)];
            assert_eq!(
                run.switches, back,
                "{case}: the split ended, never all on green"
            );
        }
    }
}
