//! Frame-by-frame voice activity for a live stream: the earshot model of
//! [`crate::speech::vad`] (same frame size, same threshold), fed 20 ms
//! telephone frames one at a time.
//!
//! [`vad::frame_scores`] scores a whole recording, resampling it in one go;
//! a call's audio arrives 20 ms at a time and the detector must keep its
//! state between frames. 8 kHz frames are brought to the model's 16 kHz by
//! a small streaming interpolator (a windowed-sinc half-band filter) whose
//! history carries over from one frame to the next, so frame boundaries
//! leave no mark on the scores.

use crate::audio::resample::resample;
use crate::audio::{f32_to_i16, SampleRate, Samples};
use crate::speech::vad;

/// Taps on each side of an interpolated half-sample point: 16 taps in all,
/// a Blackman-windowed sinc. The telephone band ends at 3.4 kHz, well below
/// the filter's 4 kHz edge, so a short filter loses nothing of the voice.
const HALF_TAPS: usize = 8;

/// Streaming earshot scores of one audio stream. One per stream: the model
/// is recurrent.
pub struct VoiceDetector {
    /// The model, boxed: its state is some 8 KiB.
    model: Box<earshot::Detector>,
    /// 8 kHz to 16 kHz, with its history.
    interpolator: HalfBandInterpolator,
    /// 16 kHz samples not yet making a whole model frame.
    pending: Vec<i16>,
    /// The last score, returned again for a frame too short to complete a
    /// model frame.
    last_score: f32,
}

impl std::fmt::Debug for VoiceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceDetector")
            .field("pending", &self.pending.len())
            .field("last_score", &self.last_score)
            .finish_non_exhaustive()
    }
}

impl Default for VoiceDetector {
    fn default() -> Self {
        VoiceDetector::new()
    }
}

impl VoiceDetector {
    pub fn new() -> Self {
        VoiceDetector {
            model: earshot::Detector::default_boxed(),
            interpolator: HalfBandInterpolator::new(),
            pending: Vec::with_capacity(2 * vad::FRAME),
            last_score: 0.0,
        }
    }

    /// Scores the next frame of the stream in [0, 1]: the highest score of
    /// the model frames (16 ms) it completes. Voice is a score above
    /// [`vad::VOICE_THRESHOLD`].
    pub fn score(&mut self, frame: &Samples) -> f32 {
        match frame.rate {
            SampleRate::TELEPHONE => {
                for &sample in &frame.data {
                    let [even, odd] = self.interpolator.push(sample);
                    self.pending.push(f32_to_i16(even));
                    self.pending.push(f32_to_i16(odd));
                }
            }
            SampleRate::SPEECH_RECOGNITION => {
                self.pending
                    .extend(frame.data.iter().map(|s| f32_to_i16(*s)));
            }
            _ => {
                // Not a rate a call leg produces; frame by frame resampling
                // is good enough for a score.
                let wide = resample(frame, SampleRate::SPEECH_RECOGNITION);
                self.pending
                    .extend(wide.data.iter().map(|s| f32_to_i16(*s)));
            }
        }
        let whole = self.pending.len() / vad::FRAME * vad::FRAME;
        if whole > 0 {
            let model = &mut self.model;
            let best = self.pending[..whole]
                .chunks_exact(vad::FRAME)
                .map(|chunk| model.predict_i16(chunk).clamp(0.0, 1.0))
                .fold(0.0f32, f32::max);
            self.pending.drain(..whole);
            self.last_score = best;
        }
        self.last_score
    }
}

/// Doubles the sample rate: each input sample is output as is, followed by
/// the half-sample point between it and the next, interpolated by a
/// windowed sinc. The output lags the input by `HALF_TAPS` input samples
/// (1 ms at 8 kHz).
struct HalfBandInterpolator {
    /// The last `2 * HALF_TAPS` input samples, oldest first.
    history: [f32; 2 * HALF_TAPS],
    /// Weights of `history` for the point between its two middle samples.
    weights: [f32; 2 * HALF_TAPS],
}

