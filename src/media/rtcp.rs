//! RTCP for one unicast RTP session (RFC 3550 section 6): reception
//! statistics for the remote source and our periodic compound reports.
//!
//! Call order: [`RtcpSession::handle_rtp_received`] for every RTP packet of
//! the remote stream (audio and telephone-events alike, since they share
//! one sequence space), [`RtcpSession::handle_rtp_sent`] for every packet
//! we send, [`RtcpSession::handle_rtcp`] for every datagram on the RTCP
//! port, and [`RtcpSession::poll_transmit`] once
//! [`RtcpSession::poll_timeout`] has passed. The driver supplies the wall
//! clock for the NTP timestamp of sender reports; nothing here reads a
//! clock.
//!
//! Each report is a compound packet (RFC 3550 6.1): a sender report if we
//! sent RTP in the last two intervals, otherwise a receiver report, with
//! one reception report block for the remote source if it sent since the
//! last report, followed by an SDES CNAME. Marshalling and parsing of the
//! individual packets is the `rtcp` crate's; framing of the compound and
//! all the statistics are here.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::rtcp::packet::Packet as RtcpPacket;
use ::rtcp::receiver_report::ReceiverReport;
use ::rtcp::reception_report::ReceptionReport;
use ::rtcp::sender_report::SenderReport;
use ::rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use thiserror::Error;

use crate::media::rtp::{RtpPacket, CLOCK_RATE};

/// RFC 3550 6.2: the recommended minimum interval between reports.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// RTCP packet types (RFC 3550 12.1).
const SENDER_REPORT: u8 = 200;
const RECEIVER_REPORT: u8 = 201;

/// Our sender reports remembered to match the LSR field of the peer's
/// reports; the peer answers the latest or the one before.
const SENT_REPORTS_KEPT: usize = 8;

/// RFC 3550 A.1 constants.
const RTP_SEQ_MOD: u32 = 1 << 16;
const MAX_DROPOUT: u16 = 3_000;
const MAX_MISORDER: u16 = 100;
const MIN_SEQUENTIAL: u32 = 2;

/// The longest SDES item text (RFC 3550 6.5: one length octet).
const MAX_CNAME_LEN: usize = 255;

/// Faults in RTCP: a CNAME that cannot be sent (ours), or a datagram that
/// is not valid RTCP (the peer's; the driver logs and drops it).
#[derive(Debug, Error, PartialEq)]
pub enum RtcpError {
    #[error("CNAME of {0} bytes; an SDES item holds at most 255 (RFC 3550 6.5)")]
    CnameTooLong(usize),
    #[error("{available} bytes at offset {offset} cannot hold an RTCP header")]
    Truncated { offset: usize, available: usize },
    #[error("RTCP version {version} at offset {offset}; only version 2 exists (RFC 3550 6.4.1)")]
    Version { offset: usize, version: u8 },
    #[error("RTCP packet at offset {offset} announces {declared} bytes, {available} remain")]
    Length {
        offset: usize,
        declared: usize,
        available: usize,
    },
    #[error("malformed RTCP packet of type {packet_type}")]
    Malformed {
        packet_type: u8,
        #[source]
        source: ::rtcp::Error,
    },
}

/// Settings of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtcpConfig {
    /// Our SSRC, the one our RTP packets carry.
    pub ssrc: u32,
    /// RFC 3550 6.5.1: a stable identifier of this endpoint, such as
    /// `switchboard@host`; at most 255 bytes.
    pub cname: String,
    /// The mean interval between reports.
    pub interval: Duration,
    /// Seeds the randomisation of report times (RFC 3550 6.3.1), so the
    /// core stays deterministic; draw it from a real random source.
    pub seed: u64,
}

impl RtcpConfig {
    pub fn new(ssrc: u32, cname: impl Into<String>, seed: u64) -> Self {
        RtcpConfig {
            ssrc,
            cname: cname.into(),
            interval: REPORT_INTERVAL,
            seed,
        }
    }
}

/// What we know of the remote source's stream, as RFC 3550 A.3 counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceptionStatistics {
    pub ssrc: u32,
    /// Packets counted since the source was validated, duplicates included.
    pub received: u32,
    /// Packets the sequence numbers say were sent.
    pub expected: u32,
    /// `expected - received`; negative when duplicates outnumber losses.
    pub cumulative_lost: i64,
    /// Highest sequence number, extended by 65536 per wrap.
    pub highest_sequence: u32,
    /// Interarrival jitter in timestamp units (RFC 3550 6.4.1, A.8).
    pub jitter: u32,
}

/// What the peer last reported about our stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteReport {
    /// SSRC of the peer that sent the report.
    pub reporter: u32,
    /// Fraction of our packets lost since its previous report, in 1/256.
    pub fraction_lost: u8,
    pub cumulative_lost: i32,
    pub highest_sequence: u32,
    /// In timestamp units.
    pub jitter: u32,
    /// RFC 3550 6.4.1: arrival less the departure of the sender report it
    /// answers, less the peer's delay in answering. `None` if the peer has
    /// not seen one of our sender reports yet.
    pub round_trip: Option<Duration>,
}

