//! The operator's own Qdrant calls, few and rare: listing and dropping the collections an index
//! created (garbage collection after a re-index, and `deletionPolicy: Delete`). Ingest itself
//! runs in a Job with the runtime; the operator never touches points.

use std::time::Duration;

use qdrant_client::Qdrant;
use qdrant_client::qdrant::DeleteAlias;

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

fn describe(e: qdrant_client::QdrantError) -> String {
    format!("Qdrant: {e}")
}
