//! DTMF digits as RFC 4733 telephone-events, both directions.
//!
//! [`DtmfReceiver`] turns the packets of one RTP stream into key presses.
//! A sender repeats itself on purpose: updates every 50 ms while a key is
//! held and the final packet three times (RFC 4733 2.5.1.4), so a single
//! press arrives as several packets, any of which may be lost or
//! reordered. The receiver reports a digit **once, on the first packet it
//! sees of a new event**, whichever packet that is (start, update or end):
//! reporting at the end would delay every digit by its duration and lose
//! the digit entirely when all three end packets are lost. An event is
//! identified by its RTP timestamp, the instant the key went down (RFC 4733
//! 2.3.1), so a digit pressed twice is two events even though every other
//! field matches.
//!
//! [`DtmfSender`] produces the packet sequence for one digit in virtual
//! time: call [`DtmfSender::start`], then [`DtmfSender::poll_event`]
//! whenever [`DtmfSender::poll_timeout`] passes, and stamp each
//! [`EventPacket`] with [`RtpSender::packetize_event`] so the events share
//! the audio stream's SSRC and sequence numbers (RFC 4733 2.5.1.6). While a
//! digit plays, the driver sends no audio and calls
//! [`RtpSender::handle_silence`] for each frame it skips.
//!
//! [`RtpSender::packetize_event`]: crate::media::rtp::RtpSender::packetize_event
//! [`RtpSender::handle_silence`]: crate::media::rtp::RtpSender::handle_silence

use std::time::{Duration, Instant};

use thiserror::Error;

use crate::media::rtp::{RtpPacket, CLOCK_RATE};

/// The dynamic payload type most PBXs offer for `telephone-event/8000`.
/// The real one comes from the SDP.
pub const DEFAULT_PAYLOAD_TYPE: u8 = 101;

/// Interval between packets of one event. RFC 4733 2.5.1.2 leaves it to the
/// sender; 50 ms is the common choice and keeps a 100 ms digit at five
/// packets.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(50);

/// [`UPDATE_INTERVAL`] in timestamp units.
const UPDATE_SAMPLES: u32 = CLOCK_RATE / 20;

/// RFC 4733 2.5.1.4: the final packet is sent a total of three times.
const END_PACKETS: u32 = 3;

/// Power level of generated tones in -dBm0; 10 is what telephones send.
pub const DEFAULT_VOLUME: u8 = 10;

/// The longest duration field (RFC 4733 2.3.5); longer events would need
/// segmenting (2.5.1.3), which key presses never do.
const MAX_DURATION_SAMPLES: u32 = u16::MAX as u32;

/// How long the receiver remembers the last event. Within it, a packet with
/// the same timestamp repeats that event and an older timestamp is a
/// straggler of a previous one. After it, any packet starts a new event, so
/// a sender that reuses a timestamp, or restarts its clock, is not ignored
/// for good. Senders refresh an event every 50 ms and finish within 100 ms
/// of its end, so two seconds of quiet means the event is over.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(2);

/// Faults in a telephone-event payload (the peer's) or in a request to
/// send a digit (ours).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DtmfError {
    #[error("telephone-event payload of {0} bytes; an event takes 4 (RFC 4733 2.3)")]
    Truncated(usize),
    #[error("{0:?} is not a DTMF digit (0-9, *, #, A-D)")]
    NotADigit(char),
    #[error("a digit of {0:?} does not fit the 16-bit duration field at 8 kHz")]
    Duration(Duration),
    #[error("a digit is still being sent")]
    Busy,
}

