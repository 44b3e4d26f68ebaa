//! The hybrid detector: the embedded classifier first, the LLM for what it
//! is unsure of.
//!
//! Most turns are plain requests the embedded classifier routes in about
//! 10 ms; those never reach the LLM. An unsure turn (off-topic, a near tie,
//! a free-form question) goes to the LLM, which may pick an intent, or stay
//! unsure and propose a reply (a clarifying question, a short answer). If
//! the LLM fails in any way (down, late past its timeout, a cut-off or
//! invalid answer), the embedded answer stands: the caller hears the flow's
//! own clarifying question, a little later, instead of nothing.

use std::time::Instant;

use super::{
    EmbeddedClassifier, IntentContext, IntentDetector, IntentError, IntentResult, IntentSource,
    IntentSpec, LlmDetector, PreparedIntents,
};

/// Embedded first, the LLM for unsure turns, the embedded answer when the
/// LLM fails.
#[derive(Debug)]
pub struct HybridDetector {
    embedded: EmbeddedClassifier,
    llm: LlmDetector,
}

impl HybridDetector {
    pub fn new(embedded: EmbeddedClassifier, llm: LlmDetector) -> Self {
        Self { embedded, llm }
    }

    pub fn embedded(&self) -> &EmbeddedClassifier {
        &self.embedded
    }

    pub fn llm(&self) -> &LlmDetector {
        &self.llm
    }
}

impl IntentDetector for HybridDetector {
    /// The embedded classifier's preparation (centroids); the LLM reads
    /// the specs kept with them.
    fn prepare(&self, intents: &[IntentSpec]) -> Result<PreparedIntents, IntentError> {
        self.embedded.prepare(intents)
    }

    /// The embedded answer when it is sure (or the utterance is empty);
    /// otherwise the LLM's, with the embedded scores and margin kept when
    /// the LLM is unsure too (so [`IntentResult::best`] still offers a
    /// guess). Errors only when the embedded classifier fails; an LLM
    /// failure is logged and the embedded answer returned.
    fn detect(
        &self,
        utterance: &str,
        context: &IntentContext<'_>,
    ) -> Result<IntentResult, IntentError> {
        let start = Instant::now();
        let embedded = self.embedded.detect(utterance, context)?;
        if !embedded.unsure || utterance.trim().is_empty() {
            return Ok(embedded);
        }
        match self.llm.detect(utterance, context) {
            Ok(llm) if llm.unsure => Ok(IntentResult {
                slots: llm.slots,
                reply: llm.reply,
                source: IntentSource::Llm,
                elapsed: start.elapsed(),
                ..embedded
            }),
            Ok(llm) => Ok(IntentResult {
                elapsed: start.elapsed(),
                ..llm
            }),
            Err(error) => {
                tracing::warn!("LLM intent detection failed, keeping the embedded answer: {error}");
                Ok(IntentResult {
                    elapsed: start.elapsed(),
                    ..embedded
                })
            }
        }
    }
}
