//! Text-to-speech behind one trait, yielding audio one sentence at a time
//! so playback can start as soon as the first sentence is ready.

mod piper;

use std::time::{Duration, Instant};

pub use piper::PiperTts;

use crate::audio::resample::resample;
use crate::audio::{SampleRate, Samples};
use crate::models::ModelError;
use crate::speech::text::sentences;

/// Why synthesis failed.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("speech synthesis failed: {0}")]
    Synthesis(String),
}

/// A speech synthesiser. Blocking; shared between threads.
pub trait TextToSpeech: Send + Sync {
    /// Synthesises one sentence at the voice's own rate.
    fn synthesize(&self, sentence: &str) -> Result<Samples, TtsError>;
}

/// One synthesised sentence.
#[derive(Clone, Debug)]
pub struct SpokenSentence {
    pub text: String,
    pub audio: Samples,
    /// Time spent synthesising it.
    pub elapsed: Duration,
}

/// Synthesises `text` sentence by sentence at `rate`. Each item is ready as
/// soon as its own sentence is; nothing waits for the whole text.
pub fn speak<'a>(
    tts: &'a dyn TextToSpeech,
    text: &str,
    rate: SampleRate,
) -> impl Iterator<Item = Result<SpokenSentence, TtsError>> + 'a {
    sentences(text).into_iter().map(move |sentence| {
        let started = Instant::now();
        let audio = tts.synthesize(&sentence)?;
        Ok(SpokenSentence {
            text: sentence,
            audio: resample(&audio, rate),
            elapsed: started.elapsed(),
        })
    })
}
