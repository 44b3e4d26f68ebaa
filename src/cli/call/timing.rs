//! Caller-side timing of one call, without I/O: which 20 ms frames carry
//! speech energy, when the agent's prompt is over, and the voice-to-voice
//! latency and the agent's silences as the caller sees them on the wire.
//!
//! The driver (`switchboard call`) passes `now` with every input and reads
//! the [`TimingReport`] at the end; nothing here reads the clock.
//!
//! # Where the instants come from
//!
//! - **Our speech leaves** when the media session sends the packet of the
//!   last 20 ms frame of our file at or above the file's speech threshold
//!   ([`PlayedSpeech`]). The session sends one frame per 20 ms slot on a
//!   deadline schedule and reports `PlaybackFinished` in the slot of the
//!   last one, so frame `k` of `n` left `(n - 1 - k) * 20 ms` before that
//!   report. When the call ends before our file has played out, the
//!   instant we queued it stands in: frame `k` leaves `k * 20 ms` later,
//!   plus half a slot for the wait until the first slot.
//! - **The agent's speech arrives** with its RTP packet. `LegEvent::Audio`
//!   comes after the jitter buffer, which holds the first packet of the
//!   stream for at least its least delay (20 ms, `JitterConfig::min_delay`;
//!   longer if the first packets come unevenly) and then plays at the next
//!   20 ms slot, so every frame is played at least 20-40 ms after its
//!   packet arrived. We measure that delay once per call as the time from
//!   `Latched` (reported when the first packet arrives) to the first
//!   `Audio` frame, clamp it to the least possible range (the least delay
//!   to 20 ms more) against scheduling noise in the caller, and subtract
//!   it from the instant each frame is delivered. The agent sends a
//!   continuous stream (comfort silence between prompts), so the delay
//!   stays what it was at the start unless its packets come later than
//!   the cushion, when the buffer conceals and re-buffers with a larger
//!   one (it never skips a frame to shrink). Any hold beyond the clamped
//!   estimate makes the agent's speech look later than it arrived: the
//!   measured latency can read long, never short.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::audio::Samples;
use crate::call::turn::voice::SILENCE_DBFS;

/// One RTP packet's worth of audio.
pub const FRAME: Duration = Duration::from_millis(20);

/// A frame of the agent's audio at or above this level carries speech
/// energy. Between prompts the agent sends digital silence (-100 dBFS
/// here); synthetic speech through G.711 runs at -30 to -15 dBFS with its
/// quietest voiced frames near -40, and a telephone line's noise stays
/// under -55.
pub const AGENT_SPEECH_DBFS: f32 = -45.0;

/// How much of the agent's speech makes a prompt: less is a click or a
/// blip, not something a caller would answer.
pub const PROMPT_MIN_SPEECH: Duration = Duration::from_millis(300);

/// Silences of the agent at least this long are listed in the report
/// (shorter ones are pauses between words).
pub const LISTED_SILENCE: Duration = Duration::from_millis(500);

/// The noise floor assumed for a file quieter than this: below it nothing
/// survives G.711 anyway (its smallest step is about -78 dBFS).
const NOISE_FLOOR_MIN_DBFS: f32 = -70.0;

/// The speech threshold lies this far above the file's noise floor...
const ABOVE_NOISE_DB: f32 = 15.0;

/// ...but no higher than this far under its speech peaks.
const BELOW_PEAK_DB: f32 = 40.0;

/// A file whose loud frames are less than this above its quiet ones has
/// no speech we could find the end of (steady noise, a tone).
const MIN_RANGE_DB: f32 = 12.0;

/// The level of each 20 ms frame (`rate / 50` samples), dBFS, the last
/// one padded with silence as the media session pads it.
pub fn frame_levels(audio: &Samples) -> Vec<f32> {
    let frame = (audio.rate.hz() / 50).max(1) as usize;
    audio
        .data
        .chunks(frame)
        .map(|chunk| {
            let energy: f64 = chunk.iter().map(|s| f64::from(*s) * f64::from(*s)).sum();
            let level = 10.0 * (energy / frame as f64).log10();
            (level as f32).max(SILENCE_DBFS)
        })
        .collect()
}

