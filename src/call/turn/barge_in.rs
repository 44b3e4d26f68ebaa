//! Whether the caller is talking over the agent: real speech, which stops
//! the agent's playback, or the agent's own voice coming back as echo, or
//! a short noise, which must not.
//!
//! A pure core, in virtual time. Call order:
//!
//! - [`BargeIn::handle_playback`] once per 20 ms frame the agent sends,
//!   with that frame's level, and with `playing: false` when playback
//!   stops or finishes;
//! - [`BargeIn::handle_audio`] with every 20 ms frame of the caller;
//! - [`BargeIn::poll_event`] after each until it returns `None`.
//!
//! A caller frame counts as talk over the agent when the voice-activity
//! model calls it voice and it stands a margin above both the line's noise
//! and the loudest the agent's echo can be ([`super::echo`]: a double-talk
//! bound in the manner of Geigel's, learnt from what is heard while the
//! caller is silent, starting from G.168's 6 dB of loss). Talk adding up
//! to [`BargeInConfig::min_voice`] (120 ms), with gaps of at most
//! [`BargeInConfig::max_gap`], decides; shorter noises do not. The decision
//! thus comes some 100-250 ms after the caller's onset: the first frames
//! of a word are often too soft to stand out from the agent's echo.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::echo::EchoPath;
use super::noise_floor::NoiseFloor;
use super::voice::{level_dbfs, VoiceDetector};
use crate::audio::Samples;
use crate::speech::vad;

/// Settings of a [`BargeIn`] detector.
#[derive(Clone, Debug, PartialEq)]
pub struct BargeInConfig {
    /// Talk over the agent needed to stop it: 120 ms, about a syllable.
    /// At 100 ms the agent's own echo stopped it now and then (1 in 80 of
    /// the recorded prompts); much more and the decision cannot come within
    /// 250 ms of the onset, as the first frames of a word are often too
    /// soft to stand out from the agent's echo.
    pub min_voice: Duration,
    /// Longest gap (100 ms) between frames of talk that still counts as
    /// the same onset: the dip between two syllables or short words.
    pub max_gap: Duration,
    /// The longest delay from sending a frame to hearing its echo (300 ms):
    /// the network both ways and the jitter buffer.
    pub max_echo_delay: Duration,
    /// The echo path's loss assumed before any echo is heard (6 dB, the
    /// minimum echo return loss G.168 expects).
    pub initial_echo_loss_db: f32,
    /// Talk must stand this far (6 dB) above the echo bound: the bound is
    /// learnt from a few seconds of echo, and a frame's level wobbles by a
    /// few dB (the line's noise, G.711).
    pub echo_margin_db: f32,
    /// ... and this far (10 dB) above the line's noise floor.
    pub speech_margin_db: f32,
    /// ... and never below this level (-55 dBFS).
    pub min_speech_level_dbfs: f32,
    /// Window of the noise floor's minimum (2 s).
    pub noise_window: Duration,
}

impl Default for BargeInConfig {
    fn default() -> Self {
        BargeInConfig {
            min_voice: Duration::from_millis(120),
            max_gap: Duration::from_millis(100),
            max_echo_delay: Duration::from_millis(300),
            initial_echo_loss_db: 6.0,
            echo_margin_db: 6.0,
            speech_margin_db: 10.0,
            min_speech_level_dbfs: -55.0,
            noise_window: Duration::from_secs(2),
        }
    }
}

/// What the detector decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BargeInEvent {
    /// The caller is talking over the agent since `onset_at` (the start of
    /// the first frame of talk): stop playback, and make that speech the
    /// next turn. At most once per playback.
    BargeIn { onset_at: Instant },
}

/// A frame is evidence of echo only when it stands this far above the
/// line's noise.
const NOISE_MARGIN_DB: f32 = 6.0;

/// Decides barge-in for one call. See the module documentation.
#[derive(Debug)]
pub struct BargeIn {
    config: BargeInConfig,
    voice: VoiceDetector,
    noise: NoiseFloor,
    /// The agent is playing.
    playing: bool,
    /// When the current playback started: the echo loss is not learnt
    /// before an echo could have arrived.
    playback_started: Option<Instant>,
    /// A barge-in was reported for the current playback.
    fired: bool,
    /// How loud our own voice can come back.
    echo: EchoPath,
    /// Talk in progress: its onset, how much, and the gap since.
    talk: Option<Talk>,
    events: VecDeque<BargeInEvent>,
}

#[derive(Debug)]
struct Talk {
    onset: Instant,
    voiced: Duration,
    gap: Duration,
}

impl BargeIn {
    pub fn new(config: BargeInConfig) -> Self {
        let window = (config.noise_window.as_millis() / 20).max(1) as u64;
        BargeIn {
            voice: VoiceDetector::new(),
            noise: NoiseFloor::new(window),
            playing: false,
            playback_started: None,
            fired: false,
            echo: EchoPath::new(config.max_echo_delay, config.initial_echo_loss_db),
            talk: None,
            events: VecDeque::new(),
            config,
        }
    }

