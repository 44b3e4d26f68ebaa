//! Where the caller's turns begin and end, from their audio alone.
//!
//! A pure core, in virtual time: it never reads the clock. Call order:
//!
//! - [`Endpointer::handle_audio`] with every 20 ms frame of the caller
//!   (`MediaEvent::Audio`), `now` being the moment the frame has fully
//!   arrived;
//! - [`Endpointer::handle_playback`] when the agent starts and stops
//!   talking, [`Endpointer::handle_barge_in`] when the barge-in detector
//!   decides the caller is talking over it;
//! - [`Endpointer::arm_no_input`] when the agent has finished a prompt and
//!   waits for an answer, [`Endpointer::disarm_no_input`] to cancel;
//! - [`Endpointer::handle_reading`] when the transcript of a complete
//!   [`EndpointerEvent::Partial`] is known;
//! - [`Endpointer::handle_timeout`] at [`Endpointer::poll_timeout`];
//! - [`Endpointer::poll_event`] after each of those until it returns `None`.
//!
//! A frame is *voiced* when the voice-activity model calls it voice and it
//! stands clear of the line's noise floor (so steady line noise, or a hum
//! the model mistakes for voice, cannot hold a turn open once the floor
//! has risen to it). A turn starts when [`EndpointerConfig::min_speech`]
//! of voiced frames come close together: a click, a cough or a knock never
//! starts one. It ends after a silence whose length adapts to the turn
//! and to what its words read as (see [`EndpointerConfig`]), or when it
//! reaches the maximum length.
//!
//! Audio time is counted in samples, events are stamped with the `now` of
//! the frames they were found in: a frame covers `[now - 20 ms, now]`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::noise_floor::NoiseFloor;
use super::reading::TurnReading;
use super::voice::{level_dbfs, VoiceDetector};
use crate::audio::resample::resample;
use crate::audio::{SampleRate, Samples};
use crate::speech::vad;

/// Settings of an [`Endpointer`]. The defaults are for a telephone caller
/// answering an agent that should reply quickly.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointerConfig {
    /// Voiced audio needed to start a turn: 160 ms, just over the 150 ms
    /// the speech recogniser's own voice gate asks for, so that every turn
    /// is worth transcribing; clicks and knocks are far shorter. The
    /// voiced frames may be apart by less than the base
    /// [`hangover`](Self::hangover): a first word followed by a pause
    /// belongs to the turn, as the pause would not have closed an open
    /// turn.
    pub min_speech: Duration,
    /// Silence that ends a turn when nothing argues for waiting longer:
    /// 350 ms. Pauses inside a sentence are mostly shorter; the others
    /// lengthen it (below).
    pub hangover: Duration,
    /// A turn whose speech is shorter than this (600 ms) is likely a
    /// fragment ("I want to...") as much as a complete short answer, so it
    /// waits [`short_speech_hangover`](Self::short_speech_hangover).
    pub short_speech: Duration,
    /// Silence that ends a turn after short speech: 500 ms.
    pub short_speech_hangover: Duration,
    /// A caller who has paused inside this turn may pause that long again:
    /// the silence that ends the turn is at least this factor (1.5) times
    /// the turn's longest pause so far.
    pub pause_factor: f32,
    /// Gaps shorter than this (100 ms) are within words (stops, the
    /// model's frame-to-frame wobble), not pauses.
    pub min_pause: Duration,
    /// The silence that ends a turn never exceeds this (900 ms), however
    /// long the caller's pauses have been; it is also the silence that ends
    /// a turn whose words stop mid-phrase ([`TurnReading::Unfinished`]).
    pub max_hangover: Duration,
    /// Silence that ends a turn whose words read as a finished sentence
    /// ([`TurnReading::Finished`], see [`Endpointer::handle_reading`]):
    /// 250 ms, when that is shorter than the silence the turn would
    /// otherwise wait for. People leave about 200 ms between turns in
    /// conversation; a caller who goes on after this anyway talks over
    /// the reply, which is a barge-in and becomes the next turn.
    pub finished_hangover: Duration,
    /// A turn this long (15 s from its onset) ends even if the caller is
    /// still talking: the recogniser and the flow want a bounded turn.
    pub max_utterance: Duration,
    /// Audio kept before the onset (200 ms): the onset is found on voiced
    /// frames, and a soft start of a word precedes them.
    pub lead_in: Duration,
    /// Silence kept after the last voiced frame (200 ms), for a soft end of
    /// a word. 100 ms cut the end of the last word of 3 of the 80 fixtures
    /// (a fricative the voice model no longer scores as voice:
    /// tests/turn_taking.rs). At most the silence that ends the turn.
    pub trailing_pad: Duration,
    /// How long the caller must be silent (40 ms, two frames) before the
    /// turn as it would end is handed over for transcription: a complete
    /// [`EndpointerEvent::Partial`] of the speech and this much of the
    /// silence. It stands for the turn if the rest of the trailing pad
    /// stays at the line's noise (no frame more than
    /// [`continue_margin_db`](Self::continue_margin_db) above the floor,
    /// voice or not); a soft word end there brings a second complete
    /// partial with the whole pad. So transcription starts 160 ms sooner
    /// without cutting the word ends the pad is for. At most the trailing
    /// pad. 40 ms rather than 100: on the 80 fixtures over a -50 dBFS line
    /// the early partial stood for every turn either way, and tiny.en's
    /// word error rate on it was the same (10.7% against 11.0%); one
    /// frame would take a single unvoiced frame inside a word for the end.
    pub early_pad: Duration,
    /// While the caller talks, a [`EndpointerEvent::Partial`] every 600 ms
    /// of turn audio, so that transcription can run ahead of the turn's end.
    pub partial_interval: Duration,
    /// [`EndpointerEvent::NoInput`] comes this long (5 s) after
    /// [`Endpointer::arm_no_input`] if the caller has not started a turn.
    pub no_input_timeout: Duration,
    /// A frame counts as voiced only this far (10 dB) above the line's
    /// noise floor ...
    pub speech_margin_db: f32,
    /// ... or, inside a turn, this far (6 dB): two thresholds, so that the
    /// soft ends of words keep a turn open but line noise cannot start one.
    pub continue_margin_db: f32,
    /// ... and never below this level (-55 dBFS), whatever the floor.
    pub min_speech_level_dbfs: f32,
    /// The noise floor is the quietest moment of this window (2 s): long
    /// enough to hold a gap between words, short enough to follow a line
    /// that gets noisier.
    pub noise_window: Duration,
    /// After the agent stops talking, its echo can still arrive for this
    /// long (300 ms); no turn starts from its own onset until then.
    pub echo_tail: Duration,
    /// Audio kept while no turn is open (1 s), for the lead-in and for a
    /// turn that the barge-in detector starts some time after its onset.
    pub history: Duration,
}