/// The NTP timestamp (RFC 3550 4: seconds since 1900 in the high 32 bits,
/// fraction in the low 32) of a wall-clock time. Times before 1970 read as
/// 1970; past 2036 the seconds wrap into NTP era 1, as RFC 5905 prescribes.
pub fn ntp_timestamp(wall_clock: SystemTime) -> u64 {
    let since_unix = wall_clock.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_unix.as_secs().wrapping_add(NTP_UNIX_OFFSET) & 0xFFFF_FFFF;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// The middle 32 bits of an NTP timestamp, the form LSR uses (RFC 3550
/// 6.4.1).
fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// `duration` in the 1/65536 s units of DLSR (RFC 3550 6.4.1), saturating.
fn to_dlsr_units(duration: Duration) -> u32 {
    let units = duration.as_nanos() * 65_536 / 1_000_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

fn from_dlsr_units(units: u32) -> Duration {
    Duration::from_nanos(u64::from(units) * 1_000_000_000 / 65_536)
}

/// Sign-extends the 24-bit cumulative loss of a report block.
fn cumulative_lost_from_wire(total_lost: u32) -> i32 {
    ((total_lost << 8) as i32) >> 8
}

/// Per-source state of RFC 3550 A.1 (sequence validation), A.3 (loss) and
/// A.8 (jitter), with the appendix's field names.
#[derive(Clone, Debug)]
struct SourceStatistics {
    ssrc: u32,
    max_seq: u16,
    /// Sequence number wraps, times 65536.
    cycles: u32,
    base_seq: u32,
    /// The sequence number that would confirm a jump; never matches
    /// while it is `RTP_SEQ_MOD + 1`.
    bad_seq: u32,
    /// Sequential packets still needed before the source is valid.
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Relative transit time of the last packet measured.
    transit: Option<u32>,
    /// Timestamp of the last packet measured, to skip repeats of it.
    last_timestamp: Option<u32>,
    /// Interarrival jitter times 16, as in A.8's integer version.
    jitter: u64,
    /// A packet arrived since our last report; RFC 3550 6.4 reports only
    /// on sources heard since the previous report.
    heard_since_report: bool,
}

impl SourceStatistics {
    fn new(ssrc: u32, sequence: u16) -> Self {
        let mut source = SourceStatistics {
            ssrc,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: 0,
            probation: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            last_timestamp: None,
            jitter: 0,
            heard_since_report: false,
        };
        // A.1: a new source is on probation until MIN_SEQUENTIAL packets
        // arrive in sequence, so a stray packet does not create one.
        source.init_seq(sequence);
        source.max_seq = sequence.wrapping_sub(1);
        source.probation = MIN_SEQUENTIAL;
        source
    }

    fn is_valid(&self) -> bool {
        self.probation == 0
    }

    fn init_seq(&mut self, sequence: u16) {
        self.base_seq = u32::from(sequence);
        self.max_seq = sequence;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// RFC 3550 A.1 `update_seq`: whether the packet counts.
    fn update_seq(&mut self, sequence: u16) -> bool {
        let udelta = sequence.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if sequence == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = sequence;
                if self.probation == 0 {
                    self.init_seq(sequence);
                    self.received = self.received.wrapping_add(1);
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = sequence;
            }
            return false;
        }
        if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if sequence < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = sequence;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump: believe it when the next packet follows.
            if u32::from(sequence) == self.bad_seq {
                self.init_seq(sequence);
            } else {
                self.bad_seq = (u32::from(sequence) + 1) & (RTP_SEQ_MOD - 1);
                return false;
            }
        }
        // Otherwise a duplicate or reordered packet, counted as received.
        self.received = self.received.wrapping_add(1);
        true
    }

    fn handle_packet(&mut self, packet: &RtpPacket, arrival: u32) {
        if !self.update_seq(packet.sequence) {
            return;
        }
        self.heard_since_report = true;
        // RFC 4733 events repeat their start timestamp for as long as a key
        // is held; measuring them would read the key's duration as jitter.
        if self.last_timestamp == Some(packet.timestamp) {
            return;
        }
        self.last_timestamp = Some(packet.timestamp);
        // RFC 3550 A.8: D is the change in relative transit time, and
        // J += (|D| - J) / 16, kept times 16 to stay in integers.
        let transit = arrival.wrapping_sub(packet.timestamp);
        if let Some(previous) = self.transit.replace(transit) {
            let change = u64::from((transit.wrapping_sub(previous) as i32).unsigned_abs());
            self.jitter = self.jitter + change - ((self.jitter + 8) >> 4);
        }
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    fn expected(&self) -> u32 {
        self.extended_max()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    fn jitter(&self) -> u32 {
        u32::try_from(self.jitter >> 4).unwrap_or(u32::MAX)
    }

    fn statistics(&self) -> ReceptionStatistics {
        ReceptionStatistics {
            ssrc: self.ssrc,
            received: self.received,
            expected: self.expected(),
            cumulative_lost: i64::from(self.expected()) - i64::from(self.received),
            highest_sequence: self.extended_max(),
            jitter: self.jitter(),
        }
    }

    /// RFC 3550 A.3: the report block, which also starts the next interval
    /// for the fraction lost.
    fn report_block(&mut self, last_sender_report: u32, delay: u32) -> ReceptionReport {
        let statistics = self.statistics();
        let expected_interval = statistics.expected.wrapping_sub(self.expected_prior);
        self.expected_prior = statistics.expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            // Reaching 256 would take a lost interval with nothing received,
            // which A.1 cannot produce; the clamp keeps the cast honest.
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        // The field is 24-bit signed: clamp, then keep the low 24 bits.
        let cumulative = statistics.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as i32;
        self.heard_since_report = false;
        ReceptionReport {
            ssrc: self.ssrc,
            fraction_lost,
            total_lost: (cumulative as u32) & 0x00FF_FFFF,
            last_sequence_number: statistics.highest_sequence,
            jitter: statistics.jitter,
            last_sender_report,
            delay,
        }
    }
}

/// Our own stream, for the sender info of a sender report.
#[derive(Clone, Copy, Debug, Default)]
struct SenderState {
    /// Counts wrap, as the 32-bit fields of RFC 3550 6.4.1 do.
    packets: u32,
    octets: u32,
    /// A timestamp and when it was sent, to extrapolate the RTP timestamp
    /// that corresponds to the report's NTP time.
    clock: Option<(u32, Instant)>,
    last_sent_at: Option<Instant>,
}

/// The remote's last sender report, for LSR and DLSR.
#[derive(Clone, Copy, Debug)]
struct ReceivedSenderReport {
    ssrc: u32,
    ntp_middle: u32,
    received_at: Instant,
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct RtcpSession {
    config: RtcpConfig,
    /// Start of the arrival clock of A.8, which only uses differences.
    epoch: Instant,
    source: Option<SourceStatistics>,
    sender: SenderState,
    last_sender_report: Option<ReceivedSenderReport>,
    /// NTP middle words of our recent sender reports and when they left,
    /// to turn the peer's LSR and DLSR into a round-trip time.
    sent_reports: VecDeque<(u32, Instant)>,
    remote_report: Option<RemoteReport>,
    next_report: Instant,
    /// State of the generator that randomises report times.
    random: u64,
}

impl RtcpSession {
    /// Starts a session at `now`; the first report is due after about half
    /// an interval (RFC 3550 6.2).
    pub fn new(now: Instant, config: RtcpConfig) -> Result<Self, RtcpError> {
        if config.cname.len() > MAX_CNAME_LEN {
            return Err(RtcpError::CnameTooLong(config.cname.len()));
        }
        let mut session = RtcpSession {
            random: config.seed,
            config,
            epoch: now,
            source: None,
            sender: SenderState::default(),
            last_sender_report: None,
            sent_reports: VecDeque::with_capacity(SENT_REPORTS_KEPT),
            remote_report: None,
            next_report: now,
        };
        session.next_report = now + session.randomized(session.config.interval / 2);
        Ok(session)
    }

    /// Counts one RTP packet of the remote stream. A new SSRC replaces the
    /// old source and its statistics.
    pub fn handle_rtp_received(&mut self, now: Instant, packet: &RtpPacket) {
        let arrival = self.arrival_clock(now);
        match &mut self.source {
            Some(source) if source.ssrc == packet.ssrc => source.handle_packet(packet, arrival),
            _ => {
                let mut source = SourceStatistics::new(packet.ssrc, packet.sequence);
                source.handle_packet(packet, arrival);
                self.source = Some(source);
            }
        }
    }

    /// Counts one RTP packet we sent.
    pub fn handle_rtp_sent(&mut self, now: Instant, packet: &RtpPacket) {
        let sender = &mut self.sender;
        sender.packets = sender.packets.wrapping_add(1);
        // RFC 3550 6.4.1: payload octets only, no header or padding.
        sender.octets = sender.octets.wrapping_add(packet.payload.len() as u32);
        sender.last_sent_at = Some(now);
        // Event packets repeat a past timestamp; only a new one says what
        // the RTP clock reads now.
        if sender.clock.map(|(timestamp, _)| timestamp) != Some(packet.timestamp) {
            sender.clock = Some((packet.timestamp, now));
        }
    }

    /// Takes one datagram from the RTCP port. Sender and receiver reports
    /// are used; SDES, BYE, APP and feedback packets are skipped. A
    /// datagram that fails RFC 3550 A.2's framing checks, or whose reports
    /// do not parse, is rejected whole and changes nothing.
    pub fn handle_rtcp(&mut self, now: Instant, datagram: &[u8]) -> Result<(), RtcpError> {
        let mut sender_reports = Vec::new();
        let mut receiver_reports = Vec::new();
        for (packet_type, raw) in split_compound(datagram)? {
            match packet_type {
                SENDER_REPORT => sender_reports.push(unmarshal::<SenderReport>(packet_type, raw)?),
                RECEIVER_REPORT => {
                    receiver_reports.push(unmarshal::<ReceiverReport>(packet_type, raw)?)
                }
                _ => {}
            }
        }
        for report in sender_reports {
            let from_our_source = self
                .source
                .as_ref()
                .is_none_or(|source| source.ssrc == report.ssrc);
            if from_our_source {
                self.last_sender_report = Some(ReceivedSenderReport {
                    ssrc: report.ssrc,
                    ntp_middle: ntp_middle(report.ntp_time),
                    received_at: now,
                });
            }
            self.handle_report_blocks(now, report.ssrc, &report.reports);
        }
        for report in receiver_reports {
            self.handle_report_blocks(now, report.ssrc, &report.reports);
        }
        Ok(())
    }

    /// When the next report is due. There always is one.
    pub fn poll_timeout(&self) -> Instant {
        self.next_report
    }

    /// The compound report, if one is due at `now`. `wall_clock` is the
    /// time of day at `now`, for the NTP timestamp of a sender report.
    pub fn poll_transmit(&mut self, now: Instant, wall_clock: SystemTime) -> Option<Vec<u8>> {
        if now < self.next_report {
            return None;
        }
        // RFC 3550 6.3.1: randomised between 0.5 and 1.5 intervals so that
        // reports do not synchronise. Timer reconsideration and its 1.21828
        // compensation are left out: with two parties and a fixed minimum
        // interval there is no group size to reconsider.
        self.next_report = now + self.randomized(self.config.interval);

        let ssrc = self.config.ssrc;
        let reports: Vec<ReceptionReport> = self.take_report_block(now).into_iter().collect();
        // RFC 3550 6.4: a sender report only while we are a sender, which
        // lapses two intervals after our last packet (6.3.8).
        let we_sent = self.sender.last_sent_at.is_some_and(|sent_at| {
            now.saturating_duration_since(sent_at) < self.config.interval * 2
        });
        let first: Box<dyn RtcpPacket + Send + Sync> = if we_sent {
            let ntp_time = ntp_timestamp(wall_clock);
            if self.sent_reports.len() == SENT_REPORTS_KEPT {
                self.sent_reports.pop_front();
            }
            self.sent_reports.push_back((ntp_middle(ntp_time), now));
            Box::new(SenderReport {
                ssrc,
                ntp_time,
                rtp_time: self.rtp_time_at(now),
                packet_count: self.sender.packets,
                octet_count: self.sender.octets,
                reports,
                profile_extensions: Default::default(),
            })
        } else {
            Box::new(ReceiverReport {
                ssrc,
                reports,
                profile_extensions: Default::default(),
            })
        };
        // RFC 3550 6.1: every compound packet carries an SDES CNAME.
        let description = SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: ssrc,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: self.config.cname.clone().into_bytes().into(),
                }],
            }],
        };
        let compound: [Box<dyn RtcpPacket + Send + Sync>; 2] = [first, Box::new(description)];
        // Cannot fail: the CNAME length was checked in `new`, there is at
        // most one report block, and the loss field is clamped to 24 bits.
        let marshalled = ::rtcp::packet::marshal(&compound);
        debug_assert!(marshalled.is_ok(), "RTCP marshalling: {marshalled:?}");
        marshalled.ok().map(|bytes| bytes.to_vec())
    }

    /// Statistics of the remote stream, once its source is validated.
    pub fn reception_statistics(&self) -> Option<ReceptionStatistics> {
        self.source
            .as_ref()
            .filter(|source| source.is_valid())
            .map(SourceStatistics::statistics)
    }

    /// The peer's latest report on our stream.
    pub fn remote_report(&self) -> Option<&RemoteReport> {
        self.remote_report.as_ref()
    }

    fn take_report_block(&mut self, now: Instant) -> Option<ReceptionReport> {
        let source = self
            .source
            .as_mut()
            .filter(|source| source.is_valid() && source.heard_since_report)?;
        // RFC 3550 6.4.1: LSR and DLSR are zero until the source has sent
        // a sender report.
        let (last_sender_report, delay) = self
            .last_sender_report
            .filter(|report| report.ssrc == source.ssrc)
            .map_or((0, 0), |report| {
                let waited = now.saturating_duration_since(report.received_at);
                (report.ntp_middle, to_dlsr_units(waited))
            });
        Some(source.report_block(last_sender_report, delay))
    }

    fn handle_report_blocks(&mut self, now: Instant, reporter: u32, blocks: &[ReceptionReport]) {
        let Some(block) = blocks.iter().find(|block| block.ssrc == self.config.ssrc) else {
            return;
        };
        self.remote_report = Some(RemoteReport {
            reporter,
            fraction_lost: block.fraction_lost,
            cumulative_lost: cumulative_lost_from_wire(block.total_lost),
            highest_sequence: block.last_sequence_number,
            jitter: block.jitter,
            round_trip: self.round_trip(now, block.last_sender_report, block.delay),
        });
    }

    /// RFC 3550 6.4.1's A - LSR - DLSR, with the departure time of the
    /// sender report looked up instead of read back from NTP, so no wall
    /// clock is needed on receipt.
    fn round_trip(&self, now: Instant, last_sender_report: u32, delay: u32) -> Option<Duration> {
        if last_sender_report == 0 {
            return None;
        }
        let &(_, sent_at) = self
            .sent_reports
            .iter()
            .find(|(middle, _)| *middle == last_sender_report)?;
        now.saturating_duration_since(sent_at)
            .checked_sub(from_dlsr_units(delay))
    }

    /// The RTP timestamp of our stream at `now`, extrapolated from the
    /// last packet sent at the 8 kHz clock rate.
    fn rtp_time_at(&self, now: Instant) -> u32 {
        self.sender.clock.map_or(0, |(timestamp, at)| {
            timestamp.wrapping_add(to_clock_units(now.saturating_duration_since(at)))
        })
    }

    /// Arrival time in timestamp units for A.8, modulo 2^32.
    fn arrival_clock(&self, now: Instant) -> u32 {
        to_clock_units(now.saturating_duration_since(self.epoch))
    }

    /// `base` scaled by a factor uniform in [0.5, 1.5), from a splitmix64
    /// generator.
    fn randomized(&mut self, base: Duration) -> Duration {
        self.random = self.random.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.random;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(0.5 + unit)
    }
}

