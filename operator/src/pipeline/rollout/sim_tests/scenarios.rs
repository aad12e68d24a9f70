//! Scenarios run through the simulator: plain rollouts, then every fault at every point of a
//! promotion, a rollback and an abort requested by id.

use super::*;

#[test]
fn deploy_then_update_ends_on_the_new_colour_with_the_old_one_at_zero() {
    let mut run = Run::new();
    run.converge("r1", |_| true);
    assert_eq!(run.stored.state.active, Some((Blue, "r1".into())));
    assert_eq!(run.cluster.service, Some(Live::Only(Blue)));

    run.converge("r2", |_| true);
    assert_eq!(run.stored.state.active, Some((Green, "r2".into())));
    assert_eq!(run.cluster.service, Some(Live::Only(Green)));
    assert_eq!(
        run.cluster.blue.as_ref().unwrap().replicas,
        0,
        "old colour scaled down after the delay"
    );
    assert_eq!(run.cluster.green.as_ref().unwrap().replicas, 3);
    assert_eq!(run.cutovers, 2);
    assert_eq!(run.switches, only([Blue, Green]));
}

#[test]
fn an_unhealthy_update_never_takes_traffic() {
    let mut run = Run::new();
    run.converge("r1", |_| true);
    let d = run.converge("r2", |rev| rev != "r2");
    assert_eq!(d.step, CutoverStep::Failed);
    assert_eq!(run.cluster.service, Some(Live::Only(Blue)));
    assert_eq!(run.cluster.green.as_ref().unwrap().replicas, 0);
    assert_eq!(run.cluster.blue.as_ref().unwrap().ready, 3);
    assert_eq!((run.cutovers, run.failures), (1, 1));

    // A fixed spec rolls out.
    run.converge("r3", |_| true);
    assert_eq!(run.stored.state.active, Some((Green, "r3".into())));
    assert_eq!(run.stored.state.failure, None);
}

/// Deploy r1, promote r2, roll back by request id while blue still runs, then ask again with the
/// same id and with a new one; `fault` strikes every `every`-th reconciliation.
fn promote_then_roll_back(fault: Fault, every: usize) -> Run {
    let faulty = move |step: usize| step.is_multiple_of(every).then_some(fault);
    let mut run = Run::new();
    let on = |c: Color, rev: &'static str| {
        move |run: &Run| {
            run.stored.state.active == Some((c, rev.into()))
                && run.cluster.service == Some(Live::Only(c))
        }
    };
    run.converge_with("r1", |_| true, faulty, |_| false);
    run.converge_with("r2", |_| true, faulty, on(Green, "r2"));
    run.annotate(annotation::ROLLBACK, "rb-1");
    run.converge_with("r2", |_| true, faulty, |_| false);
    // The same id again (a failed tidy, a repeated click): no effect.
    run.annotate(annotation::ROLLBACK, "rb-1");
    run.converge_with("r2", |_| true, faulty, |_| false);
    // A new id while the rollback is in force: refused.
    run.annotate(annotation::ROLLBACK, "rb-2");
    run.converge_with("r2", |_| true, faulty, |_| false);
    run
}

#[test]
fn every_fault_at_every_point_converges_to_one_cutover_each_and_no_flip_back() {
    for fault in FAULTS {
        for every in [2, 3, 5] {
            let run = promote_then_roll_back(fault, every);
            let case = format!("{fault:?} every {every}");
            assert_eq!(run.stored.state.active, Some((Blue, "r1".into())), "{case}");
            assert_eq!(run.cluster.service, Some(Live::Only(Blue)), "{case}");
            assert_eq!(
                run.switches,
                only([Blue, Green, Blue]),
                "{case}: no flip back"
            );
            assert_eq!(
                run.cutovers, 3,
                "{case}: one cutover per revision and rollback"
            );
            assert_eq!(
                run.stored.handled.rollback.as_deref(),
                Some("rb-2"),
                "{case}"
            );
            assert!(run.stored.annotations.is_empty(), "{case}: tidied at last");
        }
    }
}

#[test]
fn an_abort_by_id_under_faults_keeps_traffic_and_stays_aborted() {
    for fault in FAULTS {
        for every in [2, 3] {
            let faulty = move |step: usize| step.is_multiple_of(every).then_some(fault);
            let mut run = Run::new();
            run.converge_with("r1", |_| true, faulty, |_| false);
            let started = |run: &Run| run.stored.state.target.is_some();
            run.converge_with("r2", |_| true, faulty, started);
            run.annotate(annotation::ABORT, "ab-1");
            let d = run.converge_with("r2", |_| true, faulty, |_| false);
            let case = format!("{fault:?} every {every}");
            assert_eq!(d.step, CutoverStep::Failed, "{case}");
            assert_eq!(
                run.switches,
                only([Blue]),
                "{case}: traffic never left blue"
            );
            assert_eq!(run.cutovers, 1, "{case}");
            assert_eq!(
                run.stored.state.failure.as_ref().map(|f| f.reason.as_str()),
                Some(reason::ABORTED),
                "{case}"
            );
            assert_eq!(run.stored.handled.abort.as_deref(), Some("ab-1"), "{case}");
        }
    }
}

#[test]
fn a_request_whose_annotation_is_never_removed_is_acted_on_once() {
    // Removing annotations always fails (a policy refusing the patch, say): the ids recorded in
    // status are all that stops a rollback from being acted on again after a retry.
    let never_tidied = |_| Some(Fault::TidyFails);
    let mut run = Run::new();
    run.converge("r1", |_| true);
    let on_green = |run: &Run| run.cluster.service == Some(Live::Only(Green));
    run.converge_with("r2", |_| true, |_| None, on_green);
    run.annotate(annotation::ROLLBACK, "rb-1");
    let back = |run: &Run| run.cluster.service == Some(Live::Only(Blue));
    run.converge_with("r2", |_| true, never_tidied, back);
    run.annotate(annotation::RETRY, "rt-1");
    let again = |run: &Run| {
        run.cluster.service == Some(Live::Only(Green)) && run.stored.state.rollback.is_none()
    };
    run.converge_with("r2", |_| true, never_tidied, again);
    // Time passes with both annotations still set: nothing moves again.
    for _ in 0..3 {
        run.converge_with("r2", |_| true, never_tidied, |_| false);
    }
    assert_eq!(run.stored.annotations.len(), 2, "never removed");
    assert_eq!(
        run.switches,
        only([Blue, Green, Blue, Green]),
        "no flip back"
    );
    assert_eq!(run.cutovers, 4, "r1, r2, the rollback, r2 again");
    assert_eq!(run.stored.state.active, Some((Green, "r2".into())));
}