/// Where the speech in a file we play ends.
///
/// The threshold is relative to the file itself, so a quiet recording or
/// a noisy line neither hides nor invents the end of speech: the noise
/// floor is the 10th percentile of its frame levels (at least -70 dBFS),
/// the peak is the 98th percentile (so a click does not count), and the
/// threshold is 15 dB above the floor but no more than 40 dB under the
/// peak: -45 dBFS for the fixtures (peaks near -18, line noise near -60),
/// peak - 40 for clean recordings. A file with less than 12 dB between
/// floor and peak has no speech found; with less than 30 dB the threshold
/// sits halfway between them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayedSpeech {
    /// Frames the file takes on the wire.
    pub frames: usize,
    /// Frames at or above this level are speech, dBFS.
    pub threshold_dbfs: f32,
    /// The last speech frame; `None` when none was found.
    pub last_speech_frame: Option<usize>,
}

impl PlayedSpeech {
    /// Finds the end of speech in a file's [`frame_levels`].
    pub fn of(levels: &[f32]) -> PlayedSpeech {
        let mut sorted = levels.to_vec();
        sorted.sort_by(f32::total_cmp);
        let percentile = |q: f64| -> f32 {
            if sorted.is_empty() {
                return SILENCE_DBFS;
            }
            sorted[((sorted.len() - 1) as f64 * q).round() as usize]
        };
        let floor = percentile(0.10).max(NOISE_FLOOR_MIN_DBFS);
        let peak = percentile(0.98);
        let range = peak - floor;
        let threshold = (floor + ABOVE_NOISE_DB.min(range / 2.0)).max(peak - BELOW_PEAK_DB);
        let last_speech_frame = if range < MIN_RANGE_DB {
            None
        } else {
            levels.iter().rposition(|&level| level >= threshold)
        };
        PlayedSpeech {
            frames: levels.len(),
            threshold_dbfs: threshold,
            last_speech_frame,
        }
    }

    /// How far into the file speech ends: the end of its last speech
    /// frame.
    pub fn speech_end(&self) -> Option<Duration> {
        self.last_speech_frame
            .map(|frame| FRAME * u32::try_from(frame + 1).unwrap_or(u32::MAX))
    }
}

/// Where the agent's prompt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptState {
    /// No speech yet.
    Silent,
    /// It has spoken and not yet been quiet long enough.
    Speaking,
    /// It has spoken for [`PROMPT_MIN_SPEECH`] and then been quiet for the
    /// gap.
    Over,
}

/// Tells when the agent has finished its prompt, frame by frame: at least
/// [`PROMPT_MIN_SPEECH`] of speech frames, then `gap` without one. Time is
/// counted in frames, the audio's own clock.
#[derive(Debug, Clone)]
pub struct PromptDetector {
    /// The silence that ends a prompt.
    gap: Duration,
    /// Speech heard so far.
    speech: Duration,
    /// Silence since the last speech frame.
    quiet: Duration,
    over: bool,
}

impl PromptDetector {
    pub fn new(gap: Duration) -> Self {
        PromptDetector {
            gap,
            speech: Duration::ZERO,
            quiet: Duration::ZERO,
            over: false,
        }
    }

    /// One 20 ms frame of the agent's audio; returns true on the frame
    /// that ends the prompt, and only then.
    pub fn handle_frame(&mut self, speech: bool) -> bool {
        if self.over {
            return false;
        }
        if speech {
            self.speech += FRAME;
            self.quiet = Duration::ZERO;
            return false;
        }
        if self.speech.is_zero() {
            return false;
        }
        self.quiet += FRAME;
        self.over = self.speech >= PROMPT_MIN_SPEECH && self.quiet >= self.gap;
        self.over
    }

    pub fn state(&self) -> PromptState {
        match (self.over, self.speech.is_zero()) {
            (true, _) => PromptState::Over,
            (false, true) => PromptState::Silent,
            (false, false) => PromptState::Speaking,
        }
    }
}

/// The caller-side figures of one call; all times in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimingReport {
    /// From the answer to the arrival of the agent's first speech.
    pub prompt_heard_ms: Option<u64>,
    /// From the answer to the moment we queued our file.
    pub play_started_ms: Option<u64>,
    /// Where speech ends in our file, seconds into it.
    pub speech_end_in_file_s: Option<f64>,
    /// The threshold that found it (see [`PlayedSpeech`]).
    pub speech_threshold_dbfs: Option<f32>,
    /// From the sending of our last speech packet to the arrival of the
    /// first packet of agent speech after it.
    pub voice_to_voice_ms: Option<u64>,
    /// The agent's silences from the end of our speech to the end of the
    /// call or the transfer.
    pub agent_silences: Option<Silences>,
    /// The jitter buffer's playout delay subtracted from the delivery of
    /// the agent's audio to get its arrival.
    pub playout_delay_ms: Option<f64>,
}

