//! Audio as typed buffers: every buffer carries its sample rate, so a
//! 16 kHz buffer can never be sent where 8 kHz telephone audio is expected
//! without an explicit [`resample`](resample::resample).

pub mod decode;
pub mod resample;
pub mod telephone;
pub mod wav;

use std::fmt;
use std::time::Duration;

pub use decode::{read_file, AudioError};

/// A sample rate in hertz.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SampleRate(pub u32);

impl SampleRate {
    /// The G.711 telephone rate.
    pub const TELEPHONE: SampleRate = SampleRate(8_000);
    /// The rate Whisper and the voice activity detector expect.
    pub const SPEECH_RECOGNITION: SampleRate = SampleRate(16_000);

    pub fn hz(self) -> u32 {
        self.0
    }
}

impl fmt::Display for SampleRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Hz", self.0)
    }
}

/// Mono audio as 32-bit floats in [-1, 1] at a known rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    pub rate: SampleRate,
    pub data: Vec<f32>,
}

impl Samples {
    pub fn new(rate: SampleRate, data: Vec<f32>) -> Self {
        Samples { rate, data }
    }

    pub fn silence(rate: SampleRate, duration: Duration) -> Self {
        let n = (duration.as_secs_f64() * rate.0 as f64).round() as usize;
        Samples::new(rate, vec![0.0; n])
    }

    pub fn duration(&self) -> Duration {
        if self.rate.0 == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.data.len() as f64 / self.rate.0 as f64)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Root-mean-square level in dBFS (-inf for digital silence).
    pub fn rms_dbfs(&self) -> f32 {
        if self.data.is_empty() {
            return f32::NEG_INFINITY;
        }
        let energy: f64 = self.data.iter().map(|s| (*s as f64) * (*s as f64)).sum();
        let rms = (energy / self.data.len() as f64).sqrt();
        (20.0 * rms.log10()) as f32
    }

    /// Amplitude of the `hz` component relative to full scale (1.0 for a
    /// full-scale sine), by a single-bin DFT: enough to tell that a tone or
    /// a band of speech really arrived, not just some energy.
    pub fn tone_amplitude(&self, hz: f64) -> f64 {
        if self.data.is_empty() || self.rate.0 == 0 {
            return 0.0;
        }
        let (mut real, mut imaginary) = (0.0f64, 0.0f64);
        for (n, &sample) in self.data.iter().enumerate() {
            let phase = std::f64::consts::TAU * hz * n as f64 / self.rate.0 as f64;
            real += f64::from(sample) * phase.cos();
            imaginary -= f64::from(sample) * phase.sin();
        }
        2.0 * (real * real + imaginary * imaginary).sqrt() / self.data.len() as f64
    }

    /// Appends `other`, which must have the same rate.
    pub fn extend(&mut self, other: &Samples) {
        debug_assert_eq!(self.rate, other.rate, "appending audio of another rate");
        self.data.extend_from_slice(&other.data);
    }

    /// Converts to 16-bit PCM with saturation.
    pub fn to_i16(&self) -> Vec<i16> {
        self.data.iter().map(|s| f32_to_i16(*s)).collect()
    }

    pub fn from_i16(rate: SampleRate, data: &[i16]) -> Self {
        Samples::new(rate, data.iter().map(|s| *s as f32 / 32768.0).collect())
    }
}

pub fn f32_to_i16(s: f32) -> i16 {
    (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}
