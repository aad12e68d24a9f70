//! The RagPipeline controller, as a pipeline: dereference → validate → build → observe → decide
//! → apply → status. Only the ends touch the API server; everything in between is pure.

pub mod apply;
pub mod build;
pub mod health;
pub mod observe;
pub mod rollout;
pub mod status;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, field, info, info_span, warn};

use self::health::CheckRequest;
use self::observe::Snapshot;
use self::rollout::{CutoverStep, Decision, RolloutInput, Scaling};
use crate::api::{RagIndex, RagPipeline, RagPipelineStatus};
use crate::context::Context;
use crate::error::Error;

/// Annotation that promotes a paused rollout.
pub const PROMOTE_ANNOTATION: &str = "ragops.io/promote";
/// Annotation that retries a failed revision.
pub const RETRY_ANNOTATION: &str = "ragops.io/retry";
/// How long a pipeline waiting for the user (a missing RagIndex or Secret) waits between looks.
const USER_ERROR_RECHECK: Duration = Duration::from_secs(20);
/// Resync of a steady pipeline, in case a watch event was missed.
const RESYNC: Duration = Duration::from_secs(300);
const KIND: &str = "RagPipeline";

/// Runs the controller until a shutdown signal; `namespace` limits it to one namespace.
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let api = |c: Client| -> Api<RagPipeline> {
        namespace.map_or_else(|| Api::all(c.clone()), |ns| Api::namespaced(c.clone(), ns))
    };
    let client = ctx.client.clone();
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=ragops");
    let controller = Controller::new(api(client.clone()), watcher::Config::default());
    let pipelines = controller.store();
    let indexes: Api<RagIndex> = namespace.map_or_else(
        || Api::all(client.clone()),
        |ns| Api::namespaced(client.clone(), ns),
    );
    macro_rules! owned_api {
        ($k:ty) => {
            namespace.map_or_else(
                || Api::<$k>::all(client.clone()),
                |ns| Api::<$k>::namespaced(client.clone(), ns),
            )
        };
    }
    controller
        .owns(owned_api!(Deployment), owned.clone())
        .owns(owned_api!(Service), owned.clone())
        .owns(owned_api!(ConfigMap), owned)
        // A RagIndex appearing or changing re-renders the pipelines that use it.
        .watches(indexes, watcher::Config::default(), move |index| {
            let ns = index.namespace();
            let name = index.name_any();
            pipelines
                .state()
                .into_iter()
                .filter(move |p| p.namespace() == ns && p.spec.index_ref.name == name)
                .map(|p| ObjectRef::from_obj(&*p))
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(error = %e, "reconcile loop");
            }
        })
        .await;
}

fn key(p: &RagPipeline) -> String {
    format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any())
}