/// The 4-byte telephone-event payload (RFC 4733 2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code; 0-15 are the DTMF keys (RFC 4733 3.2).
    pub event: u8,
    /// E bit: this packet ends the event (RFC 4733 2.3.3).
    pub end: bool,
    /// Power level in -dBm0, 6 bits (RFC 4733 2.3.4).
    pub volume: u8,
    /// Time since the event began, in timestamp units (RFC 4733 2.3.5).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first event of a payload. Bytes past the first four are
    /// ignored: they could only be further events packed into one packet
    /// (RFC 4733 2.5.1.5), which senders of key presses do not use.
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let &[event, flags, high, low, ..] = payload else {
            return Err(DtmfError::Truncated(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            // The R bit (0x40) is reserved: ignored on receipt (2.3.4).
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([high, low]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        debug_assert!(self.volume <= 0x3f, "volume {} exceeds 6 bits", self.volume);
        let [high, low] = self.duration.to_be_bytes();
        let flags = (u8::from(self.end) << 7) | (self.volume & 0x3f);
        [self.event, flags, high, low]
    }
}

/// A telephone-event packet before it gets the stream's SSRC and sequence
/// number from [`RtpSender::packetize_event`](crate::media::rtp::RtpSender::packetize_event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPacket {
    pub payload_type: u8,
    /// The instant the event began; the same in every packet of the event.
    pub timestamp: u32,
    /// Set on the first packet of the event only (RFC 4733 2.3.1).
    pub marker: bool,
    pub event: TelephoneEvent,
}

/// The key for a DTMF event code (RFC 4733 3.2), if it is one.
pub fn digit_for_event(event: u8) -> Option<char> {
    const KEYS: &[u8; 16] = b"0123456789*#ABCD";
    KEYS.get(usize::from(event)).map(|&key| char::from(key))
}

/// The DTMF event code for a key; `a`-`d` are accepted for `A`-`D`.
pub fn event_for_digit(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        key @ '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        key @ 'A'..='D' => Some(key as u8 - b'A' + 12),
        _ => None,
    }
}

/// One key press, reported once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfEvent {
    pub digit: char,
    /// SSRC of the stream that carried it.
    pub ssrc: u32,
    /// RTP timestamp of the instant the key went down; it identifies the
    /// press.
    pub timestamp: u32,
}

/// The last event seen, to recognise its repeats.
#[derive(Clone, Copy, Debug)]
struct SeenEvent {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    last_packet_at: Instant,
}

/// Turns incoming telephone-event packets into [`DtmfEvent`]s, one per
/// key press. See the module doc for when a digit is reported.
#[derive(Clone, Debug)]
pub struct DtmfReceiver {
    /// The negotiated `telephone-event` payload type; other packets of the
    /// stream are audio and none of our business.
    payload_type: u8,
    last: Option<SeenEvent>,
}

impl DtmfReceiver {
    pub fn new(payload_type: u8) -> Self {
        DtmfReceiver {
            payload_type,
            last: None,
        }
    }

    /// Feeds one RTP packet of the stream; returns the digit if the packet
    /// is the first one seen of a new DTMF event. Packets of another payload
    /// type, malformed payloads and non-DTMF events (flash, tones) are
    /// ignored.
    pub fn handle_packet(&mut self, now: Instant, packet: &RtpPacket) -> Option<DtmfEvent> {
        if packet.payload_type != self.payload_type {
            return None;
        }
        let event = TelephoneEvent::parse(&packet.payload).ok()?;
        let digit = digit_for_event(event.event)?;

        if let Some(last) = &mut self.last {
            let recent = last.ssrc == packet.ssrc
                && now.saturating_duration_since(last.last_packet_at) < EVENT_TIMEOUT;
            if recent {
                // Serial-number comparison, so an event just after the
                // 32-bit timestamp wraps still counts as newer.
                let age = packet.timestamp.wrapping_sub(last.timestamp) as i32;
                if age == 0 && event.event == last.event {
                    // A repeat of the current event: an update or an end
                    // packet, possibly retransmitted.
                    last.last_packet_at = now;
                    return None;
                }
                if age < 0 {
                    // A late packet of an event already reported.
                    return None;
                }
            }
        }

        self.last = Some(SeenEvent {
            ssrc: packet.ssrc,
            timestamp: packet.timestamp,
            event: event.event,
            last_packet_at: now,
        });
        Some(DtmfEvent {
            digit,
            ssrc: packet.ssrc,
            timestamp: packet.timestamp,
        })
    }
}

/// The digit being sent.
#[derive(Clone, Copy, Debug)]
struct Tone {
    event: u8,
    timestamp: u32,
    started: Instant,
    duration: u16,
    /// Packets before the end packets, one per update interval begun.
    updates: u32,
    /// Packets already handed out.
    sent: u32,
}

impl Tone {
    fn total_packets(&self) -> u32 {
        self.updates + END_PACKETS
    }

    fn due(&self) -> Instant {
        self.started + UPDATE_INTERVAL * self.sent
    }
}