/// Gaps without agent speech energy in a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Silences {
    /// The longest gap, counting the one before the agent's first speech
    /// (the voice-to-voice latency) and the one after its last.
    pub longest_ms: u64,
    /// Every gap of [`LISTED_SILENCE`] or more, in order.
    pub gaps_ms: Vec<u64>,
    /// The window: from the end of our speech to the end of the call, or
    /// to the REFER.
    pub window_ms: u64,
}

/// The timing of one call from the caller's side: feed it the call's
/// events with `now`, then take [`CallTiming::report`].
#[derive(Debug)]
pub struct CallTiming {
    /// The answer: the zero of the report's times.
    established: Instant,
    /// The jitter buffer's target, used when the delay cannot be measured.
    jitter_target: Duration,
    /// When the agent's first RTP packet arrived.
    latched_at: Option<Instant>,
    /// Fixed at the first audio frame.
    playout_delay: Option<Duration>,
    prompt: PromptDetector,
    /// Arrival of every agent frame with speech energy, in order.
    agent_speech: Vec<Instant>,
    /// When our file was queued, and where its speech ends.
    played: Option<(Instant, PlayedSpeech)>,
    playback_finished: Option<Instant>,
    /// The agent's audio stopped counting: it sent a REFER, or the call
    /// ended.
    agent_gone: Option<Instant>,
}

impl CallTiming {
    /// A call answered at `established`, whose jitter buffer holds the
    /// first packet for `jitter_target`; `prompt_gap` is the silence that
    /// ends the agent's prompt.
    pub fn new(established: Instant, jitter_target: Duration, prompt_gap: Duration) -> Self {
        CallTiming {
            established,
            jitter_target,
            latched_at: None,
            playout_delay: None,
            prompt: PromptDetector::new(prompt_gap),
            agent_speech: Vec::new(),
            played: None,
            playback_finished: None,
            agent_gone: None,
        }
    }

    /// The agent's first RTP packet arrived (`LegEvent::Latched`).
    pub fn handle_latched(&mut self, now: Instant) {
        self.latched_at.get_or_insert(now);
    }

    /// A 20 ms frame of the agent's audio delivered by the jitter buffer.
    /// Returns true when this frame ends the agent's prompt.
    pub fn handle_agent_audio(&mut self, now: Instant, frame: &Samples) -> bool {
        if self.agent_gone.is_some() {
            return false;
        }
        let delay = *self.playout_delay.get_or_insert_with(|| {
            let measured = self.latched_at.map_or(self.jitter_target, |latched| {
                now.saturating_duration_since(latched)
            });
            measured.clamp(self.jitter_target, self.jitter_target + FRAME)
        });
        let speech = frame_levels(frame)
            .iter()
            .any(|&level| level >= AGENT_SPEECH_DBFS);
        if speech {
            let arrived = now.checked_sub(delay).unwrap_or(now).max(self.established);
            self.agent_speech.push(arrived);
        }
        self.prompt.handle_frame(speech)
    }

    /// Our file was queued to play.
    pub fn handle_play(&mut self, now: Instant, played: PlayedSpeech) {
        self.played = Some((now, played));
    }

    /// Our file has been sent (`LegEvent::PlaybackFinished`).
    pub fn handle_playback_finished(&mut self, now: Instant) {
        if self.played.is_some() {
            self.playback_finished.get_or_insert(now);
        }
    }

    /// The agent's audio stops counting: it transferred us (REFER) or the
    /// call ended.
    pub fn handle_agent_gone(&mut self, now: Instant) {
        self.agent_gone.get_or_insert(now);
    }

    /// Where the agent's prompt stands.
    pub fn prompt(&self) -> PromptState {
        self.prompt.state()
    }

