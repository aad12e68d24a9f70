//! Chunking: a document's text in, overlapping chunks of at most `maxChars` characters out.
//! Chunks end on the most natural boundary that fits: a paragraph (or Markdown heading), then a
//! sentence, then a word; each chunk after the first starts with the tail of the one before it
//! (about `overlapChars`, cut at a word) so a fact split across a boundary is still found.

use crate::config::ChunkingConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Joint {
    Paragraph,
    Space,
}

impl Joint {
    fn as_str(self) -> &'static str {
        match self {
            Self::Paragraph => "\n\n",
            Self::Space => " ",
        }
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Paragraphs separated by blank lines; a Markdown heading always starts a new one.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim_end();
        let heading = trimmed.trim_start().starts_with('#');
        if trimmed.trim().is_empty() || heading {
            if !current.trim().is_empty() {
                out.push(current.trim().to_string());
            }
            current.clear();
            if trimmed.trim().is_empty() {
                continue;
            }
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(trimmed);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// Sentences: split after `.`, `!` or `?` followed by whitespace.
fn sentences(paragraph: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_end = false;
    for (i, c) in paragraph.char_indices() {
        if prev_end && c.is_whitespace() {
            out.push(paragraph[start..i].trim().to_string());
            start = i;
        }
        prev_end = matches!(c, '.' | '!' | '?');
    }
    out.push(paragraph[start..].trim().to_string());
    out.retain(|s| !s.is_empty());
    out
}

/// Pieces of at most `max` characters, joined as they appeared.
fn units(text: &str, max: usize) -> Vec<(Joint, String)> {
    let mut out = Vec::new();
    for paragraph in paragraphs(text) {
        let mut joint = Joint::Paragraph;
        if chars(&paragraph) <= max {
            out.push((joint, paragraph));
            continue;
        }
        for sentence in sentences(&paragraph) {
            if chars(&sentence) <= max {
                out.push((joint, sentence));
            } else {
                for word in sentence.split_whitespace() {
                    let letters: Vec<char> = word.chars().collect();
                    for piece in letters.chunks(max) {
                        out.push((joint, piece.iter().collect()));
                        joint = Joint::Space;
                    }
                }
            }
            joint = Joint::Space;
        }
    }
    out
}

/// The last `overlap` characters of `chunk`, starting at a word.
fn tail(chunk: &str, overlap: usize) -> &str {
    let n = chars(chunk);
    if overlap == 0 || n <= overlap {
        return if overlap == 0 { "" } else { chunk };
    }
    let start = chunk
        .char_indices()
        .nth(n - overlap)
        .map_or(chunk.len(), |(i, _)| i);
    let rest = &chunk[start..];
    // Drop the partial first word unless we began exactly at one.
    let at_word = chunk[..start].ends_with(char::is_whitespace);
    let rest = if at_word {
        rest
    } else {
        rest.split_once(char::is_whitespace).map_or("", |(_, r)| r)
    };
    rest.trim_start()
}

/// Splits a document into chunks (none for an empty one).
pub fn split(text: &str, config: &ChunkingConfig) -> Vec<String> {
    let max = config.max_chars.max(1);
    let overlap = config.overlap_chars.min(max.saturating_sub(1));
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    // True while `current` holds only the overlap copied from the previous chunk.
    let mut only_overlap = false;
    for (joint, unit) in units(text, max) {
        let unit_len = chars(&unit);
        let sep = if current.is_empty() {
            ""
        } else {
            joint.as_str()
        };
        if current_len + chars(sep) + unit_len <= max {
            current.push_str(sep);
            current.push_str(&unit);
            current_len += chars(sep) + unit_len;
            only_overlap = false;
            continue;
        }
        if !only_overlap && !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
        }
        let carried = chunks
            .last()
            .map(|c| tail(c, overlap).to_string())
            .unwrap_or_default();
        current.clear();
        current_len = 0;
        if !carried.is_empty() && chars(&carried) + 1 + unit_len <= max {
            current.push_str(&carried);
            current.push(' ');
            current_len = chars(&carried) + 1;
        }
        current.push_str(&unit);
        current_len += unit_len;
        only_overlap = false;
    }
    if !current.is_empty() && !only_overlap {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_chars: usize, overlap_chars: usize) -> ChunkingConfig {
        ChunkingConfig {
            max_chars,
            overlap_chars,
        }
    }

    #[test]
    fn small_documents_are_one_chunk_and_empty_ones_none() {
        assert_eq!(
            split("# Title\n\nHello world.", &config(100, 10)),
            vec!["# Title\n\nHello world."]
        );
        assert!(split(" \n\n ", &config(100, 10)).is_empty());
    }

    #[test]
    fn chunks_respect_the_limit_cover_every_word_and_overlap() {
        let text = (0..40)
            .map(|p| {
                format!("Paragraph {p} talks about topic {p}. It has a second sentence number {p}.")
            })
            .collect::<Vec<_>>()
            .join("\n\n");
        let chunks = split(&text, &config(200, 40));
        assert!(chunks.len() > 10);
        for c in &chunks {
            assert!(chars(c) <= 200, "{} chars: {c}", chars(c));
        }
        for word in text.split_whitespace() {
            assert!(chunks.iter().any(|c| c.contains(word)), "lost {word}");
        }
        for pair in chunks.windows(2) {
            let last_word = pair[0].split_whitespace().last().unwrap();
            assert!(
                pair[1].contains(last_word),
                "no overlap between {:?} and {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn boundaries_prefer_paragraphs_then_sentences() {
        let text = "First paragraph is here.\n\nSecond one follows it.";
        assert_eq!(
            split(text, &config(30, 0)),
            vec!["First paragraph is here.", "Second one follows it."]
        );
        let long = "One sentence here. Another sentence there. A third one now.";
        let chunks = split(long, &config(45, 0));
        assert_eq!(
            chunks,
            vec![
                "One sentence here. Another sentence there.",
                "A third one now."
            ]
        );
    }

    #[test]
    fn headings_start_a_new_paragraph_and_long_words_are_cut() {
        let chunks = split("intro text\n## Usage\nrun it", &config(20, 0));
        assert_eq!(chunks, vec!["intro text", "## Usage\nrun it"]);
        let chunks = split(&"x".repeat(25), &config(10, 3));
        assert!(chunks.iter().all(|c| chars(c) <= 10));
        assert_eq!(chunks.concat().matches('x').count(), 25);
    }

    #[test]
    fn tails_start_at_a_word() {
        assert_eq!(tail("alpha beta gamma", 8), "gamma");
        assert_eq!(tail("alpha beta gamma", 100), "alpha beta gamma");
        assert_eq!(tail("alpha beta gamma", 0), "");
    }
}
