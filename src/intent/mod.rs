//! Intent detection: what does the caller want, among the intents a flow
//! offers at this point of the call, or is it unclear?
//!
//! Every detector implements [`IntentDetector`]: the embedded sentence
//! classifier ([`EmbeddedClassifier`]), an LLM ([`LlmDetector`]) and a
//! hybrid of the two ([`HybridDetector`]); a flow picks one with
//! [`build_detector`]. The call order is:
//!
//! 1. When a flow loads, for each set of intents it offers:
//!    [`IntentDetector::prepare`] checks the set and precomputes what the
//!    detector needs (the embedded classifier embeds every example once and
//!    keeps one centroid per intent). Keep the [`PreparedIntents`] with the
//!    flow.
//! 2. On each caller turn: [`IntentDetector::detect`] with the transcript and
//!    an [`IntentContext`] pointing at the prepared set. Only the utterance
//!    is embedded.
//!
//! Both calls are blocking and CPU-bound. Async code runs them on a worker
//! thread (`tokio::task::spawn_blocking` or a dedicated pool), never on the
//! runtime's threads.
//!
//! A detector may answer "unsure" ([`IntentResult::intent`] is `None`): the
//! flow then asks a clarifying question instead of transferring the call.

mod embedded;
mod embedder;
mod hybrid;
mod llm;
mod select;

use std::collections::BTreeMap;
use std::time::Duration;

pub use embedded::{Calibration, EmbeddedClassifier, EmbeddedConfig};
pub use embedder::{cosine, SentenceEmbedder, EMBEDDING_DIM, MAX_TOKENS};
pub use hybrid::HybridDetector;
pub use llm::{response_schema, LlmConfig, LlmDetector, LlmError, UNSURE};
pub use select::{build_detector, DetectorConfig, DetectorKind, UnknownDetectorKind};

use crate::models::ModelError;
use crate::speech::stt::Transcript;

/// One thing a caller may want at a point of a flow, as the flow author
/// describes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IntentSpec {
    /// The name the flow routes on (`billing`), unique within a set.
    pub name: String,
    /// One sentence saying what the intent covers, in a caller's terms
    /// where possible. Embedded as one more example; an LLM reads it.
    #[serde(default)]
    pub description: String,
    /// Things a caller with this intent might say. A handful of varied,
    /// unambiguous sentences is enough; make direction explicit ("switch
    /// to you from another provider" versus "leave for another provider"):
    /// sentence embeddings are weak on it.
    #[serde(default)]
    pub examples: Vec<String>,
}

impl IntentSpec {
    /// A spec from string slices, mostly for tests and examples.
    pub fn new(name: &str, description: &str, examples: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            description: description.to_string(),
            examples: examples.iter().map(|e| e.to_string()).collect(),
        }
    }
}

/// A checked set of intents together with whatever a detector precomputed
/// for it. Made by [`IntentDetector::prepare`], once per set when a flow
/// loads; read by [`IntentDetector::detect`] on every turn.
#[derive(Clone, Debug)]
pub struct PreparedIntents {
    specs: Vec<IntentSpec>,
    /// One unit-length centroid per spec, same order, when an embedding
    /// detector prepared the set. `None` for detectors that need none.
    pub(crate) centroids: Option<Vec<Vec<f32>>>,
}

impl PreparedIntents {
    /// Checks a set of intents (at least one; names non-blank and unique;
    /// no blank examples) without precomputing anything. Detectors that
    /// need nothing more (an LLM reads the specs) use this as their
    /// `prepare`.
    pub fn new(specs: &[IntentSpec]) -> Result<Self, IntentError> {
        if specs.is_empty() {
            return Err(IntentError::NoIntents);
        }
        for (index, spec) in specs.iter().enumerate() {
            if spec.name.trim().is_empty() {
                return Err(IntentError::BlankName { index });
            }
            if specs[..index].iter().any(|s| s.name == spec.name) {
                return Err(IntentError::DuplicateIntent {
                    name: spec.name.clone(),
                });
            }
            if let Some(example) = spec.examples.iter().position(|e| e.trim().is_empty()) {
                return Err(IntentError::BlankExample {
                    intent: spec.name.clone(),
                    example,
                });
            }
        }
        Ok(Self {
            specs: specs.to_vec(),
            centroids: None,
        })
    }

