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

/// Audio kept before a sentence's first sound (10 ms): enough for the
/// attack of the first phoneme, which starts below the threshold.
const LEAD_IN: Duration = Duration::from_millis(10);

/// Takes off the silence a voice puts before a sentence, all but
/// [`LEAD_IN`]: every millisecond of it is a millisecond longer the caller
/// waits for the answer. The first sound is the first 5 ms window whose RMS
/// comes within 40 dB of the sentence's loudest window (quiet room tone in
/// the model's output stays below). The end is kept: the silence after a
/// sentence is the pause before the next one.
pub fn trim_leading_silence(audio: Samples) -> Samples {
    let window = (audio.rate.0 as usize / 200).max(1);
    let rms = |w: &[f32]| (w.iter().map(|s| s * s).sum::<f32>() / w.len().max(1) as f32).sqrt();
    let loudest = audio.data.chunks(window).map(rms).fold(0.0f32, f32::max);
    if loudest <= 0.0 {
        return audio;
    }
    let threshold = loudest * 0.01; // -40 dB
    let Some(first) = audio.data.chunks(window).position(|w| rms(w) >= threshold) else {
        return audio;
    };
    let keep = (LEAD_IN.as_secs_f64() * audio.rate.0 as f64) as usize;
    let start = (first * window).saturating_sub(keep);
    if start == 0 {
        return audio;
    }
    Samples::new(audio.rate, audio.data[start..].to_vec())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_silence_is_cut_to_the_lead_in_and_the_end_is_kept() {
        let rate = SampleRate(8000);
        let mut data = vec![0.0005f32; 800]; // 100 ms of room tone at -66 dBFS
        data.extend((0..1600).map(|i| 0.5 * (i as f32 * 0.3).sin())); // 200 ms of sound
        data.extend(vec![0.0f32; 1600]); // 200 ms of silence after
        let trimmed = trim_leading_silence(Samples::new(rate, data.clone()));
        // 10 ms of lead-in kept before the sound.
        assert_eq!(trimmed.data.len(), data.len() - 800 + 80);
        assert_eq!(trimmed.data[80..], data[800..]);
        // Silence only, or sound from the start: unchanged.
        let silent = Samples::new(rate, vec![0.0; 400]);
        assert_eq!(trim_leading_silence(silent.clone()).data, silent.data);
        let loud = Samples::new(rate, data[800..].to_vec());
        assert_eq!(trim_leading_silence(loud.clone()).data, loud.data);
    }
}
