//! The LLM intent detector: one chat completion per caller turn, against any
//! OpenAI-compatible endpoint (a hosted API, vLLM, Ollama, llama.cpp's
//! server), through async-openai.
//!
//! The request carries a system prompt made from the flow (persona,
//! instructions, each intent's description and a few examples) and the
//! transcript as the user message. The answer is constrained by a JSON
//! schema generated from the intents on offer ([`response_schema`]), sent
//! as `response_format: json_schema` with `strict: true`:
//!
//! ```text
//! { "intent": one of the names or "unsure", "confidence": 0..1,
//!   "slots": { each slot the node names: string or null },
//!   "reply": a sentence for the caller, at most N characters }
//! ```
//!
//! What comes back is checked, not trusted: a reply cut off by `max_tokens`
//! (`finish_reason: "length"`), content that is not that JSON, or an intent
//! that is not on offer is an [`LlmError`], as are a timeout and an
//! unreachable server. Confidence is clamped to [0, 1] (servers overshoot
//! the schema's bounds by rounding).
//!
//! # Threads
//!
//! [`IntentDetector::detect`] is blocking, like every detector's. Each
//! `LlmDetector` owns a tokio runtime with one worker thread that does its
//! HTTP; `detect` hands the request to it and waits on a channel. So it
//! can be called from any thread, `tokio::task::spawn_blocking` included,
//! and never panics for being inside a runtime (as `Runtime::block_on`
//! would on a runtime's worker); concurrent calls share the one worker and
//! its connection pool. The runtime is shut down in the background when
//! the detector is dropped, so dropping it in async code is fine too.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionResponse,
    FinishReason, ResponseFormat, ResponseFormatJsonSchema,
};
use async_openai::Client;
use serde_json::{json, Value};

use super::{
    IntentContext, IntentDetector, IntentError, IntentResult, IntentSource, IntentSpec,
    PreparedIntents,
};

/// The intent the model answers when none on offer fits.
pub const UNSURE: &str = "unsure";

/// Longest reply the schema allows, in characters, however large
/// `max_tokens` is: a reply is said on a phone line, one short sentence.
const REPLY_MAX_CHARS: u32 = 200;

/// Longest value of a slot the schema allows, in characters.
const SLOT_MAX_CHARS: u32 = 40;

/// Tokens the JSON around the reply can take at most: braces, the four
/// keys, an intent name, a number of up to 16 decimals, and the bounded
/// whitespace llama.cpp's grammars allow between them. Measured answers
/// from SmolLM2 take 40-50 tokens with an empty reply.
const JSON_OVERHEAD_TOKENS: u32 = 64;

/// Tokens one slot adds at most: its key, `null` or a quoted value of up to
/// [`SLOT_MAX_CHARS`] characters (a token is at least one character).
const SLOT_OVERHEAD_TOKENS: u32 = 8 + SLOT_MAX_CHARS;

/// Examples per intent quoted in the system prompt: enough for the model
/// to see the style of each intent, few enough to keep the prompt short
/// (prompt tokens cost time on a CPU server).
const EXAMPLES_IN_PROMPT: usize = 3;

/// Where the LLM is and how it is asked.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmConfig {
    /// The API's base URL, up to and including the version:
    /// `http://127.0.0.1:8080/v1`; `/chat/completions` is appended.
    pub base_url: String,
    /// The model name the server knows (`gpt-4o-mini`, or the alias a local
    /// server was started with).
    pub model: String,
    /// The environment variable holding the API key, sent as a bearer
    /// token. `None`: no key (a local server). The key itself never sits in
    /// a config file.
    pub api_key_env: Option<String>,
    /// How long one request may take, connection included. Past it the
    /// request is dropped and `detect` returns [`LlmError::Timeout`]
    /// (in the hybrid detector: the embedded answer stands).
    pub timeout: Duration,
    /// Cap on the tokens the model may generate (`max_tokens`). The reply's
    /// `maxLength` in the schema is derived from it so that a complete
    /// answer fits: `max_tokens` less 64 tokens for the rest of the JSON
    /// and 48 per slot, at most 200 characters.
    pub max_tokens: u32,
    /// Who the agent is (the flow's `persona`); opens the system prompt.
    pub persona: Option<String>,
    /// The flow's rules for the agent (the flow's `instructions`).
    pub instructions: Option<String>,
}

