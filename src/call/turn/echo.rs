//! How loud the agent's own voice can come back in the caller's audio: an
//! upper bound on the echo of one frame, from the levels of the frames we
//! sent and what was heard while the caller was silent.
//!
//! Two kinds of bound, both learnt as the loudest echo heard recently
//! relative to a reference:
//!
//! - Geigel's (used by ITU-T G.168 echo cancellers to detect double talk):
//!   the echo is no louder than the loudest frame sent within the echo
//!   path's delay, less the path's loss. It holds whatever the delay, and
//!   before any echo has been heard it uses a prior loss (6 dB, the least
//!   G.168 expects of a line). It is loose: between the agent's syllables
//!   it still expects the echo of the last loud one.
//! - One per delay (20 ms steps up to the path's maximum): the echo is no
//!   louder than the frames sent that long ago (give or take a frame),
//!   plus that delay's gain. At the echo's real delay this follows the
//!   agent's syllables and is tight; at other delays it is loose, its gain
//!   having had to cover echo of louder frames. Once enough echo has been
//!   heard, the tightest of these bounds is used where it is below
//!   Geigel's.
//!
//! Each bound's gain is the loudest echo (relative to its reference) heard
//! above the noise over the last two seconds, so each stays a bound on all
//! the echo heard in that time. Observations wait before they are learnt:
//! the soft first frames of a caller's word, before it stands out, are not
//! echo, and are dropped when talk follows.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::voice::SILENCE_DBFS;

/// How long the loudest echo is remembered: a few of the agent's
/// syllables, short enough to forget a caller's word taken for echo.
const MEMORY: Duration = Duration::from_secs(2);
/// Frames of echo heard above the noise before the learnt gains replace
/// the prior (200 ms) ...
const MIN_ECHO_FRAMES: usize = 10;
/// ... and before the per-delay bounds are trusted (500 ms): each must
/// have seen the echo of loud and quiet frames alike.
const MIN_DELAY_FRAMES: usize = 25;
/// With no echo heard above the noise for [`MEMORY`], the prior falls
/// towards what the noise allows by this fraction per frame (a time
/// constant of 400 ms).
const NO_ECHO_FALL: f32 = 0.05;
/// The loss is never taken to exceed this.
const MAX_LOSS_DB: f32 = 60.0;

/// The echo path of one call, learnt across its playbacks.
#[derive(Debug)]
pub struct EchoPath {
    /// Levels of the frames sent, oldest first, with when.
    sent: VecDeque<(Instant, f32)>,
    /// The longest delay from sending a frame to hearing its echo.
    max_delay: Duration,
    /// Delays considered, in 20 ms frames: 0 to `max_delay`.
    delays: usize,
    /// Geigel's gain while too little echo has been heard: the prior, or
    /// less if the noise shows the echo is quieter.
    prior_gain_db: f32,
    /// Loudest echo relative to each reference: Geigel's first, then one
    /// per delay.
    peaks: Vec<SlidingMax>,
    /// Frames of echo heard above the noise so far.
    echo_frames: usize,
    /// Observations not yet learnt, oldest first.
    pending: VecDeque<Observation>,
}

/// One frame heard while the caller seemed silent.
#[derive(Debug)]
struct Observation {
    at: Instant,
    level: f32,
    references: Vec<f32>,
    above_noise: bool,
}

impl EchoPath {
    pub fn new(max_delay: Duration, prior_loss_db: f32) -> Self {
        let delays = (max_delay.as_millis() / 20) as usize + 1;
        EchoPath {
            sent: VecDeque::new(),
            max_delay,
            delays,
            prior_gain_db: -prior_loss_db.abs(),
            peaks: (0..=delays).map(|_| SlidingMax::default()).collect(),
            echo_frames: 0,
            pending: VecDeque::new(),
        }
    }

    /// A frame at `level_dbfs` was sent at `now`.
    pub fn handle_sent(&mut self, now: Instant, level_dbfs: f32) {
        self.sent.push_back((now, level_dbfs.max(SILENCE_DBFS)));
        self.forget(now);
    }

