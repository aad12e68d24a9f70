//! The writes a reconciliation of a RagIndex makes besides its status: starting or restarting
//! an ingest Job, taking a snapshot, and the Event that tells what a step did.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::{Resource, ResourceExt};

use super::decide::Step;
use super::schedule::Schedule;
use super::{Context, backup, cleanup, finalizer, job};
use crate::api::{RagIndex, RagIndexStatus};
use crate::apply;
use crate::client::Call;
use crate::context::Note;
use crate::error::Error;

/// How soon a snapshot that failed is tried again.
const BACKUP_RETRY: Duration = Duration::from_secs(60);

/// Starts or restarts the wanted revision's Job (`plan`).
pub async fn act(ctx: &Context, step: &Step, plan: &job::Plan<'_>) -> Result<(), Error> {
    let ns = plan.index.namespace().unwrap_or_default();
    let name = job::name(&plan.index.name_any(), plan.revision);
    match step {
        Step::Start => {
            let config_maps: Api<ConfigMap> = Api::namespaced(client(ctx), &ns);
            let config_map = job::config_map(plan);
            let request = apply::apply(&config_maps, &config_map, None);
            let call = Call {
                verb: "apply",
                kind: "ConfigMap",
                name: &name,
            };
            let step = |e| apply_error("ConfigMap", &name, e);
            ctx.shared.call(call, request, step).await?;
            let jobs: Api<Job> = Api::namespaced(client(ctx), &ns);
            let job = job::job(plan);
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
        Step::Adopt { report, .. } => {
            if let Some(collection) = &report.collection {
                tag(plan.index, ctx, collection).await;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Tags a collection the index adopts with its uid on the server, so a drop can tell it from
/// another's whatever the records say. A failure is told, never fatal: the record still holds.
async fn tag(index: &RagIndex, ctx: &Context, collection: &str) {
    let uid = index.uid().unwrap_or_default();
    let tagged = match finalizer::admin(index, ctx).await {
        Ok(admin) => admin.tag(collection, &uid).await,
        Err(e) => Err(e.to_string()),
    };
    if let Err(message) = tagged {
        let note = Note {
            warning: true,
            reason: "TagFailed",
            action: "TagCollection",
            message: format!("cannot tag {collection} as this index's: {message}"),
        };
        ctx.shared.publish(&index.object_ref(&()), note).await;
    }
}

fn apply_error(kind: &'static str, name: &str, source: kube::Error) -> Error {
    Error::Apply {
        kind,
        name: name.into(),
        source,
    }
}

/// Takes a snapshot when `spec.backup` says one is due; on failure, tells it and asks to be
/// looked at again soon.
pub async fn back_up(
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
        Err(e) => Err(e.to_string()),
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

/// One Event per step that changed the status.
pub async fn announce(
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
        Step::UpToDate | Step::Indexing | Step::Waiting { .. } => return,
    };
    let note = Note {
        warning,
        reason,
        action: reason,
        message,
    };
    ctx.shared.publish(&index.object_ref(&()), note).await;
}

fn client(ctx: &Context) -> kube::Client {
    ctx.shared.client.clone()
}