impl HalfBandInterpolator {
    fn new() -> Self {
        let mut weights = [0.0f32; 2 * HALF_TAPS];
        let span = (2 * HALF_TAPS) as f64;
        for (i, weight) in weights.iter_mut().enumerate() {
            // Distance of sample i from the half-sample point, in samples.
            let x = i as f64 - (HALF_TAPS as f64 - 0.5);
            let sinc = (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x);
            // Blackman window over the taps' span, centred on the point.
            let phase = std::f64::consts::TAU * (x + span / 2.0) / span;
            let window = 0.42 - 0.5 * phase.cos() + 0.08 * (2.0 * phase).cos();
            *weight = (sinc * window) as f32;
        }
        let sum: f32 = weights.iter().sum();
        for weight in &mut weights {
            *weight /= sum;
        }
        HalfBandInterpolator {
            history: [0.0; 2 * HALF_TAPS],
            weights,
        }
    }

    /// Takes one input sample; returns two output samples.
    fn push(&mut self, sample: f32) -> [f32; 2] {
        self.history.copy_within(1.., 0);
        self.history[2 * HALF_TAPS - 1] = sample;
        let between: f32 = self
            .history
            .iter()
            .zip(&self.weights)
            .map(|(x, w)| x * w)
            .sum();
        [self.history[HALF_TAPS - 1], between]
    }
}

/// Level of a frame in dBFS, with digital silence at -100 rather than
/// minus infinity so that levels can be averaged and compared.
pub fn level_dbfs(frame: &Samples) -> f32 {
    frame.rms_dbfs().max(SILENCE_DBFS)
}

/// The level given to digital silence.
pub const SILENCE_DBFS: f32 = -100.0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::turn::test_signal::{frames, tone, voice, white_noise};
    use std::time::Duration;

    #[test]
    fn interpolation_keeps_a_tone_and_its_level() {
        let mut interpolator = HalfBandInterpolator::new();
        let input = tone(1_000.0, -10.0, Duration::from_millis(200));
        let mut output = Vec::new();
        for &s in &input.data {
            output.extend(interpolator.push(s));
        }
        // Skip the start-up; the level of a 1 kHz tone is unchanged.
        let wide = Samples::new(SampleRate::SPEECH_RECOGNITION, output[400..].to_vec());
        assert!((wide.rms_dbfs() + 10.0).abs() < 0.2, "{}", wide.rms_dbfs());
        // And it is still a 1 kHz tone, with no image at 7 kHz.
        assert!(wide.tone_amplitude(1_000.0) > 0.4);
        assert!(wide.tone_amplitude(7_000.0) < 0.01);
    }

    #[test]
    fn formant_voice_is_voice_and_white_noise_is_not() {
        let mut detector = VoiceDetector::new();
        let talk = voice(Duration::from_secs(1), -20.0, 1);
        let voiced = frames(&talk)
            .filter(|frame| detector.score(frame) > vad::VOICE_THRESHOLD)
            .count();
        assert!(voiced >= 45, "{voiced} of 50 frames of voice");
        let mut detector = VoiceDetector::new();
        let hiss = white_noise(-40.0, Duration::from_secs(1), 3);
        let voiced = frames(&hiss)
            .filter(|frame| detector.score(frame) > vad::VOICE_THRESHOLD)
            .count();
        assert_eq!(voiced, 0, "white noise scored as voice");
    }

    #[test]
    fn silence_scores_zero_and_levels_stay_finite() {
        let mut detector = VoiceDetector::new();
        let silence = Samples::silence(SampleRate::TELEPHONE, Duration::from_millis(20));
        assert!(detector.score(&silence) < vad::VOICE_THRESHOLD);
        assert_eq!(level_dbfs(&silence), SILENCE_DBFS);
    }
}
