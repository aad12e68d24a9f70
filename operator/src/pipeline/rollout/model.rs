//! What goes into the cutover decision and what comes out of it.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::analysis::CompiledAnalysis;
use crate::analysis::prometheus::{QueryError, QueryValue};
use crate::api::{
    AnalysisRunStatus, AnalysisStage, Color, PendingScaleDown, RollbackState, RolloutFailure,
    RolloutProgress, RolloutSpec,
};
use k8s_openapi::jiff::Timestamp;

/// What the cluster shows of one colour's Deployment and pods.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ColorObservation {
    /// `ragops.io/revision` of the Deployment's pod template.
    pub revision: Option<String>,
    /// `spec.replicas`.
    pub replicas: i32,
    /// The Deployment has observed its generation and all replicas are updated and available.
    pub rolled_out: bool,
    /// Ready pods with an IP: what a Service selecting this colour would send traffic to.
    pub ready_endpoints: i32,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Observed {
    pub blue: Option<ColorObservation>,
    pub green: Option<ColorObservation>,
}

impl Observed {
    pub fn get(&self, color: Color) -> Option<&ColorObservation> {
        match color {
            Color::Blue => self.blue.as_ref(),
            Color::Green => self.green.as_ref(),
        }
    }
}

/// What Service `<name>` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Live {
    Only(Color),
    /// Both colours: a canary's share of the traffic is its share of the ready pods.
    Both,
}

impl Live {
    /// Whether every colour it selects has a ready pod.
    pub fn serves(self, observed: &Observed) -> bool {
        let ready = |c: Color| observed.get(c).is_some_and(|o| o.ready_endpoints > 0);
        match self {
            Live::Only(c) => ready(c),
            Live::Both => Color::ALL.into_iter().all(ready),
        }
    }
}

/// How many pods a colour runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scaling {
    Fixed(i32),
    /// An HPA owns the active colour's count; a new colour starts at that count.
    Autoscaled {
        min: i32,
        max: i32,
    },
}

/// Result of one health-probe round against the new colour.
#[derive(Clone, Debug, PartialEq)]
pub enum ProbeOutcome {
    Healthy,
    Unhealthy(String),
    SmokeFailed(String),
}

/// The bookkeeping of `status` that the state machine reads and writes.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RolloutState {
    pub active: Option<(Color, String)>,
    pub target: Option<(Color, String)>,
    pub progress: Option<RolloutProgress>,
    pub failure: Option<RolloutFailure>,
    pub scale_down: Option<PendingScaleDown>,
    pub last_cutover: Option<Time>,
    /// The colour and revision that served before the last cutover: what a rollback brings back.
    pub previous: Option<(Color, String)>,
    /// A rollback in force: the spec's revision `from` is set aside for `to`.
    pub rollback: Option<RollbackState>,
    /// The analysis run of the rollout in flight, or of the last one.
    pub analysis: Option<AnalysisRunStatus>,
    /// The golden-set run of the rollout in flight, or of the last one.
    pub golden: Option<crate::api::GoldenSetStatus>,
}

/// One query result that came back, for the metric at `slot` of the run of `stage` on
/// `revision` and `color`; taken `at`.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisResult {
    pub stage: AnalysisStage,
    pub revision: String,
    pub color: Color,
    pub slot: usize,
    pub at: Timestamp,
    pub result: Result<QueryValue, QueryError>,
}

/// Metrics of a run (indices into its metrics, below 16) due for a measurement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slots(u16);

impl Slots {
    pub fn of(slots: &[usize]) -> Self {
        Self(
            slots
                .iter()
                .filter(|s| **s < 16)
                .fold(0, |bits, s| bits | (1 << s)),
        )
    }

    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..16).filter(move |s| self.0 & (1 << s) != 0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Operations a user asked for, by annotation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    /// `ragops.io/promote`: let a verified colour take traffic.
    pub promote: bool,
    /// `ragops.io/retry`: roll out a failed or rolled-back revision again.
    pub retry: bool,
    /// `ragops.io/abort`: stop the rollout in flight; the old colour keeps traffic.
    pub abort: bool,
    /// `ragops.io/rollback`: bring the previous revision back.
    pub rollback: bool,
    /// `ragops.io/force-promote`: a promotion that also ends a running analysis unjudged.
    pub force_promote: bool,
}

