//! One reconciliation of a RagIndex: resolve the sources → compute the revision → observe its
//! Job → decide → act (start, restart, adopt, collect garbage) → status. What decides is pure
//! (revision, decide, status); this file only reads, writes and reports.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::cache::Stores;
use super::decide::{self, Step};
use super::revision::{self, SourceVersion};
use super::schedule::Schedule;
use super::status::{self, At};
use super::{Context, KIND, backup, cleanup, finalizer, job, observe};
use crate::api::{RagIndex, RagIndexStatus};
use crate::apply::{self, FIELD_MANAGER};
use crate::client::Call;
use crate::context::Note;
use crate::error::Error;
use crate::watch::trim;

/// How often an index waiting for the user looks again, on top of watch events.
const USER_ERROR_RECHECK: Duration = Duration::from_secs(60);
/// How soon a snapshot that failed is tried again.
const BACKUP_RETRY: Duration = Duration::from_secs(60);

/// Something only the operator can see is wrong with the spec.
struct UserError {
    reason: &'static str,
    message: String,
}

pub async fn reconcile(index: &RagIndex, ctx: &Context) -> Result<Action, Error> {
    if let Some(action) = finalizer::handle(index, ctx).await? {
        return Ok(action);
    }
    ctx.stores.ready().await;
    let now = Timestamp::now();
    let ns = index.namespace().unwrap_or_default();
    let resolved = match resolve(index, &ctx.stores, &ns) {
        Ok(resolved) => resolved,
        Err(user) => return user_error(index, ctx, &user, now).await,
    };
    let tick = resolved.schedule.as_ref().and_then(|s| s.latest(now));
    let revision = revision::revision(index, &resolved.sources, tick);
    let job_name = job::name(&index.name_any(), &revision);
    let at = At {
        revision: &revision,
        indexed_with: Some(crate::api::IndexedWith::of(&index.spec)),
        job: &job_name,
        generation: index.meta().generation,
        now,
    };
    if index.spec.vector_store.qdrant.is_none() {
        let digest = serde_json::to_vec(&resolved.sources).unwrap_or_default();
        let digest = crate::digest::short_hex(&digest, 16);
        let next = status::embedded(index.status.as_ref(), &digest, &at);
        write_status(index, ctx, &next).await?;
        return Ok(Action::requeue(ctx.settings.resync));
    }
    let current = index.status.as_ref();
    let state = match crate::watch::get(&ctx.stores.jobs, &ns, &job_name) {
        Some(j) if !done(current, &revision) => {
            let pods = Api::<Pod>::namespaced(client(ctx), &ns);
            let call = Call {
                verb: "list the pods of",
                kind: "Job",
                name: &job_name,
            };
            let request = observe::job_state(&pods, &j);
            Some(ctx.shared.call(call, request, |e| e).await?)
        }
        _ => None,
    };
    let step = decide::decide(current, &revision, state.as_ref(), now);
    act(index, ctx, &step, &resolved.sources, &revision).await?;
    let mut next = status::after_step(current, &step, &at);
    if matches!(step, Step::Adopt { .. }) {
        next.last_schedule_time = tick.map(Time);
        cleanup::collect_garbage(index, ctx, &mut next).await;
    }
    let backup_failed = back_up(index, ctx, resolved.backup.as_ref(), &mut next, now).await;
    cleanup::sweep_jobs(index, ctx, &job_name).await?;
    if write_status(index, ctx, &next).await? {
        announce(index, ctx, &step, &revision, &next).await;
    }
    let uid = index.uid().unwrap_or_default();
    let schedules = [resolved.schedule.as_ref(), resolved.backup.as_ref()];
    let after = requeue_after(&step, &schedules, now, ctx, &uid);
    Ok(Action::requeue(
        backup_failed.map_or(after, |retry| retry.min(after)),
    ))
}