    /// Drops sent frames too old to be echoed at `now`.
    pub fn forget(&mut self, now: Instant) {
        // The delay, and a frame either side.
        let horizon = self.max_delay + Duration::from_millis(40);
        while self.sent.front().is_some_and(|&(at, _)| at + horizon < now) {
            self.sent.pop_front();
        }
    }

    /// The reference levels for a frame heard now: Geigel's (the loudest
    /// frame sent within the delay), then for each delay the loudest of
    /// the frames sent that many frames ago, give or take one.
    pub fn references(&self) -> Vec<f32> {
        let newest_first = |i: usize| {
            self.sent
                .len()
                .checked_sub(i + 1)
                .map_or(SILENCE_DBFS, |j| self.sent[j].1)
        };
        let geigel = self
            .sent
            .iter()
            .map(|&(_, level)| level)
            .fold(SILENCE_DBFS, f32::max);
        let mut references = Vec::with_capacity(self.delays + 1);
        references.push(geigel);
        for delay in 0..self.delays {
            let around = (delay.saturating_sub(1)..=delay + 1).map(newest_first);
            references.push(around.fold(SILENCE_DBFS, f32::max));
        }
        references
    }

    /// The loudest the echo can be, given the `references` of the frame.
    pub fn bound(&self, references: &[f32]) -> f32 {
        let geigel = references[0] + self.geigel_gain_db();
        if self.echo_frames < MIN_DELAY_FRAMES {
            return geigel;
        }
        references
            .iter()
            .zip(&self.peaks)
            .skip(1)
            .filter_map(|(reference, peaks)| peaks.max().map(|gain| reference + gain))
            .fold(geigel, f32::min)
    }

    /// The path's loss as Geigel's bound sees it, in dB.
    pub fn loss_db(&self) -> f32 {
        -self.geigel_gain_db()
    }

    fn geigel_gain_db(&self) -> f32 {
        match self.peaks[0].max() {
            Some(gain) if self.echo_frames >= MIN_ECHO_FRAMES => gain,
            _ => self.prior_gain_db,
        }
    }

    /// A frame heard at `at` while the caller seemed silent, at `level`,
    /// `above_noise` if it stood clear of the line's noise.
    pub fn observe(&mut self, at: Instant, level: f32, references: Vec<f32>, above_noise: bool) {
        self.pending.push_back(Observation {
            at,
            level,
            references,
            above_noise,
        });
    }

    /// The caller may have started talking: the waiting observations were
    /// not echo.
    pub fn discard_pending(&mut self) {
        self.pending.clear();
    }

    /// Learns the observations made `settle` or more before `now`, and
    /// forgets echo heard longer than [`MEMORY`] ago.
    pub fn learn(&mut self, now: Instant, settle: Duration) {
        while self.pending.front().is_some_and(|o| o.at + settle <= now) {
            let Some(observation) = self.pending.pop_front() else {
                break;
            };
            if observation.above_noise {
                self.echo_frames += 1;
                for (peaks, reference) in self.peaks.iter_mut().zip(&observation.references) {
                    peaks.push(observation.at, observation.level - reference);
                }
            } else if self.peaks[0].max().is_none() {
                // Only noise heard, and no echo lately: the echo is at
                // most that loud.
                let observed = observation.level - observation.references[0];
                if observed < self.prior_gain_db {
                    self.prior_gain_db += (observed - self.prior_gain_db) * NO_ECHO_FALL;
                }
            }
        }
        self.prior_gain_db = self.prior_gain_db.clamp(-MAX_LOSS_DB, 0.0);
        for peaks in &mut self.peaks {
            peaks.expire(now, MEMORY);
        }
    }
}

/// The maximum of values over a sliding time window.
#[derive(Debug, Default)]
struct SlidingMax {
    /// (when, value), values falling from front to back.
    values: VecDeque<(Instant, f32)>,
}

