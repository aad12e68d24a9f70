//! Retrieval regression analysis as a gate of the cutover: after the new colour answers and
//! before the metric analysis, its golden set (`spec.rollout.goldenSet`) runs against the new
//! colour and the active one, and the new colour must clear the bar (`crate::analysis::golden`).
//!
//! The run lives in `status.goldenSet` ([`RolloutState::golden`](super::RolloutState)); the
//! queries run outside `decide` (`pipeline/golden_runs.rs`), started by the reconciliation while
//! this gate holds at [`CutoverStep::GoldenSet`], and their scores come back as
//! [`RolloutInput::golden`](super::RolloutInput). A crash loses only the run in flight: the next
//! reconciliation finds the run still `Running` in status and starts it again.
//!
//! Outcomes: pass → the next gate; fail → the rollout fails like a failed gate (`Degraded`
//! reason `RetrievalRegressed` or `GoldenSetBelowMinimum`, the first regressed queries named);
//! no result within the budget, or queries that got no answer → `GoldenSetInconclusive`, never a
//! pass. A first deploy has no active colour: only `minRecallAtK` applies.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::CutoverStep;
use super::gates::{Gate, Rollout};
use crate::analysis::golden::{Bar, Scores, Verdict, judge};
use crate::api::{Color, GoldenScore, GoldenSetPhase, GoldenSetSpec, GoldenSetStatus};

/// Event and condition reasons of the gate.
pub mod reason {
    pub const GOLDEN_SET_STARTED: &str = "GoldenSetStarted";
    pub const GOLDEN_SET_PASSED: &str = "GoldenSetPassed";
    /// recall@K or MRR fell more than `maxRegression` below the active colour's.
    pub const RETRIEVAL_REGRESSED: &str = "RetrievalRegressed";
    pub const GOLDEN_SET_BELOW_MINIMUM: &str = "GoldenSetBelowMinimum";
    /// Over the time budget, or queries that got no answer: never a pass.
    pub const GOLDEN_SET_INCONCLUSIVE: &str = "GoldenSetInconclusive";
}

/// How soon to look again while the run is out, should its result not wake the pipeline.
pub const RECHECK: Duration = Duration::from_secs(5);

/// The reason of a failed rollout, when this gate failed it.
pub fn failure(why: &str) -> Option<&'static str> {
    [
        reason::RETRIEVAL_REGRESSED,
        reason::GOLDEN_SET_BELOW_MINIMUM,
        reason::GOLDEN_SET_INCONCLUSIVE,
    ]
    .into_iter()
    .find(|r| *r == why)
}

/// The scores of one run that came back: the new colour's, and the active colour's on the same
/// set (none on a first deploy).
#[derive(Clone, Debug, PartialEq)]
pub struct GoldenScores {
    pub target: Scores,
    pub active: Option<Scores>,
}

/// What a run of the golden set on `revision` and `color`, started at `started_at` (as in
/// status), came to: scores, or why there are none.
#[derive(Clone, Debug, PartialEq)]
pub struct GoldenResult {
    pub revision: String,
    pub color: Color,
    pub started_at: Timestamp,
    pub outcome: Result<GoldenScores, String>,
}

/// When decide stops waiting for a run: its budget twice (a restart of the operator runs it
/// again) and a margin.
fn deadline(spec: &GoldenSetSpec, started: Timestamp) -> Timestamp {
    started + SignedDuration::from_secs(2 * i64::from(spec.time_budget_seconds.max(1)) + 30)
}

