//! Generators: chat messages plus retrieved passages in, an answer (whole or streamed) and token
//! usage out. [`prompt`] turns a question and passages into messages; [`extractive`] answers with
//! the passages themselves; [`openai`] asks any OpenAI-compatible chat model.

pub mod extractive;
pub mod openai;
pub mod prompt;

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::config::{LlmConfig, LlmProvider};
use crate::error::Result;
use crate::store::Hit;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// Tokens a model spent; zero for the extractive generator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

impl Usage {
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    pub text: String,
    pub usage: Usage,
}

/// One piece of a streamed answer.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    Delta(String),
    /// Sent once, at the end, when the provider reports it.
    Usage(Usage),
}

#[async_trait]
pub trait Generator: Send + Sync {
    async fn generate(&self, messages: &[Message], passages: &[Hit]) -> Result<Generation>;
    async fn stream(
        &self,
        messages: Vec<Message>,
        passages: Vec<Hit>,
    ) -> Result<BoxStream<'static, Result<StreamEvent>>>;
    /// The model name reported in chat completion responses.
    fn model(&self) -> &str;
    fn describe(&self) -> String;
}

pub fn from_config(config: &LlmConfig) -> Result<Arc<dyn Generator>> {
    Ok(match config.provider {
        LlmProvider::Extractive => Arc::new(extractive::Extractive),
        LlmProvider::Openai => Arc::new(openai::OpenAiGenerator::new(config)),
    })
}
