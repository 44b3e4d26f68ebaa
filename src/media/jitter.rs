//! A jitter buffer for one incoming G.711 stream of 20 ms packets, in
//! virtual time.
//!
//! Call order: [`JitterBuffer::handle_packet`] for every audio packet as it
//! arrives, and [`JitterBuffer::poll_frame`] once per 20 ms from the
//! driver's playout clock. Until the first packet has been held for the
//! target delay, `poll_frame` returns `None`; from then on it returns one
//! [`Frame`] per call, in sequence order: the packet's audio, or a
//! concealment frame for a packet that is missing.
//!
//! The target delay adapts to the line: it is the spread of the packets'
//! transit times (arrival against RTP timestamp) over the last
//! [`TRANSIT_WINDOW`] packets plus a margin, kept within the configured
//! least and most delay. A clean line (a LAN, loopback) is played 20 ms
//! behind, which every turn's latency and every barge-in gains; a line
//! whose packets come unevenly gets the cushion it needs. The target is
//! applied where playout (re)starts, after buffering or an underrun, and
//! mid-stream it only grows: when a packet comes after its slot, the
//! buffer plays concealment instead of the next slots until the packets
//! queued cover the (now larger) target. When the line calms down again
//! (the spread falls as a burst leaves the window) the delay comes back
//! down, but only through the caller's silence: once more slots than the
//! target have stayed queued for [`SURPLUS_POLLS`] polls in a row, one
//! quiet frame is skipped: a frame near the line's noise floor, after
//! another such frame, never one of speech. A burst early in a call
//! thus no longer delays every later turn of it; a line that stays uneven
//! keeps its cushion, since its surplus never lasts.
//!
//! Playout follows sequence numbers, one slot per poll:
//!
//! - A missing slot while later packets are queued is a loss: it is
//!   concealed (the last frame repeated at falling gain, then silence) and
//!   its packet, should it still come, is dropped as late.
//! - A missing slot with nothing queued is an underrun. The buffer cannot
//!   tell loss from a sender that paused (silence suppression, hold, a DTMF
//!   digit replacing audio), so it conceals without consuming the slot and
//!   re-buffers: playout resumes once the next packet has been held for the
//!   target delay, from the slot it stopped at. A paused talkspurt thus
//!   resumes without its first packet looking late, and a burst loss costs
//!   no more delay than it already did.
//! - The buffer never holds more than `capacity` slots: when packets run
//!   ahead (a burst after a network stall), the oldest are dropped so the
//!   delay stays bounded.
//! - A jump of the sequence number far outside the window (RFC 3550 A.1's
//!   `MAX_DROPOUT` ahead, `MAX_MISORDER` behind) is believed only when the
//!   next packet continues it, as A.1 does; a new SSRC is believed at once.
//!   Either restarts the buffer.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::media::g711::Law;
use crate::media::rtp::{payload_type_for, RtpPacket, FRAME_DURATION, FRAME_SAMPLES};

/// How many polls in a row must find more slots queued than the target
/// before one quiet frame is skipped to bring the delay down (500 ms): a
/// surplus that lasts is the line having calmed down, not a packet that
/// happened to come early; and one skip per half second drains the most
/// surplus (80 ms) within two seconds of the caller's silence.
pub const SURPLUS_POLLS: u32 = 25;

/// A frame may be skipped only if it and the frame played before it are
/// at most this loud (RMS, dBFS) ...
const QUIET_CEILING_DBFS: f32 = -35.0;

/// ... and within this much of the quietest frame of the last
/// [`LEVEL_WINDOW`] played: the line's own noise, not a soft syllable.
const QUIET_OVER_FLOOR_DB: f32 = 6.0;

/// Frames whose levels give the line's noise floor (2 s).
const LEVEL_WINDOW: usize = 100;

/// RFC 3550 A.1: a sequence number this far ahead is a discontinuity, not
/// a loss burst.
const MAX_DROPOUT: i64 = 3_000;

/// RFC 3550 A.1: a sequence number this far behind is a discontinuity, not
/// a reordered packet.
const MAX_MISORDER: i64 = 100;

/// Gains of successive concealment frames, in quarters: the last frame is
/// repeated at 3/4, 1/2, 1/4, then silence. Repeating at full level would
/// turn a lost syllable into a buzz; fading over 60 ms hides short losses
/// and ends in silence for long ones.
const FADE_QUARTERS: [i32; 3] = [3, 2, 1];

/// How many recent slots the duplicate detector remembers.
const HISTORY_SLOTS: i64 = 64;

/// How many recent packets the transit spread is taken over: 5 s of
/// audio, long enough to have seen a line's usual bursts, short enough to
/// forget a passing one.
pub const TRANSIT_WINDOW: usize = 250;

/// Added to the transit spread: the scheduling noise of the sender and of
/// our own playout clock, which the spread of past packets does not show.
pub const TRANSIT_MARGIN: Duration = Duration::from_millis(10);

/// RTP clock rate of G.711.
const CLOCK_RATE: f64 = 8_000.0;

/// Settings for one stream, from the SDP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// The codec the stream carries; only packets of its static payload
    /// type are taken.
    pub law: Law,
    /// The least time the first packet is held before playout starts, and
    /// again after an underrun.
    pub min_delay: Duration,
    /// The most: the target never grows beyond it, however uneven the
    /// line. Equal to `min_delay`, the delay is fixed.
    pub max_delay: Duration,
    /// The most 20 ms slots held at once; bounds the delay after bursts.
    pub capacity: usize,
}

impl JitterConfig {
    /// A delay of 20 to 100 ms as the line needs, and 200 ms capacity: 20
    /// ms is one packet, all a clean line needs; 100 ms absorbs a poor
    /// trunk's jitter and keeps barge-in feeling immediate.
    pub fn new(law: Law) -> Self {
        JitterConfig {
            law,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            capacity: 10,
        }
    }