    /// When the packet of our last speech frame left.
    fn speech_end_sent(&self) -> Option<Instant> {
        let (queued, played) = self.played?;
        let last = played.last_speech_frame?;
        let frames = |n: usize| FRAME * u32::try_from(n).unwrap_or(u32::MAX);
        match self.playback_finished {
            Some(finished) => {
                let after = played.frames.saturating_sub(1).saturating_sub(last);
                finished.checked_sub(frames(after))
            }
            None => Some(queued + frames(last) + FRAME / 2),
        }
    }

    /// The figures, for a call that ended at `end`.
    pub fn report(&self, end: Instant) -> TimingReport {
        let ms = |d: Duration| d.as_millis() as u64;
        let since_answer = |t: Instant| ms(t.saturating_duration_since(self.established));
        let speech_end = self.speech_end_sent();
        let window_end = self.agent_gone.unwrap_or(end);
        TimingReport {
            prompt_heard_ms: self.agent_speech.first().map(|&t| since_answer(t)),
            play_started_ms: self.played.map(|(queued, _)| since_answer(queued)),
            speech_end_in_file_s: self
                .played
                .and_then(|(_, played)| played.speech_end())
                .map(|d| d.as_secs_f64()),
            speech_threshold_dbfs: self.played.map(|(_, played)| played.threshold_dbfs),
            voice_to_voice_ms: speech_end.and_then(|sent| {
                self.agent_speech
                    .iter()
                    .find(|&&arrived| arrived > sent)
                    .map(|&arrived| ms(arrived - sent))
            }),
            agent_silences: speech_end
                .filter(|&sent| sent < window_end)
                .map(|sent| silences(&self.agent_speech, sent, window_end)),
            playout_delay_ms: self.playout_delay.map(|d| d.as_secs_f64() * 1000.0),
        }
    }
}

