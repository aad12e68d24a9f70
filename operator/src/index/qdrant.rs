//! The operator's own Qdrant calls, few and rare: listing and dropping the collections an index
//! created (garbage collection after a re-index, and `deletionPolicy: Delete`). Ingest itself
//! runs in a Job with the runtime; the operator never touches points.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use qdrant_client::Qdrant;
use qdrant_client::qdrant::{DeleteAlias, DeleteSnapshotRequestBuilder};

use super::revision::is_revision_of;

/// Longest a single Qdrant call may take: a reconciliation never hangs on an unreachable server.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Admin {
    client: Qdrant,
}

impl Admin {
    pub fn connect(url: &str, api_key: Option<String>) -> Result<Self, String> {
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .skip_compatibility_check()
            .build()
            .map_err(|e| format!("Qdrant at {url}: {e}"))?;
        Ok(Self { client })
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