impl LlmConfig {
    /// A config with the defaults: no API key, a 5 s timeout (a caller
    /// waits for it in silence) and 160 tokens (a 96-character reply).
    pub fn new(base_url: &str, model: &str) -> Self {
        Self {
            base_url: base_url.to_string(),
            model: model.to_string(),
            api_key_env: None,
            timeout: Duration::from_secs(5),
            max_tokens: 160,
            persona: None,
            instructions: None,
        }
    }
}

/// Why the LLM gave no usable answer. In the hybrid detector each of these
/// leaves the embedded classifier's answer standing.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the {detector} detector needs an LLM: configure its base URL and model")]
    NotConfigured { detector: &'static str },
    #[error("the LLM API key is read from ${var}, which is not set: export it, or configure no key for a server that needs none")]
    MissingApiKey { var: String },
    #[error("cannot start the LLM client's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("no answer from the LLM at {base_url} within {:.1} s: raise the timeout or use a faster model", after.as_secs_f64())]
    Timeout { base_url: String, after: Duration },
    /// No HTTP answer: connection refused or reset, name resolution, TLS.
    #[error("cannot reach the LLM at {base_url}: {source}; is the server running?")]
    Unreachable {
        base_url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server answered with an error status (a bad key, an unknown
    /// model, a schema it cannot follow).
    #[error("the LLM at {base_url} answered {status}: {message}")]
    Api {
        base_url: String,
        status: u16,
        message: String,
    },
    #[error("the LLM's response is not a chat completion: {0}")]
    MalformedResponse(#[source] serde_json::Error),
    #[error("the LLM returned no answer")]
    NoAnswer,
    /// `finish_reason: "length"`: the JSON was cut off.
    #[error("the LLM's answer was cut off at {max_tokens} tokens: raise max_tokens")]
    Truncated { max_tokens: u32 },
    /// The model stopped for another reason than the end of its answer
    /// (`content_filter`, `tool_calls`).
    #[error("the LLM stopped with finish_reason {reason:?}")]
    UnexpectedFinish { reason: &'static str },
    #[error("the LLM refused: {0}")]
    Refused(String),
    #[error("the LLM's answer is not the JSON asked for ({source}): {content:?}")]
    InvalidJson {
        /// The start of the answer.
        content: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the LLM answered intent {intent:?}, which is not on offer")]
    UnknownIntent { intent: String },
}

/// Intent detection by an LLM behind an OpenAI-compatible API.
pub struct LlmDetector {
    config: LlmConfig,
    client: Client<OpenAIConfig>,
    /// Runs the HTTP requests (see the module doc). An `Option` only so
    /// that `Drop` can move it out and shut it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for LlmDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmDetector")
            .field("base_url", &self.config.base_url)
            .field("model", &self.config.model)
            .finish_non_exhaustive()
    }
}

impl LlmDetector {
    /// A detector for `config`, reading the API key from the environment
    /// now. Sends nothing: an unreachable server shows on the first
    /// `detect`.
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        let api_key = match &config.api_key_env {
            Some(var) => {
                std::env::var(var).map_err(|_| LlmError::MissingApiKey { var: var.clone() })?
            }
            None => String::new(),
        };
        // Every field set: `OpenAIConfig::new` also reads OPENAI_* variables,
        // which must not leak into a request to another server.
        let openai = OpenAIConfig::new()
            .with_api_base(config.base_url.trim_end_matches('/'))
            .with_api_key(api_key)
            .with_org_id("")
            .with_project_id("");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("llm-http")
            .enable_all()
            .build()
            .map_err(LlmError::Runtime)?;
        Ok(Self {
            // One attempt per turn: the client would otherwise retry refused
            // connections, 429 and 5xx with backoff (100, 200, 400 ms...),
            // while the caller waits and the hybrid detector already holds
            // an answer. The timeout bounds the attempt.
            client: Client::with_config(openai).with_http_service(ReqwestService::default()),
            config,
            runtime: Some(runtime),
        })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// The request `detect` sends for `utterance`.
    fn request(&self, utterance: &str, context: &IntentContext<'_>) -> CreateChatCompletionRequest {
        let specs = context.intents.specs();
        let reply_chars = reply_max_chars(self.config.max_tokens, context.slots.len());
        let messages: Vec<ChatCompletionRequestMessage> = vec![
            ChatCompletionRequestSystemMessage::from(system_prompt(
                &self.config,
                specs,
                context.slots,
                reply_chars,
            ))
            .into(),
            ChatCompletionRequestUserMessage::from(utterance.trim()).into(),
        ];
        #[allow(deprecated)] // `max_tokens`: see below.
        CreateChatCompletionRequest {
            model: self.config.model.clone(),
            messages,
            // `max_tokens`, deprecated by OpenAI for `max_completion_tokens`,
            // is the field every OpenAI-compatible server honours (Ollama
            // reads only it); OpenAI's chat models still accept it.
            max_tokens: Some(self.config.max_tokens),
            temperature: Some(0.0),
            response_format: Some(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: Some("The caller's intent".to_string()),
                    name: "intent".to_string(),
                    schema: response_schema(specs, context.slots, reply_chars),
                    strict: Some(true),
                },
            }),
            ..Default::default()
        }
    }

    /// Sends one request and waits for the answer on the detector's
    /// runtime, bounded by the configured timeout.
    fn complete(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, LlmError> {
        let client = self.client.clone();
        let timeout = self.config.timeout;
        let base_url = self.config.base_url.clone();
        let (answer_tx, answer_rx) = std::sync::mpsc::sync_channel(1);
        let Some(runtime) = &self.runtime else {
            unreachable!("the runtime is only taken out on drop")
        };
        runtime.spawn(async move {
            let answer = match tokio::time::timeout(timeout, client.chat().create(request)).await {
                Err(_) => Err(LlmError::Timeout {
                    base_url,
                    after: timeout,
                }),
                Ok(result) => result.map_err(|e| request_error(e, base_url)),
            };
            // The receiver only goes away if the caller's thread died.
            let _ = answer_tx.send(answer);
        });
        // The task always sends (the timeout bounds it) unless the runtime
        // is shutting down, which only `drop` does.
        answer_rx.recv().unwrap_or(Err(LlmError::NoAnswer))
    }
}

impl Drop for LlmDetector {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl IntentDetector for LlmDetector {
    /// Only checks the set: the LLM reads the specs on every turn.
    fn prepare(&self, intents: &[IntentSpec]) -> Result<PreparedIntents, IntentError> {
        PreparedIntents::new(intents)
    }

    fn detect(
        &self,
        utterance: &str,
        context: &IntentContext<'_>,
    ) -> Result<IntentResult, IntentError> {
        let start = Instant::now();
        if utterance.trim().is_empty() {
            return Ok(IntentResult {
                source: IntentSource::Llm,
                ..IntentResult::empty(start.elapsed())
            });
        }
        let response = self.complete(self.request(utterance, context))?;
        let answer = read_answer(&response, context, self.config.max_tokens)?;
        Ok(answer.into_result(start.elapsed()))
    }
}

fn request_error(error: OpenAIError, base_url: String) -> LlmError {
    match error {
        OpenAIError::ApiError(response) => LlmError::Api {
            base_url,
            status: response.status_code.as_u16(),
            message: response.api_error.message,
        },
        OpenAIError::JSONDeserialize(source, _) => LlmError::MalformedResponse(source),
        other => LlmError::Unreachable {
            base_url,
            source: Box::new(other),
        },
    }
}

/// The longest reply, in characters, that still leaves room for the rest
/// of the JSON within `max_tokens`, for `slots` slots. A token holds at
/// least one character of ordinary text, so a reply of this many characters
/// takes at most this many tokens. At most [`REPLY_MAX_CHARS`]; 0 when
/// `max_tokens` is too small for any answer (which then comes back cut
/// off, as [`LlmError::Truncated`]).
fn reply_max_chars(max_tokens: u32, slots: usize) -> u32 {
    let slots = u32::try_from(slots).unwrap_or(u32::MAX);
    let overhead = JSON_OVERHEAD_TOKENS.saturating_add(slots.saturating_mul(SLOT_OVERHEAD_TOKENS));
    max_tokens.saturating_sub(overhead).min(REPLY_MAX_CHARS)
}

/// The JSON schema an answer must follow: the intents' names plus
/// [`UNSURE`], a confidence in [0, 1], one nullable string per slot, and a
/// reply of at most `reply_chars` characters. Written in the subset that
/// OpenAI's strict mode accepts (every property required, no additional
/// properties) and that llama.cpp turns into a grammar.
pub fn response_schema(specs: &[IntentSpec], slots: &[String], reply_chars: u32) -> Value {
    let names: Vec<&str> = specs
        .iter()
        .map(|s| s.name.as_str())
        .chain([UNSURE])
        .collect();
    let slot_properties: serde_json::Map<String, Value> = slots
        .iter()
        .map(|name| {
            (
                name.clone(),
                json!({ "type": ["string", "null"], "maxLength": SLOT_MAX_CHARS }),
            )
        })
        .collect();
    json!({
        "type": "object",
        "properties": {
            "intent": { "type": "string", "enum": names },
            "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
            "slots": {
                "type": "object",
                "properties": slot_properties,
                "required": slots,
                "additionalProperties": false
            },
            "reply": { "type": "string", "maxLength": reply_chars }
        },
        "required": ["intent", "confidence", "slots", "reply"],
        "additionalProperties": false
    })
}

/// The system prompt: the flow's persona and instructions, then the task,
/// each intent with its description and a few examples, and the fields to
/// answer.
fn system_prompt(
    config: &LlmConfig,
    specs: &[IntentSpec],
    slots: &[String],
    reply_chars: u32,
) -> String {
    let mut prompt = String::new();
    for part in [&config.persona, &config.instructions]
        .into_iter()
        .flatten()
    {
        let part = part.trim();
        if !part.is_empty() {
            prompt.push_str(part);
            prompt.push_str("\n\n");
        }
    }
    prompt.push_str("Work out what the caller wants. The intents on offer:\n");
    for spec in specs {
        prompt.push_str(&format!("- {}:", spec.name));
        let description = spec.description.trim();
        if !description.is_empty() {
            prompt.push(' ');
            prompt.push_str(description);
        }
        let examples: Vec<String> = spec
            .examples
            .iter()
            .take(EXAMPLES_IN_PROMPT)
            .map(|e| format!("\"{}\"", e.trim()))
            .collect();
        if !examples.is_empty() {
            prompt.push_str(&format!(" For example: {}.", examples.join("; ")));
        }
        prompt.push('\n');
    }
    prompt.push_str(&format!(
        "- {UNSURE}: none of these fits, the request is unclear, or the caller asks a question \
         instead.\n\nAnswer in JSON:\n- intent: one of the names above.\n- confidence: from 0 \
         to 1, how sure you are of the intent.\n"
    ));
    if slots.is_empty() {
        prompt.push_str("- slots: {}.\n");
    } else {
        prompt.push_str(&format!(
            "- slots: the value the caller gave for each of {}; null for those not given.\n",
            slots.join(", ")
        ));
    }
    if reply_chars == 0 {
        prompt.push_str("- reply: \"\".\n");
    } else {
        prompt.push_str(&format!(
            "- reply: if the intent is {UNSURE}, one short sentence for the caller (a clarifying \
             question, or a brief answer to their question), at most {reply_chars} characters; \
             otherwise \"\".\n"
        ));
    }
    prompt
}

/// What the model answered, as the schema asks.
#[derive(serde::Deserialize)]
struct Answer {
    intent: String,
    confidence: f64,
    #[serde(default)]
    slots: BTreeMap<String, Value>,
    #[serde(default)]
    reply: String,
}

/// An answer checked against the intents on offer.
#[derive(Debug, PartialEq)]
struct CheckedAnswer {
    /// `None` for [`UNSURE`].
    intent: Option<String>,
    confidence: f32,
    slots: BTreeMap<String, String>,
    reply: Option<String>,
}

impl CheckedAnswer {
    fn into_result(self, elapsed: Duration) -> IntentResult {
        let unsure = self.intent.is_none();
        // The model reports one intent and how sure it is: the only score.
        // Unsure, nothing was scored and the confidence means nothing.
        let (scores, confidence) = match &self.intent {
            Some(name) => (vec![(name.clone(), self.confidence)], self.confidence),
            None => (Vec::new(), 0.0),
        };
        IntentResult {
            intent: self.intent,
            confidence,
            margin: confidence,
            scores,
            unsure,
            elapsed,
            slots: self.slots,
            reply: self.reply,
            source: IntentSource::Llm,
        }
    }
}

/// Checks a chat completion: how it finished, that its content is the
/// schema's JSON, and that the intent is on offer. Slots the context does
/// not name, null or blank slot values are dropped; the confidence is
/// clamped to [0, 1].
fn read_answer(
    response: &CreateChatCompletionResponse,
    context: &IntentContext<'_>,
    max_tokens: u32,
) -> Result<CheckedAnswer, LlmError> {
    let choice = response.choices.first().ok_or(LlmError::NoAnswer)?;
    match choice.finish_reason {
        None | Some(FinishReason::Stop) => {}
        Some(FinishReason::Length) => return Err(LlmError::Truncated { max_tokens }),
        Some(FinishReason::ContentFilter) => {
            return Err(LlmError::UnexpectedFinish {
                reason: "content_filter",
            })
        }
        Some(FinishReason::ToolCalls) => {
            return Err(LlmError::UnexpectedFinish {
                reason: "tool_calls",
            })
        }
        Some(FinishReason::FunctionCall) => {
            return Err(LlmError::UnexpectedFinish {
                reason: "function_call",
            })
        }
    }
    if let Some(refusal) = &choice.message.refusal {
        return Err(LlmError::Refused(refusal.clone()));
    }
    let content = choice
        .message
        .content
        .as_deref()
        .ok_or(LlmError::NoAnswer)?;
    check_answer(content, context)
}

fn check_answer(content: &str, context: &IntentContext<'_>) -> Result<CheckedAnswer, LlmError> {
    let answer: Answer = serde_json::from_str(content).map_err(|source| LlmError::InvalidJson {
        content: content.chars().take(200).collect(),
        source,
    })?;
    let intent = if answer.intent == UNSURE {
        None
    } else if context
        .intents
        .specs()
        .iter()
        .any(|s| s.name == answer.intent)
    {
        Some(answer.intent)
    } else {
        return Err(LlmError::UnknownIntent {
            intent: answer.intent,
        });
    };
    let slots = answer
        .slots
        .into_iter()
        .filter(|(name, _)| context.slots.contains(name))
        .filter_map(|(name, value)| {
            let value = match value {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            (!value.is_empty()).then_some((name, value))
        })
        .collect();
    let reply = Some(answer.reply.trim().to_string()).filter(|r| !r.is_empty());
    Ok(CheckedAnswer {
        intent,
        // NaN cannot come out of JSON; clamp overshoots like 1.0000001.
        confidence: (answer.confidence as f32).clamp(0.0, 1.0),
        slots,
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<IntentSpec> {
        vec![
            IntentSpec::new(
                "billing",
                "Bills and payments.",
                &[
                    "my bill is wrong",
                    "I want to pay",
                    "a refund",
                    "a fourth one",
                ],
            ),
            IntentSpec::new("operator", "A person.", &[]),
        ]
    }

    fn completion(finish_reason: &str, content: &str) -> CreateChatCompletionResponse {
        serde_json::from_value(json!({
            "id": "x", "object": "chat.completion", "created": 0, "model": "local",
            "choices": [{
                "index": 0, "finish_reason": finish_reason,
                "message": { "role": "assistant", "content": content }
            }]
        }))
        .unwrap()
    }

    #[test]
    fn the_schema_offers_the_names_and_unsure_in_strict_form() {
        let slots = vec!["account".to_string()];
        let schema = response_schema(&specs(), &slots, 96);
        assert_eq!(
            schema["properties"]["intent"]["enum"],
            json!(["billing", "operator", "unsure"])
        );
        assert_eq!(schema["properties"]["reply"]["maxLength"], 96);
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"].as_array().unwrap().len(), 4);
        let slots_schema = &schema["properties"]["slots"];
        assert_eq!(slots_schema["required"], json!(["account"]));
        assert_eq!(slots_schema["additionalProperties"], false);
        assert_eq!(
            slots_schema["properties"]["account"]["type"],
            json!(["string", "null"])
        );
    }

    #[test]
    fn the_reply_leaves_room_for_the_rest_of_the_answer() {
        assert_eq!(reply_max_chars(160, 0), 96);
        assert_eq!(reply_max_chars(160, 1), 48);
        assert_eq!(reply_max_chars(10_000, 0), REPLY_MAX_CHARS);
        assert_eq!(reply_max_chars(8, 0), 0);
        assert_eq!(reply_max_chars(u32::MAX, usize::MAX), 0);
    }

    #[test]
    fn the_prompt_carries_the_flow() {
        let config = LlmConfig {
            persona: Some("You are Ava.".into()),
            instructions: Some("Never quote prices.".into()),
            ..LlmConfig::new("http://127.0.0.1:1/v1", "local")
        };
        let prompt = system_prompt(&config, &specs(), &[], 96);
        assert!(prompt.starts_with("You are Ava.\n\nNever quote prices.\n\n"));
        assert!(prompt.contains(
            "- billing: Bills and payments. For example: \"my bill is wrong\"; \"I want to pay\"; \"a refund\".\n"
        ));
        assert!(!prompt.contains("a fourth one"));
        assert!(prompt.contains("- operator: A person.\n"));
        assert!(prompt.contains("at most 96 characters"));
    }

    #[test]
    fn answers_are_checked() {
        let prepared = PreparedIntents::new(&specs()).unwrap();
        let slots = vec!["account".to_string()];
        let context = IntentContext::new(&prepared).with_slots(&slots);
        let ok = completion(
            "stop",
            r#"{"intent":"billing","confidence":1.0000001,"slots":{"account":" 1234 ","other":"x"},"reply":" "}"#,
        );
        let answer = read_answer(&ok, &context, 160).unwrap();
        assert_eq!(answer.intent.as_deref(), Some("billing"));
        assert_eq!(answer.confidence, 1.0);
        assert_eq!(
            answer.slots,
            BTreeMap::from([("account".to_string(), "1234".to_string())])
        );
        assert_eq!(answer.reply, None);

        let unsure = completion(
            "stop",
            r#"{"intent":"unsure","confidence":-0.2,"slots":{"account":null},"reply":"Is that about a bill?"}"#,
        );
        let result = read_answer(&unsure, &context, 160)
            .unwrap()
            .into_result(Duration::ZERO);
        assert!(result.unsure && result.intent.is_none() && result.scores.is_empty());
        assert_eq!(result.reply.as_deref(), Some("Is that about a bill?"));
        assert_eq!(result.source, IntentSource::Llm);

        let cut = completion("length", r#"{"intent":"bill"#);
        assert!(matches!(
            read_answer(&cut, &context, 8),
            Err(LlmError::Truncated { max_tokens: 8 })
        ));
        let filtered = completion("content_filter", "");
        assert!(matches!(
            read_answer(&filtered, &context, 160),
            Err(LlmError::UnexpectedFinish { .. })
        ));
        let prose = completion("stop", "The caller wants billing.");
        assert!(matches!(
            read_answer(&prose, &context, 160),
            Err(LlmError::InvalidJson { .. })
        ));
        let other = completion(
            "stop",
            r#"{"intent":"sales","confidence":0.9,"slots":{},"reply":""}"#,
        );
        assert!(matches!(
            read_answer(&other, &context, 160),
            Err(LlmError::UnknownIntent { intent }) if intent == "sales"
        ));
    }

    #[test]
    fn a_missing_key_variable_is_named() {
        let config = LlmConfig {
            api_key_env: Some("SWITCHBOARD_TEST_NO_SUCH_KEY_VARIABLE".into()),
            ..LlmConfig::new("http://127.0.0.1:1/v1", "local")
        };
        let error = LlmDetector::new(config).unwrap_err();
        assert!(
            matches!(&error, LlmError::MissingApiKey { var } if var == "SWITCHBOARD_TEST_NO_SUCH_KEY_VARIABLE")
        );
        assert!(error
            .to_string()
            .contains("$SWITCHBOARD_TEST_NO_SUCH_KEY_VARIABLE"));
    }
}