/// The gaps between the agent's speech frames (each covering 20 ms from
/// its arrival) in `[from, to]`.
fn silences(speech: &[Instant], from: Instant, to: Instant) -> Silences {
    let mut gaps = Vec::new();
    let mut heard_until = from;
    for &arrived in speech.iter().filter(|&&t| t > from && t < to) {
        if arrived > heard_until {
            gaps.push(arrived - heard_until);
        }
        heard_until = heard_until.max(arrived + FRAME);
    }
    if to > heard_until {
        gaps.push(to - heard_until);
    }
    let ms = |d: &Duration| d.as_millis() as u64;
    Silences {
        longest_ms: gaps.iter().max().map_or(0, ms),
        gaps_ms: gaps
            .iter()
            .filter(|gap| **gap >= LISTED_SILENCE)
            .map(ms)
            .collect(),
        window_ms: ms(&(to - from)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::turn::test_signal;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `frames` frames of a 440 Hz tone whose RMS level is `dbfs`.
    fn tone(dbfs: f32, frames: usize) -> Samples {
        test_signal::tone(440.0, dbfs, FRAME * frames as u32)
    }

    fn silence(frames: usize) -> Samples {
        test_signal::silence(FRAME * frames as u32)
    }

    fn join(parts: &[Samples]) -> Samples {
        test_signal::concat(parts)
    }

    fn frame(dbfs: f32) -> Samples {
        tone(dbfs, 1)
    }

    #[test]
    fn frame_levels_measure_each_frame_and_pad_the_last() {
        let mut audio = join(&[tone(-20.0, 2), silence(1), tone(-40.0, 1)]);
        audio.data.truncate(audio.data.len() - 80);
        let levels = frame_levels(&audio);
        assert_eq!(levels.len(), 4);
        assert!((levels[0] + 20.0).abs() < 0.1, "{levels:?}");
        assert!((levels[1] + 20.0).abs() < 0.1, "{levels:?}");
        assert_eq!(levels[2], SILENCE_DBFS);
        // Half a frame of -40 dBFS padded with silence: 3 dB less.
        assert!((levels[3] + 43.0).abs() < 0.2, "{levels:?}");
    }

    #[test]
    fn speech_ends_at_the_last_frame_above_a_threshold_relative_to_the_noise() {
        // Line noise at -60, speech at -18 with a quiet tail at -42, then
        // a breath at -52 that is not speech.
        let audio = join(&[
            tone(-60.0, 30),
            tone(-18.0, 50),
            tone(-42.0, 3),
            tone(-52.0, 4),
            tone(-60.0, 40),
        ]);
        let played = PlayedSpeech::of(&frame_levels(&audio));
        assert!((played.threshold_dbfs + 45.0).abs() < 0.2, "{played:?}");
        assert_eq!(played.last_speech_frame, Some(82));
        assert_eq!(played.frames, 127);
        assert_eq!(played.speech_end(), Some(ms(83 * 20)));
    }

    #[test]
    fn a_clean_recording_is_measured_against_its_peak() {
        let audio = join(&[silence(20), tone(-20.0, 40), tone(-53.0, 2), silence(20)]);
        let played = PlayedSpeech::of(&frame_levels(&audio));
        assert!((played.threshold_dbfs + 55.0).abs() < 0.2, "{played:?}");
        assert_eq!(played.last_speech_frame, Some(61));
        // 5 dB under the threshold is past the end.
        let audio = join(&[silence(20), tone(-20.0, 40), tone(-60.0, 2), silence(20)]);
        assert_eq!(
            PlayedSpeech::of(&frame_levels(&audio)).last_speech_frame,
            Some(59)
        );
    }

    #[test]
    fn steady_noise_has_no_speech_and_a_click_is_not_a_peak() {
        let noise = tone(-40.0, 100);
        assert_eq!(
            PlayedSpeech::of(&frame_levels(&noise)).last_speech_frame,
            None
        );
        assert_eq!(PlayedSpeech::of(&[]).last_speech_frame, None);
        // One loud frame in 100 quiet ones does not raise the threshold
        // over the speech.
        let audio = join(&[
            tone(-60.0, 50),
            tone(-30.0, 100),
            tone(0.0, 1),
            tone(-60.0, 50),
        ]);
        let played = PlayedSpeech::of(&frame_levels(&audio));
        assert!(played.threshold_dbfs < -44.0, "{played:?}");
        assert_eq!(played.last_speech_frame, Some(150));
    }

    #[test]
    fn a_prompt_is_300_ms_of_speech_then_the_gap() {
        let mut prompt = PromptDetector::new(ms(100));
        // Silence before the agent speaks does not count as the gap.
        for _ in 0..20 {
            assert!(!prompt.handle_frame(false));
        }
        assert_eq!(prompt.state(), PromptState::Silent);
        // 200 ms of speech, a pause shorter than the gap, 100 ms more.
        let frames: Vec<bool> = [vec![true; 10], vec![false; 4], vec![true; 5]].concat();
        for speech in frames {
            assert!(!prompt.handle_frame(speech));
        }
        assert_eq!(prompt.state(), PromptState::Speaking);
        for _ in 0..4 {
            assert!(!prompt.handle_frame(false));
        }
        assert!(prompt.handle_frame(false), "the fifth quiet frame ends it");
        assert_eq!(prompt.state(), PromptState::Over);
        assert!(!prompt.handle_frame(false), "reported once");
        assert!(!prompt.handle_frame(true));
    }

    #[test]
    fn a_blip_is_not_a_prompt() {
        let mut prompt = PromptDetector::new(ms(100));
        let frames: Vec<bool> = [vec![true; 14], vec![false; 100]].concat();
        assert!(frames
            .into_iter()
            .all(|speech| !prompt.handle_frame(speech)));
        assert_eq!(prompt.state(), PromptState::Speaking);
    }

    /// Drives a call: the agent's packets arrive from `t0 + 10 ms` on, so
    /// the jitter buffer delivers frame `i` at `t0 + 80 ms + i * 20 ms`.
    /// `agent` says which frames carry speech. Returns the timing and the
    /// delivery instant of every frame.
    fn agent_frames(timing: &mut CallTiming, t0: Instant, agent: &[bool]) -> Vec<Instant> {
        timing.handle_latched(t0 + ms(10));
        agent
            .iter()
            .enumerate()
            .map(|(i, &speech)| {
                let at = t0 + ms(80 + 20 * i as u64);
                timing.handle_agent_audio(at, &frame(if speech { -25.0 } else { -100.0 }));
                at
            })
            .collect()
    }

    #[test]
    fn voice_to_voice_runs_from_our_last_speech_packet_to_the_agents_first_arrival() {
        let t0 = Instant::now();
        let mut timing = CallTiming::new(t0, ms(60), ms(700));
        // Prompt: frames 10..60 speech (0.2-1.2 s), then quiet.
        let mut agent = vec![false; 300];
        agent[10..60].fill(true);
        // Reply: frames 205..255.
        agent[205..255].fill(true);
        let delivered = agent_frames(&mut timing, t0, &agent[..95]);
        // The prompt ended at the 35th quiet frame (frame 94).
        assert_eq!(timing.prompt(), PromptState::Over);
        // We play a file of 100 frames whose speech ends at frame 79: it
        // was queued at frame 95's delivery and its last frame left 30 ms
        // before frame 195's delivery (the playout delay is 70 ms).
        let played = PlayedSpeech {
            frames: 100,
            threshold_dbfs: -45.0,
            last_speech_frame: Some(79),
        };
        timing.handle_play(delivered[94] + ms(1), played);
        let finished = t0 + ms(80 + 20 * 195) - ms(30);
        let speech_sent = finished - ms(20 * 20);
        let mut later = Vec::new();
        for (i, &speech) in agent.iter().enumerate().skip(95) {
            let at = t0 + ms(80 + 20 * i as u64);
            if at >= finished && timing.playback_finished.is_none() {
                timing.handle_playback_finished(finished);
            }
            timing.handle_agent_audio(at, &frame(if speech { -25.0 } else { -100.0 }));
            later.push(at);
        }
        let end = t0 + ms(7000);
        let report = timing.report(end);
        assert_eq!(report.playout_delay_ms, Some(70.0));
        // The prompt's first frame arrived at 10 + 10 * 20 ms.
        assert_eq!(report.prompt_heard_ms, Some(210));
        // The reply's first frame arrived at 10 + 205 * 20 ms.
        let reply = t0 + ms(10 + 205 * 20);
        assert_eq!(
            report.voice_to_voice_ms,
            Some((reply - speech_sent).as_millis() as u64)
        );
        assert_eq!(report.speech_end_in_file_s, Some(1.6));
        let silences = report.agent_silences.expect("a window");
        // Before the reply, and after it until the end.
        let after = end - (t0 + ms(10 + 255 * 20));
        assert_eq!(
            silences.gaps_ms,
            vec![
                (reply - speech_sent).as_millis() as u64,
                after.as_millis() as u64
            ]
        );
        assert_eq!(silences.longest_ms, after.as_millis() as u64);
        assert_eq!(silences.window_ms, (end - speech_sent).as_millis() as u64);
    }

    #[test]
    fn a_refer_closes_the_window_and_the_queue_time_stands_in_for_playback() {
        let t0 = Instant::now();
        let mut timing = CallTiming::new(t0, ms(60), ms(700));
        timing.handle_play(
            t0 + ms(100),
            PlayedSpeech {
                frames: 100,
                threshold_dbfs: -45.0,
                last_speech_frame: Some(9),
            },
        );
        // Speech left at 100 + 9 * 20 + 10 = 290 ms; the agent answers
        // with two bursts and a pause of 600 ms, then REFERs.
        let mut agent = [false; 120];
        agent[40..60].fill(true);
        agent[90..100].fill(true);
        agent_frames(&mut timing, t0, &agent);
        timing.handle_agent_gone(t0 + ms(2500));
        agent_frames(&mut timing, t0, &[true; 10]);
        let report = timing.report(t0 + ms(9000));
        // Frame 40 arrived at 810 ms.
        assert_eq!(report.voice_to_voice_ms, Some(810 - 290));
        let silences = report.agent_silences.expect("a window");
        assert_eq!(silences.window_ms, 2500 - 290);
        // 290..810, 1210..1810, 2010..2500.
        assert_eq!(silences.gaps_ms, vec![520, 600]);
        assert_eq!(silences.longest_ms, 600);
    }

    #[test]
    fn the_playout_delay_stays_within_what_the_buffer_can_add() {
        let t0 = Instant::now();
        let mut timing = CallTiming::new(t0, ms(60), ms(700));
        timing.handle_latched(t0);
        timing.handle_agent_audio(t0 + ms(95), &frame(-100.0));
        assert_eq!(timing.report(t0).playout_delay_ms, Some(80.0));
        let mut timing = CallTiming::new(t0, ms(60), ms(700));
        timing.handle_agent_audio(t0 + ms(95), &frame(-100.0));
        assert_eq!(timing.report(t0).playout_delay_ms, Some(60.0));
    }
}
