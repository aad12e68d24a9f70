//! `spec.backup`: Qdrant snapshots of the collection that serves, on a cron schedule, keeping the
//! newest `retain` across the index's collections. When a snapshot is due is a pure function of
//! the schedule, the clock and the last snapshot's time; taking one is two Qdrant calls.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tracing::info;

use super::qdrant::{Admin, Removal, Snapshot};
use super::schedule::Schedule;
use crate::api::{BackupSpec, RagIndexStatus};

/// Whether a snapshot is due: a tick passed since the last one (or there never was one).
pub fn due(schedule: &Schedule, last: Option<Timestamp>, now: Timestamp) -> bool {
    match (schedule.latest(now), last) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(tick), Some(last)) => last < tick,
    }
}

/// The snapshots beyond the newest `retain`.
pub fn expired(mut snapshots: Vec<Snapshot>, retain: usize) -> Vec<Snapshot> {
    snapshots.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.name.cmp(&a.name)));
    snapshots.into_iter().skip(retain).collect()
}

/// Takes the snapshot `status` says is due, records it in `status` and drops expired ones.
pub async fn take(
    admin: &Admin,
    spec: &BackupSpec,
    status: &mut RagIndexStatus,
    now: Timestamp,
) -> Result<String, String> {
    let active = status
        .active_collection
        .clone()
        .ok_or("no collection serves yet")?;
    let name = admin.snapshot(&active).await?;
    info!(collection = %active, snapshot = %name, "snapshot taken");
    status.last_backup = Some(name.clone());
    status.last_backup_time = Some(Time(now));
    let mut collections = status.collections.clone();
    if !collections.contains(&active) {
        collections.push(active);
    }
    let retain = usize::try_from(spec.retain).unwrap_or(1).max(1);
    for old in expired(admin.snapshots(&collections).await?, retain) {
        admin.remove(Removal::Snapshot(&old)).await?;
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_snapshot_is_due_once_per_tick() {
        let nightly = Schedule::parse("spec.backup.schedule", "0 2 * * *").unwrap();
        let now = at("2026-11-26T10:00:00Z");
        let cases = [
            ("never taken", None, true),
            (
                "taken before today's tick",
                Some("2026-11-25T23:00:00Z"),
                true,
            ),
            (
                "taken after today's tick",
                Some("2026-11-26T02:00:05Z"),
                false,
            ),
            ("taken at the tick", Some("2026-11-26T02:00:00Z"), false),
        ];
        for (what, last, want) in cases {
            assert_eq!(due(&nightly, last.map(at), now), want, "{what}");
        }
    }

    #[test]
    fn the_newest_snapshots_are_kept_across_collections() {
        let snap = |collection: &str, name: &str, created: &str| Snapshot {
            collection: collection.into(),
            name: name.into(),
            created: at(created),
        };
        let all = vec![
            snap("h-r1", "a", "2026-11-20T02:00:00Z"),
            snap("h-r2", "c", "2026-11-22T02:00:00Z"),
            snap("h-r1", "b", "2026-11-21T02:00:00Z"),
        ];
        let names = |v: Vec<Snapshot>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(expired(all.clone(), 2)), ["a"]);
        assert_eq!(names(expired(all.clone(), 1)), ["b", "a"]);
        assert_eq!(names(expired(all, 5)), Vec::<String>::new());
    }
}