    /// The echo path's current loss estimate, in dB.
    pub fn echo_loss_db(&self) -> f32 {
        self.echo.loss_db()
    }

    /// The agent sent a frame at `level_dbfs` at `now` (`playing`), or
    /// stopped (`playing: false`, the level is ignored). A new playback
    /// can report a new barge-in.
    pub fn handle_playback(&mut self, now: Instant, playing: bool, level_dbfs: f32) {
        if playing && !self.playing {
            self.playback_started = Some(now);
            self.fired = false;
            self.talk = None;
            self.echo.discard_pending();
        }
        self.playing = playing;
        if playing {
            self.echo.handle_sent(now, level_dbfs);
        } else {
            self.echo.forget(now);
        }
    }

    /// Takes the next frame of the caller's audio, fully arrived at `now`.
    pub fn handle_audio(&mut self, now: Instant, frame: &Samples) {
        // In whole nanoseconds: 20 ms frames must add up to exactly 120 ms.
        let duration = match u64::from(frame.rate.hz()) {
            0 => Duration::ZERO,
            hz => Duration::from_nanos(frame.data.len() as u64 * 1_000_000_000 / hz),
        };
        let start = now.checked_sub(duration).unwrap_or(now);
        let level = level_dbfs(frame);
        // Scored even when not playing: the model needs the stream's past.
        let score = self.voice.score(frame);
        self.noise.handle_level(level);
        self.echo.forget(now);
        if !self.playing || self.fired {
            self.talk = None;
            self.echo.discard_pending();
            return;
        }
        self.echo
            .learn(now, self.config.min_voice + self.config.max_gap);
        let floor = self.noise.level().unwrap_or(level);
        let references = self.echo.references();
        let threshold = (floor + self.config.speech_margin_db)
            .max(self.config.min_speech_level_dbfs)
            .max(self.echo.bound(&references) + self.config.echo_margin_db);
        let talking = score > vad::VOICE_THRESHOLD && level > threshold;

        if talking {
            self.echo.discard_pending();
            let talk = self.talk.get_or_insert(Talk {
                onset: start,
                voiced: Duration::ZERO,
                gap: Duration::ZERO,
            });
            talk.voiced += duration;
            talk.gap = Duration::ZERO;
            if talk.voiced >= self.config.min_voice {
                let onset_at = talk.onset;
                self.fired = true;
                self.talk = None;
                self.events.push_back(BargeInEvent::BargeIn { onset_at });
            }
            return;
        }
        if let Some(talk) = &mut self.talk {
            talk.gap += duration;
            if talk.gap > self.config.max_gap {
                self.talk = None;
            }
            // Frames inside a possible onset teach nothing about the echo.
            return;
        }
        // Observations of the echo: once an echo can have arrived, when we
        // sent something clearly above the line's noise (else the frame
        // says nothing of the echo), and not from loud frames that are not
        // voice (a knock).
        let echo_due = self
            .playback_started
            .is_some_and(|started| now >= started + self.config.max_echo_delay);
        if echo_due && references[0] >= floor + self.config.speech_margin_db && level <= threshold {
            let above_noise = level > floor + NOISE_MARGIN_DB;
            self.echo.observe(now, level, references, above_noise);
        }
    }

    pub fn poll_event(&mut self) -> Option<BargeInEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{SampleRate, Samples};
    use crate::call::turn::test_signal::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// The agent plays `out` (None: silent) while the caller's line carries
    /// `caller`, plus the echo of `out` at `echo_db` after `echo_delay`,
    /// plus -55 dBFS of line noise. Returns the barge-ins with the time
    /// (since the start) at which they were decided.
    fn run(
        detector: &mut BargeIn,
        out: Option<&Samples>,
        caller: &Samples,
        echo_db: f32,
        echo_delay: Duration,
    ) -> Vec<(Duration, Instant, Instant)> {
        let start = Instant::now();
        let length = caller.data.len().max(out.map_or(0, |o| o.data.len()));
        let mut line = white_noise(-55.0, Duration::from_secs_f64(length as f64 / 8_000.0), 5);
        mix_into(&mut line, caller, 0);
        if let Some(out) = out {
            let gain = 10f32.powf(echo_db / 20.0);
            let echo = Samples::new(
                SampleRate::TELEPHONE,
                out.data.iter().map(|s| s * gain).collect(),
            );
            mix_into(
                &mut line,
                &echo,
                (echo_delay.as_secs_f64() * 8_000.0) as usize,
            );
        }
        let out_frames: Vec<Samples> = out.map(|o| frames(o).collect()).unwrap_or_default();
        let mut decided = Vec::new();
        for (i, frame) in frames(&line).enumerate() {
            let sent_at = start + FRAME * i as u32;
            match out_frames.get(i) {
                Some(sent) => detector.handle_playback(sent_at, true, sent.rms_dbfs()),
                None => detector.handle_playback(sent_at, false, 0.0),
            }
            let now = frame_end(start, i);
            detector.handle_audio(now, &frame);
            while let Some(BargeInEvent::BargeIn { onset_at }) = detector.poll_event() {
                decided.push((now - start, onset_at, start));
            }
        }
        detector.handle_playback(frame_end(start, length / FRAME_SAMPLES), false, 0.0);
        decided
    }