    /// The intents, in the order they were given.
    pub fn specs(&self) -> &[IntentSpec] {
        &self.specs
    }
}

/// What a detector knows about the turn besides the utterance.
///
/// Non-exhaustive so that later detectors (an LLM reading the question the
/// agent just asked, or the previous turns) can get more fields without
/// breaking callers: build it with [`IntentContext::new`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct IntentContext<'a> {
    /// The intents on offer at this point of the flow, prepared by the
    /// same kind of detector that is asked.
    pub intents: &'a PreparedIntents,
    /// Names of the values the node listens for (its `slots`): an LLM
    /// fills those the caller gave in [`IntentResult::slots`]. Empty by
    /// default; the embedded classifier ignores them.
    pub slots: &'a [String],
}

impl<'a> IntentContext<'a> {
    pub fn new(intents: &'a PreparedIntents) -> Self {
        Self {
            intents,
            slots: &[],
        }
    }

    /// The same context, with the slot names of the node.
    pub fn with_slots(self, slots: &'a [String]) -> Self {
        Self { slots, ..self }
    }
}

/// Which detector gave an [`IntentResult`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentSource {
    /// The embedded sentence classifier; also the hybrid detector's answer
    /// when it did not ask the LLM, or the LLM failed.
    #[default]
    Embedded,
    /// The LLM (alone, or in the hybrid detector for an unsure turn).
    Llm,
}

/// A detector's answer for one utterance.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IntentResult {
    /// The intent to route on; `None` when the detector is unsure.
    pub intent: Option<String>,
    /// How likely the best-scoring intent is what the caller wants, in
    /// [0, 1]; 0 for an empty utterance. Reported even when unsure, so a
    /// flow can word its clarifying question.
    pub confidence: f32,
    /// Every intent with its score, best first. Scores are the detector's
    /// own (cosine similarities for the embedded classifier); empty when
    /// the utterance was empty and nothing was scored.
    pub scores: Vec<(String, f32)>,
    /// Best score minus the second best. With a single intent on offer the
    /// runner-up is "none of them" at 0, so the margin is the best score;
    /// 0 when nothing was scored.
    pub margin: f32,
    /// True exactly when `intent` is `None`.
    pub unsure: bool,
    /// Wall time spent detecting.
    #[serde(with = "crate::speech::stt::millis")]
    pub elapsed: Duration,
    /// Values the caller gave along the way, by slot name (of
    /// [`IntentContext::slots`]). Only an LLM fills them; empty otherwise.
    pub slots: BTreeMap<String, String>,
    /// A sentence for the caller that an LLM proposed: a clarifying
    /// question, or a short answer to a free-form question. `None` from
    /// the embedded classifier.
    pub reply: Option<String>,
    /// Which detector answered.
    pub source: IntentSource,
}

impl IntentResult {
    /// The answer for an utterance with no words in it: unsure, confidence
    /// 0, nothing scored.
    pub fn empty(elapsed: Duration) -> Self {
        Self {
            intent: None,
            confidence: 0.0,
            scores: Vec::new(),
            margin: 0.0,
            unsure: true,
            elapsed,
            slots: BTreeMap::new(),
            reply: None,
            source: IntentSource::Embedded,
        }
    }

    /// The best-scoring intent, even when unsure ("did you mean ...?").
    pub fn best(&self) -> Option<&str> {
        self.scores.first().map(|(name, _)| name.as_str())
    }
}

/// A transcript the recogniser was unsure of may still say clearly what
/// the caller wants: an intent at least this likely (0.7) to be right is
/// not worth a second, slower recognition.
pub const SURE_ENOUGH: f32 = 0.7;

/// ... unless the recogniser was this unsure (mean token probability below
/// 0.5): then its words are more guess than hearing (a language it does not
/// know, a noise it made words of), whatever intent they happen to match.
pub const GUESSED_WORDS: f32 = 0.5;

