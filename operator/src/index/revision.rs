//! The index revision: one hash of everything that decides what an ingest stores. Equal
//! revisions mean an ingest would store the same points, so nothing runs; a new revision names a
//! new collection `<alias>-<revision>`.

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::api::{RagIndex, SourceSpec};

/// Hex characters of a revision (and of a collection's suffix).
pub const REVISION_LEN: usize = 10;

/// What the operator knows of one source's content. A ConfigMap's content is hashed from the
/// watch; a URL's or a volume's is read only by the ingest Job, which reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SourceVersion {
    ConfigMap { name: String, digest: String },
    Url { url: String },
    Volume { claim: String, path: String },
}

impl SourceVersion {
    /// The version of `source`, given a ConfigMap's content digest (`None` when the source is a
    /// ConfigMap that does not exist).
    pub fn of(
        source: &SourceSpec,
        config_map_digest: impl Fn(&str) -> Option<String>,
    ) -> Option<Self> {
        if let Some(cm) = &source.config_map {
            let digest = config_map_digest(&cm.name)?;
            return Some(Self::ConfigMap {
                name: cm.name.clone(),
                digest,
            });
        }
        if let Some(url) = &source.url {
            return Some(Self::Url { url: url.clone() });
        }
        let pvc = source.persistent_volume_claim.as_ref()?;
        Some(Self::Volume {
            claim: pvc.claim_name.clone(),
            path: pvc.path.clone(),
        })
    }

    /// Whether only the ingest Job can tell what the source holds.
    pub fn read_by_job(&self) -> bool {
        !matches!(self, Self::ConfigMap { .. })
    }
}

/// Everything hashed into a revision, in a fixed shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Hashed<'a> {
    sources: &'a [SourceVersion],
    provider: &'a crate::api::EmbeddingProvider,
    model: Option<&'a str>,
    dimensions: i32,
    endpoint: Option<&'a str>,
    max_chars: i32,
    overlap_chars: i32,
    distance: &'a crate::api::Distance,
    collection: String,
    /// The Qdrant server (host and port): the same sources on another server are another
    /// collection to fill.
    server: Option<String>,
    tick: Option<String>,
}

/// The revision of `index` over `sources`, at schedule `tick` (the latest scheduled run, if the
/// index has a schedule). Credentials and batch sizes are left out: they change how an ingest
/// runs, not what it stores.
pub fn revision(index: &RagIndex, sources: &[SourceVersion], tick: Option<Timestamp>) -> String {
    let spec = &index.spec;
    let hashed = Hashed {
        sources,
        provider: &spec.embedding.provider,
        model: spec.embedding.model.as_deref(),
        dimensions: spec.embedding.dimensions,
        endpoint: spec.embedding.endpoint.as_deref(),
        max_chars: spec.chunking.max_chars,
        overlap_chars: spec.chunking.overlap_chars,
        distance: &spec.distance,
        collection: super::config::alias(index),
        server: super::ownership::Claim::of(index).map(|c| c.server),
        tick: tick.map(|t| t.to_string()),
    };
    let json = serde_json::to_vec(&hashed).expect("a revision input serialises");
    crate::digest::short_hex(&json, REVISION_LEN)
}

/// The collection an ingest of `revision` fills.
pub fn collection_name(alias: &str, revision: &str) -> String {
    format!("{alias}-{revision}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"
apiVersion: ragops.io/v1alpha1
kind: RagIndex
metadata: { name: handbook, namespace: team-a }
spec:
  vectorStore: { qdrant: { url: "http://qdrant:6334" } }
  embedding: { provider: local, dimensions: 64 }
  sources: [{ configMap: { name: docs } }]
"#;

    fn index(edit: impl FnOnce(&mut RagIndex)) -> RagIndex {
        let mut i: RagIndex = serde_yaml::from_str(INDEX).unwrap();
        edit(&mut i);
        i
    }

    fn docs(digest: &str) -> Vec<SourceVersion> {
        vec![SourceVersion::ConfigMap {
            name: "docs".into(),
            digest: digest.into(),
        }]
    }

    #[test]
    fn what_changes_the_stored_points_changes_the_revision() {
        let base = revision(&index(|_| {}), &docs("a"), None);
        assert_eq!(base.len(), REVISION_LEN);
        assert_eq!(base, revision(&index(|_| {}), &docs("a"), None), "stable");
        let tick: Timestamp = "2026-11-26T03:00:00Z".parse().unwrap();
        let changed = [
            ("source content", revision(&index(|_| {}), &docs("b"), None)),
            (
                "dimensions",
                revision(
                    &index(|i| i.spec.embedding.dimensions = 32),
                    &docs("a"),
                    None,
                ),
            ),
            (
                "model",
                revision(
                    &index(|i| i.spec.embedding.model = Some("m".into())),
                    &docs("a"),
                    None,
                ),
            ),
            (
                "chunking",
                revision(
                    &index(|i| i.spec.chunking.max_chars = 500),
                    &docs("a"),
                    None,
                ),
            ),
            (
                "distance",
                revision(
                    &index(|i| i.spec.distance = crate::api::Distance::Dot),
                    &docs("a"),
                    None,
                ),
            ),
            (
                "Qdrant server",
                revision(
                    &index(|i| {
                        i.spec.vector_store.qdrant.as_mut().unwrap().url = "http://q2:6334".into()
                    }),
                    &docs("a"),
                    None,
                ),
            ),
            (
                "schedule tick",
                revision(&index(|_| {}), &docs("a"), Some(tick)),
            ),
        ];
        for (what, rev) in changed {
            assert_ne!(rev, base, "{what} must change the revision");
        }
    }

    #[test]
    fn how_an_ingest_runs_does_not_change_the_revision() {
        let base = revision(&index(|_| {}), &docs("a"), None);
        let batch = index(|i| i.spec.embedding.batch_size = Some(8));
        let retain = index(|i| i.spec.retain_collections = 9);
        assert_eq!(revision(&batch, &docs("a"), None), base);
        assert_eq!(revision(&retain, &docs("a"), None), base);
    }
}