/// Produces the RFC 4733 packet sequence for one digit at a time, in
/// virtual time.
///
/// For a digit of duration `D` the packets go out every 50 ms from the
/// start: updates whose duration field covers the time up to the next
/// packet (capped at `D`, the first with the marker bit), then the final
/// packet three times with the E bit and duration `D`. All carry the
/// timestamp given to [`start`](Self::start). A 100 ms digit:
///
/// | ms  | M | E | duration |
/// |-----|---|---|----------|
/// | 0   | 1 | 0 | 400      |
/// | 50  | 0 | 0 | 800      |
/// | 100 | 0 | 1 | 800      |
/// | 150 | 0 | 1 | 800      |
/// | 200 | 0 | 1 | 800      |
#[derive(Clone, Debug)]
pub struct DtmfSender {
    payload_type: u8,
    volume: u8,
    tone: Option<Tone>,
}

impl DtmfSender {
    /// `volume` is in -dBm0 and must fit 6 bits; [`DEFAULT_VOLUME`] is usual.
    pub fn new(payload_type: u8, volume: u8) -> Self {
        debug_assert!(volume <= 0x3f, "volume {volume} exceeds 6 bits");
        DtmfSender {
            payload_type,
            volume: volume & 0x3f,
            tone: None,
        }
    }

    /// Begins sending `digit` at `now`. `timestamp` is the RTP timestamp of
    /// the first sample the digit replaces, normally
    /// [`RtpSender::next_timestamp`](crate::media::rtp::RtpSender::next_timestamp).
    pub fn start(
        &mut self,
        now: Instant,
        digit: char,
        timestamp: u32,
        duration: Duration,
    ) -> Result<(), DtmfError> {
        if self.tone.is_some() {
            return Err(DtmfError::Busy);
        }
        let event = event_for_digit(digit).ok_or(DtmfError::NotADigit(digit))?;
        let samples = duration_in_samples(duration);
        let Ok(samples_u16) = u16::try_from(samples) else {
            return Err(DtmfError::Duration(duration));
        };
        if samples_u16 == 0 {
            return Err(DtmfError::Duration(duration));
        }
        self.tone = Some(Tone {
            event,
            timestamp,
            started: now,
            duration: samples_u16,
            updates: samples.div_ceil(UPDATE_SAMPLES),
            sent: 0,
        });
        Ok(())
    }

    /// When the next packet is due, if a digit is being sent.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tone.map(|tone| tone.due())
    }

    /// The next packet if it is due at `now`. A driver that wakes late gets
    /// the overdue packets one call after another, in order.
    pub fn poll_event(&mut self, now: Instant) -> Option<EventPacket> {
        let tone = self.tone.as_mut()?;
        if now < tone.due() {
            return None;
        }
        let index = tone.sent;
        let end = index >= tone.updates;
        let duration = if end {
            tone.duration
        } else {
            // Each update covers the audio up to the next packet.
            let covered = (index + 1) * UPDATE_SAMPLES;
            covered.min(u32::from(tone.duration)) as u16
        };
        let packet = EventPacket {
            payload_type: self.payload_type,
            timestamp: tone.timestamp,
            marker: index == 0,
            event: TelephoneEvent {
                event: tone.event,
                end,
                volume: self.volume,
                duration,
            },
        };
        tone.sent += 1;
        if tone.sent == tone.total_packets() {
            self.tone = None;
        }
        Some(packet)
    }

    /// True when no digit is being sent and a new one may start.
    pub fn is_idle(&self) -> bool {
        self.tone.is_none()
    }
}

