//! Synthetic telephone audio for the turn-taking tests: tones, seeded white
//! noise, clicks and a crude formant "voice" that the voice-activity model
//! takes for speech, all 8 kHz, cut into 20 ms frames and fed in virtual
//! time.

use std::time::{Duration, Instant};

use crate::audio::telephone::XorShift;
use crate::audio::{SampleRate, Samples};

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// One frame's duration.
pub const FRAME: Duration = Duration::from_millis(20);

fn samples(duration: Duration) -> usize {
    (duration.as_secs_f64() * 8_000.0).round() as usize
}

fn amplitude(dbfs_rms: f32) -> f32 {
    10f32.powf(dbfs_rms / 20.0)
}

/// A sine of `hz` at an RMS level of `dbfs`.
pub fn tone(hz: f32, dbfs: f32, duration: Duration) -> Samples {
    let peak = amplitude(dbfs) * std::f32::consts::SQRT_2;
    let data = (0..samples(duration))
        .map(|n| peak * (std::f32::consts::TAU * hz * n as f32 / 8_000.0).sin())
        .collect();
    Samples::new(SampleRate::TELEPHONE, data)
}

/// Uniform white noise at an RMS level of `dbfs`.
pub fn white_noise(dbfs: f32, duration: Duration, seed: u64) -> Samples {
    let peak = amplitude(dbfs) * 3f32.sqrt();
    let mut rng = XorShift::new(seed);
    let data = (0..samples(duration))
        .map(|_| peak * rng.next_signed_unit())
        .collect();
    Samples::new(SampleRate::TELEPHONE, data)
}

/// Digital silence.
pub fn silence(duration: Duration) -> Samples {
    Samples::silence(SampleRate::TELEPHONE, duration)
}

/// A click: a few samples at full scale, the rest of `duration` silent.
pub fn click(duration: Duration) -> Samples {
    let mut audio = silence(duration);
    for (n, s) in audio.data.iter_mut().take(8).enumerate() {
        *s = if n % 2 == 0 { 0.9 } else { -0.9 };
    }
    audio
}

/// A formant-synthesised "voice" at roughly `dbfs` RMS: a glottal pulse
/// train with a wandering pitch through three vowel resonances that change
/// every syllable; syllables of 180 ms shaped by a smooth envelope, in
/// words of two with 60 ms between words (the gaps of running speech).
pub fn voice(duration: Duration, dbfs: f32, seed: u64) -> Samples {
    // (F1, F2, F3) of a few vowels, Hz.
    const VOWELS: [(f32, f32, f32); 5] = [
        (730.0, 1090.0, 2440.0),
        (270.0, 2290.0, 3010.0),
        (530.0, 1840.0, 2480.0),
        (570.0, 840.0, 2410.0),
        (440.0, 1020.0, 2240.0),
    ];
    let n = samples(duration);
    let syllable = samples(Duration::from_millis(180));
    let gap = samples(Duration::from_millis(60));
    let word = 2 * syllable + gap;
    let mut rng = XorShift::new(seed);
    let mut resonators = [
        Resonator::default(),
        Resonator::default(),
        Resonator::default(),
    ];
    let mut data = Vec::with_capacity(n);
    let mut phase = 0.0f32;
    for i in 0..n {
        let in_word = i % word;
        let syllable_index = 2 * (i / word) + in_word / syllable;
        let within = (in_word % syllable) as f32 / syllable as f32;
        if in_word % syllable == 0 && in_word < 2 * syllable {
            let vowel = VOWELS[(syllable_index + seed as usize) % VOWELS.len()];
            resonators[0].tune(vowel.0, 90.0);
            resonators[1].tune(vowel.1, 110.0);
            resonators[2].tune(vowel.2, 170.0);
        }
        // Pitch 110-150 Hz, falling within each syllable.
        let f0 = 150.0 - 40.0 * within + 5.0 * rng.next_signed_unit();
        phase += f0 / 8_000.0;
        let pulse = if phase >= 1.0 {
            phase -= 1.0;
            1.0
        } else {
            0.0
        };
        let source = pulse + 0.02 * rng.next_signed_unit();
        let shaped: f32 = resonators.iter_mut().map(|r| r.run(source)).sum();
        let envelope = if in_word < 2 * syllable {
            // Syllables run into each other within a word.
            0.3 + 0.7 * (std::f32::consts::PI * within).sin()
        } else {
            0.0
        };
        data.push(shaped * envelope);
    }
    // Scale to the wanted level.
    let mut audio = Samples::new(SampleRate::TELEPHONE, data);
    let gain = amplitude(dbfs) / amplitude(audio.rms_dbfs());
    for s in &mut audio.data {
        *s *= gain;
    }
    audio
}

/// A two-pole resonator.
#[derive(Default)]
struct Resonator {
    a1: f32,
    a2: f32,
    gain: f32,
    y1: f32,
    y2: f32,
}

impl Resonator {
    fn tune(&mut self, hz: f32, bandwidth: f32) {
        let r = (-std::f32::consts::PI * bandwidth / 8_000.0).exp();
        self.a1 = 2.0 * r * (std::f32::consts::TAU * hz / 8_000.0).cos();
        self.a2 = -r * r;
        self.gain = 1.0 - r;
    }

    fn run(&mut self, x: f32) -> f32 {
        let y = self.gain * x + self.a1 * self.y1 + self.a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Concatenates pieces of audio.
pub fn concat(pieces: &[Samples]) -> Samples {
    let mut out = Samples::new(SampleRate::TELEPHONE, Vec::new());
    for piece in pieces {
        out.extend(piece);
    }
    out
}

/// Adds `other` into `audio`, sample by sample, from `offset` samples on.
pub fn mix_into(audio: &mut Samples, other: &Samples, offset: usize) {
    for (s, o) in audio.data.iter_mut().skip(offset).zip(&other.data) {
        *s += o;
    }
}

/// The audio cut into 20 ms frames (a short last frame is dropped).
pub fn frames(audio: &Samples) -> impl Iterator<Item = Samples> + '_ {
    audio
        .data
        .chunks_exact(FRAME_SAMPLES)
        .map(|chunk| Samples::new(SampleRate::TELEPHONE, chunk.to_vec()))
}

/// The virtual instant at which frame `index` has fully arrived.
pub fn frame_end(start: Instant, index: usize) -> Instant {
    start + FRAME * (index as u32 + 1)
}
