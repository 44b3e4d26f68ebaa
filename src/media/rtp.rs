//! RTP packets (RFC 3550 section 5) as our own types, and the sending side
//! of one G.711 stream.
//!
//! The rest of the crate sees only [`RtpPacket`], never a dependency's
//! packet type, so the wire library can change without touching the jitter
//! buffer, DTMF or RTCP. Parsing and serialising are written here against
//! RFC 3550 5.1: the `rtp` crate's marshalling traits live in `webrtc-util`,
//! which this crate does not depend on directly, so they cannot be named.
//!
//! [`RtpSender`] is a pure core: the caller supplies the SSRC, the random
//! initial sequence number and timestamp (RFC 3550 5.1 asks for random
//! starts), and calls [`RtpSender::packetize`] once per 20 ms frame. While
//! it sends nothing (silence, or a DTMF digit replacing the audio) it calls
//! [`RtpSender::handle_silence`] so the timestamp keeps following the
//! sampling clock and the next audio packet carries the marker bit.

use std::time::Duration;

use thiserror::Error;

use crate::media::dtmf::EventPacket;
use crate::media::g711::Law;

/// The RTP clock of G.711 and of `telephone-event/8000` (RFC 3551 4.5.14,
/// RFC 4733 2.1): one tick per sample at 8 kHz.
pub const CLOCK_RATE: u32 = 8_000;

/// Samples in one 20 ms packet, the default packet time of RFC 3551 4.5.
pub const FRAME_SAMPLES: usize = 160;

/// The packet time every stage of the media path assumes.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// Static payload type of PCMU (RFC 3551 table 4).
pub const PCMU_PAYLOAD_TYPE: u8 = 0;

/// Static payload type of PCMA (RFC 3551 table 4).
pub const PCMA_PAYLOAD_TYPE: u8 = 8;

/// Length of the fixed header, without CSRCs or extension (RFC 3550 5.1).
const FIXED_HEADER_LEN: usize = 12;

/// The only RTP version there is (RFC 3550 5.1).
const VERSION: u8 = 2;

/// The static payload type that carries `law`.
pub fn payload_type_for(law: Law) -> u8 {
    match law {
        Law::MuLaw => PCMU_PAYLOAD_TYPE,
        Law::ALaw => PCMA_PAYLOAD_TYPE,
    }
}

/// The G.711 law a static payload type carries, if it is one of the two.
pub fn law_for_payload_type(payload_type: u8) -> Option<Law> {
    match payload_type {
        PCMU_PAYLOAD_TYPE => Some(Law::MuLaw),
        PCMA_PAYLOAD_TYPE => Some(Law::ALaw),
        _ => None,
    }
}

/// Why a datagram is not an RTP packet we can use. All of these are the
/// peer's fault: the driver logs and drops the datagram.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RtpError {
    #[error("{len} bytes cannot hold the {needed}-byte RTP header it announces")]
    Truncated { len: usize, needed: usize },
    #[error("RTP version {0}; only version 2 exists (RFC 3550 5.1)")]
    Version(u8),
    #[error("padding count {count} does not fit the {available} bytes after the header")]
    Padding { count: u8, available: usize },
    #[error("packet type {0} is RTCP sent to the RTP port (RFC 5761 4)")]
    Rtcp(u8),
}

/// One RTP packet, reduced to what a unicast telephone call uses.
///
/// CSRCs and header extensions are skipped on parse and never written: we
/// are an end system, not a mixer (RFC 3550 7.1), and no extension we would
/// act on is negotiated. Padding is removed on parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPacket {
    /// 7 bits; which codec (or `telephone-event`) the payload holds.
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// First packet of a talkspurt for audio (RFC 3551 4.1), first packet
    /// of an event for telephone-event (RFC 4733 2.3.1).
    pub marker: bool,
    pub payload: Vec<u8>,
}