    /// A fixed delay (no adaptation).
    pub fn fixed(law: Law, delay: Duration) -> Self {
        JitterConfig {
            min_delay: delay,
            max_delay: delay,
            ..JitterConfig::new(law)
        }
    }
}

/// One 20 ms frame of playout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A packet's audio, decoded.
    Audio { sequence: u16, samples: Vec<i16> },
    /// Stand-in audio for a missing packet or an underrun.
    Concealed { samples: Vec<i16> },
}

impl Frame {
    pub fn samples(&self) -> &[i16] {
        match self {
            Frame::Audio { samples, .. } | Frame::Concealed { samples } => samples,
        }
    }
}

/// Counters for monitoring and RTCP. All are cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Audio packets handed in, whatever became of them.
    pub received: u64,
    /// Frames played from packets.
    pub played: u64,
    /// Slots played without their packet, including packets that came late.
    pub lost: u64,
    /// Packets that arrived after their slot was played or skipped.
    pub late: u64,
    /// Packets received twice.
    pub duplicate: u64,
    /// Concealment frames produced, for losses and underruns.
    pub concealed: u64,
    /// Packets dropped unplayed to keep the buffer within capacity.
    pub overflowed: u64,
    /// Concealment frames played to deepen the cushion mid-stream, when
    /// the line's jitter grew (also counted in `concealed`).
    pub stretched: u64,
    /// Quiet frames skipped to bring the delay back down once the line's
    /// jitter eased (see the module documentation).
    pub shrunk: u64,
    /// Packets far outside the sequence window that no successor confirmed.
    pub discarded: u64,
    /// Restarts for a new SSRC or a confirmed sequence discontinuity.
    pub resets: u64,
}