impl Default for EndpointerConfig {
    fn default() -> Self {
        EndpointerConfig {
            min_speech: Duration::from_millis(160),
            hangover: Duration::from_millis(350),
            short_speech: Duration::from_millis(600),
            short_speech_hangover: Duration::from_millis(500),
            pause_factor: 1.5,
            min_pause: Duration::from_millis(100),
            max_hangover: Duration::from_millis(900),
            finished_hangover: Duration::from_millis(250),
            max_utterance: Duration::from_secs(15),
            lead_in: Duration::from_millis(200),
            trailing_pad: Duration::from_millis(200),
            early_pad: Duration::from_millis(40),
            partial_interval: Duration::from_millis(600),
            no_input_timeout: Duration::from_secs(5),
            speech_margin_db: 10.0,
            continue_margin_db: 6.0,
            min_speech_level_dbfs: -55.0,
            noise_window: Duration::from_secs(2),
            echo_tail: Duration::from_millis(300),
            history: Duration::from_secs(1),
        }
    }
}

/// What the endpointer found.
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointerEvent {
    /// The caller started a turn; `at` is the start of its first voiced
    /// frame (the event itself comes [`EndpointerConfig::min_speech`] or
    /// more later).
    SpeechStarted { at: Instant },
    /// The turn so far, from its lead-in: a hint to transcribe ahead. Comes
    /// every [`EndpointerConfig::partial_interval`] while the caller talks,
    /// and once the caller has been silent for the trailing pad, when the
    /// audio is what [`EndpointerEvent::TurnEnded`] will carry if the
    /// caller does not go on.
    Partial {
        audio: Samples,
        speech_duration: Duration,
        /// The caller has been silent for the trailing pad: this audio is
        /// the whole turn unless they go on (the one partial worth
        /// transcribing when CPU is short).
        complete: bool,
    },
    /// The caller went on after a pause that brought a complete
    /// [`EndpointerEvent::Partial`]: that partial will not stand for the
    /// turn, and any work on it can stop. Most pauses inside a sentence
    /// are short, but some outlast the early pad; a recognition left
    /// running on each would take the cores other calls need.
    SpeechResumed,
    /// The turn is over.
    TurnEnded(EndedTurn),
    /// The caller said nothing for [`EndpointerConfig::no_input_timeout`]
    /// after [`Endpointer::arm_no_input`] at `armed_at`.
    NoInput { armed_at: Instant },
}

/// A finished turn.
#[derive(Clone, Debug, PartialEq)]
pub struct EndedTurn {
    /// The lead-in, the speech and the trailing pad.
    pub audio: Samples,
    /// From the onset to the end of the last voiced frame.
    pub speech_duration: Duration,
    /// The end of the last voiced frame: where end-to-end latency starts.
    pub speech_ended_at: Instant,
    pub reason: TurnEndReason,
    /// Samples of the last [`EndpointerEvent::Partial`] when its transcript
    /// is this turn's: it carried exactly this audio, or this audio up to
    /// the early pad with nothing but the line's noise after it
    /// ([`EndpointerConfig::early_pad`]). `None`: transcribe `audio`.
    pub standing_partial: Option<usize>,
}

/// Why a turn ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnEndReason {
    /// The caller fell silent long enough.
    Silence,
    /// The turn reached [`EndpointerConfig::max_utterance`].
    MaxLength,
}

/// Finds the caller's turns in their audio. See the module documentation
/// for the call order.
#[derive(Debug)]
pub struct Endpointer {
    config: EndpointerConfig,
    voice: VoiceDetector,
    /// The line's noise, for the level a voiced frame must reach.
    noise: NoiseFloor,
    /// Rate of the audio, from the first frame; later frames are brought
    /// to it.
    rate: Option<SampleRate>,
    /// Frames while no turn is open, newest last, at most
    /// [`EndpointerConfig::history`].
    history: VecDeque<Frame>,
    /// Samples in `history`.
    history_samples: usize,
    state: State,
    /// The agent is talking: its echo must not start a turn.
    agent_speaking: bool,
    /// The agent has stopped, but its echo may arrive until then.
    echo_until: Option<Instant>,
    /// The no-input timer: when it fires and when it was armed.
    no_input: Option<(Instant, Instant)>,
    events: VecDeque<EndpointerEvent>,
}

/// One frame kept in the history.
#[derive(Debug)]
struct Frame {
    data: Vec<f32>,
    /// When its first sample arrived (its `now` minus its duration).
    start: Instant,
    level: f32,
    /// Voice by the model and the noise floor alone, echo or not.
    voiced: bool,
}

/// Looking back from a barge-in's onset: frames of the caller's word at
/// most this far (12 dB) below the talk that decided the barge-in ...
const BARGE_IN_LOOKBACK_DB: f32 = 12.0;
/// ... with gaps of at most this many 20 ms frames (100 ms, the dip
/// between two syllables or short words) between them.
const BARGE_IN_LOOKBACK_GAP: usize = 5;

#[derive(Debug)]
enum State {
    /// No turn: maybe an onset in progress.
    Listening {
        onset: Option<Onset>,
    },
    InTurn(Turn),
}

