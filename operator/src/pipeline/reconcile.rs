//! One reconciliation of a RagPipeline, step by step. Each step is a short function; what decides
//! is pure and lives elsewhere (validate, desired, rollout, status).
//!
//! The order of the writes is what makes a crash anywhere safe: first the status recording the
//! decision (the new active colour of a promotion, abort or rollback, and the ids of the requests
//! acted on), then its Events, then the children (Deployments, then the Service that moves
//! traffic, then the rest), then the tidying of handled request annotations. A reconciliation
//! that finds the status ahead of the children completes them from it; one that decided on an
//! older status than the stored one fails its first write and changes nothing.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::apply::{self, Change, Owner};
use super::build;
use super::desired::{self, Desired, Rendered};
use super::health::CheckRequest;
use super::observe::{self, Snapshot};
use super::rollout::{
    self, AnalysisResult, CutoverStep, Decision, GoldenResult, Requests, RolloutInput, Scaling,
};
use super::validate::{self, UserError};
use super::{
    Context, golden_runs, monitoring_status, resync_after, route, status, uncached, writes,
};
use crate::analysis::CompiledAnalysis;
use crate::api::{HandledRequests, RagPipeline, RagPipelineStatus};
use crate::apply::Applied;
use crate::context::Note;
use crate::crash;
use crate::error::Error;
use crate::monitoring::discovery;

/// How long a pipeline waiting for the user (a missing RagIndex, source or Secret) waits between
/// looks, on top of the watch events that normally wake it.
const USER_ERROR_RECHECK: Duration = Duration::from_secs(60);
/// How soon to look again when the caches lag behind what was just read.
const STALE_RECHECK: Duration = Duration::from_secs(1);

pub async fn reconcile(p: &RagPipeline, ctx: &Context) -> Result<Action, Error> {
    if p.meta().deletion_timestamp.is_some() {
        // Children carry owner references; the garbage collector removes them.
        return Ok(Action::await_change());
    }
    ctx.stores.ready().await;
    let now = Timestamp::now();
    let Prepared {
        v,
        analysis,
        golden_set,
    } = match prepare(p, ctx).await? {
        Ok(prepared) => prepared,
        Err(user) => return user_error(p, ctx, &user, now).await,
    };
    let analyses = &ctx.analyses;
    let ns = v.namespace();
    let name = v.name();
    let rendered = Rendered::new(&v);
    let observed = Snapshot::from_stores(&ctx.stores, &ns, &name);
    let handled = p
        .status
        .as_ref()
        .and_then(|s| s.handled_requests.clone())
        .unwrap_or_default();
    let asked = rollout::requests::pending(p.annotations(), &handled);
    let results = analyses.take(&ns, &name);
    let golden = ctx.goldens.take(&ns, &name);
    let analysed = Analysed {
        compiled: analysis.as_deref(),
        results: &results,
        golden: &golden,
    };
    let decision = decide(p, ctx, &rendered, &observed, asked, analysed, now).await?;
    let Some(sources) = uncached::sources(ctx, &v, &observed).await? else {
        return Ok(Action::requeue(STALE_RECHECK));
    };
    let monitoring = &ctx.stores.monitoring;
    if monitoring_status::is_requested(p.spec.monitoring.as_ref()) {
        monitoring.want();
    }
    let crds = monitoring.crds();
    let served = crds == discovery::Crds::Present;
    let mut desired = Desired::build(&v, &rendered, &decision, &observed, sources, served);
    let shared = &ctx.shared;
    desired.route = match route::for_decision(shared, &v, &decision, &observed.observed()).await? {
        Ok(write) => write,
        Err(user) => return user_error(p, ctx, &user, now).await,
    };
    let uid = p.uid().unwrap_or_default();
    let owner = Owner {
        namespace: &ns,
        name: &name,
        uid: &uid,
    };

    // The intent first: the status recording this decision and the requests it acted on.
    let handled = rollout::requests::handled_after(p.annotations(), &handled, decision.consumed);
    let status = next_status(p, ctx, &decision, &observed, (&handled, crds), now);
    let confirm = irreversible(&decision, &observed);
    let written = writes::status(p, ctx, &status, confirm).await?;
    // Recorded: now the metrics it says are due are measured, in the background.
    if let (false, Some(run), Some(a)) =
        (decision.due.is_empty(), &decision.state.analysis, &analysis)
    {
        analyses.measure(a, run, decision.due, &ns, &name);
    }
    if let Some(set) = golden_set {
        golden_runs::start(p, ctx, &decision, &observed, set).await?;
    }
    report_missing_crds(p, ctx, &status).await;
    record(p, ctx, &decision).await;
    if written.is_some() {
        pass_status_points(p.status.as_ref(), &status);
    }

    // Then the children, each write repeatable from that status.
    let changes = apply::apply(&ctx.shared, &owner, desired, &observed, &ctx.stores).await?;
    report_drift(p, ctx, &decision, &changes).await;
    let latest = written.as_ref().unwrap_or(p);
    let tidied_keys = rollout::requests::tidy(latest.annotations(), &handled);
    let tidied = writes::tidy(latest, ctx, &handled).await;
    if let Some(latest) = tidied.or(written) {
        writes::await_own(ctx, &latest, &tidied_keys).await;
    }
    let resync = resync_after(ctx.settings.resync, &uid);
    Ok(Action::requeue(decision.requeue_after.unwrap_or(resync)))
}