/// `duration` in 8 kHz ticks, modulo 2^32 as RTP timestamps are.
fn to_clock_units(duration: Duration) -> u32 {
    (duration.as_nanos() * u128::from(CLOCK_RATE) / 1_000_000_000) as u32
}

/// Splits a compound packet into (packet type, bytes) after RFC 3550
/// A.2's framing checks: version 2 everywhere, and lengths that tile the
/// datagram exactly. The rule that the first packet is an SR or RR is not
/// enforced, so reduced-size RTCP (RFC 5506) is accepted.
fn split_compound(datagram: &[u8]) -> Result<Vec<(u8, &[u8])>, RtcpError> {
    let mut packets = Vec::new();
    let mut offset = 0;
    while offset < datagram.len() {
        let rest = &datagram[offset..];
        let &[first, packet_type, length_high, length_low, ..] = rest else {
            return Err(RtcpError::Truncated {
                offset,
                available: rest.len(),
            });
        };
        let version = first >> 6;
        if version != 2 {
            return Err(RtcpError::Version { offset, version });
        }
        // RFC 3550 6.4.1: the length is in 32-bit words, minus one.
        let declared = (usize::from(u16::from_be_bytes([length_high, length_low])) + 1) * 4;
        let Some(packet) = rest.get(..declared) else {
            return Err(RtcpError::Length {
                offset,
                declared,
                available: rest.len(),
            });
        };
        packets.push((packet_type, packet));
        offset += declared;
    }
    if packets.is_empty() {
        return Err(RtcpError::Truncated {
            offset: 0,
            available: 0,
        });
    }
    Ok(packets)
}