/// Voiced frames that may become a turn.
#[derive(Debug)]
struct Onset {
    at: Instant,
    voiced: Duration,
    gap: Duration,
}

/// The open turn.
#[derive(Debug)]
struct Turn {
    /// Audio from the lead-in on.
    audio: Vec<f32>,
    /// Samples of `audio` before the onset.
    onset_offset: usize,
    /// Samples of `audio` up to the end of the last voiced frame.
    voiced_end: usize,
    /// The end of the last voiced frame.
    last_voiced_at: Instant,
    /// Audio since the last voiced frame.
    silence: Duration,
    /// The longest pause (>= `min_pause`) between voiced frames so far.
    longest_pause: Duration,
    /// Length of `audio` when the last partial was sent (0: none yet).
    partial_len: usize,
    /// Since the early pad after the last voiced frame, a frame rose above
    /// the line's noise: the early partial does not stand for the turn.
    tail_sound: bool,
    /// What the words of the turn up to the last voiced frame read as.
    reading: Option<TurnReading>,
}

impl Turn {
    /// Where the early pad and the trailing pad after the last voiced frame
    /// end, in samples of `audio` (which may not reach them yet).
    fn pad_ends(&self, config: &EndpointerConfig, rate: SampleRate) -> (usize, usize) {
        let padded = self.voiced_end + samples_of(config.trailing_pad, rate);
        let early = self.voiced_end + samples_of(config.early_pad.min(config.trailing_pad), rate);
        (early, padded)
    }
}

impl Endpointer {
    pub fn new(config: EndpointerConfig) -> Self {
        // The floor's window counts 20 ms frames.
        let window = (config.noise_window.as_millis() / 20).max(1) as u64;
        Endpointer {
            voice: VoiceDetector::new(),
            noise: NoiseFloor::new(window),
            rate: None,
            history: VecDeque::new(),
            history_samples: 0,
            state: State::Listening { onset: None },
            agent_speaking: false,
            echo_until: None,
            no_input: None,
            events: VecDeque::new(),
            config,
        }
    }

    pub fn config(&self) -> &EndpointerConfig {
        &self.config
    }

    /// The line's noise level in dBFS, once a frame has been seen.
    pub fn noise_floor_dbfs(&self) -> Option<f32> {
        self.noise.level()
    }

    /// Whether a turn is open.
    pub fn in_turn(&self) -> bool {
        matches!(self.state, State::InTurn(_))
    }

    /// Takes the next frame of the caller's audio, which has fully arrived
    /// at `now`.
    pub fn handle_audio(&mut self, now: Instant, frame: &Samples) {
        let rate = *self.rate.get_or_insert(frame.rate);
        let converted;
        let frame = if frame.rate == rate {
            frame
        } else {
            debug_assert!(false, "a {} frame after {rate} audio", frame.rate);
            converted = resample(frame, rate);
            &converted
        };
        if frame.data.is_empty() {
            return;
        }
        let duration = duration_of(frame.data.len(), rate);
        let start = now.checked_sub(duration).unwrap_or(now);
        let level = level_dbfs(frame);
        let score = self.voice.score(frame);
        self.noise.handle_level(level);
        let floor = self.noise.level().unwrap_or(level);
        let margin = match self.state {
            State::Listening { .. } => self.config.speech_margin_db,
            State::InTurn(_) => self.config.continue_margin_db,
        };
        let voiced = score > vad::VOICE_THRESHOLD
            && level > (floor + margin).max(self.config.min_speech_level_dbfs);
        if self.echo_until.is_some_and(|until| now >= until) {
            self.echo_until = None;
        }
        let echo_expected = self.agent_speaking || self.echo_until.is_some();

        match &mut self.state {
            State::Listening { onset } => {
                self.history.push_back(Frame {
                    data: frame.data.clone(),
                    start,
                    level,
                    voiced: score > vad::VOICE_THRESHOLD
                        && level
                            > (floor + self.config.continue_margin_db)
                                .max(self.config.min_speech_level_dbfs),
                });
                self.history_samples += frame.data.len();
                let keep = samples_of(self.config.history, rate);
                while self.history_samples > keep {
                    match self.history.pop_front() {
                        Some(old) => self.history_samples -= old.data.len(),
                        None => break,
                    }
                }
                if echo_expected {
                    *onset = None;
                } else if voiced {
                    let o = onset.get_or_insert(Onset {
                        at: start,
                        voiced: Duration::ZERO,
                        gap: Duration::ZERO,
                    });
                    o.voiced += duration;
                    o.gap = Duration::ZERO;
                } else if let Some(o) = onset {
                    o.gap += duration;
                    if o.gap >= self.config.hangover {
                        *onset = None;
                    }
                }
                let started = match onset {
                    Some(o) if o.voiced >= self.config.min_speech => Some(o.at),
                    _ => None,
                };
                if let Some(at) = started {
                    self.open_turn(now, at, rate);
                } else {
                    self.check_no_input(now);
                }
            }
            State::InTurn(turn) => {
                // The part of the trailing pad after the early pad: sound
                // there is a soft word end the early partial lacks.
                let (early_end, padded) = turn.pad_ends(&self.config, rate);
                let frame_start = turn.audio.len();
                turn.audio.extend_from_slice(&frame.data);
                if !voiced
                    && turn.audio.len() > early_end
                    && frame_start < padded
                    && level > floor + self.config.continue_margin_db
                {
                    turn.tail_sound = true;
                }
                if voiced {
                    if turn.partial_len > turn.voiced_end {
                        self.events.push_back(EndpointerEvent::SpeechResumed);
                    }
                    if turn.silence >= self.config.min_pause {
                        turn.longest_pause = turn.longest_pause.max(turn.silence);
                    }
                    turn.silence = Duration::ZERO;
                    turn.tail_sound = false;
                    // The caller went on: what the words so far read as
                    // no longer says where the turn ends.
                    turn.reading = None;
                    turn.voiced_end = turn.audio.len();
                    turn.last_voiced_at = now;
                } else {
                    turn.silence += duration;
                }
                self.advance_turn(rate);
            }
        }
    }