impl RtpPacket {
    /// Parses a datagram. Never panics: every length is checked before it
    /// is used, so any byte string yields a packet or an [`RtpError`].
    pub fn parse(datagram: &[u8]) -> Result<RtpPacket, RtpError> {
        let len = datagram.len();
        if len < FIXED_HEADER_LEN {
            return Err(RtpError::Truncated {
                len,
                needed: FIXED_HEADER_LEN,
            });
        }
        let first = datagram[0];
        let version = first >> 6;
        if version != VERSION {
            return Err(RtpError::Version(version));
        }
        let has_padding = first & 0x20 != 0;
        let has_extension = first & 0x10 != 0;
        let csrc_count = usize::from(first & 0x0f);
        let marker = datagram[1] & 0x80 != 0;
        let payload_type = datagram[1] & 0x7f;
        // RFC 5761 4: RTCP packet types 200-204 land on payload types 72-76
        // once the marker bit is taken out; reading one as audio would play
        // a burst of noise.
        if (72..=76).contains(&payload_type) {
            return Err(RtpError::Rtcp(datagram[1]));
        }

        let mut header_len = FIXED_HEADER_LEN + 4 * csrc_count;
        if has_extension {
            // RFC 3550 5.3.1: a 4-byte extension header whose second half
            // counts the 32-bit words that follow it.
            let needed = header_len + 4;
            let Some(extension) = datagram.get(header_len..needed) else {
                return Err(RtpError::Truncated { len, needed });
            };
            let words = usize::from(u16::from_be_bytes([extension[2], extension[3]]));
            header_len = needed + 4 * words;
        }
        if len < header_len {
            return Err(RtpError::Truncated {
                len,
                needed: header_len,
            });
        }

        let mut payload_end = len;
        if has_padding {
            // RFC 3550 5.1: the last octet counts the padding, itself included,
            // so zero is as invalid as a count running into the header.
            let count = datagram[len - 1];
            let available = len - header_len;
            if count == 0 || usize::from(count) > available {
                return Err(RtpError::Padding { count, available });
            }
            payload_end -= usize::from(count);
        }

        Ok(RtpPacket {
            payload_type,
            sequence: u16::from_be_bytes([datagram[2], datagram[3]]),
            timestamp: u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]),
            ssrc: u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]),
            marker,
            payload: datagram[header_len..payload_end].to_vec(),
        })
    }

    /// Serialises with the 12-byte fixed header: no CSRCs, no extension,
    /// no padding.
    pub fn to_bytes(&self) -> Vec<u8> {
        debug_assert!(
            self.payload_type < 0x80,
            "payload type {} does not fit 7 bits",
            self.payload_type
        );
        let mut out = Vec::with_capacity(FIXED_HEADER_LEN + self.payload.len());
        out.push(VERSION << 6);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// The sending side of one RTP stream: owns the SSRC, the sequence number
/// and the timestamp, and stamps audio and telephone-event packets from
/// the same sequence space (RFC 4733 2.5.1.6: one stream, one sequence).
#[derive(Clone, Debug)]
pub struct RtpSender {
    ssrc: u32,
    next_sequence: u16,
    /// Timestamp of the next audio sample to be sent; it advances with the
    /// sampling clock whether or not packets go out (RFC 3550 5.1).
    next_timestamp: u32,
    /// The next audio packet starts a talkspurt and carries the marker
    /// bit: true at the start of the stream and after any pause.
    talkspurt_pending: bool,
}

impl RtpSender {
    /// `initial_sequence` and `initial_timestamp` should be random (RFC 3550
    /// 5.1, against known-plaintext attacks on encryption); the caller draws
    /// them so this core stays deterministic.
    pub fn new(ssrc: u32, initial_sequence: u16, initial_timestamp: u32) -> Self {
        RtpSender {
            ssrc,
            next_sequence: initial_sequence,
            next_timestamp: initial_timestamp,
            talkspurt_pending: true,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet (audio or event) will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// The timestamp the next audio packet will carry; a DTMF digit that
    /// starts now takes this as its event timestamp (RFC 4733 2.3.1).
    pub fn next_timestamp(&self) -> u32 {
        self.next_timestamp
    }

    /// Encodes one frame (normally [`FRAME_SAMPLES`] samples) with `law` and
    /// advances the sequence number by one and the timestamp by the number
    /// of samples, both wrapping.
    pub fn packetize(&mut self, samples: &[i16], law: Law) -> RtpPacket {
        debug_assert!(!samples.is_empty(), "an empty RTP audio packet");
        let packet = RtpPacket {
            payload_type: payload_type_for(law),
            sequence: self.take_sequence(),
            timestamp: self.next_timestamp,
            ssrc: self.ssrc,
            // RFC 3551 4.1: the first packet after a period without packets
            // is marked so the receiver can resynchronise its playout.
            marker: std::mem::take(&mut self.talkspurt_pending),
            payload: samples.iter().map(|&sample| law.encode(sample)).collect(),
        };
        // RTP timestamps count samples modulo 2^32; a frame never holds 2^32.
        self.next_timestamp = self.next_timestamp.wrapping_add(samples.len() as u32);
        packet
    }

    /// Notes that `samples` sample periods passed without audio being sent:
    /// the timestamp moves on (RFC 3550 5.1), the sequence number does not,
    /// and the next audio packet starts a talkspurt.
    pub fn handle_silence(&mut self, samples: u32) {
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
        self.talkspurt_pending = true;
    }

    /// Stamps one RFC 4733 telephone-event packet with this stream's SSRC
    /// and next sequence number. The event keeps its own timestamp (the
    /// instant the digit began, RFC 4733 2.3.1) and does not move the audio
    /// clock: the driver calls [`handle_silence`](Self::handle_silence) for
    /// the audio the digit replaces.
    pub fn packetize_event(&mut self, event: &EventPacket) -> RtpPacket {
        // Audio that follows a digit resumes after a pause in the audio
        // packets, which is a new talkspurt.
        self.talkspurt_pending = true;
        RtpPacket {
            payload_type: event.payload_type,
            sequence: self.take_sequence(),
            timestamp: event.timestamp,
            ssrc: self.ssrc,
            marker: event.marker,
            payload: event.event.to_bytes().to_vec(),
        }
    }

    fn take_sequence(&mut self) -> u16 {
        let sequence = self.next_sequence;
        self.next_sequence = sequence.wrapping_add(1);
        sequence
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::TelephoneEvent;

    /// A deterministic generator so the fuzz-style tests are reproducible.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn sample_packet() -> RtpPacket {
        RtpPacket {
            payload_type: 0,
            sequence: 0xBEEF,
            timestamp: 0x0102_0304,
            ssrc: 0xCAFE_F00D,
            marker: true,
            payload: vec![1, 2, 3, 4, 5],
        }
    }

    #[test]
    fn round_trips_through_bytes() {
        let packet = sample_packet();
        let bytes = packet.to_bytes();
        assert_eq!(
            &bytes[..12],
            &[0x80, 0x80, 0xBE, 0xEF, 1, 2, 3, 4, 0xCA, 0xFE, 0xF0, 0x0D]
        );
        assert_eq!(RtpPacket::parse(&bytes), Ok(packet));
    }

    #[test]
    fn skips_csrcs_and_extension_and_strips_padding() {
        let mut bytes = vec![
            0x80 | 0x20 | 0x10 | 2, // V=2, P, X, CC=2
            0x08,                   // PCMA, no marker
            0x00,
            0x07,
            0,
            0,
            0,
            160,
            0,
            0,
            0,
            9,
        ];
        bytes.extend_from_slice(&[0xAA; 8]); // two CSRCs
        bytes.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x01]); // extension, one word
        bytes.extend_from_slice(&[0xEE; 4]);
        bytes.extend_from_slice(&[10, 20, 30]); // payload
        bytes.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let packet = RtpPacket::parse(&bytes).expect("valid packet");
        assert_eq!(packet.payload_type, 8);
        assert_eq!(packet.sequence, 7);
        assert_eq!(packet.timestamp, 160);
        assert_eq!(packet.ssrc, 9);
        assert!(!packet.marker);
        assert_eq!(packet.payload, vec![10, 20, 30]);
    }

    #[test]
    fn rejects_other_versions() {
        let mut bytes = sample_packet().to_bytes();
        bytes[0] = 0x40; // version 1
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::Version(1)));
    }

    #[test]
    fn rejects_truncated_headers() {
        assert_eq!(
            RtpPacket::parse(&[0x80; 11]),
            Err(RtpError::Truncated {
                len: 11,
                needed: 12
            })
        );
        // Three CSRCs announced, none present.
        let mut bytes = sample_packet().to_bytes()[..12].to_vec();
        bytes[0] = 0x83;
        assert_eq!(
            RtpPacket::parse(&bytes),
            Err(RtpError::Truncated {
                len: 12,
                needed: 24
            })
        );
        // An extension announcing more words than the datagram holds.
        let mut bytes = sample_packet().to_bytes()[..12].to_vec();
        bytes[0] = 0x90;
        bytes.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        assert_eq!(
            RtpPacket::parse(&bytes),
            Err(RtpError::Truncated {
                len: 16,
                needed: 16 + 4 * 0xFFFF
            })
        );
    }

    #[test]
    fn rejects_impossible_padding() {
        let mut bytes = sample_packet().to_bytes();
        bytes[0] |= 0x20;
        *bytes.last_mut().expect("non-empty") = 0;
        assert_eq!(
            RtpPacket::parse(&bytes),
            Err(RtpError::Padding {
                count: 0,
                available: 5
            })
        );
        *bytes.last_mut().expect("non-empty") = 6;
        assert_eq!(
            RtpPacket::parse(&bytes),
            Err(RtpError::Padding {
                count: 6,
                available: 5
            })
        );
        // Padding that exactly consumes the payload leaves it empty.
        *bytes.last_mut().expect("non-empty") = 5;
        assert_eq!(RtpPacket::parse(&bytes).map(|p| p.payload), Ok(vec![]));
    }

    #[test]
    fn rejects_multiplexed_rtcp() {
        // A receiver report: V=2, RC=1, PT=201.
        let bytes = [0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0];
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::Rtcp(201)));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let len = (random.next() % 48) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| random.next() as u8).collect();
            // Force version 2 half of the time so the deeper checks run.
            if let Some(first) = bytes.first_mut() {
                if random.next() % 2 == 0 {
                    *first = (*first & 0x3f) | 0x80;
                }
            }
            let _ = RtpPacket::parse(&bytes);
        }
    }

    #[test]
    fn never_panics_on_any_truncation() {
        let mut bytes = vec![0x80 | 0x20 | 0x10 | 1, 0x00, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        bytes.extend_from_slice(&[0; 4]); // CSRC
        bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]); // extension
        bytes.extend_from_slice(&[1, 2, 3, 2]); // payload and padding count
        assert!(RtpPacket::parse(&bytes).is_ok());
        for end in 0..bytes.len() {
            let _ = RtpPacket::parse(&bytes[..end]);
        }
    }

    #[test]
    fn sender_advances_sequence_and_timestamp_per_frame() {
        let mut sender = RtpSender::new(42, 1000, 50_000);
        let frame = [0i16; FRAME_SAMPLES];
        let first = sender.packetize(&frame, Law::MuLaw);
        let second = sender.packetize(&frame, Law::MuLaw);
        assert_eq!((first.sequence, first.timestamp), (1000, 50_000));
        assert_eq!((second.sequence, second.timestamp), (1001, 50_160));
        assert_eq!(first.ssrc, 42);
        assert_eq!(first.payload_type, PCMU_PAYLOAD_TYPE);
        assert_eq!(first.payload.len(), FRAME_SAMPLES);
        assert!(first.marker, "the first packet of the stream is marked");
        assert!(!second.marker);
    }

    #[test]
    fn sender_encodes_with_the_given_law() {
        let mut sender = RtpSender::new(1, 0, 0);
        let samples: Vec<i16> = (0..FRAME_SAMPLES as i16).map(|i| i * 100 - 8000).collect();
        let packet = sender.packetize(&samples, Law::ALaw);
        assert_eq!(packet.payload_type, PCMA_PAYLOAD_TYPE);
        let expected: Vec<u8> = samples.iter().map(|&s| Law::ALaw.encode(s)).collect();
        assert_eq!(packet.payload, expected);
    }

    #[test]
    fn sender_wraps_sequence_and_timestamp() {
        let mut sender = RtpSender::new(1, 65_535, u32::MAX - 100);
        let frame = [0i16; FRAME_SAMPLES];
        let a = sender.packetize(&frame, Law::MuLaw);
        let b = sender.packetize(&frame, Law::MuLaw);
        assert_eq!((a.sequence, a.timestamp), (65_535, u32::MAX - 100));
        assert_eq!((b.sequence, b.timestamp), (0, 59));
    }

    #[test]
    fn silence_moves_the_timestamp_and_marks_the_next_talkspurt() {
        let mut sender = RtpSender::new(1, 10, 0);
        let frame = [0i16; FRAME_SAMPLES];
        sender.packetize(&frame, Law::MuLaw);
        sender.handle_silence(800);
        let resumed = sender.packetize(&frame, Law::MuLaw);
        assert_eq!(resumed.sequence, 11, "no packets were sent in the pause");
        assert_eq!(resumed.timestamp, 160 + 800);
        assert!(resumed.marker, "RFC 3551 4.1: first packet of a talkspurt");
        assert!(!sender.packetize(&frame, Law::MuLaw).marker);
    }

    #[test]
    fn events_share_the_sequence_space_but_keep_their_timestamp() {
        let mut sender = RtpSender::new(7, 65_534, 1_000);
        let frame = [0i16; FRAME_SAMPLES];
        let audio = sender.packetize(&frame, Law::MuLaw);
        let start = sender.next_timestamp();
        let event = |marker, duration| EventPacket {
            payload_type: 101,
            timestamp: start,
            marker,
            event: TelephoneEvent {
                event: 5,
                end: false,
                volume: 10,
                duration,
            },
        };
        let first = sender.packetize_event(&event(true, 400));
        let second = sender.packetize_event(&event(false, 800));
        sender.handle_silence(800);
        let after = sender.packetize(&frame, Law::MuLaw);

        assert_eq!(
            [
                audio.sequence,
                first.sequence,
                second.sequence,
                after.sequence
            ],
            [65_534, 65_535, 0, 1]
        );
        assert_eq!([first.timestamp, second.timestamp], [1_160, 1_160]);
        assert_eq!((first.ssrc, first.payload_type), (7, 101));
        assert!(first.marker && !second.marker);
        assert_eq!(first.payload, vec![5, 10, 0x01, 0x90]);
        assert_eq!(after.timestamp, 1_160 + 800);
        assert!(after.marker, "audio after a digit is a new talkspurt");
    }

    #[test]
    fn payload_type_helpers_agree() {
        for law in [Law::MuLaw, Law::ALaw] {
            assert_eq!(law_for_payload_type(payload_type_for(law)), Some(law));
        }
        assert_eq!(law_for_payload_type(101), None);
    }
}