/// Where playout stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Playout {
    /// Nothing to play yet and nothing played: polls return `None`.
    Idle,
    /// Holding the first packets until the target delay: polls return
    /// `None`.
    Buffering { since: Instant },
    /// One slot per poll.
    Playing,
    /// Playout has begun but the buffer ran dry: polls conceal until a
    /// packet has been held for the target delay (`since` is when the first
    /// one arrived).
    Underrun { since: Option<Instant> },
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    payload_type: u8,
    /// The source being played; another SSRC means another stream.
    ssrc: Option<u32>,
    /// Highest extended sequence number accepted: 16-bit sequence numbers
    /// are extended to the nearest value around it, which takes care of
    /// wrap-around at 65535.
    highest: i64,
    /// Packets waiting for their slot, by extended sequence number.
    queue: BTreeMap<i64, Vec<u8>>,
    /// The next slot to play; `None` until the first frame of the current
    /// sequence space is played. Packets below it are late or duplicates.
    next: Option<i64>,
    /// Bit `i` is set if slot `next - 1 - i` was played from a packet, so a
    /// packet behind `next` can be told a duplicate from a late one.
    history: u64,
    /// A packet far outside the window, kept until the next packet says
    /// whether it starts a new sequence (RFC 3550 A.1's probation).
    probe: Option<RtpPacket>,
    playout: Playout,
    /// The last frame played, the material for concealment.
    last_audio: Vec<i16>,
    /// Concealment frames since the last real one, to pick the fade gain.
    concealed_run: usize,
    /// Slots of delay still to add by playing concealment (see
    /// `plan_deepening`).
    deepen: usize,
    /// Polls in a row that found more slots queued than the target.
    surplus_polls: u32,
    /// Levels (RMS, dBFS) of the last [`LEVEL_WINDOW`] frames played from
    /// packets: their minimum is the line's noise floor.
    levels: VecDeque<f32>,
    /// Arrival and RTP timestamp of the stream's first packet: the origin
    /// of transit times.
    transit_origin: Option<(Instant, u32)>,
    /// Transit times of the last [`TRANSIT_WINDOW`] packets, in seconds,
    /// relative to the first packet's.
    transits: VecDeque<f64>,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Self {
        debug_assert!(config.capacity > 0, "a jitter buffer that holds nothing");
        JitterBuffer {
            config: JitterConfig {
                capacity: config.capacity.max(1),
                max_delay: config.max_delay.max(config.min_delay),
                ..config
            },
            payload_type: payload_type_for(config.law),
            ssrc: None,
            highest: 0,
            queue: BTreeMap::new(),
            next: None,
            history: 0,
            probe: None,
            playout: Playout::Idle,
            last_audio: Vec::new(),
            concealed_run: 0,
            deepen: 0,
            surplus_polls: 0,
            levels: VecDeque::with_capacity(LEVEL_WINDOW),
            transit_origin: None,
            transits: VecDeque::with_capacity(TRANSIT_WINDOW),
            stats: JitterStats::default(),
        }
    }

    /// The delay playout (re)starts with: the spread of recent transit
    /// times plus [`TRANSIT_MARGIN`], within the configured bounds.
    pub fn target_delay(&self) -> Duration {
        let (min, max) = (self.config.min_delay, self.config.max_delay);
        let (low, high) = self
            .transits
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &t| {
                (lo.min(t), hi.max(t))
            });
        if high < low {
            return min;
        }
        // A spread beyond `max` is clamped below, so the conversion never
        // sees more than a few hundred milliseconds.
        let spread = Duration::from_secs_f64((high - low).min(max.as_secs_f64()));
        (spread + TRANSIT_MARGIN).clamp(min, max)
    }

    /// Notes when a packet of the stream arrived against when it was sent
    /// (its RTP timestamp).
    fn record_transit(&mut self, now: Instant, timestamp: u32) {
        let (first_at, first_ts) = *self.transit_origin.get_or_insert((now, timestamp));
        // Signed distance in the 32-bit timestamp space: exact across the
        // wrap, and for a stream shorter than three days.
        let sent = f64::from(timestamp.wrapping_sub(first_ts) as i32) / CLOCK_RATE;
        let arrived = now.saturating_duration_since(first_at).as_secs_f64();
        if self.transits.len() == TRANSIT_WINDOW {
            self.transits.pop_front();
        }
        self.transits.push_back(arrived - sent);
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Packets waiting for playout.
    pub fn buffered(&self) -> usize {
        self.queue.len()
    }

    /// Takes one packet of the stream. Packets of another payload type
    /// (telephone-event, comfort noise) are not audio for this buffer and
    /// are ignored; the driver routes them elsewhere.
    pub fn handle_packet(&mut self, now: Instant, packet: RtpPacket) {
        if packet.payload_type != self.payload_type {
            return;
        }
        self.stats.received += 1;

        if self.ssrc != Some(packet.ssrc) {
            if self.ssrc.is_some() {
                // RFC 3550 8.2: a new SSRC is a new source with its own
                // sequence space; nothing queued from the old one follows.
                self.restart();
            }
            self.ssrc = Some(packet.ssrc);
            self.highest = i64::from(packet.sequence);
        }

        let sequence = self.extend(packet.sequence);
        let delta = sequence - self.highest;
        if !(-MAX_MISORDER..MAX_DROPOUT).contains(&delta) {
            self.handle_jump(now, packet);
            return;
        }
        if self.probe.take().is_some() {
            // The stream carried on where it was: the far-off packet was
            // a stray.
            self.stats.discarded += 1;
        }
        self.record_transit(now, packet.timestamp);
        self.accept(now, sequence, packet.payload);
    }

    /// The frame for the current 20 ms slot, or `None` before playout has
    /// started.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Frame> {
        // The target is worked out where playout waits on it, and while
        // playing only when more than one slot is queued (see
        // `shrink_in_silence`).
        let held = |since: Instant, buffer: &Self| {
            now.saturating_duration_since(since) >= buffer.target_delay()
        };
        match self.playout {
            Playout::Idle => None,
            Playout::Buffering { since } => {
                if !held(since, self) {
                    return None;
                }
                self.begin_playout();
                Some(self.play_slot())
            }
            Playout::Underrun { since: Some(since) } if held(since, self) => {
                self.begin_playout();
                Some(self.play_slot())
            }
            Playout::Underrun { .. } => Some(self.conceal()),
            Playout::Playing if self.deepen > 0 => {
                // A packet came after its slot: deepen the cushion, a slot
                // at a time, played as concealment, skipping nothing.
                self.deepen -= 1;
                self.stats.stretched += 1;
                Some(self.conceal())
            }
            Playout::Playing => {
                self.shrink_in_silence();
                Some(self.play_slot())
            }
        }
    }

    /// While playing: when more slots than the target have stayed queued
    /// for [`SURPLUS_POLLS`] polls, skips the next slot if it and the last
    /// frame played are quiet (the caller's silence), which takes 20 ms off
    /// the delay. The skipped packet counts as played (a copy of it that
    /// comes later is a duplicate).
    fn shrink_in_silence(&mut self) {
        let (Some(next), Some((&newest, _))) = (self.next, self.queue.last_key_value()) else {
            self.surplus_polls = 0;
            return;
        };
        // Slots still queued after this poll plays one, against the
        // target in slots: in a steady stream they are equal. One behind
        // is the least target there is, so the common case of a clean
        // line does not work the target out on every slot.
        let behind = newest - next;
        if behind <= 1 || behind <= self.target_slots() {
            self.surplus_polls = 0;
            return;
        }
        self.surplus_polls = self.surplus_polls.saturating_add(1);
        if self.surplus_polls < SURPLUS_POLLS || !self.quiet_level(level_dbfs(&self.last_audio)) {
            return;
        }
        let Some(payload) = self.queue.get(&next) else {
            return;
        };
        let law = self.config.law;
        let samples: Vec<i16> = payload.iter().map(|&byte| law.decode(byte)).collect();
        if !self.quiet_level(level_dbfs(&samples)) {
            return;
        }
        self.queue.remove(&next);
        self.next = Some(next + 1);
        self.history = (self.history << 1) | 1;
        self.stats.shrunk += 1;
        self.surplus_polls = 0;
    }

    /// The target delay in 20 ms slots, rounded up.
    fn target_slots(&self) -> i64 {
        self.target_delay()
            .as_micros()
            .div_ceil(FRAME_DURATION.as_micros()) as i64
    }

    /// Whether a frame at `level` dBFS is the line's silence: under
    /// [`QUIET_CEILING_DBFS`] and near the quietest recent frame.
    fn quiet_level(&self, level: f32) -> bool {
        let floor = self.levels.iter().copied().fold(f32::INFINITY, f32::min);
        level <= QUIET_CEILING_DBFS && level <= floor + QUIET_OVER_FLOOR_DB
    }

    /// A packet came after its slot had been played or concealed: the
    /// cushion is shallower than the line needs. Plans enough slots of
    /// delay to bring the packets queued (counted from the next slot to
    /// the newest) up to the target, now that its transit is counted.
    fn plan_deepening(&mut self) {
        let (Some(next), Some((&newest, _))) = (self.next, self.queue.last_key_value()) else {
            return;
        };
        let wanted = self.target_slots();
        let queued = newest - next + 1;
        self.deepen = usize::try_from(wanted - queued).unwrap_or(0);
    }

    /// The extended sequence number nearest to the highest accepted one.
    fn extend(&self, sequence: u16) -> i64 {
        // Truncating to u16 and back to a signed distance is modular
        // arithmetic, valid for negative extended numbers too.
        let distance = sequence.wrapping_sub(self.highest as u16) as i16;
        self.highest + i64::from(distance)
    }

    /// RFC 3550 A.1: believe a discontinuity only when two sequential
    /// packets agree on it, so one stray packet cannot flush the buffer.
    fn handle_jump(&mut self, now: Instant, packet: RtpPacket) {
        match self.probe.take() {
            Some(probe) if probe.sequence.wrapping_add(1) == packet.sequence => {
                self.restart();
                self.highest = i64::from(probe.sequence);
                let first = self.extend(probe.sequence);
                self.accept(now, first, probe.payload);
                let second = self.extend(packet.sequence);
                self.accept(now, second, packet.payload);
            }
            previous => {
                if previous.is_some() {
                    self.stats.discarded += 1;
                }
                self.probe = Some(packet);
            }
        }
    }

    fn accept(&mut self, now: Instant, sequence: i64, payload: Vec<u8>) {
        if let Some(next) = self.next {
            if sequence < next {
                let behind = next - sequence;
                let was_played = behind <= HISTORY_SLOTS && self.history & (1 << (behind - 1)) != 0;
                if was_played {
                    self.stats.duplicate += 1;
                } else {
                    self.stats.late += 1;
                    if self.playout == Playout::Playing {
                        self.plan_deepening();
                    }
                }
                return;
            }
        }
        if self.queue.contains_key(&sequence) {
            self.stats.duplicate += 1;
            return;
        }
        self.queue.insert(sequence, payload);
        self.highest = self.highest.max(sequence);
        self.playout = match self.playout {
            Playout::Idle => Playout::Buffering { since: now },
            Playout::Underrun { since: None } => Playout::Underrun { since: Some(now) },
            other => other,
        };
        self.enforce_capacity();
    }

    /// Drops the oldest packets (and skips their slots) so that at most
    /// `capacity` slots lie between the next slot and the newest packet.
    fn enforce_capacity(&mut self) {
        let Some((&newest, _)) = self.queue.last_key_value() else {
            return;
        };
        let floor = newest - self.config.capacity as i64 + 1;
        let mut dropped = 0;
        while let Some(oldest) = self.queue.first_entry() {
            if *oldest.key() >= floor {
                break;
            }
            oldest.remove();
            dropped += 1;
        }
        self.stats.overflowed += dropped;
        if let Some(next) = self.next.filter(|&next| next < floor) {
            // Every skipped slot either had a packet (just dropped) or had
            // none, which makes it lost.
            let skipped = (floor - next) as u64;
            self.stats.lost += skipped - dropped;
            self.skip_history(floor - next);
            self.next = Some(floor);
        }
    }

    /// Resumes playout at the earliest queued packet. Slots between where
    /// playout stopped and that packet never arrived.
    fn begin_playout(&mut self) {
        // The hold just served was the current target.
        self.deepen = 0;
        self.surplus_polls = 0;
        if let Some((&first, _)) = self.queue.first_key_value() {
            if let Some(next) = self.next {
                let gap = first - next;
                self.stats.lost += gap as u64;
                self.skip_history(gap);
            }
            self.next = Some(first);
        }
        self.playout = Playout::Playing;
    }

    fn play_slot(&mut self) -> Frame {
        let Some(slot) = self.next else {
            // Nothing was queued to start from; wait for packets.
            self.playout = Playout::Underrun { since: None };
            return self.conceal();
        };
        if let Some(payload) = self.queue.remove(&slot) {
            let law = self.config.law;
            let samples: Vec<i16> = payload.iter().map(|&byte| law.decode(byte)).collect();
            self.next = Some(slot + 1);
            self.history = (self.history << 1) | 1;
            self.stats.played += 1;
            self.concealed_run = 0;
            if self.levels.len() == LEVEL_WINDOW {
                self.levels.pop_front();
            }
            self.levels.push_back(level_dbfs(&samples));
            self.last_audio.clone_from(&samples);
            return Frame::Audio {
                // The low 16 bits of the extended number are the wire's.
                sequence: slot as u16,
                samples,
            };
        }
        if self.queue.is_empty() {
            // Loss or a pause in sending: keep the slot and re-buffer.
            self.playout = Playout::Underrun { since: None };
        } else {
            self.stats.lost += 1;
            self.next = Some(slot + 1);
            self.history <<= 1;
        }
        self.conceal()
    }

    fn conceal(&mut self) -> Frame {
        self.stats.concealed += 1;
        let quarters = FADE_QUARTERS.get(self.concealed_run).copied().unwrap_or(0);
        self.concealed_run = self.concealed_run.saturating_add(1);
        let samples = if self.last_audio.is_empty() {
            vec![0; FRAME_SAMPLES]
        } else {
            // |sample * 3/4| never exceeds |sample|, so the cast is exact.
            self.last_audio
                .iter()
                .map(|&sample| (i32::from(sample) * quarters / 4) as i16)
                .collect()
        };
        Frame::Concealed { samples }
    }

    fn skip_history(&mut self, slots: i64) {
        self.history = if slots >= HISTORY_SLOTS {
            0
        } else {
            self.history << slots
        };
    }

    /// Forgets the current sequence space. Playout that has begun carries
    /// on concealing until the new stream has been buffered.
    fn restart(&mut self) {
        self.stats.resets += 1;
        self.deepen = 0;
        self.surplus_polls = 0;
        self.levels.clear();
        self.transit_origin = None;
        self.transits.clear();
        self.queue.clear();
        self.next = None;
        self.history = 0;
        self.probe = None;
        self.playout = match self.playout {
            Playout::Idle | Playout::Buffering { .. } => Playout::Idle,
            Playout::Playing | Playout::Underrun { .. } => Playout::Underrun { since: None },
        };
    }
}

