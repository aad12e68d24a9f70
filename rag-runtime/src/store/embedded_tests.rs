//! The embedded store past the indexing threshold: the graph over int8 vectors, rescored, must
//! still find what a scan finds.

use serde_json::Map;

use super::*;
use crate::embed::bm25::Bm25;
use crate::embed::local::LocalEmbedder;

const DIMENSIONS: usize = 256;
/// Enough 256-dimension vectors to pass `INDEXING_THRESHOLD_KB` and get a graph.
const FILLER_CHUNKS: usize = 1_500;
const NEEDLE: &str = "The kubelet restarts a container whose liveness probe keeps failing.";

const WORDS: &[&str] = &[
    "index",
    "shard",
    "vector",
    "payload",
    "segment",
    "replica",
    "tenant",
    "quota",
    "cluster",
    "ingress",
    "secret",
    "volume",
    "rollout",
    "service",
    "gateway",
    "tracing",
    "budget",
    "latency",
    "schema",
    "backup",
    "snapshot",
    "alias",
    "collection",
    "filter",
    "cursor",
    "token",
    "window",
];

/// A deterministic sentence of twelve words per chunk, different for every `i`.
fn filler(i: usize) -> String {
    (0..12)
        .map(|w| WORDS[(i * 7 + w * (i % 5 + 1) + i / WORDS.len()) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
        + &format!(" chunk{i}.")
}

fn record(document_id: &str, chunk: u32, text: String, bm25: &Bm25) -> ChunkRecord {
    ChunkRecord {
        document_id: document_id.into(),
        chunk,
        dense: LocalEmbedder::new(DIMENSIONS).embed_one(&text),
        sparse: bm25.document(&text),
        text,
        metadata: Map::new(),
    }
}

fn request(dense: Option<Vec<f32>>, sparse: Option<crate::store::Sparse>) -> SearchRequest {
    SearchRequest {
        dense,
        sparse,
        limit: 5,
        search_ef: 64,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_indexed_collection_finds_what_a_scan_finds() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), "docs", DIMENSIONS, Distance::Cosine)
        .await
        .unwrap();
    let bm25 = Bm25::new().unwrap();
    let mut chunks: Vec<ChunkRecord> = (0..FILLER_CHUNKS)
        .map(|i| {
            record(
                &format!("filler/{}.md", i / 10),
                (i % 10) as u32,
                filler(i),
                &bm25,
            )
        })
        .collect();
    chunks.push(record("needle.md", 0, NEEDLE.into(), &bm25));
    for batch in chunks.chunks(500) {
        store.upsert(batch.to_vec()).await.unwrap();
    }
    store.build_index().await.unwrap();
    assert!(
        store.indexed_vectors() >= FILLER_CHUNKS,
        "expected a graph index, {} vectors are indexed",
        store.indexed_vectors()
    );

    let question = "why does the kubelet restart a container when its liveness probe fails";
    let embedder = LocalEmbedder::new(DIMENSIONS);
    let hybrid = store
        .search(request(
            Some(embedder.embed_one(question)),
            Some(bm25.query(question)),
        ))
        .await
        .unwrap();
    assert_eq!(hybrid[0].document_id, "needle.md");

    // A chunk's own text finds that chunk first through the quantised graph. The graph is built
    // on several threads, so its shape varies from run to run; a wide search keeps this about
    // what the graph holds, not about how lucky one walk through it was.
    for i in (0..FILLER_CHUNKS).step_by(75) {
        let wide = SearchRequest {
            search_ef: 512,
            ..request(Some(embedder.embed_one(&filler(i))), None)
        };
        let hits = store.search(wide).await.unwrap();
        assert_eq!(
            (hits[0].document_id.as_str(), hits[0].chunk),
            (format!("filler/{}.md", i / 10).as_str(), (i % 10) as u32),
            "chunk {i}"
        );
        assert!(hits[0].score > 0.99, "chunk {i} scored {}", hits[0].score);
    }
}