    /// The agent started (`true`) or stopped talking. While it talks, and
    /// for [`EndpointerConfig::echo_tail`] after, the caller's audio does
    /// not start a turn by itself: its echo would. A caller who talks over
    /// the agent is found by the barge-in detector, which then calls
    /// [`handle_barge_in`](Self::handle_barge_in). A turn already open
    /// goes on.
    pub fn handle_playback(&mut self, now: Instant, playing: bool) {
        if playing {
            self.agent_speaking = true;
            self.echo_until = None;
        } else if self.agent_speaking {
            self.agent_speaking = false;
            self.echo_until = Some(now + self.config.echo_tail);
        }
    }

    /// The caller talked over the agent from `onset_at`: that speech opens
    /// a turn, from the audio kept since (with the lead-in). Ignored while
    /// a turn is already open.
    pub fn handle_barge_in(&mut self, now: Instant, onset_at: Instant) {
        if matches!(self.state, State::Listening { .. }) {
            let rate = self.rate.unwrap_or(SampleRate::TELEPHONE);
            let onset = self.word_start_before(onset_at);
            self.open_turn(now, onset, rate);
            // The speech goes on: the barge-in was decided on voice.
            if let State::InTurn(turn) = &mut self.state {
                turn.voiced_end = turn.audio.len();
                turn.last_voiced_at = now;
            }
        }
        self.agent_speaking = false;
        self.echo_until = None;
    }

    /// Where the caller's speech began, for a barge-in decided on talk
    /// from `onset_at`. While the agent plays, the detector needs talk to
    /// stand clear of the loudest echo the line might have; early in a call,
    /// before the echo is known, that can miss the caller's first words.
    /// So the onset moves back over the voiced frames just before it that
    /// are nearly as loud as the talk (within 12 dB: louder than an echo
    /// the detector's margin would allow), across short gaps.
    fn word_start_before(&self, onset_at: Instant) -> Instant {
        let talk = self
            .history
            .iter()
            .filter(|f| f.start >= onset_at && f.voiced)
            .map(|f| f.level)
            .fold(f32::NEG_INFINITY, f32::max);
        if !talk.is_finite() {
            return onset_at;
        }
        let mut onset = onset_at;
        let mut gap = 0;
        for frame in self.history.iter().rev().filter(|f| f.start < onset_at) {
            if frame.voiced && frame.level >= talk - BARGE_IN_LOOKBACK_DB {
                onset = frame.start;
                gap = 0;
            } else {
                gap += 1;
                if gap > BARGE_IN_LOOKBACK_GAP {
                    break;
                }
            }
        }
        onset
    }

    /// Starts the no-input timer: [`EndpointerEvent::NoInput`] follows
    /// unless the caller starts a turn within the timeout. Call when the
    /// agent has finished talking and waits for an answer.
    pub fn arm_no_input(&mut self, now: Instant) {
        self.no_input = Some((now + self.config.no_input_timeout, now));
    }

    /// Stops the no-input timer.
    pub fn disarm_no_input(&mut self) {
        self.no_input = None;
    }

    /// The words of the open turn's complete partial, the one of
    /// `audio_len` samples, read as `reading` (see [`super::reading`]).
    /// Unless the caller has spoken since, the turn now ends after
    /// [`EndpointerConfig::finished_hangover`] of silence if finished
    /// (at once, if the silence is already that long), or after
    /// [`EndpointerConfig::max_hangover`] if unfinished. A reading of other
    /// audio (an older partial) is ignored.
    pub fn handle_reading(&mut self, audio_len: usize, reading: TurnReading) {
        let State::InTurn(turn) = &mut self.state else {
            return;
        };
        if turn.silence.is_zero() || turn.partial_len != audio_len {
            return;
        }
        turn.reading = Some(reading);
        let rate = self.rate.unwrap_or(SampleRate::TELEPHONE);
        self.advance_turn(rate);
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due. While
    /// the caller may be starting to talk (an onset not yet confirmed) the
    /// timer waits for the frames that decide.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Listening { onset: None } => self.no_input.map(|(deadline, _)| deadline),
            _ => None,
        }
    }

    /// Fires the no-input timer if it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_no_input(now);
    }

    pub fn poll_event(&mut self) -> Option<EndpointerEvent> {
        self.events.pop_front()
    }

    fn check_no_input(&mut self, now: Instant) {
        if !matches!(self.state, State::Listening { onset: None }) {
            return;
        }
        if let Some((deadline, armed_at)) = self.no_input {
            if now >= deadline {
                self.no_input = None;
                self.events.push_back(EndpointerEvent::NoInput { armed_at });
            }
        }
    }

    /// Opens a turn at `onset` with the kept audio from the lead-in on.
    fn open_turn(&mut self, now: Instant, onset: Instant, rate: SampleRate) {
        let lead_in_from = onset.checked_sub(self.config.lead_in).unwrap_or(onset);
        let mut audio = Vec::with_capacity(self.history_samples);
        let mut onset_offset = 0;
        for frame in self.history.drain(..) {
            let end = frame.start + duration_of(frame.data.len(), rate);
            if end <= lead_in_from {
                continue;
            }
            if end <= onset {
                onset_offset += frame.data.len();
            }
            audio.extend_from_slice(&frame.data);
        }
        self.history_samples = 0;
        self.no_input = None;
        self.events
            .push_back(EndpointerEvent::SpeechStarted { at: onset });
        self.state = State::InTurn(Turn {
            voiced_end: audio.len(),
            audio,
            onset_offset,
            last_voiced_at: now,
            silence: Duration::ZERO,
            longest_pause: Duration::ZERO,
            partial_len: 0,
            tail_sound: false,
            reading: None,
        });
    }

    /// After a frame of an open turn: partials, and the end of the turn.
    fn advance_turn(&mut self, rate: SampleRate) {
        let State::InTurn(turn) = &mut self.state else {
            return;
        };
        let config = &self.config;
        let (early_end, padded) = turn.pad_ends(config, rate);
        let speech_duration = duration_of(turn.voiced_end.saturating_sub(turn.onset_offset), rate);
        let length = duration_of(turn.audio.len() - turn.onset_offset, rate);

        let reason = if length >= config.max_utterance {
            Some(TurnEndReason::MaxLength)
        } else if turn.silence >= hangover(config, turn, speech_duration) {
            Some(TurnEndReason::Silence)
        } else {
            None
        };
        if let Some(reason) = reason {
            let State::InTurn(mut turn) =
                std::mem::replace(&mut self.state, State::Listening { onset: None })
            else {
                return;
            };
            let (end, speech_duration) = match reason {
                TurnEndReason::Silence => (padded.min(turn.audio.len()), speech_duration),
                TurnEndReason::MaxLength => (turn.audio.len(), length),
            };
            turn.audio.truncate(end);
            let stands = turn.partial_len == end
                || (reason == TurnEndReason::Silence
                    && turn.partial_len == early_end.min(end)
                    && !turn.tail_sound);
            self.events.push_back(EndpointerEvent::TurnEnded(EndedTurn {
                standing_partial: stands.then_some(turn.partial_len),
                audio: Samples::new(rate, turn.audio),
                speech_duration,
                speech_ended_at: turn.last_voiced_at,
                reason,
            }));
            return;
        }

        // While talking, the audio so far; after the early pad of silence,
        // what the turn will be if the caller stops here (as far as the
        // recogniser can tell: the rest of the pad is for a soft word end,
        // and gets its own partial when it holds one).
        let talking = turn.silence.is_zero();
        let since_partial = duration_of(turn.audio.len().saturating_sub(turn.partial_len), rate);
        let partial_len = if talking && since_partial >= config.partial_interval {
            Some(turn.audio.len())
        } else if !talking && turn.audio.len() >= early_end && turn.partial_len < early_end {
            Some(early_end)
        } else if !talking
            && turn.tail_sound
            && turn.audio.len() >= padded
            && turn.partial_len < padded
        {
            Some(padded)
        } else {
            None
        };
        if let Some(len) = partial_len {
            turn.partial_len = len;
            self.events.push_back(EndpointerEvent::Partial {
                audio: Samples::new(rate, turn.audio[..len].to_vec()),
                speech_duration,
                complete: !talking,
            });
        }
    }
}

