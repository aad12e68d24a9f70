//! Answers from any OpenAI-compatible chat completions endpoint, whole or streamed. The key
//! comes from `LLM_API_KEY` and is never logged.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    ChatCompletionStreamOptions, CreateChatCompletionRequest,
};
use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};

use super::{Generation, Generator, Message, Role, StreamEvent, Usage};
use crate::config::{LLM_API_KEY_ENV, LlmConfig};
use crate::embed::openai::OPENAI_API;
use crate::error::{Error, Result};
use crate::redact;
use crate::store::Hit;

pub struct OpenAiGenerator {
    client: Client<OpenAIConfig>,
    config: LlmConfig,
}

impl OpenAiGenerator {
    pub fn new(config: &LlmConfig) -> Self {
        Self {
            client: crate::embed::openai::client(config.endpoint.as_deref(), LLM_API_KEY_ENV),
            config: config.clone(),
        }
    }

    fn request(&self, messages: Vec<Message>, stream: bool) -> CreateChatCompletionRequest {
        let messages = messages
            .into_iter()
            .map(|m| match m.role {
                Role::System => ChatCompletionRequestSystemMessage::from(m.content).into(),
                Role::User => ChatCompletionRequestUserMessage::from(m.content).into(),
                Role::Assistant => ChatCompletionRequestAssistantMessage::from(m.content).into(),
            })
            .collect::<Vec<ChatCompletionRequestMessage>>();
        CreateChatCompletionRequest {
            model: self.config.model.clone(),
            messages,
            temperature: self.config.temperature,
            max_completion_tokens: self.config.max_tokens,
            stream: stream.then_some(true),
            stream_options: stream.then_some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn llm_error(err: impl std::fmt::Display) -> Error {
    Error::Llm(redact::upstream_error(err, LLM_API_KEY_ENV))
}

#[async_trait]
impl Generator for OpenAiGenerator {
    async fn generate(&self, messages: &[Message], _passages: &[Hit]) -> Result<Generation> {
        let response = self
            .client
            .chat()
            .create(self.request(messages.to_vec(), false))
            .await
            .map_err(llm_error)?;
        let text = response
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .unwrap_or_default();
        let usage = response
            .usage
            .map(|u| Usage::new(u.prompt_tokens, u.completion_tokens))
            .unwrap_or_default();
        Ok(Generation { text, usage })
    }

    async fn stream(
        &self,
        messages: Vec<Message>,
        _passages: Vec<Hit>,
    ) -> Result<BoxStream<'static, Result<StreamEvent>>> {
        let chunks = self
            .client
            .chat()
            .create_stream(self.request(messages, true))
            .await
            .map_err(llm_error)?;
        Ok(chunks
            .flat_map(|chunk| {
                let events: Vec<Result<StreamEvent>> = match chunk {
                    Err(e) => vec![Err(llm_error(e))],
                    Ok(chunk) => {
                        let mut events: Vec<Result<StreamEvent>> = chunk
                            .choices
                            .into_iter()
                            .filter_map(|c| c.delta.content)
                            .filter(|s| !s.is_empty())
                            .map(|s| Ok(StreamEvent::Delta(s)))
                            .collect();
                        if let Some(u) = chunk.usage {
                            events.push(Ok(StreamEvent::Usage(Usage::new(
                                u.prompt_tokens,
                                u.completion_tokens,
                            ))));
                        }
                        events
                    }
                };
                futures::stream::iter(events)
            })
            .boxed())
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    fn describe(&self) -> String {
        let endpoint = redact::url(self.config.endpoint.as_deref().unwrap_or(OPENAI_API));
        format!("openai {} at {endpoint}", self.config.model)
    }
}
