//! How much of the exact answer the approximate dense search finds: the store's graph search
//! (int8 vectors, rescored) against a brute-force scan of the same vectors.

use std::collections::HashSet;

use rag_runtime::rag::{Document, Rag};
use rag_runtime::store::{Filter, SearchRequest};

/// For each of `limits`: the mean share of the exact top `k` that a dense search for that many
/// results finds. A limit of `k` is recall@k; a deeper one is what fusion sees of the dense side.
pub async fn dense_recall(
    rag: &Rag,
    documents: &[Document],
    questions: &[String],
    k: usize,
    limits: &[usize],
) -> Vec<f64> {
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    for document in documents {
        for chunk in rag.chunk(document) {
            ids.push((chunk.document_id, chunk.chunk));
            texts.push(chunk.text);
        }
    }
    let vectors = rag.embedder.embed(&texts).await.unwrap();
    let queries = rag.embedder.embed(questions).await.unwrap();
    let mut found = vec![0usize; limits.len()];
    for query in queries {
        let mut scored: Vec<(f32, usize)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (v.iter().zip(&query).map(|(a, b)| a * b).sum(), i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let exact: HashSet<&(String, u32)> = scored[..k].iter().map(|(_, i)| &ids[*i]).collect();
        for (found, &limit) in found.iter_mut().zip(limits) {
            let hits = rag
                .store
                .search(SearchRequest {
                    dense: Some(query.clone()),
                    sparse: None,
                    limit,
                    filter: Filter::default(),
                    score_threshold: None,
                    search_ef: rag.config.retrieval.search_ef as usize,
                })
                .await
                .unwrap();
            *found += hits
                .iter()
                .filter(|h| exact.contains(&(h.document_id.clone(), h.chunk)))
                .count();
        }
    }
    let total = (questions.len() * k) as f64;
    found.into_iter().map(|f| f as f64 / total).collect()
}