impl SlidingMax {
    fn push(&mut self, at: Instant, value: f32) {
        while self.values.back().is_some_and(|&(_, v)| v <= value) {
            self.values.pop_back();
        }
        self.values.push_back((at, value));
    }

    fn expire(&mut self, now: Instant, memory: Duration) {
        while self
            .values
            .front()
            .is_some_and(|&(at, _)| at + memory < now)
        {
            self.values.pop_front();
        }
    }

    fn max(&self) -> Option<f32> {
        self.values.front().map(|&(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// Sends `sent` (levels, one per 20 ms frame) and hears each frame's
    /// echo `delay` frames later at `gain`, over -60 dBFS of noise; the
    /// caller never talks.
    fn train(path: &mut EchoPath, sent: &[f32], delay: usize, gain: f32) {
        let start = Instant::now();
        for (k, &level) in sent.iter().enumerate() {
            let now = start + ms(20) * k as u32;
            path.handle_sent(now, level);
            let echo = k.checked_sub(delay).map_or(-100.0, |j| sent[j] + gain);
            let heard = echo.max(-60.0);
            let references = path.references();
            path.learn(now, ms(200));
            path.observe(now, heard, references, heard > -54.0);
        }
    }

    /// A syllable pattern: loud and quiet frames, 100 ms each.
    fn syllables(frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|k| if (k / 5) % 2 == 0 { -15.0 } else { -45.0 })
            .collect()
    }

    #[test]
    fn the_prior_holds_until_echo_is_heard_and_geigel_learns_the_loss() {
        let mut path = EchoPath::new(ms(300), 6.0);
        assert_eq!(path.loss_db(), 6.0);
        train(&mut path, &syllables(100), 6, -20.0);
        assert!((path.loss_db() - 20.0).abs() < 0.5, "{}", path.loss_db());
    }

    #[test]
    fn the_bound_at_the_echos_delay_follows_the_syllables() {
        let mut path = EchoPath::new(ms(300), 6.0);
        let sent = syllables(150);
        train(&mut path, &sent, 6, -20.0);
        // In a quiet syllable of the agent, whose echo is due now, the
        // bound is that of the quiet syllable, far below Geigel's.
        let references = path.references();
        let bound = path.bound(&references);
        let echo_now = sent[sent.len() - 6] - 20.0;
        assert!(bound >= echo_now, "bound {bound} below the echo {echo_now}");
        assert!(bound <= references[0] - 20.0, "bound {bound}");
    }

    #[test]
    fn every_echo_heard_stays_within_the_bound() {
        let mut path = EchoPath::new(ms(300), 6.0);
        let sent = syllables(300);
        let start = Instant::now();
        for (k, &level) in sent.iter().enumerate() {
            let now = start + ms(20) * k as u32;
            path.handle_sent(now, level);
            let heard = k
                .checked_sub(6)
                .map_or(-100.0, |j| sent[j] - 20.0)
                .max(-60.0);
            let references = path.references();
            // Below the noise (-60 dBFS here) the bound need not hold:
            // the detector never takes noise for talk.
            assert!(
                heard <= path.bound(&references).max(-54.0) + 0.01,
                "frame {k}: heard {heard}, bound {}, {references:?}, {} frames",
                path.bound(&references),
                path.echo_frames
            );
            path.learn(now, ms(200));
            path.observe(now, heard, references, heard > -54.0);
        }
    }

    #[test]
    fn with_no_echo_the_prior_falls_to_what_the_noise_allows() {
        let mut path = EchoPath::new(ms(300), 6.0);
        let start = Instant::now();
        for k in 0..100 {
            let now = start + ms(20) * k;
            path.handle_sent(now, -15.0);
            let references = path.references();
            path.learn(now, ms(200));
            path.observe(now, -60.0, references, false);
        }
        assert!(path.loss_db() > 40.0, "{}", path.loss_db());
    }
}
