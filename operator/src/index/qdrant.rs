//! The operator's own Qdrant calls, few and rare: dropping the collections an index recorded as
//! its own (garbage collection after a re-index, and `deletionPolicy: Delete`), reading where
//! its alias points, and snapshots. Ingest itself runs in a Job with the runtime; the operator
//! never touches points. Every drop goes through [`Admin::remove`], the one door for removals on
//! the server, which checks the leadership gate right before the request goes out: a replica
//! unsure it leads drops nothing.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::{DeleteAlias, DeleteSnapshotRequestBuilder, UpdateCollectionBuilder};
use qdrant_client::{Qdrant, QdrantError};

use crate::leader::Gate;

/// The collection metadata key holding the uid of the RagIndex that owns a collection.
pub const OWNER_KEY: &str = "ragops.io/owner";

/// Longest a single Qdrant call may take: a reconciliation never hangs on an unreachable server.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Admin {
    client: Qdrant,
    leader: Gate,
}

/// Something on the server the operator removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal<'a> {
    /// A collection of the index with uid `owner`: refused when the server tags it as another's.
    Collection {
        name: &'a str,
        owner: &'a str,
    },
    Alias(&'a str),
    Snapshot(&'a Snapshot),
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

    /// The collection `alias` points at, if the alias exists.
    pub async fn alias_target(&self, alias: &str) -> Result<Option<String>, String> {
        let aliases = self.client.list_aliases().await.map_err(describe)?;
        Ok(aliases
            .aliases
            .into_iter()
            .find(|a| a.alias_name == alias)
            .map(|a| a.collection_name))
    }

    /// Removes `what`; something already gone is fine. The only place the operator deletes
    /// anything on a Qdrant server: callers decide from the index's own records what may go.
    /// Refuses a drop unless this replica leads now.
    fn may_drop(&self, what: &str) -> Result<(), String> {
        self.leader
            .ensure()
            .map_err(|e| format!("not dropping {what}: {e}"))
    }

    pub async fn remove(&self, what: Removal<'_>) -> Result<(), String> {
        let result = match what {
            Removal::Collection { name, owner } => {
                let tag = self.owner(name).await?;
                if !super::ownership::may_drop(tag.as_deref(), owner) {
                    return Err(format!(
                        "collection {name} is tagged {OWNER_KEY}={} on the server, not this index's uid {owner}: not dropped",
                        tag.unwrap_or_default()
                    ));
                }
                self.may_drop(name)?;
                self.client.delete_collection(name).await.map(drop)
            }
            Removal::Alias(alias) => {
                self.may_drop(alias)?;
                let request = DeleteAlias {
                    alias_name: alias.into(),
                };
                self.client.delete_alias(request).await.map(drop)
            }
            Removal::Snapshot(s) => {
                self.may_drop(&s.name)?;
                let request =
                    DeleteSnapshotRequestBuilder::new(s.collection.as_str(), s.name.as_str());
                self.client.delete_snapshot(request).await.map(drop)
            }
        };
        match result {
            Err(e) if !not_found(&e) => Err(describe(e)),
            _ => Ok(()),
        }
    }
}

impl Admin {
    /// Tags `collection` as the index `uid`'s own (collection metadata, merged).
    pub async fn tag(&self, collection: &str, uid: &str) -> Result<(), String> {
        let metadata = std::collections::HashMap::from([(
            OWNER_KEY.to_string(),
            serde_json::Value::from(uid),
        )]);
        let request = UpdateCollectionBuilder::new(collection).metadata(metadata);
        self.client
            .update_collection(request)
            .await
            .map(drop)
            .map_err(describe)
    }

    /// The uid `collection` is tagged with; none when untagged or gone.
    pub async fn owner(&self, collection: &str) -> Result<Option<String>, String> {
        let info = match self.client.collection_info(collection).await {
            Ok(info) => info,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(describe(e)),
        };
        let tag = info
            .result
            .and_then(|r| r.config)
            .and_then(|c| c.metadata.get(OWNER_KEY).cloned())
            .and_then(|v| v.kind);
        Ok(match tag {
            Some(Kind::StringValue(uid)) => Some(uid),
            _ => None,
        })
    }
}

/// Whether Qdrant answered that the thing does not exist, by the gRPC status code.
fn not_found(e: &QdrantError) -> bool {
    matches!(e, QdrantError::ResponseError { status } if status.code() == tonic::Code::NotFound)
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

    /// The snapshots of every collection in `collections` (one not created yet has none).
    pub async fn snapshots(&self, collections: &[String]) -> Result<Vec<Snapshot>, String> {
        let mut out = Vec::new();
        for collection in collections {
            let listed = match self.client.list_snapshots(collection.as_str()).await {
                Ok(listed) => listed,
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(describe(e)),
            };
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
}

fn describe(e: qdrant_client::QdrantError) -> String {
    format!("Qdrant: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_replica_that_does_not_lead_drops_nothing() {
        // Nothing listens on port 1: had a request gone out, the error would say it failed to
        // connect. The alias and snapshot removals read nothing first, so they reach the gate.
        let admin = Admin::connect("http://127.0.0.1:1", None, Gate::closed()).unwrap();
        let refused = admin.remove(Removal::Alias("handbook")).await.unwrap_err();
        assert!(
            refused.starts_with("not dropping handbook: this replica no longer leads"),
            "{refused}"
        );
        let snapshot = Snapshot {
            collection: "handbook-0123456789".into(),
            name: "s1".into(),
            created: Timestamp::UNIX_EPOCH,
        };
        let refused = admin
            .remove(Removal::Snapshot(&snapshot))
            .await
            .unwrap_err();
        assert!(refused.starts_with("not dropping s1"), "{refused}");
    }
}