/// RMS level of a frame in dBFS; an empty or all-zero frame is -inf.
fn level_dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return f32::NEG_INFINITY;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    let rms = (energy / samples.len() as f64).sqrt() / 32_768.0;
    (20.0 * rms.log10()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0xABCD;
    const LAW: Law = Law::MuLaw;

    /// A payload whose decoded level identifies the packet.
    fn payload(sequence: u16) -> Vec<u8> {
        let level = 1_000 + i16::try_from(sequence % 200).expect("small") * 100;
        vec![LAW.encode(level); FRAME_SAMPLES]
    }

    /// A sample at `quarters`/4 of its level, as concealment computes it.
    fn scaled(sample: i16, quarters: i32) -> i16 {
        (i32::from(sample) * quarters / 4) as i16
    }

    fn decoded(sequence: u16) -> Vec<i16> {
        payload(sequence).iter().map(|&b| LAW.decode(b)).collect()
    }

    fn packet(sequence: u16) -> RtpPacket {
        RtpPacket {
            payload_type: payload_type_for(LAW),
            sequence,
            timestamp: u32::from(sequence) * 160,
            ssrc: SSRC,
            marker: false,
            payload: payload(sequence),
        }
    }

    /// Drives a buffer tick by tick, 20 ms apart: the packets listed for a
    /// tick arrive at that instant, then the driver polls. Returns one
    /// entry per poll: the sequence number played, `c` for concealment and
    /// `-` for nothing.
    fn run(
        buffer: &mut JitterBuffer,
        t0: Instant,
        arrivals: &[(u32, RtpPacket)],
        ticks: u32,
    ) -> Vec<String> {
        (0..ticks)
            .map(|tick| {
                let now = t0 + FRAME_DURATION * tick;
                for (_, packet) in arrivals.iter().filter(|(at, _)| *at == tick) {
                    buffer.handle_packet(now, packet.clone());
                }
                match buffer.poll_frame(now) {
                    None => "-".to_string(),
                    Some(Frame::Audio { sequence, samples }) => {
                        assert_eq!(samples, decoded(sequence), "audio of packet {sequence}");
                        sequence.to_string()
                    }
                    Some(Frame::Concealed { .. }) => "c".to_string(),
                }
            })
            .collect()
    }

    /// One packet per tick from `first`, with the given sequence numbers
    /// left out.
    fn steady(first: u16, ticks: u32, missing: &[u16]) -> Vec<(u32, RtpPacket)> {
        (0..ticks)
            .map(|tick| (tick, first.wrapping_add(tick as u16)))
            .filter(|(_, sequence)| !missing.contains(sequence))
            .map(|(tick, sequence)| (tick, packet(sequence)))
            .collect()
    }

    /// The behaviour the tests below pin down, at a fixed 60 ms: the
    /// adaptive target has its own tests.
    fn buffer() -> JitterBuffer {
        JitterBuffer::new(JitterConfig::fixed(LAW, Duration::from_millis(60)))
    }

    fn ladder(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|entry| entry.to_string()).collect()
    }

    /// Packets in sequence from 100, one per tick, except that every tenth
    /// from 105 on comes `late_by` ticks after its time (after its
    /// successors).
    fn spiky(ticks: u32, late_by: u32) -> Vec<(u32, RtpPacket)> {
        let mut arrivals: Vec<(u32, RtpPacket)> = (0..ticks)
            .map(|tick| {
                let delay = if tick % 10 == 5 { late_by } else { 0 };
                (tick + delay, packet(100 + tick as u16))
            })
            .collect();
        arrivals.sort_by_key(|(tick, _)| *tick);
        arrivals
    }

    #[test]
    fn a_clean_line_is_played_one_packet_behind() {
        let mut buffer = JitterBuffer::new(JitterConfig::new(LAW));
        let out = run(&mut buffer, Instant::now(), &steady(100, 20, &[]), 6);
        assert_eq!(out, ladder(&["-", "100", "101", "102", "103", "104"]));
        assert_eq!(buffer.target_delay(), Duration::from_millis(20));
        assert_eq!(buffer.stats().concealed, 0);
    }

    #[test]
    fn an_uneven_line_deepens_the_cushion_once_then_loses_nothing() {
        let mut buffer = JitterBuffer::new(JitterConfig::new(LAW));
        let out = run(&mut buffer, Instant::now(), &spiky(60, 2), 40);
        // 105 came 40 ms late for a 20 ms cushion: concealed as lost; when
        // it came, only 106 was queued, and the 50 ms target asks for
        // three slots: two more were played as concealment.
        assert_eq!(
            &out[..10],
            &ladder(&["-", "100", "101", "102", "103", "104", "c", "c", "c", "106"])
        );
        let expected: Vec<String> = (107..137).map(|s: u16| s.to_string()).collect();
        assert_eq!(&out[10..], &expected[..], "every later spike is absorbed");
        assert_eq!(
            buffer.target_delay(),
            Duration::from_millis(50),
            "40 ms spread + margin"
        );
        let stats = buffer.stats();
        assert_eq!((stats.late, stats.lost, stats.stretched), (1, 1, 2));
    }

    #[test]
    fn a_fixed_delay_does_not_adapt() {
        let config = JitterConfig::fixed(LAW, Duration::from_millis(20));
        let mut buffer = JitterBuffer::new(config);
        run(&mut buffer, Instant::now(), &spiky(60, 2), 50);
        assert_eq!(buffer.target_delay(), Duration::from_millis(20));
        let stats = buffer.stats();
        assert_eq!((stats.late, stats.stretched), (5, 0), "every spike lost");
    }

    #[test]
    fn the_target_never_exceeds_the_most_delay() {
        let mut buffer = JitterBuffer::new(JitterConfig::new(LAW));
        let t0 = Instant::now();
        buffer.handle_packet(t0, packet(100));
        // Sent 20 ms after the first, arrived 1 s after it.
        buffer.handle_packet(t0 + Duration::from_secs(1), packet(101));
        assert_eq!(buffer.target_delay(), Duration::from_millis(100));
    }

    #[test]
    fn a_new_stream_forgets_the_old_ones_jitter() {
        let mut buffer = JitterBuffer::new(JitterConfig::new(LAW));
        let t0 = Instant::now();
        buffer.handle_packet(t0, packet(100));
        buffer.handle_packet(t0 + Duration::from_millis(80), packet(101));
        assert_eq!(buffer.target_delay(), Duration::from_millis(70));
        let mut other = packet(500);
        other.ssrc = SSRC + 1;
        buffer.handle_packet(t0 + Duration::from_millis(100), other);
        assert_eq!(buffer.target_delay(), Duration::from_millis(20));
    }

    #[test]
    fn waits_for_the_target_delay_then_plays_in_order() {
        let mut buffer = buffer();
        let out = run(&mut buffer, Instant::now(), &steady(100, 20, &[]), 10);
        assert_eq!(
            out,
            ladder(&["-", "-", "-", "100", "101", "102", "103", "104", "105", "106"])
        );
        assert_eq!(buffer.buffered(), 3, "the 60 ms cushion");
        let stats = buffer.stats();
        assert_eq!((stats.received, stats.played, stats.lost), (10, 7, 0));
    }

    #[test]
    fn puts_reordered_packets_in_place() {
        let mut arrivals = steady(100, 12, &[101, 105]);
        arrivals.push((2, packet(101))); // after 102, before playout starts
        arrivals.push((7, packet(105))); // after 106 and 107, before its slot
        let mut buffer = buffer();
        let out = run(&mut buffer, Instant::now(), &arrivals, 10);
        assert_eq!(
            out,
            ladder(&["-", "-", "-", "100", "101", "102", "103", "104", "105", "106"])
        );
        assert_eq!(buffer.stats().late, 0);
    }

    #[test]
    fn conceals_a_lost_packet_with_the_previous_frame_attenuated() {
        let mut buffer = buffer();
        let t0 = Instant::now();
        let arrivals = steady(100, 20, &[103]);
        let out = run(&mut buffer, t0, &arrivals[..5], 6);
        assert_eq!(out, ladder(&["-", "-", "-", "100", "101", "102"]));
        // Slot 103, with 104 and 105 queued behind it.
        for (_, packet) in &arrivals[5..7] {
            buffer.handle_packet(t0 + FRAME_DURATION * 6, packet.clone());
        }
        let concealed = buffer.poll_frame(t0 + FRAME_DURATION * 6);
        let expected: Vec<i16> = decoded(102).iter().map(|&s| scaled(s, 3)).collect();
        assert_eq!(concealed, Some(Frame::Concealed { samples: expected }));
        assert!(matches!(
            buffer.poll_frame(t0 + FRAME_DURATION * 7),
            Some(Frame::Audio { sequence: 104, .. })
        ));
        let stats = buffer.stats();
        assert_eq!((stats.lost, stats.concealed), (1, 1));
    }

    #[test]
    fn a_burst_loss_fades_to_silence_and_resumes() {
        let mut buffer = buffer();
        let t0 = Instant::now();
        let arrivals = steady(100, 20, &[103, 104, 105, 106, 107, 108]);
        let mut frames = Vec::new();
        for tick in 0..15 {
            let now = t0 + FRAME_DURATION * tick;
            for (_, packet) in arrivals.iter().filter(|(at, _)| *at == tick) {
                buffer.handle_packet(now, packet.clone());
            }
            frames.push(buffer.poll_frame(now));
        }
        let last = decoded(102)[0];
        let gains: Vec<Option<i16>> = frames[6..11]
            .iter()
            .map(|frame| match frame {
                Some(Frame::Concealed { samples }) => Some(samples[0]),
                _ => None,
            })
            .collect();
        assert_eq!(
            gains,
            [
                Some(scaled(last, 3)),
                Some(scaled(last, 2)),
                Some(scaled(last, 1)),
                Some(0),
                Some(0)
            ]
        );
        // 109 arrived at tick 9 and was held for the target delay.
        assert!(matches!(
            frames[12],
            Some(Frame::Audio { sequence: 109, .. })
        ));
        assert_eq!(buffer.stats().lost, 6);
    }

    #[test]
    fn drops_and_counts_duplicates() {
        let mut arrivals = steady(100, 12, &[]);
        arrivals.push((1, packet(101))); // queued twice
        arrivals.push((5, packet(100))); // again after it was played
        let mut buffer = buffer();
        let out = run(&mut buffer, Instant::now(), &arrivals, 8);
        assert_eq!(
            out,
            ladder(&["-", "-", "-", "100", "101", "102", "103", "104"])
        );
        let stats = buffer.stats();
        assert_eq!((stats.duplicate, stats.late), (2, 0));
    }

    #[test]
    fn drops_and_counts_packets_after_their_slot() {
        let mut arrivals = steady(100, 12, &[104]);
        arrivals.push((9, packet(104))); // its slot was tick 7
        let mut buffer = buffer();
        let out = run(&mut buffer, Instant::now(), &arrivals, 11);
        assert_eq!(
            out,
            ladder(&["-", "-", "-", "100", "101", "102", "103", "c", "105", "106", "107"])
        );
        let stats = buffer.stats();
        assert_eq!((stats.late, stats.lost, stats.duplicate), (1, 1, 0));
    }

    #[test]
    fn plays_across_the_sequence_wrap() {
        let mut arrivals = steady(65_533, 10, &[65_535]);
        arrivals.push((3, packet(65_535))); // after 0, before its slot
        let mut buffer = buffer();
        let out = run(&mut buffer, Instant::now(), &arrivals, 9);
        assert_eq!(
            out,
            ladder(&["-", "-", "-", "65533", "65534", "65535", "0", "1", "2"])
        );
        // A packet from before the wrap, after it was played.
        buffer.handle_packet(Instant::now(), packet(65_534));
        assert_eq!(buffer.stats().duplicate, 1);
    }

    #[test]
    fn an_earlier_packet_during_buffering_starts_playout_even_below_zero() {
        let arrivals = vec![
            (0, packet(0)),
            (1, packet(65_535)),
            (1, packet(1)),
            (2, packet(2)),
            (3, packet(3)),
        ];
        let mut buffer = buffer();
        let out = run(&mut buffer, Instant::now(), &arrivals, 6);
        assert_eq!(out, ladder(&["-", "-", "-", "65535", "0", "1"]));
    }

    #[test]
    fn a_pause_in_sending_resumes_without_loss() {
        // Talkspurt 100..=104, a second of silence, then 105 onwards.
        let mut arrivals = steady(100, 5, &[]);
        arrivals.extend((0..5).map(|i| (55 + i, packet(105 + i as u16))));
        let mut buffer = buffer();
        let out = run(&mut buffer, Instant::now(), &arrivals, 60);
        assert_eq!(out[3..8], ladder(&["100", "101", "102", "103", "104"]));
        assert!(out[8..58].iter().all(|frame| frame == "c"));
        assert_eq!(out[58..], ladder(&["105", "106"]));
        let stats = buffer.stats();
        assert_eq!((stats.lost, stats.late), (0, 0));
    }

    #[test]
    fn restarts_on_a_confirmed_sequence_jump() {
        let mut arrivals = steady(100, 10, &[]);
        arrivals.extend((10..20).map(|tick| (tick, packet(30_000 + (tick - 10) as u16))));
        let mut buffer = buffer();
        let out = run(&mut buffer, Instant::now(), &arrivals, 16);
        assert_eq!(
            out,
            ladder(&[
                "-", "-", "-", "100", "101", "102", "103", "104", "105", "106", "107", "c", "c",
                "c", "30000", "30001"
            ])
        );
        let stats = buffer.stats();
        assert_eq!((stats.resets, stats.discarded), (1, 0));
    }

    #[test]
    fn ignores_a_single_stray_sequence_number() {
        let mut arrivals = steady(100, 12, &[]);
        let mut stray = packet(40_000);
        stray.payload = payload(0);
        arrivals.push((5, stray));
        let mut buffer = buffer();
        let out = run(&mut buffer, Instant::now(), &arrivals, 10);
        assert_eq!(
            out,
            ladder(&["-", "-", "-", "100", "101", "102", "103", "104", "105", "106"])
        );
        let stats = buffer.stats();
        assert_eq!((stats.resets, stats.discarded), (0, 1));
    }

    #[test]
    fn restarts_at_once_on_a_new_ssrc() {
        let mut arrivals = steady(100, 8, &[]);
        arrivals.extend((8..16).map(|tick| {
            let mut packet = packet(5_000 + (tick - 8) as u16);
            packet.ssrc = SSRC + 1;
            (tick, packet)
        }));
        let mut buffer = buffer();
        let out = run(&mut buffer, Instant::now(), &arrivals, 13);
        assert_eq!(
            out,
            ladder(&[
                "-", "-", "-", "100", "101", "102", "103", "104", "c", "c", "c", "5000", "5001"
            ])
        );
        assert_eq!(buffer.stats().resets, 1);
    }

    #[test]
    fn a_burst_beyond_capacity_keeps_the_newest_packets() {
        let mut buffer = buffer();
        let t0 = Instant::now();
        // 104..=124 at once just after 100 was played: capacity 10 keeps
        // 115..=124.
        let mut arrivals = steady(100, 4, &[]);
        arrivals.extend((104..125).map(|sequence| (4, packet(sequence))));
        let out = run(&mut buffer, t0, &arrivals, 7);
        assert_eq!(out, ladder(&["-", "-", "-", "100", "115", "116", "117"]));
        let stats = buffer.stats();
        assert_eq!(
            stats.overflowed, 14,
            "101 to 114 made way for newer packets"
        );
        assert_eq!(stats.lost, 0);
    }

    #[test]
    fn ignores_other_payload_types() {
        let mut buffer = buffer();
        let mut event = packet(100);
        event.payload_type = 101;
        buffer.handle_packet(Instant::now(), event);
        assert_eq!(buffer.stats().received, 0);
        assert_eq!(
            buffer.poll_frame(Instant::now() + Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn survives_arbitrary_sequence_numbers() {
        let mut buffer = buffer();
        let t0 = Instant::now();
        let mut state = 0xDEAD_BEEF_u64;
        for tick in 0..5_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut packet = packet(state as u16);
            packet.ssrc = (state >> 62) as u32;
            packet.payload.truncate((state >> 32) as usize % 200);
            let now = t0 + FRAME_DURATION * tick;
            buffer.handle_packet(now, packet);
            let _ = buffer.poll_frame(now);
            assert!(buffer.buffered() <= 10);
        }
    }

    /// The caller's line for the shrinking tests: packets from 1000, one
    /// per tick, speech (about -20 dBFS) where `speech(tick)` says so and
    /// the line's hiss (about -60 dBFS) elsewhere; the packet sent at tick
    /// `spike_at` arrives `late_by` ticks late.
    fn caller_line(
        ticks: u32,
        speech: impl Fn(u32) -> bool,
        spike_at: u32,
        late_by: u32,
    ) -> Vec<(u32, RtpPacket)> {
        let mut arrivals: Vec<(u32, RtpPacket)> = (0..ticks)
            .map(|tick| {
                let level: i16 = if speech(tick) { 3_000 } else { 30 };
                let samples: Vec<u8> = (0..FRAME_SAMPLES)
                    .map(|i| LAW.encode(if i % 2 == 0 { level } else { -level }))
                    .collect();
                let packet = RtpPacket {
                    payload: samples,
                    ..packet(1_000 + tick as u16)
                };
                let delay = if tick == spike_at { late_by } else { 0 };
                (tick + delay, packet)
            })
            .collect();
        arrivals.sort_by_key(|(tick, _)| *tick);
        arrivals
    }

    /// What [`play`] saw.
    struct Played {
        /// Sequence numbers played, in order.
        sequences: Vec<u16>,
        /// Per tick, the slots queued behind the one played.
        depth: Vec<usize>,
        /// The ticks at which a frame was skipped to shrink the delay.
        shrinks: Vec<u32>,
    }

    /// Plays `arrivals` tick by tick.
    fn play(buffer: &mut JitterBuffer, arrivals: &[(u32, RtpPacket)], ticks: u32) -> Played {
        let t0 = Instant::now();
        let (mut sequences, mut depth, mut shrinks) = (Vec::new(), Vec::new(), Vec::new());
        for tick in 0..ticks {
            let now = t0 + FRAME_DURATION * tick;
            for (_, packet) in arrivals.iter().filter(|(at, _)| *at == tick) {
                buffer.handle_packet(now, packet.clone());
            }
            let shrunk = buffer.stats().shrunk;
            if let Some(Frame::Audio { sequence, .. }) = buffer.poll_frame(now) {
                sequences.push(sequence);
            }
            if buffer.stats().shrunk > shrunk {
                shrinks.push(tick);
            }
            depth.push(buffer.buffered());
        }
        Played {
            sequences,
            depth,
            shrinks,
        }
    }

    #[test]
    fn a_calmed_line_gives_its_cushion_back_in_the_callers_silence() {
        // Speech for the first 2 s and from 8 s on, the line's hiss in
        // between; one packet 80 ms late at 0.5 s.
        let speech = |tick: u32| !(100..400).contains(&tick);
        let arrivals = caller_line(500, speech, 25, 4);
        let mut buffer = JitterBuffer::new(JitterConfig::new(LAW));
        let Played {
            sequences: played,
            depth,
            shrinks,
        } = play(&mut buffer, &arrivals, 500);
        let stats = buffer.stats();
        assert_eq!((stats.late, stats.lost), (1, 1), "only the spike is lost");
        assert!(
            stats.stretched >= 3,
            "the spike deepened the cushion: {stats:?}"
        );
        // The spike leaves the transit window after 5 s (tick 275); the
        // surplus goes within the silence that follows.
        assert_eq!(buffer.target_delay(), Duration::from_millis(20));
        assert_eq!(
            stats.shrunk, stats.stretched,
            "all of the added delay given back"
        );
        assert_eq!(
            depth[..26].iter().max(),
            Some(&1),
            "a clean start plays one behind"
        );
        assert!(
            depth[200..270].iter().all(|&d| d > 1),
            "the cushion holds while the spike is remembered"
        );
        assert!(
            depth[400..].iter().all(|&d| d <= 1),
            "back to one behind: {:?}",
            &depth[390..]
        );
        println!(
            "an 80 ms spike at 0.5 s deepened the cushion by {} ms; {} ms given back in \
             the silence from 2 s, at {:?} s",
            stats.stretched * 20,
            stats.shrunk * 20,
            shrinks.iter().map(|t| *t as f32 * 0.02).collect::<Vec<_>>()
        );
        assert!(
            shrinks.windows(2).all(|w| w[1] - w[0] >= 25),
            "at most one frame skipped per 500 ms: {shrinks:?}"
        );
        // Every skipped packet was the line's hiss, never speech.
        let skipped: Vec<u16> = (1_000..1_500u16)
            .filter(|s| *s != 1_025 && !played.contains(s))
            .collect();
        // Not played: the late one, the skipped ones and those still queued.
        let queued = buffer.buffered() as u64;
        assert_eq!(skipped.len() as u64, stats.shrunk + queued, "{skipped:?}");
        for s in skipped.iter().filter(|&&s| s < 1_500 - queued as u16) {
            assert!(!speech(u32::from(s - 1_000)), "speech packet {s} skipped");
        }
    }

    #[test]
    fn speech_is_never_skipped_to_shrink_the_delay() {
        let arrivals = caller_line(500, |_| true, 25, 4);
        let mut buffer = JitterBuffer::new(JitterConfig::new(LAW));
        let played = play(&mut buffer, &arrivals, 500).sequences;
        let stats = buffer.stats();
        assert_eq!(stats.shrunk, 0);
        assert_eq!(buffer.target_delay(), Duration::from_millis(20));
        assert_eq!(
            played.len(),
            500 - 1 - buffer.buffered(),
            "every packet but the late one"
        );
    }

    #[test]
    fn a_line_that_stays_uneven_keeps_its_cushion() {
        // Silence throughout, each packet 0 to 60 ms late at random: the
        // queue runs deeper than the target whenever a few come early
        // together, but that never lasts, so nothing is skipped, and
        // nothing is lost after the cushion has grown to the spread.
        let mut state = 0x9E37_79B9_u32;
        let mut arrivals: Vec<(u32, RtpPacket)> = caller_line(600, |_| false, u32::MAX, 0)
            .into_iter()
            .map(|(tick, packet)| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (tick + state % 4, packet)
            })
            .collect();
        arrivals.sort_by_key(|(tick, _)| *tick);
        let mut buffer = JitterBuffer::new(JitterConfig::new(LAW));
        play(&mut buffer, &arrivals, 600);
        let stats = buffer.stats();
        assert_eq!(stats.shrunk, 0, "{stats:?}");
        assert_eq!((stats.late, stats.lost), (1, 1), "{stats:?}");
    }
}