/// The silence that ends `turn`: the base hangover, longer after short
/// speech and after long pauses, within the bounds; shorter when its
/// words read as finished, the longest when they stop mid-phrase.
fn hangover(config: &EndpointerConfig, turn: &Turn, speech_duration: Duration) -> Duration {
    let mut silence = config.hangover;
    if speech_duration < config.short_speech {
        silence = silence.max(config.short_speech_hangover);
    }
    silence = silence.max(turn.longest_pause.mul_f32(config.pause_factor.max(0.0)));
    silence = match turn.reading {
        None => silence,
        Some(TurnReading::Finished) => silence.min(config.finished_hangover),
        Some(TurnReading::Unfinished) => config.max_hangover,
    };
    silence.min(config.max_hangover).max(config.trailing_pad)
}

fn duration_of(samples: usize, rate: SampleRate) -> Duration {
    if rate.0 == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos((samples as u128 * 1_000_000_000 / rate.0 as u128) as u64)
}

fn samples_of(duration: Duration, rate: SampleRate) -> usize {
    (duration.as_nanos() * rate.0 as u128 / 1_000_000_000) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::turn::test_signal::*;

    /// An endpointer fed in virtual time, its events with the time (since
    /// the start) at which they came.
    struct Line {
        endpointer: Endpointer,
        start: Instant,
        frames: usize,
        events: Vec<(Duration, EndpointerEvent)>,
    }

    impl Line {
        fn new(config: EndpointerConfig) -> Self {
            Line {
                endpointer: Endpointer::new(config),
                start: Instant::now(),
                frames: 0,
                events: Vec::new(),
            }
        }

        fn now(&self) -> Instant {
            self.start + FRAME * self.frames as u32
        }

        fn feed(&mut self, audio: &Samples) {
            for frame in frames(audio) {
                self.frames += 1;
                let now = self.now();
                self.endpointer.handle_audio(now, &frame);
                self.drain(now);
            }
        }

        fn drain(&mut self, now: Instant) {
            while let Some(event) = self.endpointer.poll_event() {
                self.events.push((now - self.start, event));
            }
        }

        fn since_start(&self, at: Instant) -> Duration {
            at - self.start
        }

        /// The events in brief, for failure messages.
        fn summary(&self) -> Vec<String> {
            self.events
                .iter()
                .map(|(t, e)| match e {
                    EndpointerEvent::SpeechStarted { at } => {
                        format!("{t:?} started at {:?}", self.since_start(*at))
                    }
                    EndpointerEvent::Partial { audio, .. } => {
                        format!("{t:?} partial {:?}", audio.duration())
                    }
                    EndpointerEvent::TurnEnded(turn) => format!(
                        "{t:?} ended {:?} speech {:?} audio {:?}",
                        turn.reason,
                        turn.speech_duration,
                        turn.audio.duration()
                    ),
                    EndpointerEvent::NoInput { .. } => format!("{t:?} no input"),
                    EndpointerEvent::SpeechResumed => format!("{t:?} resumed"),
                })
                .collect()
        }

        fn started(&self) -> Vec<Duration> {
            self.events
                .iter()
                .filter_map(|(_, e)| match e {
                    EndpointerEvent::SpeechStarted { at } => Some(self.since_start(*at)),
                    _ => None,
                })
                .collect()
        }

        /// Partials with the time they were reported and whether complete.
        fn partials(&self) -> Vec<(Duration, Samples, bool)> {
            self.events
                .iter()
                .filter_map(|(t, e)| match e {
                    EndpointerEvent::Partial {
                        audio, complete, ..
                    } => Some((*t, audio.clone(), *complete)),
                    _ => None,
                })
                .collect()
        }

        /// Lengths of the complete partials, in samples.
        fn complete_partials(&self) -> Vec<usize> {
            self.partials()
                .into_iter()
                .filter(|(_, _, complete)| *complete)
                .map(|(_, audio, _)| audio.data.len())
                .collect()
        }

        /// Ended turns with the time they were reported.
        fn ended(&self) -> Vec<(Duration, EndedTurn)> {
            self.events
                .iter()
                .filter_map(|(t, e)| match e {
                    EndpointerEvent::TurnEnded(turn) => Some((*t, turn.clone())),
                    _ => None,
                })
                .collect()
        }
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn near(actual: Duration, expected: Duration, tolerance: Duration) -> bool {
        actual.abs_diff(expected) <= tolerance
    }

    #[test]
    fn clicks_and_short_noises_start_no_turn() {
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(500)));
        for _ in 0..5 {
            line.feed(&click(ms(20)));
            line.feed(&silence(ms(300)));
        }
        // A burst of voice shorter than the onset needs: a cough, "uh".
        line.feed(&voice(ms(80), -20.0, 1));
        line.feed(&silence(ms(1_000)));
        assert!(line.events.is_empty(), "{:?}", line.summary());
    }

    #[test]
    fn a_second_of_speech_is_one_turn_ended_within_the_hangover() {
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(500)));
        line.feed(&voice(ms(1_000), -20.0, 1));
        line.feed(&silence(ms(2_000)));
        let started = line.started();
        assert_eq!(started.len(), 1, "{:?}", line.summary());
        assert!(
            near(started[0], ms(500), ms(40)),
            "onset at {:?}",
            started[0]
        );
        let ended = line.ended();
        assert_eq!(ended.len(), 1);
        let (at, turn) = &ended[0];
        assert_eq!(turn.reason, TurnEndReason::Silence);
        // The model's scores trail the voice by a frame or two.
        let delay = *at - ms(1_500);
        assert!(
            delay >= ms(300) && delay <= ms(380),
            "ended {delay:?} after the voice"
        );
        assert!(
            near(turn.speech_duration, ms(1_000), ms(60)),
            "{:?}",
            turn.speech_duration
        );
        assert!(near(
            line.since_start(turn.speech_ended_at),
            ms(1_500),
            ms(60)
        ));
        // Lead-in, speech, trailing pad.
        let config = EndpointerConfig::default();
        let expected = config.lead_in + turn.speech_duration + config.trailing_pad;
        assert!(
            near(turn.audio.duration(), expected, ms(20)),
            "{:?}",
            turn.audio.duration()
        );
        assert_eq!(turn.audio.rate, SampleRate::TELEPHONE);
    }

    #[test]
    fn a_pause_mid_utterance_does_not_split_the_turn_and_lengthens_the_wait() {
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(500)));
        line.feed(&voice(ms(1_000), -20.0, 1));
        line.feed(&silence(ms(250)));
        line.feed(&voice(ms(1_000), -20.0, 2));
        line.feed(&silence(ms(2_000)));
        assert_eq!(line.started().len(), 1, "{:?}", line.summary());
        let ended = line.ended();
        assert_eq!(ended.len(), 1);
        let (at, turn) = &ended[0];
        assert!(near(turn.speech_duration, ms(2_250), ms(60)));
        // After a pause of ~250 ms the turn waits 1.5 times as long.
        let delay = *at - ms(2_750);
        assert!(
            delay >= ms(330) && delay <= ms(460),
            "ended {delay:?} after the voice"
        );
    }

    #[test]
    fn a_longer_pause_ends_the_turn_and_the_next_words_are_a_new_one() {
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(500)));
        line.feed(&voice(ms(1_000), -20.0, 1));
        line.feed(&silence(ms(800)));
        line.feed(&voice(ms(1_000), -20.0, 2));
        line.feed(&silence(ms(1_000)));
        assert_eq!(line.started().len(), 2, "{:?}", line.summary());
        assert_eq!(line.ended().len(), 2);
    }

    #[test]
    fn short_speech_waits_longer() {
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(500)));
        // Two syllables.
        line.feed(&voice(ms(360), -20.0, 1));
        line.feed(&silence(ms(1_500)));
        let ended = line.ended();
        assert_eq!(ended.len(), 1, "{:?}", line.summary());
        let delay = ended[0].0 - ms(860);
        assert!(
            delay >= ms(500) && delay <= ms(580),
            "ended {delay:?} after the voice"
        );
    }

    #[test]
    fn continuous_speech_ends_at_the_maximum_length() {
        let config = EndpointerConfig::default();
        let max = config.max_utterance;
        let mut line = Line::new(config);
        line.feed(&silence(ms(500)));
        line.feed(&voice(ms(20_000), -20.0, 1));
        line.feed(&silence(ms(1_000)));
        let ended = line.ended();
        assert_eq!(ended.len(), 2, "{:?}", line.summary());
        let (at, first) = &ended[0];
        assert_eq!(first.reason, TurnEndReason::MaxLength);
        assert!(near(*at, ms(500) + max, ms(60)), "ended at {at:?}");
        assert!(near(first.audio.duration(), max + ms(200), ms(60)));
        // The caller went on: the rest is the next turn.
        assert_eq!(ended[1].1.reason, TurnEndReason::Silence);
        assert!(near(ended[1].1.speech_duration, ms(5_000), ms(300)));
    }

    #[test]
    fn no_input_fires_once_after_the_timeout_in_virtual_time() {
        let mut line = Line::new(EndpointerConfig::default());
        let armed = line.now();
        line.endpointer.arm_no_input(armed);
        assert_eq!(line.endpointer.poll_timeout(), Some(armed + ms(5_000)));
        // No audio at all (the driver's timer alone): jump to the deadline.
        line.endpointer.handle_timeout(armed + ms(4_999));
        assert_eq!(line.endpointer.poll_event(), None);
        let deadline = line.endpointer.poll_timeout().unwrap();
        line.endpointer.handle_timeout(deadline);
        assert_eq!(
            line.endpointer.poll_event(),
            Some(EndpointerEvent::NoInput { armed_at: armed })
        );
        assert_eq!(line.endpointer.poll_timeout(), None);
        line.endpointer.handle_timeout(deadline + ms(10_000));
        assert_eq!(line.endpointer.poll_event(), None);

        // Fed silence, it fires from the audio too.
        let mut line = Line::new(EndpointerConfig::default());
        line.endpointer.arm_no_input(line.now());
        line.feed(&silence(ms(6_000)));
        let no_input: Vec<_> = line
            .events
            .iter()
            .filter(|(_, e)| matches!(e, EndpointerEvent::NoInput { .. }))
            .collect();
        assert_eq!(no_input.len(), 1);
        assert_eq!(no_input[0].0, ms(5_000));
    }

    #[test]
    fn speech_disarms_no_input_and_disarm_cancels_it() {
        let mut line = Line::new(EndpointerConfig::default());
        line.endpointer.arm_no_input(line.now());
        line.feed(&silence(ms(4_000)));
        line.feed(&voice(ms(1_500), -20.0, 1));
        line.feed(&silence(ms(3_000)));
        assert!(line
            .events
            .iter()
            .all(|(_, e)| !matches!(e, EndpointerEvent::NoInput { .. })));
        assert_eq!(line.ended().len(), 1);

        let mut line = Line::new(EndpointerConfig::default());
        line.endpointer.arm_no_input(line.now());
        line.feed(&silence(ms(1_000)));
        line.endpointer.disarm_no_input();
        line.feed(&silence(ms(6_000)));
        assert!(line.events.is_empty());
    }

    #[test]
    fn adapts_to_white_noise_at_minus_40_dbfs() {
        let mut line = Line::new(EndpointerConfig::default());
        let mut audio = white_noise(-40.0, ms(6_000), 11);
        mix_into(&mut audio, &voice(ms(1_000), -20.0, 1), 2_000 * 8);
        line.feed(&audio);
        let floor = line.endpointer.noise_floor_dbfs().unwrap();
        assert!((-42.0..=-39.0).contains(&floor), "floor {floor}");
        assert_eq!(line.started().len(), 1, "{:?}", line.summary());
        assert!(near(line.started()[0], ms(2_000), ms(40)));
        let ended = line.ended();
        assert_eq!(ended.len(), 1);
        let delay = ended[0].0 - ms(3_000);
        assert!(delay <= ms(380), "the noise held the turn {delay:?}");
    }

    #[test]
    fn a_hum_the_model_takes_for_voice_holds_no_turn_beyond_the_noise_window() {
        // Earshot scores a low tone as voice. On a line that was quiet, a
        // hum opens a turn, but the floor rises to it within the window.
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(1_000)));
        let mut audio = tone(300.0, -35.0, ms(6_000));
        mix_into(&mut audio, &voice(ms(1_000), -20.0, 1), 4_000 * 8);
        line.feed(&audio);
        let ended = line.ended();
        assert_eq!(ended.len(), 2, "{:?}", line.summary());
        assert!(
            ended[0].0 <= ms(1_000) + ms(2_000) + ms(400),
            "{:?}",
            line.summary()
        );
        // Words over the hum are a turn of their own, ended on time.
        assert!(
            near(line.started()[1], ms(5_000), ms(40)),
            "{:?}",
            line.summary()
        );
        assert!(ended[1].0 - ms(6_000) <= ms(380), "{:?}", line.summary());
    }

    #[test]
    fn partials_come_while_talking_and_at_the_pause_that_ends_the_turn() {
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(500)));
        line.feed(&voice(ms(2_000), -20.0, 1));
        line.feed(&silence(ms(1_000)));
        let partials = line.partials();
        // At most 600 ms of turn audio (which starts with the lead-in)
        // apart while talking: at the interval, or at a gap between words
        // (60 ms in this voice) that outlasts the early pad.
        assert!(partials.len() >= 4, "{:?}", line.summary());
        for pair in partials.windows(2) {
            assert!(pair[1].1.data.len() > pair[0].1.data.len(), "partials grow");
            assert!(pair[1].1.data.len() - pair[0].1.data.len() <= 4_800 + 160);
        }
        // Each complete partial but the last is followed by the caller
        // going on, before the next partial.
        let resumed = line
            .events
            .iter()
            .filter(|(_, e)| matches!(e, EndpointerEvent::SpeechResumed))
            .count();
        let complete = line.complete_partials().len();
        assert!(complete >= 2, "{:?}", line.summary());
        assert_eq!(resumed, complete - 1, "{:?}", line.summary());
        // The last one is the turn without the rest of its trailing pad,
        // silence, and stands for it.
        let (last_at, last, _) = partials.last().unwrap();
        let (ended_at, turn) = &line.ended()[0];
        let rest = turn.audio.data.len() - last.data.len();
        assert_eq!(rest, 1_280, "the pad after the early pad: 160 ms");
        assert_eq!(last.data[..], turn.audio.data[..last.data.len()]);
        assert_eq!(turn.standing_partial, Some(last.data.len()));
        // Transcription of the last partial gets a head start.
        assert!(*ended_at - *last_at >= ms(200));
    }

    #[test]
    fn a_soft_word_end_after_the_early_pad_brings_a_partial_with_the_whole_pad() {
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(500)));
        line.feed(&voice(ms(1_000), -20.0, 1));
        // 60 ms of silence, then a hiss too soft to be voice (under
        // min_speech_level_dbfs) but well over the quiet line.
        line.feed(&silence(ms(60)));
        line.feed(&white_noise(-60.0, ms(60), 7));
        line.feed(&silence(ms(1_000)));
        let complete = line.complete_partials();
        let (_, turn) = &line.ended()[0];
        // The last two: at the early pad, then with the whole pad.
        let [.., early, whole] = complete[..] else {
            panic!("{:?}", line.summary());
        };
        assert_eq!(whole, turn.audio.data.len());
        assert_eq!(whole - early, 1_280);
        assert_eq!(turn.standing_partial, Some(turn.audio.data.len()));
    }

    #[test]
    fn the_agents_echo_starts_no_turn_and_a_barge_in_opens_one_from_its_onset() {
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(500)));
        line.endpointer.handle_playback(line.now(), true);
        // Echo of the agent's voice: no turn.
        line.feed(&voice(ms(1_000), -30.0, 3));
        assert!(line.events.is_empty(), "{:?}", line.summary());
        // The caller talks over the agent; the barge-in detector decides
        // 200 ms after the onset.
        let onset = line.now();
        line.feed(&voice(ms(200), -15.0, 1));
        line.endpointer.handle_barge_in(line.now(), onset);
        line.drain(line.now());
        line.feed(&voice(ms(800), -15.0, 1));
        line.feed(&silence(ms(1_000)));
        assert_eq!(line.started(), vec![ms(1_500)]);
        let ended = line.ended();
        assert_eq!(ended.len(), 1);
        let turn = &ended[0].1;
        assert!(near(turn.speech_duration, ms(1_000), ms(60)));
        // Lead-in, speech, trailing pad.
        assert!(near(turn.audio.duration(), ms(1_400), ms(60)));
    }

    /// A second of speech, then silence up to the complete partial: the
    /// line and that partial's length.
    fn paused_after_speech() -> (Line, usize) {
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(500)));
        line.feed(&voice(ms(1_000), -20.0, 1));
        let during_speech = line.complete_partials().len();
        let mut complete = None;
        while complete.is_none() {
            line.feed(&silence(FRAME));
            complete = line.complete_partials().get(during_speech).copied();
        }
        (line, complete.unwrap_or_default())
    }

    fn ended_at(line: &Line) -> Option<Duration> {
        line.ended().first().map(|(at, _)| *at)
    }

    #[test]
    fn finished_words_end_the_turn_sooner() {
        let (mut line, len) = paused_after_speech();
        // Transcribed in 20 ms: the silence is not yet 250 ms.
        line.feed(&silence(ms(20)));
        line.endpointer.handle_reading(len, TurnReading::Finished);
        line.drain(line.now());
        assert!(line.ended().is_empty(), "{:?}", line.summary());
        line.feed(&silence(ms(1_000)));
        let at = ended_at(&line).expect("a turn");
        let delay = at - ms(1_500);
        assert!(
            delay >= ms(250) && delay <= ms(300),
            "ended {delay:?} after the voice"
        );
        assert_eq!(line.ended()[0].1.standing_partial, Some(len));
    }

    #[test]
    fn a_reading_that_comes_after_the_finished_hangover_ends_the_turn_at_once() {
        let (mut line, len) = paused_after_speech();
        // Past the finished hangover, short of the plain one (350 ms):
        // the complete partial came after 40 ms of silence.
        line.feed(&silence(ms(240)));
        assert!(line.ended().is_empty());
        line.endpointer.handle_reading(len, TurnReading::Finished);
        line.drain(line.now());
        let at = ended_at(&line).expect("ended by the reading");
        assert_eq!(at, line.since_start(line.now()));
    }

    #[test]
    fn unfinished_words_wait_the_longest_hangover() {
        let (mut line, len) = paused_after_speech();
        line.endpointer.handle_reading(len, TurnReading::Unfinished);
        line.feed(&silence(ms(2_000)));
        let delay = ended_at(&line).expect("a turn") - ms(1_500);
        let longest = EndpointerConfig::default().max_hangover;
        assert!(
            delay >= longest && delay <= longest + ms(60),
            "ended {delay:?} after the voice"
        );
    }

    #[test]
    fn a_reading_of_older_audio_or_after_the_caller_went_on_is_ignored() {
        let (mut line, len) = paused_after_speech();
        line.endpointer
            .handle_reading(len + 160, TurnReading::Finished);
        line.feed(&voice(ms(300), -20.0, 2));
        line.endpointer.handle_reading(len, TurnReading::Finished);
        line.feed(&silence(ms(2_000)));
        // Ended on the plain hangover after the second stretch of voice.
        let delay = ended_at(&line).expect("a turn") - ms(1_800);
        assert!(delay >= ms(300), "ended {delay:?} after the voice");
    }

    #[test]
    fn a_late_barge_in_takes_the_callers_words_from_their_start() {
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(500)));
        line.endpointer.handle_playback(line.now(), true);
        // No echo on this line; the caller starts at 800 ms, but the
        // barge-in detector (not trusting the line yet) decides only on
        // talk from 1 300 ms.
        line.feed(&silence(ms(300)));
        line.feed(&voice(ms(500), -28.0, 2));
        let onset = line.now();
        line.feed(&voice(ms(200), -22.0, 1));
        line.endpointer.handle_barge_in(line.now(), onset);
        line.drain(line.now());
        line.feed(&voice(ms(600), -22.0, 1));
        line.feed(&silence(ms(1_000)));
        // (The synthetic voice's first frames are soft: they start no
        // word, but the lead-in keeps them.)
        let started = line.started();
        assert_eq!(started.len(), 1);
        assert!(near(started[0], ms(800), ms(80)), "{started:?}");
        let turn = &line.ended()[0].1;
        assert!(
            turn.audio.duration() >= ms(1_300 + 200),
            "{:?}",
            turn.audio.duration()
        );
    }

    #[test]
    fn the_echo_tail_after_playback_starts_no_turn() {
        let mut line = Line::new(EndpointerConfig::default());
        line.feed(&silence(ms(500)));
        line.endpointer.handle_playback(line.now(), true);
        line.feed(&voice(ms(1_000), -30.0, 3));
        line.endpointer.handle_playback(line.now(), false);
        // Echo for 200 ms after the agent stopped.
        line.feed(&voice(ms(200), -30.0, 4));
        line.feed(&silence(ms(1_000)));
        assert!(line.events.is_empty(), "{:?}", line.summary());
        // Then the caller answers.
        line.feed(&voice(ms(600), -20.0, 1));
        line.feed(&silence(ms(1_000)));
        assert_eq!(line.started(), vec![ms(2_700)]);
    }
}
