//! One reconciliation of a RagIndex: resolve the sources → compute the revision → observe its
//! Job → decide → act (start, restart, adopt, collect garbage) → status. What decides is pure
//! (revision, decide, status); this file only reads, writes and reports.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::cache::Stores;
use super::decide::{self, Step};
use super::ownership::{self, Claim};
use super::revision::{self, SourceVersion};
use super::schedule::Schedule;
use super::status::{self, At};
use super::{
    Context, KIND, SPEC_REVISION_ANNOTATION, act, cleanup, config, finalizer, job, observe,
};
use crate::api::{RagIndex, RagIndexStatus};
use crate::apply::FIELD_MANAGER;
use crate::client::Call;
use crate::context::Note;
use crate::error::Error;
use crate::watch::trim;

/// How often an index waiting for the user looks again, on top of watch events.
const USER_ERROR_RECHECK: Duration = Duration::from_secs(60);

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
    let resolved = match resolve(index, ctx, &ns) {
        Ok(resolved) => resolved,
        Err(user) => return user_error(index, ctx, &user, now).await,
    };
    let tick = resolved.schedule.as_ref().and_then(|s| s.latest(now));
    let revision = revision::revision(index, &resolved.sources, tick);
    let spec_revision = revision::revision(index, &resolved.sources, None);
    let job_name = job::name(&index.name_any(), &revision);
    let collection = revision::collection_name(&config::alias(index), &revision);
    let at = At {
        revision: &revision,
        indexed_with: Some(crate::api::IndexedWith::of(&index.spec)),
        job: &job_name,
        collection: &collection,
        generation: index.meta().generation,
        now,
    };
    if index.spec.vector_store.qdrant.is_none() {
        let digest = serde_json::to_vec(&resolved.sources).unwrap_or_default();
        let digest = crate::digest::short_hex(&digest, 16);
        let documents = embedded_documents(index, &ctx.stores, &ns);
        let next = status::embedded(index.status.as_ref(), &digest, documents, &at);
        write_status(index, ctx, &next).await?;
        return Ok(Action::requeue(ctx.settings.resync));
    }
    let current = index.status.as_ref();
    let state = job_state(ctx, &ns, &job_name, !done(current, &revision)).await?;
    let earlier = earlier_tick(index, &ctx.stores, &job_name, &spec_revision);
    let step = decide::decide(current, &revision, state.as_ref(), earlier.as_deref(), now);
    let mut next = status::after_step(current, &step, &at);
    let mut written = index.status.clone();
    if matches!(step, Step::Start) {
        // The intent first: the collection the Job will create is recorded as the index's own
        // before the Job exists.
        write(index, ctx, &mut written, &next).await?;
    }
    let plan = job::Plan {
        index,
        revision: &revision,
        spec_revision: &spec_revision,
        sources: &resolved.sources,
        unless_digest: decide::unless_digest(index),
        default_image: &ctx.settings.runtime_image,
        cluster_cidrs: &ctx.settings.cluster_cidrs,
    };
    act::act(ctx, &step, &plan).await?;
    if matches!(step, Step::Adopt { .. }) {
        next.last_schedule_time = tick.map(Time);
    }
    let in_flight = cleanup::in_flight(index, &ctx.stores, &collection);
    cleanup::collect_garbage(index, ctx, &mut next, &in_flight).await;
    let backup = resolved.backup.as_ref();
    let backup_failed = act::back_up(index, ctx, backup, &mut next, now).await;
    let keep: Vec<&str> = [Some(job_name.as_str()), earlier.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    cleanup::sweep_jobs(index, ctx, &keep).await?;
    let changed = write(index, ctx, &mut written, &next).await?;
    if changed || matches!(step, Step::Start) {
        act::announce(index, ctx, &step, &revision, &next).await;
    }
    let uid = index.uid().unwrap_or_default();
    let schedules = [resolved.schedule.as_ref(), backup];
    let after = requeue_after(&step, &schedules, now, ctx, &uid);
    Ok(Action::requeue(
        backup_failed.map_or(after, |retry| retry.min(after)),
    ))
}

/// The state of the wanted revision's Job, when it exists and its result still matters.
async fn job_state(
    ctx: &Context,
    ns: &str,
    name: &str,
    matters: bool,
) -> Result<Option<decide::JobState>, Error> {
    let Some(j) = crate::watch::get(&ctx.stores.jobs, ns, name).filter(|_| matters) else {
        return Ok(None);
    };
    let pods = Api::<Pod>::namespaced(client(ctx), ns);
    let call = Call {
        verb: "list the pods of",
        kind: "Job",
        name,
    };
    let request = observe::job_state(&pods, &j);
    Ok(Some(ctx.shared.call(call, request, |e| e).await?))
}

/// A Job of this index for the same spec at an earlier schedule tick that still runs.
fn earlier_tick(index: &RagIndex, stores: &Stores, wanted: &str, spec: &str) -> Option<String> {
    cleanup::jobs_of(index, stores)
        .into_iter()
        .filter(|j| j.name_any() != wanted && j.metadata.deletion_timestamp.is_none())
        .filter(|j| {
            j.annotations()
                .get(SPEC_REVISION_ANNOTATION)
                .map(String::as_str)
                == Some(spec)
        })
        .find(|j| observe::finished(j).is_none())
        .map(|j| j.name_any())
}

/// The documents of an embedded index: every key of its source ConfigMaps.
fn embedded_documents(index: &RagIndex, stores: &Stores, ns: &str) -> i64 {
    index
        .spec
        .sources
        .iter()
        .filter_map(|s| s.config_map.as_ref())
        .filter_map(|c| crate::watch::get(&stores.config_maps, ns, &c.name))
        .map(|cm| trim::content_keys(&cm))
        .sum()
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
fn resolve(index: &RagIndex, ctx: &Context, ns: &str) -> Result<Resolved, UserError> {
    let stores = &ctx.stores;
    check_alias(index, stores)?;
    let image = index.spec.ingest.image.as_deref();
    if let Some(image) = image.filter(|i| !ctx.settings.ingest_image_allow.allows(i)) {
        return Err(UserError {
            reason: "IngestImageNotAllowed",
            message: format!(
                "spec.ingest.image: {image:?} is not allowed by the operator's --ingest-image-allow ({})",
                ctx.settings.ingest_image_allow
            ),
        });
    }
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

/// Refuses the alias when an older index on the same server holds it (`AliasConflict`).
fn check_alias(index: &RagIndex, stores: &Stores) -> Result<(), UserError> {
    let Some(me) = Claim::of(index) else {
        return Ok(());
    };
    let all: Vec<Claim> = stores
        .indexes
        .state()
        .iter()
        .filter_map(|i| Claim::of(i))
        .collect();
    match ownership::alias_holder(&me, &all) {
        None => Ok(()),
        Some(holder) => Err(UserError {
            reason: "AliasConflict",
            message: ownership::conflict_message(&me, &holder),
        }),
    }
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
        collection: "",
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
    write(index, ctx, &mut index.status.clone(), status).await
}

/// Writes `status` unless it is what was `written` last (then updated); whether it wrote.
async fn write(
    index: &RagIndex,
    ctx: &Context,
    written: &mut Option<RagIndexStatus>,
    status: &RagIndexStatus,
) -> Result<bool, Error> {
    if written.as_ref() == Some(status) {
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
    *written = Some(status.clone());
    Ok(true)
}