/// The status after `decision`, with the requests it acted on (`handled`) and the monitoring
/// condition (with `crds`, the discovery state the children were built with).
fn next_status(
    p: &RagPipeline,
    ctx: &Context,
    decision: &Decision,
    observed: &Snapshot,
    (handled, crds): (&HandledRequests, discovery::Crds),
    now: Timestamp,
) -> RagPipelineStatus {
    let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
    let serving = status::Serving {
        ready_replicas: decision
            .active_service
            .and_then(|c| observed.observed().get(c).map(|o| o.ready_endpoints))
            .unwrap_or(0),
        endpoint: format!("http://{name}.{ns}.svc:{}", build::SERVICE_PORT),
    };
    let generation = p.meta().generation;
    let mut status = status::after_decision(p.status.as_ref(), decision, &serving, generation, now);
    status.handled_requests = Some(handled.clone()).filter(|h| *h != Default::default());
    let monitoring = &ctx.stores.monitoring;
    let held = monitoring.held(&ns, &name);
    let condition =
        monitoring_status::condition(p.spec.monitoring.as_ref(), crds, &held, monitoring.recheck);
    status.conditions = monitoring_status::merge(&status.conditions, condition, generation, now);
    status
}

/// What a reconciliation works from besides the pipeline and the caches.
struct Prepared {
    v: super::build::Validated,
    analysis: Option<std::sync::Arc<CompiledAnalysis>>,
    golden_set: Option<std::sync::Arc<crate::analysis::golden::GoldenSet>>,
}

/// The spec dereferenced, its analysis compiled and its golden set read: a user error when the
/// spec cannot be served. Also forgets the analyses and golden sets of pipelines gone since.
async fn prepare(p: &RagPipeline, ctx: &Context) -> Result<Result<Prepared, UserError>, Error> {
    let v = match validate::dereference(&ctx.stores, p) {
        Ok(v) => v,
        Err(user) => return Ok(Err(user)),
    };
    let pipelines = &ctx.stores.pipelines;
    let analyses = &ctx.analyses;
    analyses.prune(|ns, name| {
        crate::watch::get(pipelines, ns, name).is_some_and(|p| p.spec.rollout.analysis.is_some())
    });
    let analysis = match validate::analysis(analyses.compiled(p), analyses.default_address()) {
        Ok(a) => a,
        Err(user) => return Ok(Err(user)),
    };
    ctx.goldens.prune(|ns, name| {
        crate::watch::get(pipelines, ns, name).is_some_and(|p| p.spec.rollout.golden_set.is_some())
    });
    Ok(golden_runs::load(ctx, p).await?.map(|golden_set| Prepared {
        v,
        analysis,
        golden_set,
    }))
}

/// Whether applying `decision` would move the live Service or take pods from a running colour
/// (to zero, or to a canary's share): the writes that must never follow a decision made on an
/// outdated status, so the status write before them goes out (and checks the status read is
/// current) even when nothing in it changed.
fn irreversible(decision: &Decision, observed: &Snapshot) -> bool {
    let live = observed.live();
    let moves = desired::live_color(decision.live(), observed) != live;
    let colours = observed.observed();
    moves || rollout::shrinks(decision, &colours)
}

/// The kill points after a status write (and its Events) that recorded a cutover or a failure,
/// before any child changed (see [`crash`]).
fn pass_status_points(before: Option<&RagPipelineStatus>, after: &RagPipelineStatus) {
    let before = before.cloned().unwrap_or_default();
    if before.active_color != after.active_color || before.active_revision != after.active_revision
    {
        crash::point(crash::at::CUTOVER_RECORDED);
    }
    if after.failure.is_some() && before.failure != after.failure {
        crash::point(crash::at::FAILURE_RECORDED);
    }
}

/// What only the operator can see is wrong: whatever runs keeps running, the status says why.
async fn user_error(
    p: &RagPipeline,
    ctx: &Context,
    user: &UserError,
    now: Timestamp,
) -> Result<Action, Error> {
    let status = status::after_user_error(p.status.as_ref(), user, p.meta().generation, now);
    if writes::status(p, ctx, &status, false).await?.is_some() {
        let message = user.to_string();
        let note = Note {
            warning: !user.is_waiting(),
            reason: user.reason(),
            action: user.reason(),
            message,
        };
        ctx.shared.publish(&p.object_ref(&()), note).await;
    }
    Ok(Action::requeue(USER_ERROR_RECHECK))
}

