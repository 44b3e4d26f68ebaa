//! Turn taking on a live call: when the caller has finished speaking, and
//! when the caller talks over the agent.
//!
//! Two pure cores, in virtual time (`handle_*(now, ...)` in, `poll_*` out;
//! no clock, no I/O), fed the caller's 20 ms frames:
//!
//! - [`Endpointer`] ([`endpointer`]): the caller's turns. A turn starts on
//!   enough voice, ends after a silence that adapts to the turn, or at a
//!   maximum length; partial audio comes on the way so that transcription
//!   can run while the caller is still talking; no input after a timeout.
//! - [`BargeIn`] ([`barge_in`]): whether caller audio heard while the agent
//!   plays is the caller talking (stop playback) or the agent's own echo
//!   or a short noise (carry on).
//!
//! Both score voice with the earshot model of [`crate::speech::vad`], run
//! frame by frame ([`voice`]), and compare levels with the line's noise
//! floor ([`noise_floor`]); the barge-in detector also with how loud the
//! agent's echo can be ([`echo`]).
//!
//! A driver joins them for one call: every caller frame goes to both;
//! every frame the agent sends goes to [`BargeIn::handle_playback`], and
//! playback starting and stopping to [`Endpointer::handle_playback`]. On
//! [`BargeInEvent::BargeIn`] the driver stops playback, bumps the
//! [`TurnId`] (so that replies still being made for the old turn are
//! dropped by id) and calls [`Endpointer::handle_barge_in`], which makes
//! the caller's speech since its onset the next turn.
//!
//! For a quick answer, the driver transcribes the complete
//! [`EndpointerEvent::Partial`]s: one comes once the caller has been
//! silent for the early pad (40 ms) and carries the audio the turn will
//! have if the caller does not go on (as far as the recogniser can tell;
//! a soft word end in the rest of the 200 ms trailing pad brings another
//! with the whole pad); a reply can be prepared from it while the
//! endpointer waits out the rest of the silence, and played on
//! [`EndpointerEvent::TurnEnded`] when that turn's `standing_partial` is
//! that partial (else it is dropped, by turn id). Pauses between words
//! outlast the early pad too: when the caller goes on,
//! [`EndpointerEvent::SpeechResumed`] tells the driver to stop that
//! recognition. What
//! the transcript reads as ([`reading`]: a finished sentence, or words
//! that stop mid-phrase) goes back to the endpointer
//! ([`Endpointer::handle_reading`]), which then ends the turn sooner or
//! waits longer.

pub mod barge_in;
pub mod echo;
pub mod endpointer;
pub mod noise_floor;
pub mod reading;
pub mod voice;

#[cfg(test)]
pub(crate) mod test_signal;

use std::fmt;

pub use barge_in::{BargeIn, BargeInConfig, BargeInEvent};
pub use endpointer::{EndedTurn, Endpointer, EndpointerConfig, EndpointerEvent, TurnEndReason};
pub use reading::TurnReading;

/// The number of one caller turn within a call. Everything produced for a
/// turn (its transcript, the reply's text and audio) carries it; a
/// barge-in or a new turn moves to the next id, and frames of an older one
/// are dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TurnId(pub u64);

impl TurnId {
    /// The id before any turn.
    pub const FIRST: TurnId = TurnId(0);

    /// The id after this one.
    #[must_use]
    pub fn next(self) -> TurnId {
        TurnId(self.0.wrapping_add(1))
    }

    /// Moves to the next id and returns it.
    pub fn bump(&mut self) -> TurnId {
        *self = self.next();
        *self
    }
}

impl fmt::Display for TurnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "turn {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_ids_increase_and_bump_in_place() {
        let mut id = TurnId::FIRST;
        assert_eq!(id.next(), TurnId(1));
        assert_eq!(id.bump(), TurnId(1));
        assert_eq!(id, TurnId(1));
        assert!(TurnId(1) < TurnId(2));
        assert_eq!(TurnId(7).to_string(), "turn 7");
    }
}
