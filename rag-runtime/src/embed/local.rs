//! The built-in embedder: hashed word, word-pair and character-trigram features folded into a
//! fixed number of dimensions and L2-normalised. Deterministic, no model, no network; good
//! enough to rank documents that share vocabulary with the question.

use async_trait::async_trait;

use super::Embedder;
use crate::error::Result;

pub struct LocalEmbedder {
    dimensions: usize,
}

const WORD_WEIGHT: f32 = 1.0;
const PAIR_WEIGHT: f32 = 0.5;
const TRIGRAM_WEIGHT: f32 = 0.25;

impl LocalEmbedder {
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions: dimensions.max(1),
        }
    }

    /// The vector of one text; pure and cheap (a few microseconds for a question).
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut vector = vec![0.0f32; self.dimensions];
        let mut add = |feature: &[u8], seed: u64, weight: f32| {
            let h = fnv1a(seed, feature);
            let index = (h % self.dimensions as u64) as usize;
            // The sign bit spreads collisions around zero instead of piling them up.
            let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
            vector[index] += sign * weight;
        };
        let words: Vec<String> = words(text).collect();
        for (i, word) in words.iter().enumerate() {
            add(word.as_bytes(), 1, WORD_WEIGHT);
            if let Some(next) = words.get(i + 1) {
                let pair = format!("{word} {next}");
                add(pair.as_bytes(), 2, PAIR_WEIGHT);
            }
            let padded: Vec<char> = format!("^{word}$").chars().collect();
            for w in padded.windows(3) {
                let trigram: String = w.iter().collect();
                add(trigram.as_bytes(), 3, TRIGRAM_WEIGHT);
            }
        }
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|x| *x /= norm);
        }
        vector
    }
}

/// Lower-cased alphanumeric words.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// 64-bit FNV-1a: stable across platforms and releases, unlike `std`'s hasher.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[async_trait]
impl Embedder for LocalEmbedder {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn describe(&self) -> String {
        format!("local ({} dimensions)", self.dimensions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_are_deterministic_and_normalised() {
        let e = LocalEmbedder::new(64);
        let a = e.embed_one("Blue-green rollouts switch traffic");
        assert_eq!(a, e.embed_one("Blue-green rollouts switch traffic"));
        assert_eq!(a.len(), 64);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        assert!(e.embed_one("  ").iter().all(|x| *x == 0.0));
    }

    #[test]
    fn shared_vocabulary_scores_higher() {
        let e = LocalEmbedder::new(256);
        let q = e.embed_one("how does the rollout switch traffic");
        let close = e.embed_one("A rollout switches traffic to the new colour once it is healthy.");
        let far = e.embed_one("Bananas are rich in potassium and grow in the tropics.");
        assert!(cosine(&q, &close) > cosine(&q, &far) + 0.1);
    }
}