/// The pipeline's compiled analysis and the query results that came back.
struct Analysed<'a> {
    compiled: Option<&'a CompiledAnalysis>,
    results: &'a [AnalysisResult],
    golden: &'a [GoldenResult],
}

/// The cutover decision, with the health gate run when the decision asks for it.
async fn decide(
    p: &RagPipeline,
    ctx: &Context,
    rendered: &Rendered,
    observed: &Snapshot,
    requests: Requests,
    analysed: Analysed<'_>,
    now: Timestamp,
) -> Result<Decision, Error> {
    let spec = &p.spec;
    let state = status::rollout_state(p.status.as_ref());
    let colours = observed.observed();
    let input = RolloutInput {
        revision: &rendered.revision,
        scaling: spec
            .autoscaling
            .as_ref()
            .map_or(Scaling::Fixed(spec.runtime.replicas), |a| {
                Scaling::Autoscaled {
                    min: a.min_replicas,
                    max: a.max_replicas,
                }
            }),
        spec: &spec.rollout,
        requests,
        state: &state,
        observed: &colours,
        probe: None,
        analysis: analysed.compiled,
        results: analysed.results,
        now,
        golden: analysed.golden,
    };
    let decision = rollout::decide(RolloutInput {
        probe: None,
        ..input
    });
    let CutoverStep::HealthCheck { color, smoke } = decision.step else {
        return Ok(decision);
    };
    // The revision rolling out: the spec's, or the one a rollback brings back.
    let revision = decision
        .state
        .target
        .as_ref()
        .map_or(rendered.revision.as_str(), |(_, r)| r);
    let pods = observe::serving_addrs(&observed.pods, color, revision);
    let token = uncached::gate_token(p, ctx).await?;
    let request = CheckRequest {
        pods: &pods,
        health: &spec.rollout.health_check,
        smoke: smoke.then_some((spec.rollout.smoke_queries.as_slice(), spec.retrieval.top_k)),
        bearer: token.as_deref(),
    };
    let outcome = ctx.health.check(request).await;
    info!(?color, ?outcome, "health check");
    Ok(rollout::decide(RolloutInput {
        probe: Some(outcome),
        ..input
    }))
}

/// One Event when the CRDs `spec.monitoring` needs are found missing.
async fn report_missing_crds(p: &RagPipeline, ctx: &Context, status: &RagPipelineStatus) {
    let before = p
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    if let Some(message) = monitoring_status::newly_missing(before, &status.conditions) {
        let note = Note {
            warning: true,
            reason: monitoring_status::CRDS_NOT_INSTALLED,
            action: "Monitoring",
            message,
        };
        ctx.shared.publish(&p.object_ref(&()), note).await;
    }
}

/// Writes to a pipeline that is steady and whose spec has not changed can only undo someone
/// else's edit: each is told as an Event.
async fn report_drift(p: &RagPipeline, ctx: &Context, decision: &Decision, changes: &[Change]) {
    let spec_unchanged =
        p.status.as_ref().and_then(|s| s.observed_generation) == p.meta().generation;
    if decision.step != CutoverStep::Steady || !spec_unchanged {
        return;
    }
    for c in changes {
        let message = match &c.applied {
            Applied::Created => format!("recreated {} {}", c.kind, c.name),
            Applied::Updated { field } => format!("restored {} {} ({field})", c.kind, c.name),
            Applied::Deleted => format!(
                "deleted {} {}, which the pipeline no longer needs",
                c.kind, c.name
            ),
            Applied::Unchanged => continue,
        };
        let note = Note {
            warning: true,
            reason: "DriftCorrected",
            action: "Restore",
            message,
        };
        ctx.shared.publish(&p.object_ref(&()), note).await;
    }
}

async fn record(p: &RagPipeline, ctx: &Context, decision: &Decision) {
    for event in &decision.events {
        // A failed, aborted or rolled-back rollout needs someone's attention: WARN, like its Event.
        if event.warning {
            warn!(reason = event.reason, note = %event.note, "rollout");
        } else {
            info!(reason = event.reason, note = %event.note, "rollout");
        }
        let note = Note {
            warning: event.warning,
            reason: event.reason,
            action: event.reason,
            message: event.note.clone(),
        };
        ctx.shared.publish(&p.object_ref(&()), note).await;
    }
    let metrics = &ctx.shared.metrics;
    if let Some(outcome) = decision.outcome() {
        metrics.rollouts.with_label_values(&[outcome]).inc();
    }
    let rollout = p.status.as_ref().and_then(|s| s.rollout.as_ref());
    if let (CutoverStep::Promoted { .. }, Some(r)) = (&decision.step, rollout) {
        let now = Timestamp::now();
        let since = |t: Timestamp| now.duration_since(t).as_secs_f64().max(0.0);
        metrics.rollout_duration.observe(since(r.started_at.0));
        if let Some(probe) = &r.last_probe_at {
            metrics.cutover_duration.observe(since(probe.0));
        }
    }
}