impl Requests {
    /// The annotation of each request that is set.
    pub fn annotations(self) -> Vec<&'static str> {
        [
            (self.promote, annotation::PROMOTE),
            (self.retry, annotation::RETRY),
            (self.abort, annotation::ABORT),
            (self.rollback, annotation::ROLLBACK),
            (self.force_promote, annotation::FORCE_PROMOTE),
        ]
        .into_iter()
        .filter_map(|(set, a)| set.then_some(a))
        .collect()
    }
}

/// The annotations users set to ask for an operation.
pub mod annotation {
    pub const PROMOTE: &str = "ragops.io/promote";
    pub const RETRY: &str = "ragops.io/retry";
    pub const ABORT: &str = "ragops.io/abort";
    pub const ROLLBACK: &str = "ragops.io/rollback";
    pub const FORCE_PROMOTE: &str = "ragops.io/force-promote";
}

pub struct RolloutInput<'a> {
    pub revision: &'a str,
    pub scaling: Scaling,
    pub spec: &'a RolloutSpec,
    pub requests: Requests,
    pub state: &'a RolloutState,
    pub observed: &'a Observed,
    pub probe: Option<ProbeOutcome>,
    /// `spec.rollout.analysis`, compiled; none when the spec has none.
    pub analysis: Option<&'a CompiledAnalysis>,
    /// Query results that came back since the last decision.
    pub results: &'a [AnalysisResult],
    pub now: Timestamp,
    /// Golden-set results that came back since the last decision.
    pub golden: &'a [super::GoldenResult],
}

/// What to do with one colour's Deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeploymentPlan {
    /// Leave it exactly as it is.
    Keep,
    /// Apply the Deployment of the spec's revision with this many replicas.
    Apply { replicas: i32 },
    /// Change only its replica count.
    Scale { replicas: i32 },
}

/// Where the cutover stands after this decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutoverStep {
    /// The active colour runs the desired revision.
    Steady,
    /// The new colour is starting.
    WaitingForAvailable { color: Color },
    /// Probe the new colour now and decide again with the outcome; with `smoke`, also run the
    /// smoke queries if the probe passes, because this success completes the health check.
    HealthCheck { color: Color, smoke: bool },
    /// A probe was recorded; more are needed.
    Verifying { color: Color },
    /// Metric analysis of `color` runs: measure the `due` metrics of the run in status now
    /// (none: wait for the requeue).
    Analysing {
        color: Color,
        stage: AnalysisStage,
        due: Slots,
    },
    /// Verified; waiting for the promote annotation.
    AwaitingPromotion { color: Color },
    /// A canary step holds: the pods of its weight are coming up, or (`paused`) it pauses, until
    /// its time is up or it is promoted.
    Canary {
        color: Color,
        step: i32,
        weight: i32,
        paused: bool,
    },
    /// Traffic moved to this colour in this decision.
    Promoted { color: Color },
    /// The desired revision failed; the active colour (if any) keeps all traffic.
    Failed,
    /// The golden set of `color` runs: start it if it is not out (see `rollout/golden.rs`).
    GoldenSet { color: Color },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub step: CutoverStep,
    pub state: RolloutState,
    pub blue: DeploymentPlan,
    pub green: DeploymentPlan,
    /// The colour Service `<name>` selects; none until the first promotion.
    pub active_service: Option<Color>,
    /// A canary colour that takes a share of the traffic beside `active_service`: by pods
    /// behind Service `<name>`, or (`routed`) by an HTTPRoute's weights.
    pub canary: Option<Color>,
    /// The canary's share is carried by an HTTPRoute: Service `<name>` keeps one colour.
    pub routed: bool,
    /// Metrics of the analysis run in status to measure now.
    pub due: Slots,
    /// The colour Service `<name>-preview` selects.
    pub preview_service: Option<Color>,
    pub events: Vec<RolloutEvent>,
    pub requeue_after: Option<Duration>,
    /// Requests acted on (or with nothing to act on): their annotations are removed.
    pub consumed: Requests,
}

/// Whether `d` takes pods from a colour that runs them (to zero, or to a canary's share).
pub fn shrinks(d: &Decision, observed: &Observed) -> bool {
    Color::ALL.into_iter().any(|c| {
        let now = observed.get(c).map_or(0, |o| o.replicas);
        match d.plan(c) {
            DeploymentPlan::Keep => false,
            DeploymentPlan::Apply { replicas } | DeploymentPlan::Scale { replicas } => {
                replicas < now
            }
        }
    })
}

