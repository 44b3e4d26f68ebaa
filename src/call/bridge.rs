//! Two legs joined back to back (a B2BUA, RFC 7092 3.1): each leg's audio
//! and DTMF are played into the other until one side hangs up, and then the
//! other is hung up too.
//!
//! Audio goes through the decoded 8 kHz samples rather than as raw RTP, so
//! the two legs may have negotiated different laws (PCMU on one, PCMA on
//! the other) and each keeps its own SSRC, sequence numbers and timestamps.
//! The cost is one jitter-buffer delay (60 ms by default) per direction.

use std::time::Duration;

use super::leg::{LegEvent, MediaLeg};
use super::log::call_log;
use crate::sip::agent::CancellationToken;

/// How a bridge ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeEnd {
    /// The first leg (the caller) hung up; the second was hung up.
    FirstHungUp,
    /// The second leg (the destination) hung up; the first was hung up.
    SecondHungUp,
    /// The agent is shutting down; both legs were hung up.
    Shutdown,
}

/// How long to wait for the other leg's BYE to be answered.
const HANGUP_BOUND: Duration = Duration::from_secs(5);

/// Relays audio and digits between `first` and `second` until one ends.
/// Neither leg's audio is forwarded while the other has put us on hold
/// (it would only pile up in the send queue).
pub async fn bridge(
    first: &mut MediaLeg,
    second: &mut MediaLeg,
    cancel: &CancellationToken,
) -> BridgeEnd {
    let mut first_held = false;
    let mut second_held = false;
    let end = loop {
        tokio::select! {
            _ = cancel.cancelled() => break BridgeEnd::Shutdown,
            event = first.next_event() => match event {
                None | Some(LegEvent::Ended(_)) => break BridgeEnd::FirstHungUp,
                Some(event) => relay(event, second, &mut first_held, second_held),
            },
            event = second.next_event() => match event {
                None | Some(LegEvent::Ended(_)) => break BridgeEnd::SecondHungUp,
                Some(event) => relay(event, first, &mut second_held, first_held),
            },
        }
    };
    let (ended, other) = match end {
        BridgeEnd::FirstHungUp => (&*first, Some(&mut *second)),
        BridgeEnd::SecondHungUp => (&*second, Some(&mut *first)),
        BridgeEnd::Shutdown => (&*first, None),
    };
    call_log(&ended.info().call_id, format_args!("bridge ended: {end:?}"));
    match other {
        Some(other) => hang_up(other).await,
        None => {
            hang_up(first).await;
            hang_up(second).await;
        }
    }
    end
}

/// Forwards one event of a leg to the other leg.
fn relay(event: LegEvent, to: &MediaLeg, from_held_us: &mut bool, to_held_us: bool) {
    match event {
        LegEvent::Audio(samples) if !to_held_us => {
            let _ = to.play(samples);
        }
        LegEvent::Dtmf(digit) => {
            let mut text = [0u8; 4];
            let _ = to.send_dtmf(digit.encode_utf8(&mut text));
        }
        LegEvent::Hold(on) => *from_held_us = on,
        _ => {}
    }
}

/// Hangs a leg up and waits, bounded, for its end.
pub(crate) async fn hang_up(leg: &mut MediaLeg) {
    let _ = leg.hangup().await;
    let _ = tokio::time::timeout(HANGUP_BOUND, async {
        while let Some(event) = leg.next_event().await {
            if matches!(event, LegEvent::Ended(_)) {
                break;
            }
        }
    })
    .await;
}