/// Takes a snapshot when `spec.backup` says one is due; on failure, tells it and asks to be
/// looked at again soon.
async fn back_up(
    index: &RagIndex,
    ctx: &Context,
    schedule: Option<&Schedule>,
    next: &mut RagIndexStatus,
    now: Timestamp,
) -> Option<Duration> {
    let (Some(spec), Some(schedule)) = (&index.spec.backup, schedule) else {
        return None;
    };
    let last = next.last_backup_time.as_ref().map(|t| t.0);
    if next.active_collection.is_none() || !backup::due(schedule, last, now) {
        return None;
    }
    let taken = match finalizer::admin(index, ctx).await {
        Ok(admin) => backup::take(&admin, spec, next, now).await,
        Err(e) => Err(e),
    };
    let (warning, reason, message, retry) = match taken {
        Ok(name) => (false, "BackedUp", format!("snapshot {name} taken"), None),
        Err(e) => (true, "BackupFailed", e, Some(BACKUP_RETRY)),
    };
    let note = Note {
        warning,
        reason,
        action: "Snapshot",
        message,
    };
    ctx.shared.publish(&index.object_ref(&()), note).await;
    retry
}

fn done(status: Option<&RagIndexStatus>, revision: &str) -> bool {
    status.and_then(|s| s.revision.as_deref()) == Some(revision)
}

fn client(ctx: &Context) -> kube::Client {
    ctx.shared.client.clone()
}

/// What the spec names, looked up and parsed.
struct Resolved {
    sources: Vec<SourceVersion>,
    schedule: Option<Schedule>,
    backup: Option<Schedule>,
}

/// The sources' versions and the parsed schedules, or what the user must fix.
fn resolve(index: &RagIndex, stores: &Stores, ns: &str) -> Result<Resolved, UserError> {
    let digest = |name: &str| {
        crate::watch::get(&stores.config_maps, ns, name)
            .map(|cm| trim::content_digest(&cm).unwrap_or_default().to_string())
    };
    let mut sources = Vec::new();
    for (i, s) in index.spec.sources.iter().enumerate() {
        let version = SourceVersion::of(s, digest).ok_or_else(|| UserError {
            reason: "SourceNotFound",
            message: format!(
                "spec.sources[{i}].configMap: ConfigMap {:?} not found in this namespace",
                s.config_map
                    .as_ref()
                    .map(|c| c.name.as_str())
                    .unwrap_or_default()
            ),
        })?;
        sources.push(version);
    }
    let parse = |field: &str, expression: Option<&String>| {
        expression
            .map(|e| Schedule::parse(field, e))
            .transpose()
            .map_err(|message| UserError {
                reason: "InvalidSchedule",
                message,
            })
    };
    let backup = index.spec.backup.as_ref().map(|b| &b.schedule);
    Ok(Resolved {
        sources,
        schedule: parse("spec.schedule", index.spec.schedule.as_ref())?,
        backup: parse("spec.backup.schedule", backup)?,
    })
}

async fn user_error(
    index: &RagIndex,
    ctx: &Context,
    user: &UserError,
    now: Timestamp,
) -> Result<Action, Error> {
    let at = At {
        revision: "",
        indexed_with: None,
        job: "",
        generation: index.meta().generation,
        now,
    };
    let next = status::after_user_error(index.status.as_ref(), user.reason, &user.message, &at);
    if write_status(index, ctx, &next).await? {
        let note = Note {
            warning: true,
            reason: user.reason,
            action: user.reason,
            message: user.message.clone(),
        };
        ctx.shared.publish(&index.object_ref(&()), note).await;
    }
    Ok(Action::requeue(USER_ERROR_RECHECK))
}

