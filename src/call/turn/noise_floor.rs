//! The level of a line's background noise, by minimum statistics (R.
//! Martin, 2001): the quietest recent moment of a line is its noise, since
//! even continuous talk has gaps between words. The estimate follows a
//! quieter line at once and a noisier one within the window.

use std::collections::VecDeque;

/// Sliding minimum of frame levels (dBFS) over a fixed number of frames.
#[derive(Debug)]
pub struct NoiseFloor {
    /// Frames the minimum looks back over.
    window: u64,
    /// Frames taken so far.
    count: u64,
    /// The previous frame's level: levels are averaged over two frames
    /// (40 ms), so that one unusually quiet frame of noise does not drag
    /// the minimum below the noise's real level.
    previous: Option<f32>,
    /// Candidates for the minimum: (frame number, level), levels rising
    /// from front to back; the front is the minimum of the window.
    candidates: VecDeque<(u64, f32)>,
}

impl NoiseFloor {
    /// A floor over the last `window_frames` frames (at least one).
    pub fn new(window_frames: u64) -> Self {
        debug_assert!(window_frames > 0, "a noise floor over no frames");
        NoiseFloor {
            window: window_frames.max(1),
            count: 0,
            previous: None,
            candidates: VecDeque::new(),
        }
    }

    /// Takes the level of the next frame.
    pub fn handle_level(&mut self, level_dbfs: f32) {
        let smoothed = match self.previous {
            Some(previous) => mean_power_dbfs(previous, level_dbfs),
            None => level_dbfs,
        };
        self.previous = Some(level_dbfs);
        let index = self.count;
        self.count += 1;
        while self
            .candidates
            .back()
            .is_some_and(|&(_, level)| level >= smoothed)
        {
            self.candidates.pop_back();
        }
        self.candidates.push_back((index, smoothed));
        while self
            .candidates
            .front()
            .is_some_and(|&(i, _)| i + self.window <= index)
        {
            self.candidates.pop_front();
        }
    }

    /// The noise level in dBFS; `None` before the first frame.
    pub fn level(&self) -> Option<f32> {
        self.candidates.front().map(|&(_, level)| level)
    }
}

/// The level of the mean power of two levels.
fn mean_power_dbfs(a: f32, b: f32) -> f32 {
    let power = (10f32.powf(a / 10.0) + 10f32.powf(b / 10.0)) / 2.0;
    10.0 * power.max(1e-10).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_quieter_line_at_once_and_a_noisier_one_within_the_window() {
        let mut floor = NoiseFloor::new(10);
        assert_eq!(floor.level(), None);
        for _ in 0..20 {
            floor.handle_level(-40.0);
        }
        assert!((floor.level().unwrap() + 40.0).abs() < 0.01);
        // Two quieter frames: the floor drops (the first by half the
        // power, through the two-frame average).
        floor.handle_level(-60.0);
        floor.handle_level(-60.0);
        assert!((floor.level().unwrap() + 60.0).abs() < 0.01);
        // Louder again: the quiet moment is remembered for the window
        // (the first louder frame averages with the last quiet one).
        for _ in 0..8 {
            floor.handle_level(-30.0);
        }
        assert!(floor.level().unwrap() < -59.0);
        for _ in 0..3 {
            floor.handle_level(-30.0);
        }
        assert!((floor.level().unwrap() + 30.0).abs() < 0.01);
    }

    #[test]
    fn speech_with_gaps_leaves_the_floor_at_the_gaps() {
        let mut floor = NoiseFloor::new(100);
        for i in 0..300 {
            // 200 ms of talk at -20 dBFS, 60 ms gap at -55.
            let level = if i % 13 < 10 { -20.0 } else { -55.0 };
            floor.handle_level(level);
        }
        assert!((floor.level().unwrap() + 55.0).abs() < 0.01);
    }
}
