//! The extractive generator: the answer is the best retrieved passages, cited, with no model and
//! no network.

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use super::{Generation, Generator, Message, StreamEvent, Usage};
use crate::error::Result;
use crate::store::Hit;

/// Passages are added to the answer until it would pass this many characters (the first always is).
const MAX_ANSWER_CHARS: usize = 1200;
pub const NO_ANSWER: &str = "No relevant passages were found.";

pub struct Extractive;

/// The answer's paragraphs: `text [n]`, best first.
pub fn paragraphs(passages: &[Hit]) -> Vec<String> {
    let mut out = Vec::new();
    let mut len = 0;
    for (i, p) in passages.iter().enumerate() {
        let paragraph = format!("{} [{}]", p.text.trim(), i + 1);
        if !out.is_empty() && len + paragraph.len() > MAX_ANSWER_CHARS {
            break;
        }
        len += paragraph.len();
        out.push(paragraph);
    }
    if out.is_empty() {
        out.push(NO_ANSWER.to_string());
    }
    out
}

#[async_trait]
impl Generator for Extractive {
    async fn generate(&self, _messages: &[Message], passages: &[Hit]) -> Result<Generation> {
        Ok(Generation {
            text: paragraphs(passages).join("\n\n"),
            usage: Usage::default(),
        })
    }

    async fn stream(
        &self,
        _messages: Vec<Message>,
        passages: Vec<Hit>,
    ) -> Result<BoxStream<'static, Result<StreamEvent>>> {
        let parts = paragraphs(&passages);
        let last = parts.len() - 1;
        let events = parts.into_iter().enumerate().map(move |(i, p)| {
            Ok(StreamEvent::Delta(if i < last {
                format!("{p}\n\n")
            } else {
                p
            }))
        });
        Ok(stream::iter(events.collect::<Vec<_>>()).boxed())
    }

    fn model(&self) -> &str {
        "extractive"
    }

    fn describe(&self) -> String {
        "extractive".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(text: &str) -> Hit {
        Hit {
            document_id: "d".into(),
            chunk: 0,
            score: 1.0,
            text: text.into(),
            metadata: Default::default(),
        }
    }

    #[test]
    fn answers_with_cited_passages_within_the_budget() {
        let long = "x".repeat(MAX_ANSWER_CHARS);
        let parts = paragraphs(&[hit("first "), hit("second"), hit(&long)]);
        assert_eq!(
            parts,
            vec!["first [1]".to_string(), "second [2]".to_string()]
        );
        assert_eq!(paragraphs(&[]), vec![NO_ANSWER.to_string()]);
    }
}
