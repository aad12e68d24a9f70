//! The synthetic corpus and questions: Zipf-like words from a fixed vocabulary, seeded, so every
//! run stores the same text and asks the same questions.

use rag_runtime::rag::Document;
use serde_json::Map;

/// xorshift64*: a seeded, dependency-free generator; the corpus must be the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// An index in `0..n` distributed like content-word frequencies: Zipf (s = 1) over ranks
    /// from 50 on, as if the 50 most frequent words were the stop words BM25 drops anyway. The
    /// most frequent index is about 0.4% of all words.
    fn zipfish(&mut self, n: usize) -> usize {
        const STOP_RANKS: f64 = 50.0;
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let rank = STOP_RANKS * ((STOP_RANKS + n as f64) / STOP_RANKS).powf(u);
        ((rank - STOP_RANKS) as usize).min(n - 1)
    }
}

pub fn vocabulary(size: usize) -> Vec<String> {
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zen", "bar", "dor", "fel", "gar", "hol",
        "jin", "kor", "lum", "mar", "nol", "per", "quin", "ros", "sul", "tor", "ul", "ven", "wis",
        "xan", "yor", "zul",
    ];
    let mut rng = Rng(0x5eed);
    (0..size)
        .map(|i| {
            let n = 2 + rng.below(3);
            let mut w: String = (0..n)
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                .collect();
            w.push_str(&(i % 97).to_string());
            w
        })
        .collect()
}

fn sentence(rng: &mut Rng, vocab: &[String], words: usize) -> String {
    let mut s: Vec<&str> = (0..words)
        .map(|_| vocab[rng.zipfish(vocab.len())].as_str())
        .collect();
    s.push(".");
    s.join(" ")
}

/// Documents of ~10 chunks each (default chunking: 1000 chars, 150 overlap).
pub fn corpus(chunks: usize, vocab: &[String]) -> Vec<Document> {
    let mut rng = Rng(0xC0FFEE);
    let docs = chunks.div_ceil(10);
    (0..docs)
        .map(|d| {
            let paragraphs: Vec<String> = (0..10)
                .map(|_| {
                    (0..7)
                        .map(|_| sentence(&mut rng, vocab, 12))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            Document {
                id: format!("synthetic/{d:06}.md"),
                text: paragraphs.join("\n\n"),
                metadata: Map::new(),
            }
        })
        .collect()
}

/// Questions of six words each, drawn from the more frequent quarter of the vocabulary, as
/// questions share the corpus's common content words.
pub fn questions(vocab: &[String], n: usize) -> Vec<String> {
    let mut rng = Rng(42);
    (0..n)
        .map(|_| {
            let q: Vec<&str> = (0..6)
                .map(|_| vocab[rng.zipfish(vocab.len() / 4)].as_str())
                .collect();
            q.join(" ")
        })
        .collect()
}
