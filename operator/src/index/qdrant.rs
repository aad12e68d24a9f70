//! The operator's own Qdrant calls, few and rare: listing and dropping the collections an index
//! created (garbage collection after a re-index, and `deletionPolicy: Delete`). Ingest itself
//! runs in a Job with the runtime; the operator never touches points. Every drop checks the
//! leadership gate right before it goes out: a replica unsure it leads drops nothing.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use qdrant_client::Qdrant;
use qdrant_client::qdrant::{DeleteAlias, DeleteSnapshotRequestBuilder};

use super::revision::is_revision_of;
use crate::leader::Gate;

/// Longest a single Qdrant call may take: a reconciliation never hangs on an unreachable server.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Admin {
    client: Qdrant,
    leader: Gate,
}

impl Admin {
    pub fn connect(url: &str, api_key: Option<String>, leader: Gate) -> Result<Self, String> {
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .skip_compatibility_check()
            .build()
            .map_err(|e| format!("Qdrant at {url}: {e}"))?;
        Ok(Self { client, leader })
    }

    /// Refuses a drop unless this replica leads right now.
    fn may_drop(&self, what: &str) -> Result<(), String> {
        self.leader
            .ensure()
            .map_err(|e| format!("not dropping {what}: {e}"))
    }

    /// Every collection an ingest for `alias` created (`<alias>-<revision>`).
    pub async fn revisions_of(&self, alias: &str) -> Result<Vec<String>, String> {
        let listed = self.client.list_collections().await.map_err(describe)?;
        Ok(listed
            .collections
            .into_iter()
            .map(|c| c.name)
            .filter(|n| is_revision_of(alias, n))
            .collect())
    }

    /// Drops `name`; one already gone is fine.
    pub async fn drop(&self, name: &str) -> Result<(), String> {
        self.may_drop(name)?;
        match self.client.delete_collection(name).await {
            Ok(_) => Ok(()),
            Err(e)
                if e.to_string().contains("doesn't exist")
                    || e.to_string().contains("Not found") =>
            {
                Ok(())
            }
            Err(e) => Err(describe(e)),
        }
    }

    /// Removes `alias` if it exists (it is an alias only if an ingest created it).
    pub async fn drop_alias(&self, alias: &str) -> Result<(), String> {
        let aliases = self.client.list_aliases().await.map_err(describe)?;
        if !aliases.aliases.iter().any(|a| a.alias_name == alias) {
            return Ok(());
        }
        self.may_drop(alias)?;
        self.client
            .delete_alias(DeleteAlias {
                alias_name: alias.into(),
            })
            .await
            .map(drop)
            .map_err(describe)
    }
}

/// One snapshot of a collection, as Qdrant lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub collection: String,
    pub name: String,
    pub created: Timestamp,
}

impl Admin {
    /// Takes a snapshot of `collection`; its name.
    pub async fn snapshot(&self, collection: &str) -> Result<String, String> {
        let taken = self
            .client
            .create_snapshot(collection)
            .await
            .map_err(describe)?;
        taken
            .snapshot_description
            .map(|d| d.name)
            .ok_or_else(|| format!("Qdrant took a snapshot of {collection} but did not name it"))
    }

    /// The snapshots of every collection in `collections`.
    pub async fn snapshots(&self, collections: &[String]) -> Result<Vec<Snapshot>, String> {
        let mut out = Vec::new();
        for collection in collections {
            let listed = self
                .client
                .list_snapshots(collection.as_str())
                .await
                .map_err(describe)?;
            out.extend(listed.snapshot_descriptions.into_iter().map(|d| {
                Snapshot {
                    collection: collection.clone(),
                    created: d
                        .creation_time
                        .and_then(|t| Timestamp::new(t.seconds, t.nanos).ok())
                        .unwrap_or_default(),
                    name: d.name,
                }
            }));
        }
        Ok(out)
    }

    pub async fn drop_snapshot(&self, s: &Snapshot) -> Result<(), String> {
        self.may_drop(&s.name)?;
        let request = DeleteSnapshotRequestBuilder::new(s.collection.as_str(), s.name.as_str());
        self.client
            .delete_snapshot(request)
            .await
            .map(drop)
            .map_err(describe)
    }
}

fn describe(e: qdrant_client::QdrantError) -> String {
    format!("Qdrant: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_replica_that_does_not_lead_drops_nothing() {
        // Nothing listens on port 1: had a request gone out, the error would say it failed to connect.
        let admin = Admin::connect("http://127.0.0.1:1", None, Gate::closed()).unwrap();
        let refused = admin.drop("handbook-0123456789").await.unwrap_err();
        assert!(
            refused.starts_with("not dropping handbook-0123456789: this replica no longer leads"),
            "{refused}"
        );
        let snapshot = Snapshot {
            collection: "handbook-0123456789".into(),
            name: "s1".into(),
            created: Timestamp::UNIX_EPOCH,
        };
        let refused = admin.drop_snapshot(&snapshot).await.unwrap_err();
        assert!(refused.starts_with("not dropping s1"), "{refused}");
    }
}
