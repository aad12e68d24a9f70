//! One reconciliation of a RagPipeline, step by step. Each step is a short function; what decides
//! is pure and lives elsewhere (validate, desired, rollout, status).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use super::apply::{self, Change, Owner};
use super::build;
use super::desired::{Desired, Rendered};
use super::health::CheckRequest;
use super::observe::{self, Snapshot};
use super::rollout::{self, CutoverStep, Decision, Requests, RolloutInput, Scaling, annotation};
use super::validate::{self, UserError};
use super::{Context, KIND, monitoring_status, resync_after, status, uncached};
use crate::api::{RagPipeline, RagPipelineStatus};
use crate::apply::{Applied, FIELD_MANAGER};
use crate::client::Call;
use crate::context::Note;
use crate::error::Error;
use crate::monitoring::discovery;

/// How long a pipeline waiting for the user (a missing RagIndex, source or Secret) waits between
/// looks, on top of the watch events that normally wake it.
const USER_ERROR_RECHECK: Duration = Duration::from_secs(60);
/// How soon to look again when the caches lag behind what was just read.
const STALE_RECHECK: Duration = Duration::from_secs(1);
/// How long a reconciliation waits for the pipeline cache to show what it wrote to the pipeline.
const OWN_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn reconcile(p: &RagPipeline, ctx: &Context) -> Result<Action, Error> {
    if p.meta().deletion_timestamp.is_some() {
        // Children carry owner references; the garbage collector removes them.
        return Ok(Action::await_change());
    }
    ctx.stores.ready().await;
    let now = Timestamp::now();
    let v = match validate::dereference(&ctx.stores, p) {
        Ok(v) => v,
        Err(user) => return user_error(p, ctx, &user, now).await,
    };
    let ns = v.namespace();
    let name = v.name();
    let rendered = Rendered::new(&v);
    let observed = Snapshot::from_stores(&ctx.stores, &ns, &name);
    let decision = decide(p, ctx, &rendered, &observed, now).await?;
    let Some(sources) = uncached::sources(ctx, &v, &observed).await? else {
        return Ok(Action::requeue(STALE_RECHECK));
    };
    let monitoring = &ctx.stores.monitoring;
    if monitoring_status::is_requested(p.spec.monitoring.as_ref()) {
        monitoring.want();
    }
    let crds = monitoring.crds();
    let served = crds == discovery::Crds::Present;
    let desired = Desired::build(&v, &rendered, &decision, &observed, sources, served);
    let uid = p.uid().unwrap_or_default();
    let owner = Owner {
        namespace: &ns,
        name: &name,
        uid: &uid,
    };
    let changes = apply::apply(&ctx.shared, &owner, desired, &observed, &ctx.stores).await?;
    report_drift(p, ctx, &decision, &changes).await;

    let serving = status::Serving {
        ready_replicas: decision
            .active_service
            .and_then(|c| observed.observed().get(c).map(|o| o.ready_endpoints))
            .unwrap_or(0),
        endpoint: format!("http://{name}.{ns}.svc:{}", build::SERVICE_PORT),
    };
    let generation = p.meta().generation;
    let mut status =
        status::after_decision(p.status.as_ref(), &decision, &serving, generation, now);
    let condition =
        monitoring_status::condition(p.spec.monitoring.as_ref(), crds, monitoring.recheck);
    status.conditions = monitoring_status::merge(&status.conditions, condition, generation, now);
    let written = write_status(p, ctx, &status).await?;
    report_missing_crds(p, ctx, &status).await;
    record(p, ctx, &decision).await;
    let consumed = consume_annotations(p, ctx, &decision).await?;
    if let Some(latest) = consumed.or(written) {
        await_own_writes(ctx, &latest, &decision.consumed()).await;
    }
    let resync = resync_after(ctx.settings.resync, &uid);
    Ok(Action::requeue(decision.requeue_after.unwrap_or(resync)))
}

