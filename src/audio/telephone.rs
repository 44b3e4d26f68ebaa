//! A simulated telephone channel: what a caller's voice goes through before
//! it reaches the agent. Band-limited to 300-3400 Hz, resampled to 8 kHz,
//! light background noise added, and quantised by a G.711 codec.
//!
//! Deterministic: the noise comes from a seeded generator, so a fixture
//! made twice is the same file.

use super::resample::resample;
use super::{f32_to_i16, SampleRate, Samples};
use crate::media::g711::Law;

/// Settings of the simulated line.
#[derive(Clone, Copy, Debug)]
pub struct TelephoneChannel {
    /// The codec on the line.
    pub law: Law,
    /// Level of the added white noise in dBFS; `None` adds none.
    pub noise_dbfs: Option<f32>,
    /// Seed of the noise generator.
    pub seed: u64,
    /// Lower and upper edges of the pass band in hertz.
    pub band: (f32, f32),
}

impl Default for TelephoneChannel {
    fn default() -> Self {
        TelephoneChannel {
            law: Law::MuLaw,
            // "Light" noise: audible in pauses, some 40 dB under speech.
            noise_dbfs: Some(-60.0),
            seed: 1,
            band: (300.0, 3400.0),
        }
    }
}

impl TelephoneChannel {
    /// Passes audio through the line; the result is 8 kHz.
    pub fn transmit(&self, input: &Samples) -> Samples {
        let mut band = input.clone();
        if band.rate.0 > 2 * self.band.1 as u32 {
            // Band-limit at the input rate, before decimation, with two
            // cascaded second-order sections at each edge (24 dB/octave).
            for _ in 0..2 {
                Biquad::high_pass(band.rate, self.band.0).run(&mut band.data);
                Biquad::low_pass(band.rate, self.band.1).run(&mut band.data);
            }
        }
        let mut line = resample(&band, SampleRate::TELEPHONE);
        if band.rate.0 <= 2 * self.band.1 as u32 {
            for _ in 0..2 {
                Biquad::high_pass(line.rate, self.band.0).run(&mut line.data);
            }
        }
        if let Some(dbfs) = self.noise_dbfs {
            let amplitude = 10f32.powf(dbfs / 20.0) * 3f32.sqrt();
            let mut rng = XorShift::new(self.seed);
            for s in &mut line.data {
                *s += amplitude * rng.next_signed_unit();
            }
        }
        for s in &mut line.data {
            *s = self.law.decode(self.law.encode(f32_to_i16(*s))) as f32 / 32768.0;
        }
        line
    }
}

/// A second-order IIR section (RBJ audio-EQ cookbook), Q = 1/sqrt(2).
struct Biquad {
    b: [f32; 3],
    a: [f32; 2],
}

impl Biquad {
    fn low_pass(rate: SampleRate, cutoff: f32) -> Biquad {
        let (cos, alpha) = Self::prewarp(rate, cutoff);
        let a0 = 1.0 + alpha;
        let b1 = (1.0 - cos) / a0;
        Biquad {
            b: [b1 / 2.0, b1, b1 / 2.0],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
        }
    }

    fn high_pass(rate: SampleRate, cutoff: f32) -> Biquad {
        let (cos, alpha) = Self::prewarp(rate, cutoff);
        let a0 = 1.0 + alpha;
        let b1 = -(1.0 + cos) / a0;
        Biquad {
            b: [-b1 / 2.0, b1, -b1 / 2.0],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
        }
    }

    fn prewarp(rate: SampleRate, cutoff: f32) -> (f32, f32) {
        let w0 = 2.0 * std::f32::consts::PI * cutoff / rate.0 as f32;
        (w0.cos(), w0.sin() / (2.0 * std::f32::consts::FRAC_1_SQRT_2))
    }

    fn run(&self, data: &mut [f32]) {
        let (mut x1, mut x2, mut y1, mut y2) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for s in data {
            let x = *s;
            let y =
                self.b[0] * x + self.b[1] * x1 + self.b[2] * x2 - self.a[0] * y1 - self.a[1] * y2;
            (x2, x1, y2, y1) = (x1, x, y1, y);
            *s = y;
        }
    }
}

/// A small seeded generator (xorshift64*), enough for noise.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-1, 1).
    pub fn next_signed_unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32) -> Samples {
        let data = (0..rate)
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
            .collect();
        Samples::new(SampleRate(rate), data)
    }

    #[test]
    fn passes_the_voice_band_and_cuts_outside_it() {
        let line = TelephoneChannel {
            noise_dbfs: None,
            ..Default::default()
        };
        let voice = line.transmit(&tone(22_050, 1_000.0));
        let hum = line.transmit(&tone(22_050, 60.0));
        assert_eq!(voice.rate, SampleRate::TELEPHONE);
        assert!(voice.rms_dbfs() > -14.0, "1 kHz lost: {}", voice.rms_dbfs());
        assert!(hum.rms_dbfs() < -50.0, "60 Hz passed: {}", hum.rms_dbfs());
    }

    #[test]
    fn noise_is_deterministic_and_at_its_level() {
        let silence = Samples::silence(SampleRate(16_000), std::time::Duration::from_secs(1));
        let line = TelephoneChannel::default();
        let a = line.transmit(&silence);
        let b = line.transmit(&silence);
        assert_eq!(a, b);
        assert!(
            (a.rms_dbfs() + 60.0).abs() < 3.0,
            "noise at {} dBFS",
            a.rms_dbfs()
        );
    }
}