/// Starts or restarts the wanted revision's Job.
async fn act(
    index: &RagIndex,
    ctx: &Context,
    step: &Step,
    sources: &[SourceVersion],
    revision: &str,
) -> Result<(), Error> {
    let ns = index.namespace().unwrap_or_default();
    let name = job::name(&index.name_any(), revision);
    match step {
        Step::Start => {
            let image = ctx.settings.runtime_image.as_str();
            let plan = job::Plan {
                index,
                revision,
                sources,
                unless_digest: decide::unless_digest(index),
                default_image: image,
                cluster_cidrs: &ctx.settings.cluster_cidrs,
            };
            let config_maps: Api<ConfigMap> = Api::namespaced(client(ctx), &ns);
            let config_map = job::config_map(&plan);
            let request = apply::apply(&config_maps, &config_map, None);
            let call = Call {
                verb: "apply",
                kind: "ConfigMap",
                name: &name,
            };
            let step = |e| apply_error("ConfigMap", &name, e);
            ctx.shared.call(call, request, step).await?;
            let jobs: Api<Job> = Api::namespaced(client(ctx), &ns);
            let job = job::job(&plan);
            let call = Call {
                kind: "Job",
                ..call
            };
            let step = |e| apply_error("Job", &name, e);
            ctx.shared
                .call(call, apply::apply(&jobs, &job, None), step)
                .await?;
        }
        Step::Restart => cleanup::delete_job(ctx, &ns, &name).await?,
        _ => {}
    }
    Ok(())
}

fn apply_error(kind: &'static str, name: &str, source: kube::Error) -> Error {
    Error::Apply {
        kind,
        name: name.into(),
        source,
    }
}

/// When to look again: at the retry of a failed ingest, at the next schedule tick, or at the
/// jittered resync, whichever comes first.
fn requeue_after(
    step: &Step,
    schedules: &[Option<&Schedule>],
    now: Timestamp,
    ctx: &Context,
    uid: &str,
) -> Duration {
    let resync = crate::pipeline::resync_after(ctx.settings.resync, uid);
    let until_tick = schedules
        .iter()
        .flatten()
        .filter_map(|s| s.next(now))
        .map(|t| t.duration_since(now).unsigned_abs() + Duration::from_secs(1))
        .min();
    let base = match step {
        Step::Failed { retry_in, .. } => *retry_in,
        _ => resync,
    };
    until_tick.map_or(base, |t| t.min(base))
}

/// Writes the status when it changed; whether it did.
pub(super) async fn write_status(
    index: &RagIndex,
    ctx: &Context,
    status: &RagIndexStatus,
) -> Result<bool, Error> {
    if index.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let patch = json!({ "apiVersion": RagIndex::api_version(&()), "kind": KIND, "status": status });
    let api: Api<RagIndex> = Api::namespaced(client(ctx), &index.namespace().unwrap_or_default());
    let (name, params) = (index.name_any(), PatchParams::apply(FIELD_MANAGER).force());
    let call = Call {
        verb: "patch status of",
        kind: KIND,
        name: &name,
    };
    let patch = Patch::Apply(&patch);
    let request = api.patch_status(&name, &params, &patch);
    ctx.shared.call(call, request, Error::Status).await?;
    Ok(true)
}

/// One Event per step that changed the status.
async fn announce(
    index: &RagIndex,
    ctx: &Context,
    step: &Step,
    revision: &str,
    next: &RagIndexStatus,
) {
    let collection = next.active_collection.clone().unwrap_or_default();
    let (warning, reason, message) = match step {
        Step::Start => (
            false,
            "IngestStarted",
            format!("started the ingest of revision {revision}"),
        ),
        Step::Adopt { report, .. } if report.unchanged => (
            false,
            "Unchanged",
            format!("the sources are unchanged; {collection} keeps serving"),
        ),
        Step::Adopt { report, .. } => (
            false,
            "Indexed",
            format!(
                "{collection} holds {} chunks of {} documents",
                report.chunks, report.documents
            ),
        ),
        Step::Failed { message, .. } => (true, "IngestFailed", message.clone()),
        Step::Restart => (
            false,
            "IngestRetried",
            "restarting the failed ingest".into(),
        ),
        Step::UpToDate | Step::Indexing => return,
    };
    let note = Note {
        warning,
        reason,
        action: reason,
        message,
    };
    ctx.shared.publish(&index.object_ref(&()), note).await;
}