fn error_policy(p: Arc<RagPipeline>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .failures
        .with_label_values(&[KIND, error.category()])
        .inc();
    let delay = ctx.backoff(&key(&p));
    warn!(pipeline = %key(&p), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn reconcile(p: Arc<RagPipeline>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = info_span!("reconcile", namespace = field::display(p.namespace().unwrap_or_default()), name = %p.name_any());
    let timer = ctx
        .metrics
        .duration
        .with_label_values(&[KIND])
        .start_timer();
    let result = reconcile_inner(&p, &ctx).instrument(span).await;
    timer.observe_duration();
    let outcome = if result.is_ok() { "ok" } else { "error" };
    ctx.metrics
        .reconciliations
        .with_label_values(&[KIND, outcome])
        .inc();
    if result.is_ok() {
        ctx.reset_backoff(&key(&p));
    }
    result
}

async fn reconcile_inner(p: &RagPipeline, ctx: &Context) -> Result<Action, Error> {
    if p.meta().deletion_timestamp.is_some() {
        // Children carry owner references; the garbage collector removes them.
        return Ok(Action::await_change());
    }
    let now = Timestamp::now();
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let pipelines: Api<RagPipeline> = Api::namespaced(ctx.client.clone(), &ns);
    let generation = p.meta().generation;

    let valid = match validate::dereference(&ctx.client, p).await? {
        Ok(valid) => valid,
        Err(user) => {
            let status = status::after_user_error(p.status.as_ref(), &user, generation, now);
            if write_status(&pipelines, p, &status).await? {
                publish(ctx, p, true, user.reason(), user.reason(), user.to_string()).await?;
            }
            return Ok(Action::requeue(USER_ERROR_RECHECK));
        }
    };

    let snapshot = Snapshot::read(&ctx.client, &ns, &name).await?;
    let config_yaml = build::runtime_config(&valid).to_yaml();
    let config_key = build::config_key(&config_yaml);
    let template = build::pod_template(&valid, &config_key);
    let revision = build::revision(&template);

    let state = status::rollout_state(p.status.as_ref());
    let observed = snapshot.observed();
    let annotations = p.annotations();
    let spec = &p.spec;
    let input = RolloutInput {
        revision: &revision,
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
        promote_requested: annotations.contains_key(PROMOTE_ANNOTATION),
        retry_requested: annotations.contains_key(RETRY_ANNOTATION),
        state: &state,
        observed: &observed,
        probe: None,
        now,
    };
    let mut decision = rollout::decide(RolloutInput {
        probe: None,
        ..input
    });
    if let CutoverStep::HealthCheck { color, smoke } = decision.step {
        let pods = observe::serving_addrs(&snapshot.pods, color, &revision);
        let request = CheckRequest {
            pods: &pods,
            health: &spec.rollout.health_check,
            smoke: smoke.then_some((spec.rollout.smoke_queries.as_slice(), spec.retrieval.top_k)),
        };
        let outcome = ctx.health.check(request).await;
        info!(?color, ?outcome, "health check");
        decision = rollout::decide(RolloutInput {
            probe: Some(outcome),
            ..input
        });
    }

    apply::children(
        &ctx.client,
        &valid,
        &snapshot,
        &decision,
        (&config_key, &config_yaml),
        &template,
        &revision,
    )
    .await?;

    let serving = status::Serving {
        ready_replicas: decision
            .active_service
            .and_then(|c| observed.get(c))
            .map_or(0, |o| o.ready_endpoints),
        endpoint: format!("http://{name}.{ns}.svc:{}", build::SERVICE_PORT),
    };
    let status = status::after_decision(p.status.as_ref(), &decision, &serving, generation, now);
    write_status(&pipelines, p, &status).await?;
    record(ctx, p, &decision, &revision).await?;
    consume_annotations(&pipelines, p, &decision).await?;
    Ok(Action::requeue(decision.requeue_after.unwrap_or(RESYNC)))
}

/// Writes the status when it changed; returns whether it wrote.
async fn write_status(
    api: &Api<RagPipeline>,
    p: &RagPipeline,
    status: &RagPipelineStatus,
) -> Result<bool, Error> {
    if p.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let patch =
        json!({ "apiVersion": RagPipeline::api_version(&()), "kind": KIND, "status": status });
    let params = PatchParams::apply(apply::FIELD_MANAGER).force();
    api.patch_status(&p.name_any(), &params, &Patch::Apply(&patch))
        .await?;
    Ok(true)
}

async fn record(
    ctx: &Context,
    p: &RagPipeline,
    decision: &Decision,
    revision: &str,
) -> Result<(), Error> {
    for event in &decision.events {
        info!(reason = event.reason, note = %event.note, "rollout");
        // The recorder folds events with the same action and reason into one series that keeps the
        // first note; naming the revision keeps each rollout's steps apart.
        let action = format!("{}/{revision}", event.reason);
        publish(
            ctx,
            p,
            event.warning,
            event.reason,
            &action,
            event.note.clone(),
        )
        .await?;
    }
    match decision.step {
        CutoverStep::Promoted { .. } => ctx.metrics.rollouts.with_label_values(&["promoted"]).inc(),
        CutoverStep::Failed
            if decision
                .events
                .iter()
                .any(|e| e.reason == rollout::reason::ROLLOUT_FAILED) =>
        {
            ctx.metrics.rollouts.with_label_values(&["failed"]).inc();
        }
        _ => {}
    }
    Ok(())
}

async fn publish(
    ctx: &Context,
    p: &RagPipeline,
    warning: bool,
    reason: &str,
    action: &str,
    note: String,
) -> Result<(), Error> {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    ctx.recorder
        .publish(&event, &p.object_ref(&()))
        .await
        .map_err(Error::Event)
}

async fn consume_annotations(
    api: &Api<RagPipeline>,
    p: &RagPipeline,
    decision: &Decision,
) -> Result<(), Error> {
    let annotations = p.annotations();
    let mut remove = serde_json::Map::new();
    for (wanted, key) in [
        (decision.consume_promote, PROMOTE_ANNOTATION),
        (decision.consume_retry, RETRY_ANNOTATION),
    ] {
        if wanted && annotations.contains_key(key) {
            remove.insert(key.into(), serde_json::Value::Null);
        }
    }
    if !remove.is_empty() {
        let patch = json!({ "metadata": { "annotations": remove } });
        api.patch(
            &p.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    Ok(())
}