impl Decision {
    /// How a finished rollout ended, for the rollouts metric; none while one is in flight.
    pub fn outcome(&self) -> Option<&'static str> {
        let has = |r| self.events.iter().any(|e| e.reason == r);
        match self.step {
            CutoverStep::Promoted { .. } if has(reason::POST_PROMOTION_ANALYSIS_FAILED) => {
                Some("rolledBack")
            }
            CutoverStep::Promoted { .. } => Some("promoted"),
            CutoverStep::Failed if has(reason::ABORTED) => Some("aborted"),
            CutoverStep::Failed
                if has(reason::ROLLOUT_FAILED)
                    || has(reason::ANALYSIS_FAILED)
                    || has(reason::ANALYSIS_INCONCLUSIVE)
                    || self
                        .events
                        .iter()
                        .any(|e| super::golden::failure(e.reason).is_some()) =>
            {
                Some("failed")
            }
            _ => None,
        }
    }

    /// What Service `<name>` should select; none until the first promotion.
    pub fn live(&self) -> Option<Live> {
        match (self.active_service, self.canary) {
            (Some(a), Some(c)) if a != c && !self.routed => Some(Live::Both),
            (active, _) => active.map(Live::Only),
        }
    }

    /// Annotations to remove.
    pub fn consumed(&self) -> Vec<&'static str> {
        self.consumed.annotations()
    }

    pub fn plan(&self, color: Color) -> DeploymentPlan {
        match color {
            Color::Blue => self.blue,
            Color::Green => self.green,
        }
    }

    pub(super) fn set_plan(&mut self, color: Color, plan: DeploymentPlan) {
        match color {
            Color::Blue => self.blue = plan,
            Color::Green => self.green = plan,
        }
    }

    pub(super) fn event(&mut self, reason: &'static str, note: String) {
        self.events.push(RolloutEvent {
            warning: false,
            reason,
            note,
        });
    }

    pub(super) fn warning(&mut self, reason: &'static str, note: String) {
        self.events.push(RolloutEvent {
            warning: true,
            reason,
            note,
        });
    }

    pub(super) fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(
            self.requeue_after
                .map_or(after, |current| current.min(after)),
        );
    }
}

/// Event reasons, also used as condition reasons.
pub mod reason {
    pub const ROLLOUT_STARTED: &str = "RolloutStarted";
    pub const ROLLOUT_SUPERSEDED: &str = "RolloutSuperseded";
    pub const ROLLOUT_CANCELLED: &str = "RolloutCancelled";
    pub const HEALTH_CHECK_PASSED: &str = "HealthCheckPassed";
    pub const AWAITING_PROMOTION: &str = "AwaitingPromotion";
    pub const PROMOTED: &str = "Promoted";
    pub const SCALED_DOWN: &str = "ScaledDown";
    pub const RETRY: &str = "RetryRequested";
    /// A failed first deploy will be tried again by itself.
    pub const RETRY_SCHEDULED: &str = "RetryScheduled";
    /// A failed first deploy is tried again.
    pub const RETRYING: &str = "Retrying";
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
    pub const SMOKE_QUERY_FAILED: &str = "SmokeQueryFailed";
    pub const ROLLOUT_FAILED: &str = "RolloutFailed";
    pub const ABORTED: &str = "Aborted";
    pub const ROLLED_BACK: &str = "RolledBack";
    pub const ROLLBACK_STARTED: &str = "RollbackStarted";
    pub const ROLLBACK_UNAVAILABLE: &str = "RollbackUnavailable";
    /// A rollback asked for while another is in force.
    pub const ROLLBACK_REFUSED: &str = "RollbackRefused";
    pub const NOTHING_TO_ABORT: &str = "NothingToAbort";
    pub const ANALYSIS_STARTED: &str = "AnalysisStarted";
    pub const ANALYSIS_PASSED: &str = "AnalysisPassed";
    pub const ANALYSIS_FAILED: &str = "AnalysisFailed";
    /// Analysis could not tell (no data, Prometheus unreachable): never a pass.
    pub const ANALYSIS_INCONCLUSIVE: &str = "AnalysisInconclusive";
    /// Post-promotion analysis failed (or could not tell): traffic went back to the old colour.
    pub const POST_PROMOTION_ANALYSIS_FAILED: &str = "PostPromotionAnalysisFailed";
    /// A running analysis ended unjudged by `ragops.io/force-promote`.
    pub const ANALYSIS_SKIPPED: &str = "AnalysisSkipped";
    /// A canary step set a new weight.
    pub const CANARY_WEIGHT: &str = "CanaryWeight";
    /// A canary step pauses.
    pub const CANARY_PAUSED: &str = "CanaryPaused";
}