/// Whether to decode a turn again with the larger speech model, when the
/// first model was unsure of its transcript (`advised`, see
/// [`crate::speech::stt::Escalation::Defer`]) and this is what the flow
/// made of it: `intent` is `None` when the question offers no intents (a
/// slot), which always takes the second opinion.
///
/// On the fixtures (`switchboard replay`), re-decoding only the turns whose
/// intent is not [`SURE_ENOUGH`] routed 75 of 84 as the manifest says
/// against 74 when re-decoding every unsure transcript, with 13 second
/// decodes instead of 22: the larger model mishears too, and a route
/// already clear from the small model's words gains nothing from it but
/// half a second or more of silence.
pub fn second_opinion_wanted(
    advised: bool,
    recogniser_confidence: f32,
    intent: Option<&IntentResult>,
) -> bool {
    advised
        && (recogniser_confidence < GUESSED_WORDS
            || !intent.is_some_and(|i| i.intent.is_some() && i.confidence >= SURE_ENOUGH))
}

/// Which of two transcripts of one turn to act on, the first model's or
/// the larger one's second opinion, given what the flow made of each
/// (`None`: the question offers no intents). True for the second.
///
/// - The one the flow can route on, when the other's intent is unsure and
///   its words are heard rather than guessed (recogniser confidence at
///   least [`GUESSED_WORDS`]). The two models' confidences are close on
///   a word one of them mishears (live, on a 1 s "Operator.": tiny.en
///   "Appar eater." at 0.72, base "Operator." at 0.70); the flow's
///   intents are the context that tells which hearing makes sense, as a
///   recogniser's language model would. Guessed words do not count: both
///   models make sentences of a rumble, and one of them may happen to
///   match an intent.
/// - Otherwise (a slot, both or neither route): the recognisers' own
///   measure, the more confident hearing, ties to the second.
pub fn second_hearing_better(
    first: &Transcript,
    first_intent: Option<&IntentResult>,
    second: &Transcript,
    second_intent: Option<&IntentResult>,
) -> bool {
    let routes = |heard: &Transcript, intent: Option<&IntentResult>| {
        heard.confidence >= GUESSED_WORDS && intent.is_some_and(|i| i.intent.is_some())
    };
    match (routes(first, first_intent), routes(second, second_intent)) {
        (true, false) => false,
        (false, true) => true,
        _ => second.confidence >= first.confidence,
    }
}

/// Why intents could not be prepared or detected.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    /// A model file is missing, corrupt or unreadable.
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("an intent set needs at least one intent")]
    NoIntents,
    #[error("intent #{} has a blank name", index + 1)]
    BlankName { index: usize },
    #[error("intent {name:?} is listed twice")]
    DuplicateIntent { name: String },
    #[error("intent {intent:?}: example #{} is blank", example + 1)]
    BlankExample { intent: String, example: usize },
    #[error("intent {intent:?} has neither a description nor examples: add a few things a caller would say")]
    NothingToEmbed { intent: String },
    /// `detect` was given a set prepared by a detector that precomputed
    /// nothing for this one (for example by `PreparedIntents::new`).
    #[error("the intent set was not prepared by the {detector} detector: prepare it with that detector when the flow loads")]
    NotPrepared { detector: &'static str },
    #[error("cannot tokenise {text:?}: {source}")]
    Tokenize {
        /// The start of the text.
        text: String,
        source: tokenizers::Error,
    },
    #[error("sentence embedding failed: {0}")]
    Inference(#[from] ort::Error),
    /// The model gave an output of another shape than `[sentences, 384]`
    /// (a model file other than the catalogue's).
    #[error(
        "sentence embedding: the model's output has shape {shape:?}, expected [sentences, 384]"
    )]
    BadEmbedding { shape: Vec<i64> },
    /// The LLM could not be set up, or gave no usable answer.
    #[error(transparent)]
    Llm(#[from] LlmError),
}

/// Something that works out a caller's intent. Implementations are shared
/// between threads; calls may run concurrently.
pub trait IntentDetector: Send + Sync {
    /// Checks a set of intents and precomputes what this detector needs to
    /// score utterances against it. Blocking; call once per set, when the
    /// flow loads, and keep the result.
    fn prepare(&self, intents: &[IntentSpec]) -> Result<PreparedIntents, IntentError> {
        PreparedIntents::new(intents)
    }

