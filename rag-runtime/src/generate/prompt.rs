//! The prompt: configured system message, earlier turns, and the last question wrapped with the
//! numbered passages it should be answered from. Pure functions.

use super::{Message, Role};
use crate::config::PromptConfig;
use crate::store::Hit;

pub const DEFAULT_SYSTEM: &str = "You answer questions using only the numbered context passages you are given. \
Cite the passages you use as [n]. If the context does not contain the answer, say that you do not know.";
pub const DEFAULT_TEMPLATE: &str = "Context:\n{context}\n\nQuestion: {question}";

/// The passages as the model sees them: `[n] (documentId) text`.
pub fn context(passages: &[Hit]) -> String {
    passages
        .iter()
        .enumerate()
        .map(|(i, p)| format!("[{}] ({}) {}", i + 1, p.document_id, p.text.trim()))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Messages for the model. `history` is everything before the question; a system message in it
/// wins over the configured one.
pub fn build(
    config: &PromptConfig,
    history: &[Message],
    question: &str,
    passages: &[Hit],
) -> Vec<Message> {
    let mut messages = Vec::with_capacity(history.len() + 2);
    if !history.iter().any(|m| m.role == Role::System) {
        messages.push(Message::new(
            Role::System,
            config.system.as_deref().unwrap_or(DEFAULT_SYSTEM),
        ));
    }
    messages.extend(history.iter().cloned());
    let template = config.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
    // Substitute the question last so braces inside passages are never treated as placeholders.
    let user = template
        .replace("{context}", "\u{0}CONTEXT\u{0}")
        .replace("{question}", question)
        .replace("\u{0}CONTEXT\u{0}", &context(passages));
    messages.push(Message::new(Role::User, user));
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str, text: &str) -> Hit {
        Hit {
            document_id: id.into(),
            chunk: 0,
            score: 1.0,
            text: text.into(),
            metadata: Default::default(),
        }
    }

    #[test]
    fn question_and_numbered_context_reach_the_last_message() {
        let messages = build(
            &PromptConfig::default(),
            &[],
            "What is X?",
            &[hit("a.md", "X is a letter."), hit("b.md", "Y")],
        );
        assert_eq!(messages[0].role, Role::System);
        let last = &messages.last().unwrap().content;
        assert!(last.contains("[1] (a.md) X is a letter."), "{last}");
        assert!(last.contains("[2] (b.md) Y"), "{last}");
        assert!(last.ends_with("Question: What is X?"), "{last}");
    }

    #[test]
    fn configured_template_and_system_are_used_and_history_kept() {
        let config = PromptConfig {
            system: Some("Be terse.".into()),
            template: Some("Q={question} C={context}".into()),
        };
        let history = [
            Message::new(Role::User, "hi"),
            Message::new(Role::Assistant, "hello"),
        ];
        let messages = build(
            &config,
            &history,
            "why {context}?",
            &[hit("a.md", "because")],
        );
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[0].content, "Be terse.");
        assert_eq!(messages[3].content, "Q=why {context}? C=[1] (a.md) because");
        let own_system = [Message::new(Role::System, "mine")];
        assert_eq!(build(&config, &own_system, "q", &[])[0].content, "mine");
    }
}