    #[test]
    fn the_agents_own_echo_is_no_barge_in() {
        for (echo_db, delay) in [(-20.0, 120), (-12.0, 0), (-20.0, 300), (-8.0, 200)] {
            let mut detector = BargeIn::new(BargeInConfig::default());
            let agent = voice(ms(4_000), -16.0, 3);
            let decided = run(
                &mut detector,
                Some(&agent),
                &silence(ms(4_000)),
                echo_db,
                ms(delay),
            );
            assert!(
                decided.is_empty(),
                "echo {echo_db} dB after {delay} ms: {decided:?}"
            );
        }
    }

    #[test]
    fn the_echo_loss_is_learnt() {
        let mut detector = BargeIn::new(BargeInConfig::default());
        assert_eq!(detector.echo_loss_db(), 6.0);
        let agent = voice(ms(4_000), -16.0, 3);
        run(
            &mut detector,
            Some(&agent),
            &silence(ms(4_000)),
            -20.0,
            ms(120),
        );
        let loss = detector.echo_loss_db();
        assert!((14.0..=24.0).contains(&loss), "loss {loss}");
    }

    #[test]
    fn a_caller_talking_over_the_agent_barges_in_within_250_ms() {
        // (onset, caller level, echo level): the agent talks at -16 dBFS.
        // Right at the start of the first playback the echo path is not yet
        // known and only a caller louder than the agent gets through; once
        // it is, a caller somewhat quieter than the agent does, and with no
        // echo at all, a quiet one.
        let cases = [
            (1_500u64, -18.0, -20.0),
            (2_000, -22.0, -20.0),
            (100, -10.0, -20.0),
            (2_000, -32.0, -80.0),
        ];
        for (onset, caller_db, echo_db) in cases {
            let mut detector = BargeIn::new(BargeInConfig::default());
            let agent = voice(ms(4_000), -16.0, 3);
            let caller = concat(&[silence(ms(onset)), voice(ms(1_000), caller_db, 1)]);
            let decided = run(&mut detector, Some(&agent), &caller, echo_db, ms(120));
            let case = format!("onset {onset} ms, caller {caller_db} dBFS, echo {echo_db} dB");
            assert_eq!(decided.len(), 1, "{case}: {decided:?}");
            let (at, onset_at, start) = decided[0];
            let delay = at - ms(onset);
            assert!(
                delay <= ms(250),
                "{case}: decided {delay:?} after the onset"
            );
            assert!((onset_at - start).abs_diff(ms(onset)) <= ms(40), "{case}");
        }
    }

    #[test]
    fn short_noises_during_playback_are_no_barge_in() {
        let mut detector = BargeIn::new(BargeInConfig::default());
        let agent = voice(ms(3_000), -16.0, 3);
        let mut caller = silence(ms(3_000));
        for at in [500usize, 1_200, 2_000] {
            mix_into(&mut caller, &click(ms(20)), at * 8);
        }
        mix_into(&mut caller, &voice(ms(80), -12.0, 1), 2_500 * 8);
        let decided = run(&mut detector, Some(&agent), &caller, -20.0, ms(120));
        assert!(decided.is_empty(), "{decided:?}");
    }

    #[test]
    fn nothing_is_decided_while_the_agent_is_silent() {
        let mut detector = BargeIn::new(BargeInConfig::default());
        let caller = voice(ms(2_000), -18.0, 1);
        assert!(run(&mut detector, None, &caller, -20.0, ms(120)).is_empty());
    }

    #[test]
    fn one_barge_in_per_playback() {
        let mut detector = BargeIn::new(BargeInConfig::default());
        let agent = voice(ms(3_000), -16.0, 3);
        let caller = concat(&[
            silence(ms(1_000)),
            voice(ms(600), -18.0, 1),
            silence(ms(500)),
            voice(ms(600), -18.0, 2),
        ]);
        let decided = run(&mut detector, Some(&agent), &caller, -20.0, ms(120));
        assert_eq!(decided.len(), 1, "{decided:?}");
        // The next playback can be interrupted again.
        let decided = run(&mut detector, Some(&agent), &caller, -20.0, ms(120));
        assert_eq!(decided.len(), 1, "{decided:?}");
    }
}
