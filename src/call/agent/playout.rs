//! What the agent is saying at a given instant, for the barge-in detector
//! (which compares the caller's audio with our own voice's level) and for
//! knowing when the caller has heard a prompt out. A pure core: the driver
//! tells it what it queued and when, and asks it about `now`.
//!
//! The media session sends queued audio back to back in 20 ms frames from
//! the moment it is queued (or from the end of what was already queued),
//! so the frame on the wire at `now` follows from those instants alone.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::audio::SampleRate;
use crate::call::turn::voice::level_dbfs;
use crate::media::session::Clip;

/// Samples per 20 ms frame at 8 kHz.
const FRAME: usize = 160;

/// The level reported for silence.
pub const SILENCE_DBFS: f32 = -100.0;

/// One queued sentence.
#[derive(Debug, Clone)]
struct Queued {
    starts: Instant,
    /// Level of each 20 ms frame, dBFS.
    levels: Vec<f32>,
    interruptible: bool,
}

impl Queued {
    fn ends(&self) -> Instant {
        self.starts + frames(self.levels.len())
    }
}

fn frames(n: usize) -> Duration {
    Duration::from_millis(20 * n as u64)
}

/// The agent's outgoing speech, as queued.
#[derive(Debug, Default)]
pub struct Playout {
    queue: VecDeque<Queued>,
}

impl Playout {
    pub fn new() -> Self {
        Playout::default()
    }

    /// `clip` was queued at `now`: it plays after what is still queued.
    /// Returns when it will have finished.
    pub fn push(&mut self, now: Instant, clip: &Clip, interruptible: bool) -> Instant {
        self.forget_before(now);
        let starts = self.queue.back().map_or(now, |q| q.ends().max(now));
        let samples = clip.samples();
        let levels = samples
            .chunks(FRAME)
            .map(|frame| {
                let floats: Vec<f32> = frame.iter().map(|&s| f32::from(s) / 32768.0).collect();
                level_dbfs(&crate::audio::Samples::new(SampleRate::TELEPHONE, floats))
            })
            .collect();
        let queued = Queued {
            starts,
            levels,
            interruptible,
        };
        let ends = queued.ends();
        self.queue.push_back(queued);
        ends
    }

    /// Everything queued was dropped (barge-in) or has been sent.
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// Whether audio is on the wire at `now`.
    pub fn playing(&self, now: Instant) -> bool {
        self.queue.iter().any(|q| q.starts <= now && now < q.ends())
            || self.queue.iter().any(|q| q.starts > now)
    }

    /// The level of the frame on the wire at `now` (silence if none).
    pub fn level_dbfs(&self, now: Instant) -> f32 {
        self.queue
            .iter()
            .find(|q| q.starts <= now && now < q.ends())
            .and_then(|q| {
                let index = ((now - q.starts).as_millis() / 20) as usize;
                q.levels.get(index).copied()
            })
            .unwrap_or(SILENCE_DBFS)
    }

    /// Whether the caller may talk over what plays at `now` (a greeting or
    /// a prompt, not a transfer's confirmation). True when nothing plays.
    pub fn interruptible(&self, now: Instant) -> bool {
        self.queue
            .iter()
            .filter(|q| q.ends() > now)
            .all(|q| q.interruptible)
    }

    /// When everything queued will have been sent.
    pub fn ends(&self) -> Option<Instant> {
        self.queue.back().map(Queued::ends)
    }

    fn forget_before(&mut self, now: Instant) {
        while self.queue.front().is_some_and(|q| q.ends() <= now) {
            self.queue.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Samples;

    fn clip(seconds: f32, amplitude: f32) -> Clip {
        let n = (seconds * 8000.0) as usize;
        let data = (0..n)
            .map(|i| amplitude * (i as f32 * 0.3).sin())
            .collect::<Vec<f32>>();
        Clip::new(&Samples::new(SampleRate::TELEPHONE, data)).unwrap()
    }

    #[test]
    fn clips_play_back_to_back_and_report_their_level() {
        let t0 = Instant::now();
        let mut playout = Playout::new();
        let first_end = playout.push(t0, &clip(1.0, 0.5), true);
        assert_eq!(first_end, t0 + Duration::from_secs(1));
        // Queued while the first plays: starts when it ends.
        let second_end = playout.push(t0 + Duration::from_millis(300), &clip(0.5, 0.05), false);
        assert_eq!(second_end, t0 + Duration::from_millis(1500));
        let loud = playout.level_dbfs(t0 + Duration::from_millis(500));
        let soft = playout.level_dbfs(t0 + Duration::from_millis(1200));
        assert!(
            loud > -10.0 && soft < -25.0 && soft > -40.0,
            "{loud} {soft}"
        );
        assert!(!playout.interruptible(t0 + Duration::from_millis(1100)));
        assert!(!playout.interruptible(t0 + Duration::from_millis(500)));
        assert_eq!(
            playout.level_dbfs(t0 + Duration::from_secs(2)),
            SILENCE_DBFS
        );
        assert!(playout.playing(t0 + Duration::from_millis(1400)));
        assert!(!playout.playing(t0 + Duration::from_millis(1600)));
    }

    #[test]
    fn a_clip_queued_after_silence_starts_at_once() {
        let t0 = Instant::now();
        let mut playout = Playout::new();
        playout.push(t0, &clip(0.2, 0.5), true);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(
            playout.push(later, &clip(0.2, 0.5), true),
            later + Duration::from_millis(200)
        );
        assert!(playout.interruptible(later));
        playout.clear();
        assert!(!playout.playing(later));
        assert_eq!(playout.ends(), None);
    }
}