/// Parses one framed packet with the `rtcp` crate as `T`.
fn unmarshal<T: Clone + 'static>(packet_type: u8, raw: &[u8]) -> Result<T, RtcpError> {
    let mut buffer = raw;
    let malformed = |source| RtcpError::Malformed {
        packet_type,
        source,
    };
    let packets = ::rtcp::packet::unmarshal(&mut buffer).map_err(malformed)?;
    packets
        .first()
        .and_then(|packet| packet.as_any().downcast_ref::<T>())
        .cloned()
        .ok_or_else(|| malformed(::rtcp::Error::WrongType))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::FRAME_DURATION;

    const LOCAL: u32 = 0x1111_1111;
    const REMOTE: u32 = 0x2222_2222;

    fn session(now: Instant) -> RtcpSession {
        RtcpSession::new(now, RtcpConfig::new(LOCAL, "switchboard@test", 7)).expect("valid")
    }

    fn rtp(ssrc: u32, sequence: u16, timestamp: u32) -> RtpPacket {
        RtpPacket {
            payload_type: 0,
            sequence,
            timestamp,
            ssrc,
            marker: false,
            payload: vec![0xFF; 160],
        }
    }

    /// Feeds remote packets 20 ms apart with timestamps 160 apart.
    fn receive(session: &mut RtcpSession, t0: Instant, sequences: impl Iterator<Item = u16>) {
        for (index, sequence) in sequences.enumerate() {
            let now = t0 + FRAME_DURATION * index as u32;
            session.handle_rtp_received(now, &rtp(REMOTE, sequence, u32::from(sequence) * 160));
        }
    }

    fn decode(datagram: &[u8]) -> Vec<Box<dyn RtcpPacket + Send + Sync>> {
        ::rtcp::packet::unmarshal(&mut &datagram[..]).expect("our own RTCP parses")
    }

    fn downcast<T: Clone + 'static>(packet: &(dyn RtcpPacket + Send + Sync)) -> T {
        packet
            .as_any()
            .downcast_ref::<T>()
            .cloned()
            .expect("packet of the expected type")
    }

    /// Polls the next report, jumping virtual time to its deadline.
    fn next_report(session: &mut RtcpSession) -> (Instant, Vec<Box<dyn RtcpPacket + Send + Sync>>) {
        let at = session.poll_timeout();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let datagram = session.poll_transmit(at, wall).expect("due");
        (at, decode(&datagram))
    }

    fn cname_of(packet: &(dyn RtcpPacket + Send + Sync)) -> (u32, Vec<u8>) {
        let description = downcast::<SourceDescription>(packet);
        let chunk = &description.chunks[0];
        assert_eq!(chunk.items[0].sdes_type, SdesType::SdesCname);
        (chunk.source, chunk.items[0].text.to_vec())
    }

    fn marshal(packets: Vec<Box<dyn RtcpPacket + Send + Sync>>) -> Vec<u8> {
        ::rtcp::packet::marshal(&packets)
            .expect("marshals")
            .to_vec()
    }

    #[test]
    fn ntp_timestamps_count_from_1900() {
        let wall = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(ntp_timestamp(wall), (2_208_988_801u64 << 32) | 0x8000_0000);
        assert_eq!(
            ntp_middle(ntp_timestamp(wall)),
            (2_208_988_801u32 << 16) | 0x8000
        );
    }

    #[test]
    fn a_receiver_only_sends_receiver_reports_with_cname() {
        let t0 = Instant::now();
        let mut session = session(t0);
        let (_, packets) = next_report(&mut session);
        assert_eq!(packets.len(), 2);
        let report = downcast::<ReceiverReport>(packets[0].as_ref());
        assert_eq!(report.ssrc, LOCAL);
        assert!(report.reports.is_empty(), "nothing heard yet");
        assert_eq!(
            cname_of(packets[1].as_ref()),
            (LOCAL, b"switchboard@test".to_vec())
        );
    }

    #[test]
    fn reports_loss_per_rfc_3550_a3() {
        let t0 = Instant::now();
        let mut session = session(t0);
        // 1000 passes probation with 1001 (A.1), which starts the count.
        let sequences = (1_000..=1_020).filter(|s| *s != 1_010 && *s != 1_011);
        receive(&mut session, t0, sequences);
        let statistics = session.reception_statistics().expect("validated");
        assert_eq!(statistics.expected, 20);
        assert_eq!(statistics.received, 18);
        assert_eq!(statistics.cumulative_lost, 2);
        assert_eq!(statistics.highest_sequence, 1_020);

        let (at, packets) = next_report(&mut session);
        let block = downcast::<ReceiverReport>(packets[0].as_ref()).reports[0].clone();
        assert_eq!(block.ssrc, REMOTE);
        assert_eq!(block.total_lost, 2);
        assert_eq!(block.fraction_lost, (2 * 256 / 20) as u8);
        assert_eq!(block.last_sequence_number, 1_020);
        assert_eq!((block.last_sender_report, block.delay), (0, 0));

        // The next interval has no loss: the fraction is per interval, the
        // total cumulative.
        receive(&mut session, at, 1_021..=1_030);
        let (_, packets) = next_report(&mut session);
        let block = downcast::<ReceiverReport>(packets[0].as_ref()).reports[0].clone();
        assert_eq!((block.fraction_lost, block.total_lost), (0, 2));
    }

    #[test]
    fn the_fraction_lost_covers_only_the_last_interval() {
        let mut source = SourceStatistics::new(REMOTE, 10);
        for sequence in 10..=20 {
            source.update_seq(sequence);
        }
        assert_eq!(source.report_block(0, 0).fraction_lost, 0);
        // One packet, 100 sequence numbers on: 99 of 100 lost.
        source.update_seq(120);
        assert_eq!(source.report_block(0, 0).fraction_lost, 253);
        // Nothing new at all in the interval: no loss to report.
        assert_eq!(source.report_block(0, 0).fraction_lost, 0);
    }

    #[test]
    fn duplicates_make_the_loss_negative_on_the_wire() {
        let t0 = Instant::now();
        let mut session = session(t0);
        receive(&mut session, t0, [500, 501, 502, 502, 503].into_iter());
        assert_eq!(
            session.reception_statistics().map(|s| s.cumulative_lost),
            Some(-1)
        );
        let (_, packets) = next_report(&mut session);
        let block = downcast::<ReceiverReport>(packets[0].as_ref()).reports[0].clone();
        assert_eq!(block.total_lost, 0x00FF_FFFF, "-1 in 24 bits");
        assert_eq!(block.fraction_lost, 0);
    }

    #[test]
    fn extends_the_sequence_number_across_the_wrap() {
        let t0 = Instant::now();
        let mut session = session(t0);
        receive(&mut session, t0, (65_530..=65_535).chain(0..=5));
        let statistics = session.reception_statistics().expect("validated");
        assert_eq!(statistics.highest_sequence, 65_536 + 5);
        assert_eq!(statistics.expected, 11);
        assert_eq!(statistics.cumulative_lost, 0);
    }

    #[test]
    fn a_stray_sequence_jump_is_not_believed_until_confirmed() {
        let t0 = Instant::now();
        let mut session = session(t0);
        receive(
            &mut session,
            t0,
            (100..=110).chain([40_000]).chain(111..=112),
        );
        let statistics = session.reception_statistics().expect("validated");
        assert_eq!(statistics.highest_sequence, 112);
        assert_eq!(statistics.cumulative_lost, 0);
        // Two in a row restart the count at the new sequence (A.1).
        receive(&mut session, t0, [50_000, 50_001, 50_002].into_iter());
        let statistics = session.reception_statistics().expect("validated");
        assert_eq!(
            (statistics.highest_sequence, statistics.received),
            (50_002, 2)
        );
    }

    #[test]
    fn steady_arrivals_have_no_jitter_and_alternating_delay_has_some() {
        let t0 = Instant::now();
        let mut steady = session(t0);
        receive(&mut steady, t0, 0..200);
        assert_eq!(steady.reception_statistics().map(|s| s.jitter), Some(0));

        // Every other packet 10 ms (80 ticks) late: |D| is 80 each time,
        // and J converges on it from below.
        let mut bumpy = session(t0);
        for sequence in 0..400u16 {
            let late = if sequence % 2 == 1 { 10 } else { 0 };
            let now = t0 + Duration::from_millis(20 * u64::from(sequence) + late);
            bumpy.handle_rtp_received(now, &rtp(REMOTE, sequence, u32::from(sequence) * 160));
        }
        let jitter = bumpy.reception_statistics().map(|s| s.jitter);
        assert!(matches!(jitter, Some(75..=80)), "jitter {jitter:?}");
    }

    #[test]
    fn repeated_event_timestamps_do_not_count_as_jitter() {
        let t0 = Instant::now();
        let mut session = session(t0);
        receive(&mut session, t0, 0..10);
        // A 100 ms digit: five packets 50 ms apart, all with the start
        // timestamp; audio resumes afterwards on the advanced clock.
        for index in 0..5u16 {
            let now = t0 + Duration::from_millis(200 + 50 * u64::from(index));
            session.handle_rtp_received(now, &rtp(REMOTE, 10 + index, 1_600));
        }
        for index in 0..5u16 {
            let now = t0 + Duration::from_millis(450 + 20 * u64::from(index));
            let timestamp = 3_600 + 160 * u32::from(index);
            session.handle_rtp_received(now, &rtp(REMOTE, 15 + index, timestamp));
        }
        assert_eq!(session.reception_statistics().map(|s| s.jitter), Some(0));
    }

    #[test]
    fn a_sender_sends_sender_reports_with_its_counts() {
        let t0 = Instant::now();
        let mut session = session(t0);
        for index in 0..50u32 {
            let mut packet = rtp(LOCAL, index as u16, 8_000 + index * 160);
            packet.payload.truncate(100);
            session.handle_rtp_sent(t0 + FRAME_DURATION * index, &packet);
        }
        receive(&mut session, t0, 0..50);
        let (at, packets) = next_report(&mut session);
        let report = downcast::<SenderReport>(packets[0].as_ref());
        assert_eq!(report.ssrc, LOCAL);
        assert_eq!((report.packet_count, report.octet_count), (50, 5_000));
        assert_eq!(
            report.ntp_time,
            ntp_timestamp(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        // The last packet (timestamp 15_840) left at 980 ms; the RTP clock
        // ran on at 8 kHz until the report.
        let elapsed = at - (t0 + FRAME_DURATION * 49);
        assert_eq!(
            report.rtp_time,
            15_840 + to_clock_units(elapsed),
            "RTP time of the report instant"
        );
        assert_eq!(report.reports.len(), 1);
        assert_eq!(report.reports[0].ssrc, REMOTE);
        assert_eq!(cname_of(packets[1].as_ref()).0, LOCAL);
    }

    #[test]
    fn stops_sending_sender_reports_two_intervals_after_the_last_packet() {
        let t0 = Instant::now();
        let mut session = session(t0);
        session.handle_rtp_sent(t0, &rtp(LOCAL, 0, 0));
        let mut kinds = Vec::new();
        while kinds.len() < 5 {
            let (at, packets) = next_report(&mut session);
            let sender = packets[0].as_any().is::<SenderReport>();
            kinds.push((sender, at - t0 < REPORT_INTERVAL * 2));
        }
        assert!(
            kinds.iter().all(|(sender, recent)| sender == recent),
            "{kinds:?}"
        );
        assert!(!kinds.last().expect("five").0);
    }

    #[test]
    fn report_times_are_randomised_around_the_interval() {
        let t0 = Instant::now();
        let mut session = session(t0);
        let first = session.poll_timeout() - t0;
        assert!(first >= REPORT_INTERVAL / 4 && first < REPORT_INTERVAL * 3 / 4);
        assert_eq!(
            session.poll_transmit(
                session.poll_timeout() - Duration::from_millis(1),
                SystemTime::UNIX_EPOCH
            ),
            None
        );
        let mut previous = session.poll_timeout();
        let mut gaps = Vec::new();
        for _ in 0..50 {
            next_report(&mut session);
            let gap = session.poll_timeout() - previous;
            assert!(gap >= REPORT_INTERVAL / 2 && gap < REPORT_INTERVAL * 3 / 2);
            gaps.push(gap);
            previous = session.poll_timeout();
        }
        assert!(gaps.windows(2).any(|pair| pair[0] != pair[1]), "not fixed");
        // The same seed gives the same schedule.
        assert_eq!(self::session(t0).poll_timeout(), t0 + first);
    }

    #[test]
    fn echoes_the_last_sender_report_as_lsr_and_dlsr() {
        let t0 = Instant::now();
        let mut session = session(t0);
        receive(&mut session, t0, 0..10);
        let ntp_time = (0x0001_2345u64 << 32) | 0x6789_0000;
        let remote_report = marshal(vec![Box::new(SenderReport {
            ssrc: REMOTE,
            ntp_time,
            rtp_time: 1,
            packet_count: 10,
            octet_count: 1_600,
            reports: vec![],
            profile_extensions: Default::default(),
        })]);
        let received_at = session.poll_timeout() - Duration::from_millis(1_500);
        session
            .handle_rtcp(received_at, &remote_report)
            .expect("valid");
        let (_, packets) = next_report(&mut session);
        let block = downcast::<ReceiverReport>(packets[0].as_ref()).reports[0].clone();
        assert_eq!(block.last_sender_report, 0x2345_6789);
        assert_eq!(block.delay, 98_304, "1.5 s in 1/65536 s");
    }

    #[test]
    fn reads_the_peers_report_on_our_stream_and_its_round_trip() {
        let t0 = Instant::now();
        let mut session = session(t0);
        session.handle_rtp_sent(t0, &rtp(LOCAL, 0, 0));
        let (sent_at, packets) = next_report(&mut session);
        let ours = downcast::<SenderReport>(packets[0].as_ref());

        // The peer held our report 2 s and answers 3 s after we sent it.
        let answer = marshal(vec![Box::new(ReceiverReport {
            ssrc: REMOTE,
            reports: vec![ReceptionReport {
                ssrc: LOCAL,
                fraction_lost: 12,
                total_lost: 0x00FF_FFFE,
                last_sequence_number: 70_000,
                jitter: 33,
                last_sender_report: ntp_middle(ours.ntp_time),
                delay: 2 * 65_536,
            }],
            profile_extensions: Default::default(),
        })]);
        session
            .handle_rtcp(sent_at + Duration::from_secs(3), &answer)
            .expect("valid");
        assert_eq!(
            session.remote_report(),
            Some(&RemoteReport {
                reporter: REMOTE,
                fraction_lost: 12,
                cumulative_lost: -2,
                highest_sequence: 70_000,
                jitter: 33,
                round_trip: Some(Duration::from_secs(1)),
            })
        );
    }

    #[test]
    fn rejects_malformed_rtcp_without_panicking() {
        let t0 = Instant::now();
        let mut session = session(t0);
        assert_eq!(
            session.handle_rtcp(t0, &[]),
            Err(RtcpError::Truncated {
                offset: 0,
                available: 0
            })
        );
        assert_eq!(
            session.handle_rtcp(t0, &[0x80, 201]),
            Err(RtcpError::Truncated {
                offset: 0,
                available: 2
            })
        );
        assert_eq!(
            session.handle_rtcp(t0, &[0x40, 201, 0, 1, 0, 0, 0, 0]),
            Err(RtcpError::Version {
                offset: 0,
                version: 1
            })
        );
        assert_eq!(
            session.handle_rtcp(t0, &[0x80, 201, 0, 7, 0, 0, 0, 0]),
            Err(RtcpError::Length {
                offset: 0,
                declared: 32,
                available: 8
            })
        );
        // A receiver report announcing a block it does not carry.
        assert!(matches!(
            session.handle_rtcp(t0, &[0x81, 201, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::Malformed {
                packet_type: 201,
                ..
            })
        ));

        let mut state = 0x0123_4567_89AB_CDEFu64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 64) as usize;
            let mut bytes: Vec<u8> = (0..len)
                .map(|i| (state >> ((i % 8) * 8)) as u8 ^ i as u8)
                .collect();
            // Make the framing plausible half the time so the parsers run.
            if len >= 4 && state % 2 == 0 {
                bytes[0] = 0x80 | (bytes[0] & 0x1f);
                bytes[1] = if state % 4 == 0 { 200 } else { 201 };
                bytes[2] = 0;
                bytes[3] = (len / 4 - 1) as u8;
                bytes.truncate(len / 4 * 4);
            }
            let _ = session.handle_rtcp(t0, &bytes);
        }
    }

    #[test]
    fn skips_packet_types_it_does_not_use() {
        let t0 = Instant::now();
        let mut session = session(t0);
        // BYE from the remote after an APP packet: valid, nothing to do.
        let datagram = [
            0x80, 204, 0, 2, 0, 0, 0, 9, b'n', b'a', b'm', b'e', // APP
            0x81, 203, 0, 1, 0x22, 0x22, 0x22, 0x22, // BYE
        ];
        assert_eq!(session.handle_rtcp(t0, &datagram), Ok(()));
        assert_eq!(session.remote_report(), None);
    }

    #[test]
    fn a_new_remote_ssrc_replaces_the_statistics() {
        let t0 = Instant::now();
        let mut session = session(t0);
        receive(&mut session, t0, 0..10);
        for (index, sequence) in (9_000..9_005).enumerate() {
            let now = t0 + FRAME_DURATION * (20 + index as u32);
            session.handle_rtp_received(now, &rtp(REMOTE + 1, sequence, 0));
        }
        let statistics = session.reception_statistics().expect("validated");
        assert_eq!(statistics.ssrc, REMOTE + 1);
        assert_eq!(statistics.received, 4);
    }

    #[test]
    fn rejects_a_cname_that_does_not_fit() {
        let config = RtcpConfig::new(LOCAL, "x".repeat(256), 0);
        assert!(matches!(
            RtcpSession::new(Instant::now(), config),
            Err(RtcpError::CnameTooLong(256))
        ));
    }
}
