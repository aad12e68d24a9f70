//! BM25 sparse vectors from Qdrant's own tokenizer, stop words and stemmer (shipped in
//! `qdrant-edge`), so the embedded store and a Qdrant server score terms the same way. The
//! collection's IDF modifier supplies the corpus statistics.

use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};

use crate::error::{Error, Result};
use crate::store::Sparse;

pub struct Bm25 {
    model: EdgeBm25,
}

impl Bm25 {
    pub fn new() -> Result<Self> {
        let config = EdgeBm25Config {
            language: Some("english".into()),
            ..Default::default()
        };
        let model = EdgeBm25::new(config).map_err(|e| Error::Embedding(format!("BM25: {e}")))?;
        Ok(Self { model })
    }

    pub fn document(&self, text: &str) -> Sparse {
        let v = self.model.embed_document(text);
        Sparse {
            indices: v.indices,
            values: v.values,
        }
    }

    pub fn query(&self, text: &str) -> Sparse {
        let v = self.model.embed_query(text);
        Sparse {
            indices: v.indices,
            values: v.values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_and_drops_stop_words() {
        let bm25 = Bm25::new().unwrap();
        let q = bm25.query("the rollouts");
        assert_eq!(q.indices, bm25.query("rollout").indices);
        assert!(!bm25.document("Rollouts are blue-green.").indices.is_empty());
    }
}
