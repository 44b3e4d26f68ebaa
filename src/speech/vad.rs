//! Voice activity with earshot: a small pure-Rust network that scores 16 ms
//! frames of 16 kHz audio. Unlike energy or webrtc-vad it rejects tones and
//! white noise (see `docs/architecture.md`).

use crate::audio::resample::resample;
use crate::audio::{f32_to_i16, SampleRate, Samples};

/// Samples per earshot frame (16 ms at 16 kHz).
pub const FRAME: usize = 256;

/// Score above which a frame counts as voice.
pub const VOICE_THRESHOLD: f32 = 0.5;

/// Scores every whole 16 ms frame of `audio` (any rate) in [0, 1].
pub fn frame_scores(audio: &Samples) -> Vec<f32> {
    let audio = if audio.rate == SampleRate::SPEECH_RECOGNITION {
        std::borrow::Cow::Borrowed(audio)
    } else {
        std::borrow::Cow::Owned(resample(audio, SampleRate::SPEECH_RECOGNITION))
    };
    let pcm: Vec<i16> = audio.data.iter().map(|s| f32_to_i16(*s)).collect();
    let mut detector = earshot::Detector::default();
    pcm.chunks_exact(FRAME)
        .map(|frame| detector.predict_i16(frame).clamp(0.0, 1.0))
        .collect()
}

/// Total duration of frames scored as voice.
pub fn voiced_duration(audio: &Samples) -> std::time::Duration {
    let voiced = frame_scores(audio)
        .iter()
        .filter(|s| **s > VOICE_THRESHOLD)
        .count();
    std::time::Duration::from_millis(voiced as u64 * 16)
}