/// The gate: a run for this revision and colour, started for this rollout, must pass.
pub fn golden(r: &mut Rollout<'_, '_>) -> Gate {
    let Some(spec) = r.input.spec.golden_set.as_ref() else {
        return Gate::Pass;
    };
    let (now, target) = (r.input.now, r.target);
    let active = r.input.state.active.clone().filter(|_| !r.first_deploy);
    let fresh = r.golden.as_ref().is_some_and(|g| {
        g.revision == r.revision && g.color == target && g.started_at.0 >= r.progress.started_at.0
    });
    if !fresh {
        // Whole seconds, as status keeps a `Time`: the start is the run's key, and must read
        // back the same after the status write.
        let started = Timestamp::from_second(now.as_second()).unwrap_or(now);
        *r.golden = Some(GoldenSetStatus {
            revision: r.revision.to_string(),
            color: target,
            phase: GoldenSetPhase::Running,
            started_at: Time(started),
            target: None,
            active: None,
            queries: None,
            regressed: None,
            message: None,
        });
        let against = active.as_ref().map_or(String::new(), |(c, rev)| {
            format!(" and on {c} (revision {rev})")
        });
        let note = format!(
            "golden set started on {target} (revision {}){against}",
            r.revision
        );
        r.d.event(reason::GOLDEN_SET_STARTED, note);
    }
    let run = r.golden.as_mut().expect("set above");
    let mut ended = false;
    if run.phase == GoldenSetPhase::Running {
        let result = r.input.golden.iter().find(|g| {
            g.revision == run.revision && g.color == run.color && g.started_at == run.started_at.0
        });
        if let Some(result) = result {
            record(run, spec, active.as_ref(), result);
            ended = true;
        } else if now >= deadline(spec, run.started_at.0) {
            run.phase = GoldenSetPhase::Inconclusive;
            run.message = Some(format!(
                "no result within {}s of the start",
                deadline(spec, run.started_at.0)
                    .duration_since(run.started_at.0)
                    .as_secs()
            ));
            ended = true;
        }
    }
    let message = run.message.clone().unwrap_or_default();
    match run.phase {
        GoldenSetPhase::Running => {
            r.d.requeue(RECHECK);
            Gate::Hold(CutoverStep::GoldenSet { color: target })
        }
        GoldenSetPhase::Passed => {
            if ended {
                let note = format!("{target} passed its golden set: {message}");
                r.d.event(reason::GOLDEN_SET_PASSED, note);
            }
            Gate::Pass
        }
        GoldenSetPhase::Failed => {
            let below = run
                .target
                .as_ref()
                .is_none_or(|t| t.recall_at_k + 1e-9 < spec.min_recall_at_k);
            let why = if below {
                reason::GOLDEN_SET_BELOW_MINIMUM
            } else {
                reason::RETRIEVAL_REGRESSED
            };
            Gate::Fail(why, format!("{target} on the golden set: {message}"))
        }
        GoldenSetPhase::Inconclusive => Gate::Fail(
            reason::GOLDEN_SET_INCONCLUSIVE,
            format!("{target} on the golden set: {message}"),
        ),
    }
}

/// Records a result in the run: the scores of both colours, and the verdict.
fn record(
    run: &mut GoldenSetStatus,
    spec: &GoldenSetSpec,
    active: Option<&(Color, String)>,
    result: &GoldenResult,
) {
    let scores = match &result.outcome {
        Err(why) => {
            run.phase = GoldenSetPhase::Inconclusive;
            run.message = Some(why.clone());
            return;
        }
        Ok(scores) => scores,
    };
    let compared = active.zip(scores.active.as_ref());
    let score = |color: Color, revision: &str, s: &Scores| GoldenScore {
        color,
        revision: revision.to_string(),
        recall_at_k: s.recall_at_k(),
        mrr: s.mrr(),
    };
    run.target = Some(score(run.color, &run.revision, &scores.target));
    run.active = compared.map(|((c, rev), s)| score(*c, rev, s));
    let bar = Bar {
        min_recall_at_k: spec.min_recall_at_k,
        max_regression: spec.max_regression,
    };
    let judgement = judge(bar, &scores.target, compared.map(|(_, s)| s));
    run.queries = i32::try_from(scores.target.queries.len()).ok();
    run.regressed = i32::try_from(judgement.regressed.len()).ok();
    run.message = Some(judgement.message);
    run.phase = match judgement.verdict {
        Verdict::Pass => GoldenSetPhase::Passed,
        Verdict::BelowMinimum | Verdict::Regressed => GoldenSetPhase::Failed,
    };
}