    /// Works out which of `context.intents` the caller means by
    /// `utterance` (a transcript), or that it is unclear. Blocking.
    fn detect(
        &self,
        utterance: &str,
        context: &IntentContext<'_>,
    ) -> Result<IntentResult, IntentError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_opinion_is_for_unsure_words_that_say_nothing_sure() {
        let mut sure = IntentResult::empty(Duration::ZERO);
        sure.intent = Some("billing".into());
        sure.unsure = false;
        sure.confidence = 0.9;
        let unsure = IntentResult::empty(Duration::ZERO);
        assert!(!second_opinion_wanted(false, 0.3, None), "not advised");
        assert!(!second_opinion_wanted(true, 0.7, Some(&sure)));
        assert!(second_opinion_wanted(true, 0.7, Some(&unsure)));
        assert!(second_opinion_wanted(true, 0.7, None), "a slot");
        assert!(
            second_opinion_wanted(true, 0.4, Some(&sure)),
            "guessed words"
        );
        let mut likely = sure.clone();
        likely.confidence = 0.6;
        assert!(second_opinion_wanted(true, 0.7, Some(&likely)));
    }

    #[test]
    fn the_hearing_acted_on_is_the_one_the_flow_can_route() {
        let heard = |text: &str, confidence: f32| Transcript {
            text: text.into(),
            confidence,
            ..Default::default()
        };
        let routed = |intent: &str, confidence: f32| {
            let mut r = IntentResult::empty(Duration::ZERO);
            r.intent = Some(intent.into());
            r.unsure = false;
            r.confidence = confidence;
            r
        };
        let unsure = IntentResult::empty(Duration::ZERO);
        let operator = routed("operator", 0.21);
        // Heard live on one "Operator.".
        let tiny = heard("Appar eater.", 0.72);
        let base = heard("Operator.", 0.70);
        assert!(second_hearing_better(
            &tiny,
            Some(&unsure),
            &base,
            Some(&operator)
        ));
        assert!(!second_hearing_better(
            &base,
            Some(&operator),
            &tiny,
            Some(&unsure)
        ));
        // Guessed words route nothing (fixture noise-04-rumble).
        let rumble = heard("I'm going to go to the end of the road.", 0.25);
        let sorry = heard("I'm sorry.", 0.26);
        assert!(second_hearing_better(
            &rumble,
            Some(&routed("cancel", 0.25)),
            &sorry,
            Some(&unsure)
        ));
        // Both route, neither does, or a slot: the more confident.
        let billing = routed("billing", 0.9);
        assert!(!second_hearing_better(
            &tiny,
            Some(&operator),
            &base,
            Some(&billing)
        ));
        assert!(!second_hearing_better(
            &tiny,
            Some(&unsure),
            &base,
            Some(&unsure)
        ));
        assert!(second_hearing_better(&base, None, &tiny, None));
    }

    #[test]
    fn a_set_is_checked() {
        let ok = IntentSpec::new("billing", "bills", &["my bill"]);
        assert!(matches!(
            PreparedIntents::new(&[]),
            Err(IntentError::NoIntents)
        ));
        assert!(matches!(
            PreparedIntents::new(&[ok.clone(), IntentSpec::new(" ", "", &["x"])]),
            Err(IntentError::BlankName { index: 1 })
        ));
        assert!(matches!(
            PreparedIntents::new(&[ok.clone(), ok.clone()]),
            Err(IntentError::DuplicateIntent { name }) if name == "billing"
        ));
        assert!(matches!(
            PreparedIntents::new(&[IntentSpec::new("sales", "", &["buy", "\t"])]),
            Err(IntentError::BlankExample { intent, example: 1 }) if intent == "sales"
        ));
        let prepared = PreparedIntents::new(std::slice::from_ref(&ok)).unwrap();
        assert_eq!(prepared.specs(), &[ok]);
        assert!(prepared.centroids.is_none());
    }

    #[test]
    fn error_messages_point_at_the_intent() {
        let e = IntentError::BlankExample {
            intent: "sales".into(),
            example: 2,
        };
        assert_eq!(e.to_string(), "intent \"sales\": example #3 is blank");
    }

    #[test]
    fn specs_read_from_yaml_default_missing_fields() {
        let spec: IntentSpec = serde_yaml::from_str("name: operator\n").unwrap();
        assert_eq!(spec, IntentSpec::new("operator", "", &[]));
    }
}