/// `duration` in 8 kHz timestamp units, rounded to the nearest sample;
/// saturates far beyond anything [`DtmfSender::start`] accepts.
fn duration_in_samples(duration: Duration) -> u32 {
    let samples = (duration.as_nanos() * u128::from(CLOCK_RATE) + 500_000_000) / 1_000_000_000;
    u32::try_from(samples)
        .unwrap_or(u32::MAX)
        .min(MAX_DURATION_SAMPLES + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::Law;
    use crate::media::rtp::{RtpSender, FRAME_DURATION, FRAME_SAMPLES};

    const PT: u8 = DEFAULT_PAYLOAD_TYPE;
    const SSRC: u32 = 0x1234_5678;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs a sender for one digit in virtual time, jumping to each
    /// deadline, and returns the RTP packets with the instant each left.
    fn send_digit(
        rtp: &mut RtpSender,
        dtmf: &mut DtmfSender,
        now: Instant,
        digit: char,
        duration: Duration,
    ) -> Vec<(Instant, RtpPacket)> {
        dtmf.start(now, digit, rtp.next_timestamp(), duration)
            .expect("digit starts");
        let mut sent = Vec::new();
        while let Some(deadline) = dtmf.poll_timeout() {
            let event = dtmf.poll_event(deadline).expect("due at its deadline");
            sent.push((deadline, rtp.packetize_event(&event)));
        }
        sent
    }

    /// Delivers packets to a receiver (through the wire format) and
    /// collects the digits it reports.
    fn receive(receiver: &mut DtmfReceiver, packets: &[(Instant, RtpPacket)]) -> Vec<char> {
        packets
            .iter()
            .filter_map(|(at, packet)| {
                let wire = RtpPacket::parse(&packet.to_bytes()).expect("parses back");
                receiver.handle_packet(*at, &wire)
            })
            .map(|event| event.digit)
            .collect()
    }

    fn event_packet(timestamp: u32, event: u8, end: bool, duration: u16) -> RtpPacket {
        RtpPacket {
            payload_type: PT,
            sequence: 0,
            timestamp,
            ssrc: SSRC,
            marker: false,
            payload: TelephoneEvent {
                event,
                end,
                volume: 10,
                duration,
            }
            .to_bytes()
            .to_vec(),
        }
    }

    #[test]
    fn payload_layout_matches_rfc_4733_2_3() {
        let event = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 0x0320,
        };
        assert_eq!(event.to_bytes(), [11, 0x8A, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&event.to_bytes()), Ok(event));
        // The reserved R bit is ignored, trailing bytes too.
        assert_eq!(
            TelephoneEvent::parse(&[11, 0xCA, 0x03, 0x20, 0xFF]),
            Ok(event)
        );
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::Truncated(3))
        );
    }

    #[test]
    fn digits_map_both_ways() {
        let keys = "0123456789*#ABCD";
        for (code, key) in keys.chars().enumerate() {
            assert_eq!(digit_for_event(code as u8), Some(key));
            assert_eq!(event_for_digit(key), Some(code as u8));
        }
        assert_eq!(event_for_digit('c'), Some(14));
        assert_eq!(event_for_digit('E'), None);
        assert_eq!(digit_for_event(16), None, "16 is hook flash, not a key");
    }

    #[test]
    fn sender_follows_the_documented_schedule() {
        let t0 = Instant::now();
        let mut dtmf = DtmfSender::new(PT, DEFAULT_VOLUME);
        dtmf.start(t0, '5', 8_000, ms(100)).expect("starts");
        assert_eq!(dtmf.poll_timeout(), Some(t0));

        let mut ladder = Vec::new();
        while let Some(deadline) = dtmf.poll_timeout() {
            assert_eq!(
                dtmf.poll_event(deadline - Duration::from_micros(1)),
                None,
                "nothing before its time"
            );
            let packet = dtmf.poll_event(deadline).expect("due");
            assert_eq!(packet.timestamp, 8_000, "one timestamp for the event");
            assert_eq!(packet.payload_type, PT);
            assert_eq!(packet.event.event, 5);
            assert_eq!(packet.event.volume, 10);
            ladder.push((
                (deadline - t0).as_millis(),
                packet.marker,
                packet.event.end,
                packet.event.duration,
            ));
        }
        assert_eq!(
            ladder,
            [
                (0, true, false, 400),
                (50, false, false, 800),
                (100, false, true, 800),
                (150, false, true, 800),
                (200, false, true, 800),
            ]
        );
        assert!(dtmf.is_idle());
        assert_eq!(dtmf.poll_event(t0 + ms(1000)), None);
    }

    #[test]
    fn sender_caps_the_last_update_at_the_digit_duration() {
        let t0 = Instant::now();
        let mut dtmf = DtmfSender::new(PT, DEFAULT_VOLUME);
        dtmf.start(t0, '#', 0, ms(120)).expect("starts");
        let mut durations = Vec::new();
        // A driver that wakes late still gets every packet, in order.
        while let Some(packet) = dtmf.poll_event(t0 + ms(500)) {
            durations.push((packet.event.duration, packet.event.end));
        }
        assert_eq!(
            durations,
            [
                (400, false),
                (800, false),
                (960, false),
                (960, true),
                (960, true),
                (960, true)
            ]
        );
    }

    #[test]
    fn sender_rejects_bad_requests() {
        let t0 = Instant::now();
        let mut dtmf = DtmfSender::new(PT, DEFAULT_VOLUME);
        assert_eq!(
            dtmf.start(t0, 'x', 0, ms(100)),
            Err(DtmfError::NotADigit('x'))
        );
        assert_eq!(
            dtmf.start(t0, '1', 0, Duration::ZERO),
            Err(DtmfError::Duration(Duration::ZERO))
        );
        assert_eq!(
            dtmf.start(t0, '1', 0, Duration::from_secs(9)),
            Err(DtmfError::Duration(Duration::from_secs(9)))
        );
        assert!(dtmf.is_idle());
        dtmf.start(t0, '1', 0, ms(100)).expect("starts");
        assert_eq!(dtmf.start(t0, '2', 0, ms(100)), Err(DtmfError::Busy));
    }

    #[test]
    fn one_report_per_press_from_the_exact_sender_stream() {
        let t0 = Instant::now();
        let mut rtp = RtpSender::new(SSRC, 65_533, 1_000);
        let mut dtmf = DtmfSender::new(PT, DEFAULT_VOLUME);
        let mut receiver = DtmfReceiver::new(PT);

        let audio = rtp.packetize(&[0; FRAME_SAMPLES], Law::MuLaw);
        let packets = send_digit(&mut rtp, &mut dtmf, t0 + FRAME_DURATION, '7', ms(100));
        assert_eq!(packets.len(), 5, "two updates and three end packets");
        let ends = packets.iter().filter(|(_, p)| p.payload[1] & 0x80 != 0);
        assert_eq!(ends.count(), 3);

        // Sequence numbers run on from the audio, across the wrap.
        let sequences: Vec<u16> = packets.iter().map(|(_, p)| p.sequence).collect();
        assert_eq!(audio.sequence, 65_533);
        assert_eq!(sequences, [65_534, 65_535, 0, 1, 2]);
        assert!(packets.iter().all(|(_, p)| p.timestamp == 1_160));

        assert_eq!(receive(&mut receiver, &packets), ['7']);
        // The digit is reported on the first packet, not at the end.
        let mut fresh = DtmfReceiver::new(PT);
        let first = fresh.handle_packet(packets[0].0, &packets[0].1);
        assert_eq!(
            first,
            Some(DtmfEvent {
                digit: '7',
                ssrc: SSRC,
                timestamp: 1_160
            })
        );
    }

    #[test]
    fn the_same_digit_twice_is_reported_twice() {
        let t0 = Instant::now();
        let mut rtp = RtpSender::new(SSRC, 0, 0);
        let mut dtmf = DtmfSender::new(PT, DEFAULT_VOLUME);
        let mut receiver = DtmfReceiver::new(PT);

        let first = send_digit(&mut rtp, &mut dtmf, t0, '1', ms(100));
        // The driver skipped 250 ms of audio for the digit and the gap.
        rtp.handle_silence(2_000);
        let second = send_digit(&mut rtp, &mut dtmf, t0 + ms(250), '1', ms(100));
        assert_ne!(first[0].1.timestamp, second[0].1.timestamp);

        let all: Vec<_> = first.into_iter().chain(second).collect();
        assert_eq!(receive(&mut receiver, &all), ['1', '1']);
    }

    #[test]
    fn a_lost_start_packet_still_yields_the_digit_once() {
        let t0 = Instant::now();
        let mut rtp = RtpSender::new(SSRC, 0, 0);
        let mut dtmf = DtmfSender::new(PT, DEFAULT_VOLUME);
        let packets = send_digit(&mut rtp, &mut dtmf, t0, '9', ms(100));

        let mut receiver = DtmfReceiver::new(PT);
        assert_eq!(receive(&mut receiver, &packets[1..]), ['9']);

        // Only the last retransmitted end packet survives.
        let mut receiver = DtmfReceiver::new(PT);
        assert_eq!(receive(&mut receiver, &packets[4..]), ['9']);
    }

    #[test]
    fn all_end_packets_lost_does_not_block_the_next_press() {
        let t0 = Instant::now();
        let mut rtp = RtpSender::new(SSRC, 0, 0);
        let mut dtmf = DtmfSender::new(PT, DEFAULT_VOLUME);
        let mut receiver = DtmfReceiver::new(PT);

        let first = send_digit(&mut rtp, &mut dtmf, t0, '3', ms(100));
        rtp.handle_silence(2_000);
        let second = send_digit(&mut rtp, &mut dtmf, t0 + ms(250), '3', ms(100));
        let delivered: Vec<_> = first[..2].iter().chain(&second).cloned().collect();
        assert_eq!(receive(&mut receiver, &delivered), ['3', '3']);
    }

    #[test]
    fn reordered_stragglers_are_not_new_presses() {
        let t0 = Instant::now();
        let mut rtp = RtpSender::new(SSRC, 0, 0);
        let mut dtmf = DtmfSender::new(PT, DEFAULT_VOLUME);
        let mut receiver = DtmfReceiver::new(PT);

        let first = send_digit(&mut rtp, &mut dtmf, t0, '4', ms(100));
        rtp.handle_silence(1_600);
        let second = send_digit(&mut rtp, &mut dtmf, t0 + ms(200), '5', ms(100));

        // The update of the first digit overtakes its start; its last end
        // packet arrives after the second digit has begun.
        let order = [
            &first[1], &first[0], &first[2], &first[3], &second[0], &first[4], &second[1],
            &second[2], &second[3], &second[4],
        ];
        let delivered: Vec<_> = order.into_iter().cloned().collect();
        assert_eq!(receive(&mut receiver, &delivered), ['4', '5']);
    }

    #[test]
    fn a_reused_timestamp_is_a_new_press_only_after_the_timeout() {
        let t0 = Instant::now();
        let mut receiver = DtmfReceiver::new(PT);
        fn receiver_digit(r: &mut DtmfReceiver, at: Instant, p: RtpPacket) -> Option<char> {
            r.handle_packet(at, &p).map(|e| e.digit)
        }
        assert_eq!(
            receiver_digit(&mut receiver, t0, event_packet(500, 2, false, 400)),
            Some('2')
        );
        assert_eq!(
            receiver_digit(&mut receiver, t0 + ms(100), event_packet(500, 2, true, 800)),
            None
        );
        // A sender that never advances its timestamp presses '2' again.
        assert_eq!(
            receiver_digit(
                &mut receiver,
                t0 + ms(100) + EVENT_TIMEOUT,
                event_packet(500, 2, false, 400)
            ),
            Some('2')
        );
        // A different key at the same timestamp cannot be the same event.
        assert_eq!(
            receiver_digit(
                &mut receiver,
                t0 + ms(3000),
                event_packet(500, 8, false, 400)
            ),
            Some('8')
        );
    }

    #[test]
    fn timestamps_compare_across_the_32_bit_wrap() {
        let t0 = Instant::now();
        let mut receiver = DtmfReceiver::new(PT);
        let before_wrap = event_packet(u32::MAX - 100, 1, false, 400);
        let after_wrap = event_packet(300, 2, false, 400);
        assert!(receiver.handle_packet(t0, &before_wrap).is_some());
        assert_eq!(
            receiver
                .handle_packet(t0 + ms(200), &after_wrap)
                .map(|e| e.digit),
            Some('2')
        );
        let straggler = event_packet(u32::MAX - 100, 1, true, 800);
        assert_eq!(receiver.handle_packet(t0 + ms(250), &straggler), None);
    }

    #[test]
    fn a_new_ssrc_is_a_new_event() {
        let t0 = Instant::now();
        let mut receiver = DtmfReceiver::new(PT);
        assert!(receiver
            .handle_packet(t0, &event_packet(10_000, 6, false, 400))
            .is_some());
        let mut other = event_packet(500, 6, false, 400);
        other.ssrc = SSRC + 1;
        assert_eq!(
            receiver
                .handle_packet(t0 + ms(20), &other)
                .map(|e| (e.digit, e.ssrc)),
            Some(('6', SSRC + 1))
        );
    }

    #[test]
    fn ignores_other_payload_types_non_dtmf_events_and_malformed_payloads() {
        let t0 = Instant::now();
        let mut receiver = DtmfReceiver::new(PT);
        let mut audio = event_packet(0, 1, false, 400);
        audio.payload_type = 0;
        assert_eq!(receiver.handle_packet(t0, &audio), None);
        assert_eq!(
            receiver.handle_packet(t0, &event_packet(0, 16, false, 400)),
            None,
            "hook flash"
        );
        for len in 0..4 {
            let mut short = event_packet(0, 1, false, 400);
            short.payload.truncate(len);
            assert_eq!(receiver.handle_packet(t0, &short), None);
        }
        // None of that disturbed the receiver.
        assert_eq!(
            receiver
                .handle_packet(t0, &event_packet(0, 1, false, 400))
                .map(|e| e.digit),
            Some('1')
        );
    }

    #[test]
    fn never_panics_on_arbitrary_payloads() {
        let t0 = Instant::now();
        let mut receiver = DtmfReceiver::new(PT);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..5_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            let mut packet = event_packet(state as u32, 0, false, 0);
            packet.payload = bytes[..(state % 9) as usize].to_vec();
            packet.ssrc = (state >> 60) as u32;
            let _ = receiver.handle_packet(t0 + ms(u64::from(i)), &packet);
        }
    }
}
