//! Speech-to-text behind one trait.
//!
//! [`SpeechToText::transcribe`] is blocking and CPU-bound. Async code never
//! calls it directly: it goes through [`SttPool`], a fixed set of worker
//! threads fed by a bounded queue, so inference never runs on the runtime's
//! threads and load turns into queueing, not into more threads.

mod cpu;
mod pool;
mod whisper;

use std::path::Path;
use std::time::Duration;

pub use pool::SttPool;
pub use whisper::{WhisperConfig, WhisperStt};

use crate::audio::Samples;
use crate::models::ModelError;

/// What a recogniser heard.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Transcript {
    /// The text, empty when nothing was said.
    pub text: String,
    /// Detected or forced language (ISO 639-1), when the model knows.
    pub language: Option<String>,
    /// The model's probability that the audio holds no speech.
    pub no_speech_probability: f32,
    /// Mean probability of the text tokens: a confidence in [0, 1].
    pub confidence: f32,
    /// Length of the audio.
    #[serde(with = "millis")]
    pub audio: Duration,
    /// Wall time spent recognising.
    #[serde(with = "millis")]
    pub elapsed: Duration,
    /// Decoding passes: 1, or more when a guard made it decode again.
    pub passes: u8,
    /// Which model produced the text.
    pub model: String,
    /// The model was unsure of the text and a larger one could decode it
    /// again, but [`Escalation::Defer`] left that to the requester.
    pub second_opinion: bool,
}

impl Transcript {
    /// One of a first transcript and a second opinion on the same audio
    /// (see [`crate::intent::second_hearing_better`]), with the wall time
    /// and passes of both (the caller waited for both).
    pub fn settle(self, second: Transcript, take_second: bool) -> Transcript {
        let elapsed = self.elapsed + second.elapsed;
        let passes = self.passes + second.passes;
        let mut chosen = if take_second { second } else { self };
        chosen.elapsed = elapsed;
        chosen.passes = passes;
        chosen.second_opinion = false;
        chosen
    }
}

/// The default recogniser: English tiny.en, with the multilingual base
/// model re-decoding what tiny.en is unsure of (and identifying a caller's
/// language when it is not English). Both files are hash-checked.
pub fn load_default(models: &Path, config: WhisperConfig) -> Result<WhisperStt, ModelError> {
    let tiny = crate::models::verified_path(models, "whisper-tiny.en")?;
    let base = crate::models::verified_path(models, "whisper-base")?;
    let escalation = WhisperStt::load(
        &base,
        WhisperConfig {
            language: None,
            ..config.clone()
        },
    )?;
    Ok(WhisperStt::load(&tiny, config)?.with_escalation(escalation))
}

/// Per-request hints.
#[derive(Clone, Debug, Default)]
pub struct TranscribeOptions {
    /// Text that primes the decoder with the expected vocabulary (Whisper's
    /// initial prompt), for example the call flow's intent names.
    pub prompt: Option<String>,
    /// Set once nobody waits for the result any more (the caller went on
    /// talking, or hung up): a decode not yet started is skipped, and one
    /// under way stops at its next step.
    pub cancel: Option<Cancel>,
    /// Whether the larger model, if there is one, decodes again what the
    /// first one is unsure of.
    pub escalation: Escalation,
}

/// When a recogniser with a larger second model uses it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Escalation {
    /// Decode again whenever the first model is unsure.
    #[default]
    Auto,
    /// The first model only; [`Transcript::second_opinion`] says whether
    /// the larger one would have decoded again, and the requester decides
    /// (the call flow may already understand the text: see
    /// [`crate::intent::second_opinion_wanted`]).
    Defer,
    /// The larger model only: the second opinion a `Defer` advised.
    Only,
}

/// A flag that abandons a recognition (see [`TranscribeOptions::cancel`]).
#[derive(Clone, Debug, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The flag's address, for a C callback that reads it while this
    /// `Cancel` (or a clone) is alive.
    pub(crate) fn flag_ptr(&self) -> *mut std::ffi::c_void {
        std::sync::Arc::as_ptr(&self.0) as *mut std::ffi::c_void
    }
}

/// Why recognition failed.
#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("speech recognition failed: {0}")]
    Inference(String),
    #[error("the speech recogniser has shut down")]
    Closed,
    #[error("speech recognition was abandoned")]
    Cancelled,
}

/// A speech recogniser. Implementations are shared between threads; each
/// call may run concurrently with others.
pub trait SpeechToText: Send + Sync {
    /// Recognises one utterance (any sample rate). Blocking.
    fn transcribe(
        &self,
        audio: &Samples,
        options: &TranscribeOptions,
    ) -> Result<Transcript, SttError>;
}

pub(crate) mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0)
    }
}