/// What only the operator can see is wrong: whatever runs keeps running, the status says why.
async fn user_error(
    p: &RagPipeline,
    ctx: &Context,
    user: &UserError,
    now: Timestamp,
) -> Result<Action, Error> {
    let status = status::after_user_error(p.status.as_ref(), user, p.meta().generation, now);
    if write_status(p, ctx, &status).await?.is_some() {
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

/// The cutover decision, with the health gate run when the decision asks for it.
async fn decide(
    p: &RagPipeline,
    ctx: &Context,
    rendered: &Rendered,
    observed: &Snapshot,
    now: Timestamp,
) -> Result<Decision, Error> {
    let spec = &p.spec;
    let state = status::rollout_state(p.status.as_ref());
    let colours = observed.observed();
    let annotations = p.annotations();
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
        requests: Requests {
            promote: annotations.contains_key(annotation::PROMOTE),
            retry: annotations.contains_key(annotation::RETRY),
            abort: annotations.contains_key(annotation::ABORT),
            rollback: annotations.contains_key(annotation::ROLLBACK),
        },
        state: &state,
        observed: &colours,
        probe: None,
        now,
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

/// Writes the status when it changed; returns the pipeline as stored when it wrote.
async fn write_status(
    p: &RagPipeline,
    ctx: &Context,
    status: &RagPipelineStatus,
) -> Result<Option<RagPipeline>, Error> {
    if p.status.as_ref() == Some(status) {
        return Ok(None);
    }
    let patch =
        json!({ "apiVersion": RagPipeline::api_version(&()), "kind": KIND, "status": status });
    let (params, name) = (PatchParams::apply(FIELD_MANAGER).force(), p.name_any());
    let api = api(p, ctx);
    let patch = Patch::Apply(&patch);
    let request = api.patch_status(&name, &params, &patch);
    let call = Call {
        verb: "patch status of",
        kind: KIND,
        name: &name,
    };
    let stored = ctx.shared.call(call, request, Error::Status).await?;
    Ok(Some(stored))
}

/// Waits until the pipeline cache holds `latest` (this reconciliation's last write to the
/// pipeline): its status, and none of the `consumed` annotations. The next reconciliation of a
/// pipeline starts only after this one returns, so it then never decides on a status this one
/// replaced, nor acts on a request this one already acted on: a rollback seen again next to the
/// rollout it started would abort that rollout. Bounded: on timeout it only logs.
async fn await_own_writes(ctx: &Context, latest: &RagPipeline, consumed: &[&str]) {
    let key = ObjectRef::from_obj(latest);
    let deadline = tokio::time::Instant::now() + OWN_WRITES_TIMEOUT;
    loop {
        let caught_up = ctx.stores.pipelines.get(&key).is_none_or(|cached| {
            cached.status == latest.status
                && consumed
                    .iter()
                    .all(|a| !cached.annotations().contains_key(*a))
        });
        if caught_up {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            warn!(timeout = ?OWN_WRITES_TIMEOUT, "the pipeline cache does not show this reconciliation's writes yet");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn api(p: &RagPipeline, ctx: &Context) -> Api<RagPipeline> {
    Api::namespaced(
        ctx.shared.client.clone(),
        &p.namespace().unwrap_or_default(),
    )
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

/// Removes the annotations of the requests acted on; returns the pipeline as stored when it did.
async fn consume_annotations(
    p: &RagPipeline,
    ctx: &Context,
    decision: &Decision,
) -> Result<Option<RagPipeline>, Error> {
    let annotations = p.annotations();
    let remove: serde_json::Map<String, serde_json::Value> = decision
        .consumed()
        .into_iter()
        .filter(|key| annotations.contains_key(*key))
        .map(|key| (key.to_string(), serde_json::Value::Null))
        .collect();
    if remove.is_empty() {
        return Ok(None);
    }
    let patch = json!({ "metadata": { "annotations": remove } });
    let (api, name) = (api(p, ctx), p.name_any());
    let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
    let request = api.patch(&name, &params, &patch);
    let call = Call {
        verb: "patch annotations of",
        kind: KIND,
        name: &name,
    };
    let stored = ctx.shared.call(call, request, Error::Annotations).await?;
    Ok(Some(stored))
}
