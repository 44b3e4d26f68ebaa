//! One RTP media session per call leg: the tokio driver that joins the
//! media cores (RTP, jitter buffer, DTMF, RTCP) to a pair of UDP sockets
//! and the clock.
//!
//! # Contract
//!
//! [`MediaSession::start`] binds the RTP socket on an even port and the RTCP
//! socket on the next one (RFC 3550 11), spawns the driver task and returns
//! a handle plus the receiver of [`MediaEvent`]s. From then on:
//!
//! - **Inbound.** Every 20 ms the jitter buffer is polled and its frame,
//!   real or concealed, goes to the application as [`MediaEvent::Audio`]:
//!   160 samples at 8 kHz, a continuous clock once the first packet has
//!   been buffered. RFC 4733 digits arrive as [`MediaEvent::Dtmf`], once
//!   per key press.
//! - **Outbound.** Exactly one packet every 20 ms on a deadline schedule
//!   (`deadline += 20 ms`, never `sleep(20 ms)` after the work), so the
//!   stream does not drift however long the work takes. The packet carries
//!   the next 20 ms of audio queued with [`MediaSession::play`], or comfort
//!   silence when nothing is queued (see below). While a DTMF digit plays
//!   its telephone-events replace the audio and the RTP clock moves on, as
//!   [`crate::media::dtmf`] prescribes.
//! - **RTCP.** Compound reports leave when [`RtcpSession::poll_timeout`]
//!   says, to the peer's RTCP address; received reports are fed back in.
//! - **Shutdown.** When the [`CancellationToken`] fires, or the
//!   [`MediaSession`] handle is dropped or [closed](MediaSession::close),
//!   the task ends and both sockets close. Nothing else ends it: malformed
//!   datagrams and transient socket errors are counted and ignored.
//!
//! # Symmetric RTP (RFC 4961)
//!
//! We send to the address of the SDP (`c=` and `m=`) until the peer's RTP
//! arrives, then *latch*: send to the address it actually comes from,
//! which is what gets through a NAT in front of the peer. Only packets of
//! the call's payload types (the G.711 law and telephone-event) count, so
//! stray datagrams cannot move the stream. The rule for the first source:
//!
//! - a packet from the SDP's IP address (any port) latches at once: the
//!   peer itself, perhaps behind a port-rewriting NAT;
//! - a packet from any other IP latches only once that address has sent
//!   two packets in sequence (same SSRC, consecutive sequence numbers),
//!   RFC 3550 A.1's probation for new sources. One sprayed packet, as in
//!   "RTP bleed" scans, cannot capture the stream; the peer's first packet
//!   from behind a NAT is the one it costs.
//!
//! Once latched, RTP from every other address is ignored and counted
//! ([`MediaStats::foreign`]); the first is logged. [`MediaSession::set_remote`]
//! with a different address (a re-INVITE moved the media) forgets the
//! latch and the rule starts over; the same address changes nothing, so a
//! re-INVITE for hold keeps the latch. RTCP is taken only from the IP that
//! RTP goes to, and our reports go to the source of the peer's last valid
//! RTCP packet, or to RTP port + 1 until there has been one. Symmetric RTP
//! is no defence against an attacker on the path; that takes SRTP.
//!
//! # Comfort silence, not RFC 3389 comfort noise
//!
//! When nothing is queued we keep sending G.711 frames of encoded zero
//! samples instead of stopping (silence suppression) or sending RFC 3389
//! CN packets. CN needs payload type 13 negotiated, and many gateways
//! either do not offer it or play it as a burst of noise; a continuous
//! stream keeps NAT bindings and the peer's latch fresh, keeps the peer's
//! jitter buffer out of underrun so the start of our next prompt is not
//! clipped while it re-buffers, and keeps us a sender for RTCP. The cost is
//! 64 kbit/s during silence, which the call budgets anyway.
//!
//! # Cores and driver
//!
//! All decisions live in `MediaCore` (private), a core without I/O in
//! the style of the other media modules: `handle_*` with `now`,
//! `poll_transmit`, `poll_event`, `poll_timeout`. It is tested below over
//! an in-memory network in virtual time. The driver only moves datagrams,
//! commands, events and time.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::audio::{SampleRate, Samples};
use crate::media::dtmf::{
    event_for_digit, DtmfError, DtmfReceiver, DtmfSender, DEFAULT_PAYLOAD_TYPE, DEFAULT_VOLUME,
};
use crate::media::g711::Law;
use crate::media::jitter::{JitterBuffer, JitterConfig, JitterStats};
use crate::media::rtcp::{
    ReceptionStatistics, RemoteReport, RtcpConfig, RtcpError, RtcpSession, REPORT_INTERVAL,
};
use crate::media::rtp::{
    payload_type_for, RtpPacket, RtpSender, CLOCK_RATE, FRAME_DURATION, FRAME_SAMPLES,
};

/// Where RTP ports are taken from unless the configuration says otherwise;
/// the range most PBXs and firewalls are set up for.
pub const DEFAULT_PORT_RANGE: RangeInclusive<u16> = 20_000..=30_000;

/// How long each digit of [`MediaSession::send_dtmf`] is held. With the
/// three end packets (RFC 4733 2.5.1.4) a digit occupies 200 ms of the
/// stream, so successive digits are 100 ms apart: a pause that gateways
/// turning events back into tones reproduce as two presses.
pub const DTMF_DURATION: Duration = Duration::from_millis(100);

/// Events the application may leave unread before audio frames are
/// dropped: five seconds of audio.
pub const EVENT_CAPACITY: usize = 250;

/// How many overdue slots are still run, back to back, when the task woke
/// late. Beyond this the RTP clock jumps ahead instead (a new talkspurt):
/// a burst of a second's worth of packets would only overflow the peer's
/// jitter buffer.
const MAX_CATCH_UP_FRAMES: u32 = 5;

/// Control events (digits, playback finished) kept while the application
/// is not reading; audio is dropped first, these only past this bound.
const MAX_PENDING_CONTROL_EVENTS: usize = 64;

/// Larger than any G.711 or RTCP datagram we could use; longer datagrams
/// are truncated by the socket and then fail to parse or are ignored.
const RECEIVE_BUFFER: usize = 2_048;

/// The silence we send: every sample zero, encoded at send time.
const SILENT_FRAME: [i16; FRAME_SAMPLES] = [0; FRAME_SAMPLES];

/// Faults in starting or using a media session.
#[derive(Debug, Error)]
pub enum MediaError {
    #[error("port range {first}-{last} holds no even RTP port with the RTCP port after it")]
    EmptyPortRange { first: u16, last: u16 },
    #[error("every even port pair in {first}-{last} on {ip} is in use; widen the range")]
    NoFreePort { ip: IpAddr, first: u16, last: u16 },
    #[error("cannot bind {addr} (is the address configured on this host?): {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the address of a bound socket: {0}")]
    LocalAddr(#[source] io::Error),
    #[error("an RTCP report interval of zero would send reports without pause")]
    ZeroRtcpInterval,
    #[error("telephone-event payload type {0} is not a dynamic type distinct from the audio's")]
    DtmfPayloadType(u8),
    #[error("cannot set up RTCP: {0}")]
    Rtcp(#[from] RtcpError),
    #[error("audio at {0} cannot be sent; resample it to 8 kHz first")]
    SampleRate(SampleRate),
    #[error("telephone-event was not negotiated for this call; digits cannot be sent")]
    DtmfNotNegotiated,
    #[error(transparent)]
    Dtmf(#[from] DtmfError),
    #[error("the media session has ended")]
    Closed,
    #[error("the media task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// What the media layer needs for one call leg: where to listen, where
/// the SDP says the peer is, the negotiated codec and the randomness RFC
/// 3550 asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaConfig {
    /// The address to bind and to announce in our SDP.
    pub local_ip: IpAddr,
    /// Ports to take the RTP port from: an even one whose successor, for
    /// RTCP, is free and in the range too. A fixed port is `p..=p + 1`.
    pub port_range: RangeInclusive<u16>,
    /// The peer's `c=` address and `m=` port. An unspecified address
    /// (0.0.0.0) or port 0 means send nothing until the peer's RTP arrives.
    pub remote: SocketAddr,
    /// The negotiated codec, on its static payload type.
    pub law: Law,
    /// The payload type of `telephone-event/8000`, if negotiated.
    pub dtmf_payload_type: Option<u8>,
    /// Our SSRC (RFC 3550 8.1); should be random.
    pub ssrc: u32,
    /// Draws the initial sequence number and timestamp (RFC 3550 5.1), the
    /// RTCP report schedule (6.3.1) and where port search starts, so the
    /// cores stay deterministic. Should be random.
    pub seed: u64,
    /// The SDES CNAME of our reports (RFC 3550 6.5.1), at most 255 bytes.
    pub cname: String,
    /// The least and the most the jitter buffer holds a packet before
    /// playout; it adapts between them to the line's jitter.
    pub jitter_delay: (Duration, Duration),
    /// The mean interval between RTCP reports; RFC 3550 6.2 recommends 5 s.
    pub rtcp_interval: Duration,
}

impl MediaConfig {
    /// A configuration with the defaults: ports from
    /// [`DEFAULT_PORT_RANGE`], telephone-event on payload type 101, a jitter
    /// buffer of 20 to 100 ms as the line needs, 5 s reports, and a fresh
    /// random SSRC, seed and CNAME (RFC 7022: random CNAMEs do not identify
    /// the host).
    pub fn new(local_ip: IpAddr, remote: SocketAddr, law: Law) -> Self {
        let ssrc = random_u64() as u32;
        let seed = random_u64();
        MediaConfig {
            local_ip,
            port_range: DEFAULT_PORT_RANGE,
            remote,
            law,
            dtmf_payload_type: Some(DEFAULT_PAYLOAD_TYPE),
            ssrc,
            seed,
            cname: format!("{:016x}@switchboard", random_u64()),
            jitter_delay: {
                let defaults = JitterConfig::new(law);
                (defaults.min_delay, defaults.max_delay)
            },
            rtcp_interval: REPORT_INTERVAL,
        }
    }
}

/// 8 kHz audio ready to send, cheap to clone and share between calls.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    samples: Arc<[i16]>,
}

impl Clip {
    /// Converts audio at the telephone rate; other rates are refused.
    pub fn new(samples: &Samples) -> Result<Clip, MediaError> {
        if samples.rate != SampleRate::TELEPHONE {
            return Err(MediaError::SampleRate(samples.rate));
        }
        Ok(Clip {
            samples: samples.to_i16().into(),
        })
    }

    /// The audio, 16-bit at 8 kHz.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// How long it plays.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(SampleRate::TELEPHONE.hz()))
    }
}

/// What the session tells the application, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaEvent {
    /// 20 ms of the peer's audio at 8 kHz: a packet's, or concealment for
    /// a lost packet or a pause in the peer's stream. Dropped, not queued,
    /// when the application falls [`EVENT_CAPACITY`] events behind.
    Audio(Samples),
    /// A key the peer pressed, reported once per press.
    Dtmf(char),
    /// Everything given to [`MediaSession::play`] has been sent.
    PlaybackFinished,
    /// The peer's RTP came from this address, which our RTP now goes to.
    Latched(SocketAddr),
}

/// Counters of one session, cumulative since it started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaStats {
    /// RTP packets sent: audio, comfort silence and telephone-events.
    pub packets_sent: u64,
    /// RTP packets taken from the peer (after the latch check).
    pub packets_received: u64,
    /// Compound RTCP reports sent.
    pub rtcp_sent: u64,
    /// Valid RTCP datagrams taken from the peer.
    pub rtcp_received: u64,
    /// Datagrams that were neither valid RTP on the RTP port nor valid
    /// RTCP on the RTCP port.
    pub malformed: u64,
    /// Valid RTP of a payload type the call did not negotiate.
    pub unexpected_payload_type: u64,
    /// RTP and RTCP from addresses the latching rule does not accept.
    pub foreign: u64,
    /// Frames the RTP clock skipped because the task woke too late.
    pub frames_skipped: u64,
    /// Events the application did not read in time.
    pub events_dropped: u64,
    /// Datagrams the socket would not take.
    pub send_errors: u64,
    /// Failed reads from the sockets.
    pub receive_errors: u64,
    /// Where our RTP goes once latched.
    pub latched: Option<SocketAddr>,
    /// Playout: lost, late, duplicate and concealed frames.
    pub jitter_buffer: JitterStats,
    /// The peer's stream as RTCP counts it (RFC 3550 A.3, A.8), once valid.
    pub reception: Option<ReceptionStatistics>,
    /// The peer's last report on our stream, with the round-trip time.
    pub remote_report: Option<RemoteReport>,
}

impl MediaStats {
    /// Interarrival jitter of the peer's stream (RFC 3550 6.4.1).
    pub fn jitter(&self) -> Option<Duration> {
        self.reception.map(|reception| {
            Duration::from_secs_f64(f64::from(reception.jitter) / f64::from(CLOCK_RATE))
        })
    }
}

/// Requests from the handle to the task; answered through the oneshot
/// where the caller waits for a result.
#[derive(Debug)]
enum Command {
    Play(Arc<[i16]>),
    StopPlayback(oneshot::Sender<Duration>),
    SendDtmf(Vec<char>),
    SetRemote(SocketAddr),
    SetHold(bool),
    Stats(oneshot::Sender<MediaStats>),
}

/// The handle of one running media session. Dropping it ends the session,
/// as does the cancellation token given to [`start`](Self::start).
#[derive(Debug)]
pub struct MediaSession {
    /// Bound RTP address, for the SDP answer's `c=` and `m=` lines.
    local_addr: SocketAddr,
    rtcp_addr: SocketAddr,
    /// Checked here so that the caller gets the error, not a log line.
    dtmf_negotiated: bool,
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<MediaStats>,
}

impl MediaSession {
    /// Binds the sockets and starts the session's task on the current
    /// tokio runtime. The first packet leaves at once, towards
    /// `config.remote`.
    pub async fn start(
        config: MediaConfig,
        cancel: CancellationToken,
    ) -> Result<(MediaSession, mpsc::Receiver<MediaEvent>), MediaError> {
        let core = MediaCore::new(now(), SystemTime::now(), &config)?;
        let port_search_start = SeedValues::expand(config.seed).port_search_start;
        let (rtp_socket, rtcp_socket) =
            bind_pair(config.local_ip, &config.port_range, port_search_start).await?;
        let local_addr = rtp_socket.local_addr().map_err(MediaError::LocalAddr)?;
        let rtcp_addr = rtcp_socket.local_addr().map_err(MediaError::LocalAddr)?;
        info!(%local_addr, remote = %config.remote, ssrc = config.ssrc, "media session started");

        let (command_sender, commands) = mpsc::unbounded_channel();
        let (event_sender, events) = mpsc::channel(EVENT_CAPACITY);
        let driver = Driver {
            core,
            rtp_socket,
            rtcp_socket,
            commands,
            events: EventForwarder::new(event_sender),
            send_errors: 0,
            receive_errors: 0,
        };
        let task = tokio::spawn(driver.run(cancel));
        Ok((
            MediaSession {
                local_addr,
                rtcp_addr,
                dtmf_negotiated: config.dtmf_payload_type.is_some(),
                commands: command_sender,
                task,
            },
            events,
        ))
    }

    /// The bound RTP address, for the SDP answer.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound RTCP address: the RTP port + 1.
    pub fn rtcp_addr(&self) -> SocketAddr {
        self.rtcp_addr
    }

    /// Queues audio to send after whatever is queued already. It is cut
    /// into 20 ms frames, the last padded with silence;
    /// [`MediaEvent::PlaybackFinished`] follows once the queue has drained.
    pub fn play(&self, samples: Samples) -> Result<(), MediaError> {
        if samples.rate != SampleRate::TELEPHONE {
            return Err(MediaError::SampleRate(samples.rate));
        }
        self.send(Command::Play(samples.to_i16().into()))
    }

    /// Queues a clip of 8 kHz audio shared between calls (a greeting, a
    /// prompt): it is not copied per call, which keeps a held call's memory
    /// independent of the recording's length. Otherwise as [`Self::play`].
    pub fn play_clip(&self, clip: &Clip) -> Result<(), MediaError> {
        self.send(Command::Play(clip.samples.clone()))
    }

    /// Barge-in: drops all queued audio; comfort silence follows at the
    /// next frame. Returns how much audio was dropped. No
    /// [`MediaEvent::PlaybackFinished`] follows for the dropped audio.
    ///
    /// Cancel safety: the request goes out on the first poll; from then on
    /// the queue is dropped even if this future is dropped unanswered.
    pub async fn stop_playback(&self) -> Result<Duration, MediaError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::StopPlayback(reply))?;
        answer.await.map_err(|_| MediaError::Closed)
    }

    /// Queues digits (`0`-`9`, `*`, `#`, `A`-`D`) to send as RFC 4733
    /// events, one at a time for [`DTMF_DURATION`] each. Queued audio waits
    /// until the last digit is done. Nothing is queued if any character is
    /// not a digit.
    pub fn send_dtmf(&self, digits: &str) -> Result<(), MediaError> {
        if !self.dtmf_negotiated {
            return Err(MediaError::DtmfNotNegotiated);
        }
        if let Some(bad) = digits.chars().find(|&c| event_for_digit(c).is_none()) {
            return Err(DtmfError::NotADigit(bad).into());
        }
        self.send(Command::SendDtmf(digits.chars().collect()))
    }

    /// The peer's media address changed (a re-INVITE): send there and
    /// latch again. The same address as before keeps the current latch.
    pub fn set_remote(&self, remote: SocketAddr) -> Result<(), MediaError> {
        self.send(Command::SetRemote(remote))
    }

    /// On hold no RTP is sent: queued audio and digits wait (a digit
    /// already begun completes, so the far end never sees a key stuck
    /// down). Reception and RTCP carry on.
    pub fn set_hold(&self, hold: bool) -> Result<(), MediaError> {
        self.send(Command::SetHold(hold))
    }

    /// The session's counters now.
    pub async fn stats(&self) -> Result<MediaStats, MediaError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Stats(reply))?;
        answer.await.map_err(|_| MediaError::Closed)
    }

    /// True once the task has ended: the token was cancelled.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Ends the session if the token has not already, waits until the task
    /// has closed both sockets and returns the final counters.
    pub async fn close(self) -> Result<MediaStats, MediaError> {
        let MediaSession { commands, task, .. } = self;
        drop(commands);
        task.await.map_err(MediaError::Task)
    }

    fn send(&self, command: Command) -> Result<(), MediaError> {
        self.commands.send(command).map_err(|_| MediaError::Closed)
    }
}

/// The task: owns the sockets and the core.
struct Driver {
    core: MediaCore,
    rtp_socket: UdpSocket,
    rtcp_socket: UdpSocket,
    commands: mpsc::UnboundedReceiver<Command>,
    events: EventForwarder,
    send_errors: u64,
    receive_errors: u64,
}

impl Driver {
    async fn run(mut self, cancel: CancellationToken) -> MediaStats {
        let mut rtp_buffer = vec![0u8; RECEIVE_BUFFER];
        let mut rtcp_buffer = vec![0u8; RECEIVE_BUFFER];
        loop {
            let wake = tokio::time::Instant::from_std(self.core.poll_timeout());
            // Every branch is cancel safe: `recv_from` and `recv` lose
            // nothing when another branch wins.
            tokio::select! {
                () = cancel.cancelled() => break,
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                received = self.rtp_socket.recv_from(&mut rtp_buffer) => match received {
                    Ok((len, from)) => self.core.handle_rtp_datagram(now(), from, &rtp_buffer[..len]),
                    Err(error) => self.note_receive_error("RTP", &error),
                },
                received = self.rtcp_socket.recv_from(&mut rtcp_buffer) => match received {
                    Ok((len, from)) => self.core.handle_rtcp_datagram(now(), from, &rtcp_buffer[..len]),
                    Err(error) => self.note_receive_error("RTCP", &error),
                },
                () = tokio::time::sleep_until(wake) => {}
            }
            self.core.handle_timeout(now());
            self.transmit();
            while let Some(event) = self.core.poll_event() {
                self.events.forward(event);
            }
            self.events.flush();
        }
        debug!(local_addr = ?self.rtp_socket.local_addr().ok(), "media session ended");
        self.stats()
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Play(samples) => self.core.handle_play_clip(samples),
            Command::StopPlayback(reply) => {
                // The caller may have given up waiting; nothing to do then.
                let _ = reply.send(self.core.handle_stop_playback());
            }
            Command::SendDtmf(digits) => self.core.handle_dtmf(&digits),
            Command::SetRemote(remote) => self.core.handle_set_remote(remote),
            Command::SetHold(hold) => self.core.handle_set_hold(hold),
            Command::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
        }
    }

    /// Sends without waiting: a socket that cannot take a datagram now
    /// loses it, rather than delaying the next frame.
    fn transmit(&mut self) {
        while let Some(transmit) = self.core.poll_transmit() {
            let socket = match transmit.channel {
                Channel::Rtp => &self.rtp_socket,
                Channel::Rtcp => &self.rtcp_socket,
            };
            if let Err(error) = socket.try_send_to(&transmit.payload, transmit.destination) {
                if self.send_errors == 0 {
                    warn!(destination = %transmit.destination, %error, "cannot send media");
                }
                self.send_errors += 1;
            }
        }
    }

    fn note_receive_error(&mut self, socket: &str, error: &io::Error) {
        // On some systems an ICMP port-unreachable for an earlier send
        // surfaces here; the socket itself is fine.
        if self.receive_errors == 0 {
            warn!(socket, %error, "error reading a media socket");
        } else {
            debug!(socket, %error, "error reading a media socket");
        }
        self.receive_errors += 1;
    }

    fn stats(&self) -> MediaStats {
        MediaStats {
            events_dropped: self.events.dropped,
            send_errors: self.send_errors,
            receive_errors: self.receive_errors,
            ..self.core.stats()
        }
    }
}

/// Passes events to the application without ever waiting for it, so the
/// 20 ms schedule holds whatever the application does. Audio is dropped
/// when the channel is full (a fresh frame is worth more than a stale
/// one); digits and playback notices wait in a small queue.
struct EventForwarder {
    sender: mpsc::Sender<MediaEvent>,
    pending: VecDeque<MediaEvent>,
    dropped: u64,
}

impl EventForwarder {
    fn new(sender: mpsc::Sender<MediaEvent>) -> Self {
        EventForwarder {
            sender,
            pending: VecDeque::new(),
            dropped: 0,
        }
    }

    fn forward(&mut self, event: MediaEvent) {
        if !matches!(event, MediaEvent::Audio(_)) {
            if self.pending.len() == MAX_PENDING_CONTROL_EVENTS {
                self.pending.pop_front();
                self.note_dropped();
            }
            self.pending.push_back(event);
            self.flush();
            return;
        }
        if !self.pending.is_empty() {
            // The channel was full a moment ago and control events go first.
            self.note_dropped();
            return;
        }
        match self.sender.try_send(event) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => self.note_dropped(),
        }
    }

    fn flush(&mut self) {
        while let Some(event) = self.pending.pop_front() {
            match self.sender.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    self.pending.push_front(event);
                    return;
                }
                Err(TrySendError::Closed(_)) => {
                    // Nobody listens any more.
                    self.pending.clear();
                    return;
                }
            }
        }
    }

    fn note_dropped(&mut self) {
        if self.dropped == 0 {
            warn!("the application is not reading media events; dropping audio");
        }
        self.dropped += 1;
    }
}

/// The tokio clock as the cores see it; follows `tokio::time::pause`.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Binds RTP on an even port and RTCP on the next (RFC 3550 11), trying
/// the pairs of the range in turn from a random one, so sessions started
/// together do not race for the same port.
async fn bind_pair(
    ip: IpAddr,
    range: &RangeInclusive<u16>,
    random: u64,
) -> Result<(UdpSocket, UdpSocket), MediaError> {
    let (first, last) = (*range.start(), *range.end());
    // Port 0 would ask the system for any port, odd ones included.
    let first_even = u32::from(first.max(1)).next_multiple_of(2);
    let pairs = if u32::from(last) > first_even {
        (u32::from(last) - first_even - 1) / 2 + 1
    } else {
        0
    };
    if pairs == 0 {
        return Err(MediaError::EmptyPortRange { first, last });
    }
    let start = (random % u64::from(pairs)) as u32;
    for index in 0..pairs {
        let pair = (start + index) % pairs;
        // first_even + 2 * pair + 1 <= last, so both fit a u16.
        let port = (first_even + 2 * pair) as u16;
        let Some(rtp) = bind_port(SocketAddr::new(ip, port)).await? else {
            continue;
        };
        let Some(rtcp) = bind_port(SocketAddr::new(ip, port + 1)).await? else {
            continue;
        };
        return Ok((rtp, rtcp));
    }
    Err(MediaError::NoFreePort { ip, first, last })
}

/// `None` if the port is taken; any other failure (an address that is not
/// ours, a privileged port) would fail for every port, so it ends the
/// search.
async fn bind_port(addr: SocketAddr) -> Result<Option<UdpSocket>, MediaError> {
    match UdpSocket::bind(addr).await {
        Ok(socket) => Ok(Some(socket)),
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => Ok(None),
        Err(source) => Err(MediaError::Bind { addr, source }),
    }
}

/// Randomness without a dependency: std's hash keys are drawn from the
/// operating system once per thread and stepped for every `RandomState`.
/// Good enough for SSRCs and initial sequence numbers, not for keys.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(since_epoch.as_nanos());
    hasher.finish()
}

/// The random values a session needs, drawn from [`MediaConfig::seed`].
#[derive(Clone, Copy, Debug)]
struct SeedValues {
    initial_sequence: u16,
    initial_timestamp: u32,
    rtcp_seed: u64,
    port_search_start: u64,
}

impl SeedValues {
    fn expand(seed: u64) -> Self {
        let mut state = seed;
        SeedValues {
            initial_sequence: splitmix64(&mut state) as u16,
            initial_timestamp: splitmix64(&mut state) as u32,
            rtcp_seed: splitmix64(&mut state),
            port_search_start: splitmix64(&mut state),
        }
    }
}

/// SplitMix64, to expand one seed into several independent values.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Which socket a datagram leaves from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    Rtp,
    Rtcp,
}

/// A datagram for the driver to send.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Transmit {
    channel: Channel,
    destination: SocketAddr,
    payload: Vec<u8>,
}

/// What [`Latch::handle_rtp`] makes of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// From the source we latched onto.
    Accept,
    /// The first packet of the source we now latch onto.
    Latched,
    /// From an address on probation; not used yet.
    Probation,
    /// From another source than the latched one.
    Foreign,
}

/// A source from another IP than the SDP's, waiting for its second
/// packet in sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Candidate {
    addr: SocketAddr,
    ssrc: u32,
    sequence: u16,
}

/// Symmetric RTP: where our RTP and RTCP go and whose we take. See the
/// module documentation for the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Latch {
    /// The address from the SDP.
    signalled: SocketAddr,
    latched: Option<SocketAddr>,
    candidate: Option<Candidate>,
    /// Source of the peer's last valid RTCP, where our reports go.
    rtcp_source: Option<SocketAddr>,
}

impl Latch {
    fn new(signalled: SocketAddr) -> Self {
        Latch {
            signalled,
            latched: None,
            candidate: None,
            rtcp_source: None,
        }
    }

    /// Judges a valid RTP packet of one of the call's payload types.
    fn handle_rtp(&mut self, from: SocketAddr, packet: &RtpPacket) -> Verdict {
        if let Some(latched) = self.latched {
            return if from == latched {
                Verdict::Accept
            } else {
                Verdict::Foreign
            };
        }
        let sequential = self.candidate.is_some_and(|candidate| {
            candidate.addr == from
                && candidate.ssrc == packet.ssrc
                && candidate.sequence.wrapping_add(1) == packet.sequence
        });
        if from.ip() == self.signalled.ip() || sequential {
            self.latched = Some(from);
            self.candidate = None;
            if self.rtcp_source.is_some_and(|rtcp| rtcp.ip() != from.ip()) {
                self.rtcp_source = None;
            }
            return Verdict::Latched;
        }
        self.candidate = Some(Candidate {
            addr: from,
            ssrc: packet.ssrc,
            sequence: packet.sequence,
        });
        Verdict::Probation
    }

    /// A new SDP address; returns whether it differs from the old one,
    /// in which case everything learned is forgotten.
    fn handle_set_remote(&mut self, remote: SocketAddr) -> bool {
        if remote == self.signalled {
            return false;
        }
        *self = Latch::new(remote);
        true
    }

    /// Where RTP goes; `None` while there is nowhere to send (an
    /// unspecified SDP address and nothing latched).
    fn rtp_destination(&self) -> Option<SocketAddr> {
        let destination = self.latched.unwrap_or(self.signalled);
        let sendable = !destination.ip().is_unspecified() && destination.port() != 0;
        sendable.then_some(destination)
    }

    /// RTCP is taken from the host our RTP goes to, from any port.
    fn accepts_rtcp_from(&self, from: SocketAddr) -> bool {
        self.rtp_destination()
            .is_some_and(|destination| destination.ip() == from.ip())
    }

    fn handle_rtcp_source(&mut self, from: SocketAddr) {
        self.rtcp_source = Some(from);
    }

    /// Where RTCP goes: where the peer's comes from, else RTP port + 1
    /// (RFC 3550 11).
    fn rtcp_destination(&self) -> Option<SocketAddr> {
        if let Some(source) = self.rtcp_source {
            return Some(source);
        }
        let rtp = self.rtp_destination()?;
        Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?))
    }
}

/// What one 20 ms frame slot produced on the sending side.
#[derive(Debug, Default)]
struct FrameOutput {
    packet: Option<RtpPacket>,
    /// The last queued frame has just been sent.
    playback_finished: bool,
}

/// The sending side: the playback queue, the digit queue and what each
/// 20 ms slot sends.
#[derive(Debug)]
struct Outbound {
    law: Law,
    rtp: RtpSender,
    /// `None` when telephone-event was not negotiated.
    dtmf: Option<DtmfSender>,
    /// Queued plays with how far each has been sent; each is cut into
    /// frames of [`FRAME_SAMPLES`] as it goes out, its last frame padded.
    clips: VecDeque<(Arc<[i16]>, usize)>,
    digits: VecDeque<char>,
    /// A play is in progress whose end has not been reported.
    playing: bool,
}

impl Outbound {
    fn handle_play(&mut self, samples: Arc<[i16]>) {
        if !samples.is_empty() {
            self.clips.push_back((samples, 0));
        }
        // Even an empty play is answered, so a caller waiting for the end
        // of what it queued is never left waiting.
        self.playing = true;
    }

    /// The next frame of queued audio, if any.
    fn next_frame(&mut self) -> Option<[i16; FRAME_SAMPLES]> {
        let (clip, sent) = self.clips.front_mut()?;
        let end = (*sent + FRAME_SAMPLES).min(clip.len());
        let mut frame = [0; FRAME_SAMPLES];
        frame[..end - *sent].copy_from_slice(&clip[*sent..end]);
        *sent = end;
        if end == clip.len() {
            self.clips.pop_front();
        }
        Some(frame)
    }

    fn handle_stop_playback(&mut self) -> Duration {
        let dropped: usize = self
            .clips
            .drain(..)
            .map(|(clip, sent)| (clip.len() - sent).div_ceil(FRAME_SAMPLES))
            .sum();
        self.playing = false;
        FRAME_DURATION * u32::try_from(dropped).unwrap_or(u32::MAX)
    }

    fn handle_dtmf(&mut self, digits: &[char]) {
        debug_assert!(self.dtmf.is_some(), "digits without telephone-event");
        if self.dtmf.is_some() {
            self.digits.extend(digits.iter().copied());
        }
    }

    /// One 20 ms slot starting at `now`. `paused` (on hold, or nowhere to
    /// send) sends nothing; the RTP clock moves on regardless.
    fn handle_frame(&mut self, now: Instant, paused: bool) -> FrameOutput {
        let mut output = FrameOutput::default();
        let digit_playing = self.dtmf.as_ref().is_some_and(|dtmf| !dtmf.is_idle());
        if digit_playing {
            // The event replaces the audio of this slot.
            self.rtp.handle_silence(FRAME_SAMPLES as u32);
            return output;
        }
        if !paused {
            if let (Some(dtmf), Some(&digit)) = (self.dtmf.as_mut(), self.digits.front()) {
                self.digits.pop_front();
                let started = dtmf.start(now, digit, self.rtp.next_timestamp(), DTMF_DURATION);
                // Digits were checked by the handle and the sender is idle.
                debug_assert!(started.is_ok(), "DTMF start: {started:?}");
                self.rtp.handle_silence(FRAME_SAMPLES as u32);
                return output;
            }
        }
        if paused {
            self.rtp.handle_silence(FRAME_SAMPLES as u32);
            return output;
        }
        let packet = match self.next_frame() {
            Some(frame) => self.rtp.packetize(&frame, self.law),
            None => self.rtp.packetize(&SILENT_FRAME, self.law),
        };
        output.packet = Some(packet);
        if self.playing && self.clips.is_empty() {
            self.playing = false;
            output.playback_finished = true;
        }
        output
    }

    /// Slots that passed while the task was not running: the RTP clock
    /// catches up, queued audio waits.
    fn handle_skipped(&mut self, frames: u32) {
        self.rtp
            .handle_silence(frames.saturating_mul(FRAME_SAMPLES as u32));
    }

    fn poll_dtmf_timeout(&self) -> Option<Instant> {
        self.dtmf.as_ref().and_then(DtmfSender::poll_timeout)
    }

    /// The telephone-event packet due at `now`, if any.
    fn poll_dtmf_packet(&mut self, now: Instant) -> Option<RtpPacket> {
        let event = self.dtmf.as_mut()?.poll_event(now)?;
        Some(self.rtp.packetize_event(&event))
    }
}

/// Counters kept by the core; the rest of [`MediaStats`] comes from the
/// jitter buffer, RTCP and the driver.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    packets_sent: u64,
    packets_received: u64,
    rtcp_sent: u64,
    rtcp_received: u64,
    malformed: u64,
    unexpected_payload_type: u64,
    foreign: u64,
    frames_skipped: u64,
}

/// All decisions of a media session, without I/O: see the module
/// documentation. Call order: `handle_*` for inputs as they come, then
/// `handle_timeout(now)`, then drain `poll_transmit` and `poll_event`, and
/// sleep until `poll_timeout`.
#[derive(Debug)]
struct MediaCore {
    audio_payload_type: u8,
    dtmf_payload_type: Option<u8>,
    latch: Latch,
    jitter: JitterBuffer,
    dtmf_receiver: Option<DtmfReceiver>,
    rtcp: RtcpSession,
    outbound: Outbound,
    on_hold: bool,
    /// Start of the next 20 ms slot, both for sending and for playout:
    /// advanced by exactly one frame per slot so the schedule never drifts.
    next_frame: Instant,
    /// The wall clock at `epoch`: sender reports take their NTP time from
    /// the same clock as the RTP timestamps (RFC 3550 6.4.1 pairs them).
    epoch: Instant,
    wall_epoch: SystemTime,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MediaEvent>,
    counters: Counters,
    /// RTP from a source other than the latched one was logged; later
    /// packets are only counted, so a flood cannot flood the log.
    foreign_logged: bool,
}

impl MediaCore {
    fn new(now: Instant, wall_clock: SystemTime, config: &MediaConfig) -> Result<Self, MediaError> {
        let audio_payload_type = payload_type_for(config.law);
        if let Some(payload_type) = config.dtmf_payload_type {
            if payload_type > 0x7f || payload_type == audio_payload_type {
                return Err(MediaError::DtmfPayloadType(payload_type));
            }
        }
        if config.rtcp_interval.is_zero() {
            return Err(MediaError::ZeroRtcpInterval);
        }
        let random = SeedValues::expand(config.seed);
        let rtcp = RtcpSession::new(
            now,
            RtcpConfig {
                interval: config.rtcp_interval,
                ..RtcpConfig::new(config.ssrc, config.cname.clone(), random.rtcp_seed)
            },
        )?;
        let defaults = JitterConfig::new(config.law);
        let (min_delay, max_delay) = config.jitter_delay;
        let target_frames = max_delay.as_millis() / FRAME_DURATION.as_millis();
        let jitter = JitterBuffer::new(JitterConfig {
            law: config.law,
            min_delay,
            max_delay,
            // Room for the cushion and as much again for bursts.
            capacity: defaults
                .capacity
                .max(usize::try_from(target_frames * 2).unwrap_or(usize::MAX)),
        });
        Ok(MediaCore {
            audio_payload_type,
            dtmf_payload_type: config.dtmf_payload_type,
            latch: Latch::new(config.remote),
            jitter,
            dtmf_receiver: config.dtmf_payload_type.map(DtmfReceiver::new),
            rtcp,
            outbound: Outbound {
                law: config.law,
                rtp: RtpSender::new(
                    config.ssrc,
                    random.initial_sequence,
                    random.initial_timestamp,
                ),
                dtmf: config
                    .dtmf_payload_type
                    .map(|payload_type| DtmfSender::new(payload_type, DEFAULT_VOLUME)),
                clips: VecDeque::new(),
                digits: VecDeque::new(),
                playing: false,
            },
            on_hold: false,
            next_frame: now,
            epoch: now,
            wall_epoch: wall_clock,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            foreign_logged: false,
        })
    }

    /// A datagram from the RTP socket.
    fn handle_rtp_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let packet = match RtpPacket::parse(datagram) {
            Ok(packet) => packet,
            Err(error) => {
                if self.counters.malformed == 0 {
                    warn!(%from, %error, "ignoring a datagram that is not RTP");
                }
                self.counters.malformed += 1;
                return;
            }
        };
        let is_event = Some(packet.payload_type) == self.dtmf_payload_type;
        if packet.payload_type != self.audio_payload_type && !is_event {
            self.counters.unexpected_payload_type += 1;
            return;
        }
        match self.latch.handle_rtp(from, &packet) {
            Verdict::Accept => {}
            Verdict::Latched => {
                info!(%from, "latched onto the peer's RTP source");
                self.events.push_back(MediaEvent::Latched(from));
            }
            Verdict::Probation => {
                debug!(%from, "RTP from a new address, on probation");
                self.counters.foreign += 1;
                return;
            }
            Verdict::Foreign => {
                if !self.foreign_logged {
                    self.foreign_logged = true;
                    warn!(%from, latched = ?self.latch.latched, "ignoring RTP from another source");
                }
                self.counters.foreign += 1;
                return;
            }
        }
        self.counters.packets_received += 1;
        // Events and audio share one sequence space (RFC 4733 2.5.1.6), so
        // RTCP counts both.
        self.rtcp.handle_rtp_received(now, &packet);
        if is_event {
            let digit = self
                .dtmf_receiver
                .as_mut()
                .and_then(|receiver| receiver.handle_packet(now, &packet));
            if let Some(digit) = digit {
                self.events.push_back(MediaEvent::Dtmf(digit.digit));
            }
        } else {
            self.jitter.handle_packet(now, packet);
        }
    }

    /// A datagram from the RTCP socket.
    fn handle_rtcp_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if !self.latch.accepts_rtcp_from(from) {
            self.counters.foreign += 1;
            return;
        }
        match self.rtcp.handle_rtcp(now, datagram) {
            Ok(()) => {
                self.counters.rtcp_received += 1;
                self.latch.handle_rtcp_source(from);
            }
            Err(error) => {
                if self.counters.malformed == 0 {
                    warn!(%from, %error, "ignoring invalid RTCP");
                }
                self.counters.malformed += 1;
            }
        }
    }

    fn handle_play_clip(&mut self, samples: Arc<[i16]>) {
        self.outbound.handle_play(samples);
    }

    #[cfg(test)]
    fn handle_play(&mut self, samples: &[i16]) {
        self.handle_play_clip(samples.into());
    }

    fn handle_stop_playback(&mut self) -> Duration {
        self.outbound.handle_stop_playback()
    }

    fn handle_dtmf(&mut self, digits: &[char]) {
        self.outbound.handle_dtmf(digits);
    }

    fn handle_set_remote(&mut self, remote: SocketAddr) {
        if self.latch.handle_set_remote(remote) {
            info!(%remote, "the peer's media moved; latching again");
        }
    }

    fn handle_set_hold(&mut self, hold: bool) {
        self.on_hold = hold;
    }

    /// Runs every slot, digit packet and report due at `now`, in time
    /// order.
    fn handle_timeout(&mut self, now: Instant) {
        let behind = now.saturating_duration_since(self.next_frame);
        let overdue =
            u32::try_from(behind.as_nanos() / FRAME_DURATION.as_nanos()).unwrap_or(u32::MAX);
        if overdue > MAX_CATCH_UP_FRAMES {
            let skipped = overdue - MAX_CATCH_UP_FRAMES;
            debug!(skipped, "media task woke late; skipping frames");
            self.outbound.handle_skipped(skipped);
            self.next_frame += FRAME_DURATION * skipped;
            self.counters.frames_skipped += u64::from(skipped);
        }
        loop {
            let dtmf_due = self.outbound.poll_dtmf_timeout().filter(|&due| due <= now);
            let frame_due = self.next_frame <= now;
            match dtmf_due {
                // At the same instant the slot goes first: it may start the
                // digit whose first packet is due then.
                Some(due) if !frame_due || due < self.next_frame => {
                    let Some(packet) = self.outbound.poll_dtmf_packet(due) else {
                        // The sender promised a packet at `due`; stop
                        // rather than spin should it not keep its word.
                        debug_assert!(false, "no DTMF packet at its timeout");
                        break;
                    };
                    self.send_rtp(due, packet);
                }
                _ if frame_due => self.handle_frame(self.next_frame),
                _ => break,
            }
        }
        if self.rtcp.poll_timeout() <= now {
            if let Some(report) = self.rtcp.poll_transmit(now, self.wall_clock(now)) {
                if let Some(destination) = self.latch.rtcp_destination() {
                    self.counters.rtcp_sent += 1;
                    self.transmits.push_back(Transmit {
                        channel: Channel::Rtcp,
                        destination,
                        payload: report,
                    });
                }
            }
        }
    }

    /// One 20 ms slot: send a frame, play out a frame.
    fn handle_frame(&mut self, at: Instant) {
        let paused = self.on_hold || self.latch.rtp_destination().is_none();
        let output = self.outbound.handle_frame(at, paused);
        if let Some(packet) = output.packet {
            self.send_rtp(at, packet);
        }
        if output.playback_finished {
            self.events.push_back(MediaEvent::PlaybackFinished);
        }
        if let Some(frame) = self.jitter.poll_frame(at) {
            let samples = Samples::from_i16(SampleRate::TELEPHONE, frame.samples());
            self.events.push_back(MediaEvent::Audio(samples));
        }
        self.next_frame += FRAME_DURATION;
    }

    fn send_rtp(&mut self, at: Instant, packet: RtpPacket) {
        let Some(destination) = self.latch.rtp_destination() else {
            return;
        };
        self.rtcp.handle_rtp_sent(at, &packet);
        self.counters.packets_sent += 1;
        self.transmits.push_back(Transmit {
            channel: Channel::Rtp,
            destination,
            payload: packet.to_bytes(),
        });
    }

    fn wall_clock(&self, now: Instant) -> SystemTime {
        self.wall_epoch + now.saturating_duration_since(self.epoch)
    }

    fn poll_timeout(&self) -> Instant {
        let mut wake = self.next_frame.min(self.rtcp.poll_timeout());
        if let Some(dtmf) = self.outbound.poll_dtmf_timeout() {
            wake = wake.min(dtmf);
        }
        wake
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    fn stats(&self) -> MediaStats {
        let counters = self.counters;
        MediaStats {
            packets_sent: counters.packets_sent,
            packets_received: counters.packets_received,
            rtcp_sent: counters.rtcp_sent,
            rtcp_received: counters.rtcp_received,
            malformed: counters.malformed,
            unexpected_payload_type: counters.unexpected_payload_type,
            foreign: counters.foreign,
            frames_skipped: counters.frames_skipped,
            latched: self.latch.latched,
            jitter_buffer: self.jitter.stats(),
            reception: self.rtcp.reception_statistics(),
            remote_report: self.rtcp.remote_report().copied(),
            ..MediaStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::TelephoneEvent;

    const DTMF_PT: u8 = DEFAULT_PAYLOAD_TYPE;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("test address")
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn config(remote: SocketAddr, ssrc: u32) -> MediaConfig {
        MediaConfig {
            local_ip: "10.0.0.1".parse().expect("ip"),
            port_range: DEFAULT_PORT_RANGE,
            remote,
            law: Law::MuLaw,
            dtmf_payload_type: Some(DTMF_PT),
            ssrc,
            seed: u64::from(ssrc) * 7,
            cname: format!("{ssrc}@test"),
            jitter_delay: (ms(60), ms(60)),
            rtcp_interval: REPORT_INTERVAL,
        }
    }

    /// `duration` of a sine at `frequency` and half of full scale.
    fn tone(frequency: f64, duration: Duration) -> Vec<i16> {
        let count = duration.as_millis() as usize * 8;
        (0..count)
            .map(|n| {
                let phase = std::f64::consts::TAU * frequency * n as f64 / 8_000.0;
                (16_384.0 * phase.sin()) as i16
            })
            .collect()
    }

    fn rms(samples: &[f32]) -> f64 {
        let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (energy / samples.len().max(1) as f64).sqrt()
    }

    /// One side of the in-memory network.
    struct Peer {
        rtp_addr: SocketAddr,
        rtcp_addr: SocketAddr,
        core: MediaCore,
        /// Events with the virtual instant they came out.
        events: Vec<(Instant, MediaEvent)>,
    }

    impl Peer {
        fn new(t0: Instant, rtp_addr: SocketAddr, config: &MediaConfig) -> Self {
            Peer {
                rtp_addr,
                rtcp_addr: SocketAddr::new(rtp_addr.ip(), rtp_addr.port() + 1),
                core: MediaCore::new(t0, SystemTime::UNIX_EPOCH, config).expect("valid config"),
                events: Vec::new(),
            }
        }

        fn dtmf_digits(&self) -> Vec<char> {
            self.events
                .iter()
                .filter_map(|(_, event)| match event {
                    MediaEvent::Dtmf(digit) => Some(*digit),
                    _ => None,
                })
                .collect()
        }

        fn audio(&self) -> Vec<(Instant, &Samples)> {
            self.events
                .iter()
                .filter_map(|(at, event)| match event {
                    MediaEvent::Audio(samples) => Some((*at, samples)),
                    _ => None,
                })
                .collect()
        }

        fn count(&self, wanted: &MediaEvent) -> usize {
            self.events
                .iter()
                .filter(|(_, event)| event == wanted)
                .count()
        }
    }

    /// A datagram that left a core, with when and from where.
    #[derive(Clone, Debug)]
    struct Sent {
        at: Instant,
        from: SocketAddr,
        transmit: Transmit,
    }

    impl Sent {
        fn rtp(&self) -> Option<RtpPacket> {
            (self.transmit.channel == Channel::Rtp)
                .then(|| RtpPacket::parse(&self.transmit.payload).expect("our RTP parses"))
        }
    }

    /// Two cores joined by a lossless wire with no delay, in virtual time.
    struct Network {
        now: Instant,
        a: Peer,
        b: Peer,
        /// Every datagram either core sent, delivered or not.
        log: Vec<Sent>,
    }

    impl Network {
        /// A at 10.0.0.1:20000, B at 10.0.0.2:30000, each told the other's
        /// address.
        fn new() -> Self {
            let (a_addr, b_addr) = (addr("10.0.0.1:20000"), addr("10.0.0.2:30000"));
            Network::with(config(b_addr, 0xA), a_addr, config(a_addr, 0xB), b_addr)
        }

        fn with(a: MediaConfig, a_addr: SocketAddr, b: MediaConfig, b_addr: SocketAddr) -> Self {
            let now = Instant::now();
            Network {
                now,
                a: Peer::new(now, a_addr, &a),
                b: Peer::new(now, b_addr, &b),
                log: Vec::new(),
            }
        }

        /// Runs both cores to `until`, jumping from deadline to deadline
        /// and delivering every datagram the instant it is sent.
        fn run_for(&mut self, duration: Duration) {
            let until = self.now + duration;
            loop {
                self.pump();
                let next = self.a.core.poll_timeout().min(self.b.core.poll_timeout());
                if next > until {
                    self.now = until;
                    return;
                }
                self.now = self.now.max(next);
                self.a.core.handle_timeout(self.now);
                self.b.core.handle_timeout(self.now);
            }
        }

        fn pump(&mut self) {
            let now = self.now;
            loop {
                let (transmit, from_peer, receiver) =
                    if let Some(transmit) = self.a.core.poll_transmit() {
                        (transmit, &self.a, &mut self.b)
                    } else if let Some(transmit) = self.b.core.poll_transmit() {
                        (transmit, &self.b, &mut self.a)
                    } else {
                        break;
                    };
                let from = match transmit.channel {
                    Channel::Rtp => from_peer.rtp_addr,
                    Channel::Rtcp => from_peer.rtcp_addr,
                };
                self.log.push(Sent {
                    at: now,
                    from,
                    transmit: transmit.clone(),
                });
                let payload = &transmit.payload;
                if transmit.destination == receiver.rtp_addr {
                    receiver.core.handle_rtp_datagram(now, from, payload);
                } else if transmit.destination == receiver.rtcp_addr {
                    receiver.core.handle_rtcp_datagram(now, from, payload);
                }
            }
            for peer in [&mut self.a, &mut self.b] {
                while let Some(event) = peer.core.poll_event() {
                    peer.events.push((now, event));
                }
            }
        }

        /// RTP that A sent, in order.
        fn rtp_from_a(&self) -> Vec<(Instant, SocketAddr, RtpPacket)> {
            self.log
                .iter()
                .filter(|sent| sent.from == self.a.rtp_addr)
                .filter_map(|sent| Some((sent.at, sent.transmit.destination, sent.rtp()?)))
                .collect()
        }
    }

    /// Drives a single core to each instant in `times`, returning what it
    /// sent on the RTP channel.
    fn drive(core: &mut MediaCore, times: impl IntoIterator<Item = Instant>) -> Vec<RtpPacket> {
        let mut packets = Vec::new();
        for now in times {
            core.handle_timeout(now);
            while let Some(transmit) = core.poll_transmit() {
                if transmit.channel == Channel::Rtp {
                    packets.push(RtpPacket::parse(&transmit.payload).expect("parses"));
                }
            }
        }
        packets
    }

    fn assert_continuous(packets: &[RtpPacket]) {
        for pair in packets.windows(2) {
            assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
            assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(160));
        }
    }

    fn audio_packet(ssrc: u32, sequence: u16, level: i16) -> RtpPacket {
        RtpPacket {
            payload_type: 0,
            sequence,
            timestamp: u32::from(sequence) * 160,
            ssrc,
            marker: false,
            payload: vec![Law::MuLaw.encode(level); FRAME_SAMPLES],
        }
    }

    #[test]
    fn sends_one_packet_per_slot_on_a_schedule_that_does_not_drift() {
        let t0 = Instant::now();
        let mut core = MediaCore::new(
            t0,
            SystemTime::UNIX_EPOCH,
            &config(addr("10.0.0.2:30000"), 1),
        )
        .expect("valid");
        // Woken every 7 ms, as if by other traffic: still one per 20 ms.
        let packets = drive(&mut core, (0..143).map(|k| t0 + ms(7 * k)));
        assert_eq!(packets.len(), 50, "slots 0, 20, ..., 980 ms");
        assert_eq!(core.poll_timeout(), t0 + ms(1_000));
        let packets = [packets, drive(&mut core, [t0 + ms(1_000)])].concat();
        assert_eq!(packets.len(), 51);
        assert_continuous(&packets);
        assert!(packets[0].marker, "the stream starts a talkspurt");
        assert!(packets[1..].iter().all(|packet| !packet.marker));
        assert!(packets.iter().all(|packet| packet.ssrc == 1
            && packet.payload_type == 0
            && packet.payload == [0xFF; FRAME_SAMPLES]));
    }

    #[test]
    fn a_late_wake_sends_a_short_burst_and_the_clock_jumps_ahead() {
        let t0 = Instant::now();
        let mut core = MediaCore::new(
            t0,
            SystemTime::UNIX_EPOCH,
            &config(addr("10.0.0.2:30000"), 1),
        )
        .expect("valid");
        core.handle_play(&tone(1_000.0, ms(2_000)));
        let first = drive(&mut core, [t0]);
        let burst = drive(&mut core, [t0 + ms(1_000)]);
        assert_eq!(
            burst.len(),
            1 + MAX_CATCH_UP_FRAMES as usize,
            "slots 900 to 1000 ms"
        );
        assert_eq!(core.stats().frames_skipped, 44);
        // The timestamp follows the clock: slot 50 is 50 frames after slot 0.
        assert_eq!(
            burst.last().expect("burst").timestamp,
            first[0].timestamp.wrapping_add(50 * 160)
        );
        assert!(burst[0].marker, "a jump in the clock starts a talkspurt");
        assert_eq!(
            burst[0].sequence,
            first[0].sequence.wrapping_add(1),
            "none lost"
        );
        assert_continuous(&burst);
        // The skipped slots cost no audio: it is only later.
        assert_eq!(core.handle_stop_playback(), ms(2_000 - 7 * 20));
    }

    #[test]
    fn audio_played_on_one_side_is_heard_on_the_other() {
        let mut network = Network::new();
        network.a.core.handle_play(&tone(1_000.0, ms(1_000)));
        network.run_for(ms(1_500));

        let audio = network.b.audio();
        let t0 = network.log[0].at;
        assert_eq!(audio[0].0, t0 + ms(60), "held for the jitter target");
        assert!(audio
            .iter()
            .all(|(_, samples)| samples.rate == SampleRate::TELEPHONE
                && samples.data.len() == FRAME_SAMPLES));
        let loud: Vec<f32> = audio
            .iter()
            .filter(|(_, samples)| rms(&samples.data) > 0.1)
            .flat_map(|(_, samples)| samples.data.iter().copied())
            .collect();
        assert_eq!(loud.len(), 8_000, "the whole second, and only it");
        let loud = Samples::new(SampleRate::TELEPHONE, loud);
        let at_tone = loud.tone_amplitude(1_000.0);
        assert!((0.45..0.55).contains(&at_tone), "1 kHz at {at_tone}");
        assert!(loud.tone_amplitude(1_400.0) < 0.01);
        assert_eq!(network.a.count(&MediaEvent::PlaybackFinished), 1);
        assert_eq!(network.b.count(&MediaEvent::PlaybackFinished), 0);
        let stats = network.b.core.stats();
        assert_eq!(stats.jitter_buffer.lost, 0);
        assert_eq!(stats.packets_received, 76, "slots 0 to 1500 ms");
        assert_eq!(stats.latched, Some(network.a.rtp_addr));
    }

    #[test]
    fn playback_finished_follows_the_last_frame_and_an_empty_play() {
        let mut network = Network::new();
        network.run_for(ms(10));
        network.a.core.handle_play(&tone(1_000.0, ms(30)));
        network.run_for(ms(100));
        let finished: Vec<Instant> = network
            .a
            .events
            .iter()
            .filter(|(_, event)| *event == MediaEvent::PlaybackFinished)
            .map(|(at, _)| *at)
            .collect();
        let t0 = network.log[0].at;
        // Two frames (the second padded) at the slots of 20 and 40 ms.
        assert_eq!(finished, [t0 + ms(40)]);

        network.a.core.handle_play(&[]);
        network.run_for(ms(20));
        assert_eq!(network.a.count(&MediaEvent::PlaybackFinished), 2);
    }

    #[test]
    fn stop_playback_drops_the_queue_and_silence_follows() {
        let mut network = Network::new();
        network.a.core.handle_play(&tone(1_000.0, ms(1_000)));
        network.run_for(ms(190));
        // Slots 0 to 180 ms sent ten frames.
        assert_eq!(network.a.core.handle_stop_playback(), ms(800));
        network.run_for(ms(200));
        let packets: Vec<RtpPacket> = network
            .rtp_from_a()
            .into_iter()
            .map(|(_, _, packet)| packet)
            .collect();
        assert_eq!(packets.len(), 20);
        assert_continuous(&packets);
        assert!(packets[..10]
            .iter()
            .all(|p| p.payload != [0xFF; FRAME_SAMPLES]));
        assert!(packets[10..]
            .iter()
            .all(|p| p.payload == [0xFF; FRAME_SAMPLES]));
        assert_eq!(network.a.count(&MediaEvent::PlaybackFinished), 0);
    }

    #[test]
    fn digits_replace_the_audio_and_arrive_once_each_in_order() {
        let mut network = Network::new();
        network.a.core.handle_dtmf(&['1', '2', '#']);
        network.a.core.handle_play(&tone(1_000.0, ms(100)));
        network.run_for(ms(1_500));

        assert_eq!(network.b.dtmf_digits(), ['1', '2', '#']);
        let sent = network.rtp_from_a();
        let events: Vec<&RtpPacket> = sent
            .iter()
            .map(|(_, _, packet)| packet)
            .filter(|packet| packet.payload_type == DTMF_PT)
            .collect();
        assert_eq!(events.len(), 15, "five packets per digit");
        let starts: Vec<(u8, u32)> = events
            .iter()
            .filter(|packet| packet.marker)
            .map(|packet| {
                let event = TelephoneEvent::parse(&packet.payload).expect("event");
                (event.event, packet.timestamp)
            })
            .collect();
        // A digit holds the stream for 11 slots: its 200 ms of packets
        // and the slot in which its last end packet went out.
        let first = starts[0].1;
        assert_eq!(
            starts,
            [
                (1, first),
                (2, first.wrapping_add(1_760)),
                (11, first.wrapping_add(3_520))
            ]
        );
        // No audio between the first event and the last; the tone after.
        let first_event = sent
            .iter()
            .position(|(_, _, p)| p.payload_type == DTMF_PT)
            .expect("events");
        let last_event = sent
            .iter()
            .rposition(|(_, _, p)| p.payload_type == DTMF_PT)
            .expect("events");
        assert_eq!(first_event, 0, "the digits start at once");
        assert_eq!(last_event, 14);
        let after = &sent[last_event + 1];
        assert!(after.2.marker, "audio resumes with a talkspurt");
        assert_eq!(after.2.timestamp, first.wrapping_add(3 * 1_760));
        assert_ne!(after.2.payload, [0xFF; FRAME_SAMPLES], "the queued tone");
        // B heard the tone only after the last digit.
        let digit_at = network
            .b
            .events
            .iter()
            .rfind(|(_, event)| matches!(event, MediaEvent::Dtmf(_)))
            .map(|(at, _)| *at)
            .expect("digits");
        let tone_at = network
            .b
            .audio()
            .into_iter()
            .find(|(_, samples)| rms(&samples.data) > 0.1)
            .map(|(at, _)| at)
            .expect("tone");
        assert!(tone_at > digit_at);
    }

    #[test]
    fn latches_onto_the_port_the_peer_sends_from() {
        // The SDP says port 40000; B's RTP comes from 30000 on the same IP.
        let (a_addr, b_addr) = (addr("10.0.0.1:20000"), addr("10.0.0.2:30000"));
        let mut network = Network::with(
            config(addr("10.0.0.2:40000"), 0xA),
            a_addr,
            config(a_addr, 0xB),
            b_addr,
        );
        network.run_for(ms(100));
        let sent = network.rtp_from_a();
        assert_eq!(
            sent[0].1,
            addr("10.0.0.2:40000"),
            "to the SDP address first"
        );
        let to: Vec<SocketAddr> = sent.iter().map(|(_, to, _)| *to).collect();
        assert!(sent[1..].iter().all(|(_, to, _)| *to == b_addr), "{to:?}");
        assert_eq!(network.a.count(&MediaEvent::Latched(b_addr)), 1);
        // RTCP follows: port + 1 of the latched source.
        assert_eq!(
            network.a.core.latch.rtcp_destination(),
            Some(addr("10.0.0.2:30001"))
        );

        // A third party on the same host, after the latch: ignored.
        let now = network.now;
        for sequence in 0..20 {
            let packet = audio_packet(0xE, sequence, 8_000);
            network
                .a
                .core
                .handle_rtp_datagram(now, addr("10.0.0.2:50000"), &packet.to_bytes());
        }
        network.run_for(ms(500));
        let stats = network.a.core.stats();
        assert_eq!(stats.foreign, 20);
        assert_eq!(stats.latched, Some(b_addr));
        assert!(network
            .a
            .audio()
            .iter()
            .all(|(_, samples)| rms(&samples.data) < 0.01));
    }

    #[test]
    fn another_host_latches_only_after_two_packets_in_sequence() {
        let mut latch = Latch::new(addr("192.168.1.10:4000"));
        let nat = addr("203.0.113.5:61000");
        let scanner = addr("198.51.100.7:9");
        assert_eq!(latch.rtp_destination(), Some(addr("192.168.1.10:4000")));
        assert_eq!(
            latch.handle_rtp(nat, &audio_packet(1, 10, 0)),
            Verdict::Probation
        );
        // A stray in between restarts the probation, as does a gap.
        assert_eq!(
            latch.handle_rtp(scanner, &audio_packet(2, 11, 0)),
            Verdict::Probation
        );
        assert_eq!(
            latch.handle_rtp(nat, &audio_packet(1, 11, 0)),
            Verdict::Probation
        );
        assert_eq!(
            latch.handle_rtp(nat, &audio_packet(1, 13, 0)),
            Verdict::Probation
        );
        assert_eq!(
            latch.handle_rtp(nat, &audio_packet(1, 14, 0)),
            Verdict::Latched
        );
        assert_eq!(latch.rtp_destination(), Some(nat));
        assert_eq!(
            latch.handle_rtp(nat, &audio_packet(1, 15, 0)),
            Verdict::Accept
        );
        assert_eq!(
            latch.handle_rtp(scanner, &audio_packet(2, 12, 0)),
            Verdict::Foreign
        );
        assert_eq!(
            latch.handle_rtp(addr("192.168.1.10:4000"), &audio_packet(3, 1, 0)),
            Verdict::Foreign,
            "latched is latched, even against the SDP address"
        );

        // RTCP: only from the latched host; ours goes where its came from.
        assert!(!latch.accepts_rtcp_from(scanner));
        assert!(latch.accepts_rtcp_from(addr("203.0.113.5:61001")));
        assert_eq!(latch.rtcp_destination(), Some(addr("203.0.113.5:61001")));
        latch.handle_rtcp_source(addr("203.0.113.5:61007"));
        assert_eq!(latch.rtcp_destination(), Some(addr("203.0.113.5:61007")));

        // A re-INVITE with the same address keeps the latch; a new one
        // starts over.
        assert!(!latch.handle_set_remote(addr("192.168.1.10:4000")));
        assert_eq!(latch.latched, Some(nat));
        assert!(latch.handle_set_remote(addr("192.168.1.10:4002")));
        assert_eq!(latch.latched, None);
        assert_eq!(latch.rtp_destination(), Some(addr("192.168.1.10:4002")));
        assert_eq!(
            latch.handle_rtp(addr("192.168.1.10:5000"), &audio_packet(1, 1, 0)),
            Verdict::Latched
        );
    }

    #[test]
    fn an_unspecified_sdp_address_sends_nothing_until_the_peer_does() {
        let mut latch = Latch::new(addr("0.0.0.0:4000"));
        assert_eq!(latch.rtp_destination(), None);
        assert_eq!(latch.rtcp_destination(), None);
        let peer = addr("10.0.0.2:30000");
        latch.handle_rtp(peer, &audio_packet(1, 1, 0));
        assert_eq!(
            latch.handle_rtp(peer, &audio_packet(1, 2, 0)),
            Verdict::Latched
        );
        assert_eq!(latch.rtp_destination(), Some(peer));
    }

    #[test]
    fn hold_stops_rtp_but_not_rtcp_and_playback_resumes_after() {
        let (a_addr, b_addr) = (addr("10.0.0.1:20000"), addr("10.0.0.2:30000"));
        let short = |remote, ssrc| MediaConfig {
            rtcp_interval: ms(500),
            ..config(remote, ssrc)
        };
        let mut network = Network::with(short(b_addr, 0xA), a_addr, short(a_addr, 0xB), b_addr);
        network.run_for(ms(100));
        network.a.core.handle_set_hold(true);
        network.a.core.handle_play(&tone(1_000.0, ms(200)));
        network.a.core.handle_dtmf(&['5']);
        let held_from = network.log.len();
        network.run_for(ms(3_000));
        let during: Vec<&Sent> = network.log[held_from..]
            .iter()
            .filter(|sent| sent.from.ip() == a_addr.ip())
            .collect();
        assert!(during
            .iter()
            .all(|sent| sent.transmit.channel == Channel::Rtcp));
        assert!(during.len() >= 3, "reports carry on: {}", during.len());
        assert_eq!(network.b.dtmf_digits(), [] as [char; 0]);

        network.a.core.handle_set_hold(false);
        let resumed_from = network.log.len();
        network.run_for(ms(1_000));
        let resumed: Vec<RtpPacket> = network.log[resumed_from..]
            .iter()
            .filter(|sent| sent.from == a_addr)
            .filter_map(Sent::rtp)
            .collect();
        assert_eq!(resumed[0].payload_type, DTMF_PT, "the waiting digit first");
        assert!(resumed[0].marker);
        assert_eq!(network.b.dtmf_digits(), ['5']);
        assert_eq!(network.a.count(&MediaEvent::PlaybackFinished), 1);
    }

    #[test]
    fn reports_travel_both_ways_and_give_a_round_trip() {
        let (a_addr, b_addr) = (addr("10.0.0.1:20000"), addr("10.0.0.2:30000"));
        let short = |remote, ssrc| MediaConfig {
            rtcp_interval: ms(500),
            ..config(remote, ssrc)
        };
        let mut network = Network::with(short(b_addr, 0xA), a_addr, short(a_addr, 0xB), b_addr);
        network.run_for(ms(3_000));
        let stats = network.a.core.stats();
        assert!(
            stats.rtcp_sent >= 3 && stats.rtcp_received >= 3,
            "{stats:?}"
        );
        let report = stats.remote_report.expect("B reported on A's stream");
        assert_eq!(report.reporter, 0xB);
        assert_eq!(report.cumulative_lost, 0);
        let round_trip = report.round_trip.expect("B echoed a sender report");
        // Only the 1/65536 s rounding of DLSR (RFC 3550 6.4.1) remains.
        assert!(round_trip < ms(1), "the wire has no delay: {round_trip:?}");
        assert_eq!(stats.reception.map(|r| r.ssrc), Some(0xB));
        assert_eq!(stats.jitter(), Some(Duration::ZERO));
        let rtcp_to = network
            .log
            .iter()
            .find(|sent| sent.from == network.a.rtcp_addr)
            .map(|sent| sent.transmit.destination);
        assert_eq!(rtcp_to, Some(network.b.rtcp_addr));
    }

    #[test]
    fn garbage_is_counted_and_changes_nothing() {
        let mut network = Network::new();
        network.run_for(ms(100));
        let (b_rtp, b_rtcp) = (network.b.rtp_addr, network.b.rtcp_addr);
        let now = network.now;
        let mut state = 0x0123_4567_89AB_CDEFu64;
        let mut malformed = 0;
        for round in 0..2_000 {
            let len = (splitmix64(&mut state) % 200) as usize;
            let mut datagram: Vec<u8> = (0..len).map(|_| splitmix64(&mut state) as u8).collect();
            if round % 2 == 0 && len > 0 {
                datagram[0] = 0x80 | (datagram[0] & 0x3f);
            }
            let core = &mut network.a.core;
            let before = core.stats();
            core.handle_rtp_datagram(now, b_rtp, &datagram);
            core.handle_rtcp_datagram(now, b_rtcp, &datagram);
            let after = core.stats();
            malformed += after.malformed - before.malformed;
        }
        let stats = network.a.core.stats();
        assert_eq!(stats.malformed, malformed);
        assert!(malformed > 2_000, "most of it is garbage: {malformed}");
        // An RTP packet of a type the call does not use.
        let mut comfort_noise = audio_packet(0xB, 1, 0);
        comfort_noise.payload_type = 13;
        let before = network.a.core.stats().unexpected_payload_type;
        network
            .a
            .core
            .handle_rtp_datagram(now, b_rtp, &comfort_noise.to_bytes());
        assert_eq!(network.a.core.stats().unexpected_payload_type, before + 1);

        network.b.core.handle_play(&tone(1_000.0, ms(200)));
        let heard_before = network.a.audio().len();
        network.run_for(ms(500));
        let loud = network.a.audio()[heard_before..]
            .iter()
            .filter(|(_, samples)| rms(&samples.data) > 0.1)
            .count();
        assert_eq!(loud, 10, "the stream carries on");
    }

    #[test]
    fn rejects_configurations_that_cannot_work() {
        let now = Instant::now();
        let remote = addr("10.0.0.2:30000");
        let clash = MediaConfig {
            dtmf_payload_type: Some(0),
            ..config(remote, 1)
        };
        assert!(matches!(
            MediaCore::new(now, SystemTime::UNIX_EPOCH, &clash),
            Err(MediaError::DtmfPayloadType(0))
        ));
        let too_large = MediaConfig {
            dtmf_payload_type: Some(200),
            ..config(remote, 1)
        };
        assert!(MediaCore::new(now, SystemTime::UNIX_EPOCH, &too_large).is_err());
        let zero = MediaConfig {
            rtcp_interval: Duration::ZERO,
            ..config(remote, 1)
        };
        assert!(matches!(
            MediaCore::new(now, SystemTime::UNIX_EPOCH, &zero),
            Err(MediaError::ZeroRtcpInterval)
        ));
        let long_name = MediaConfig {
            cname: "x".repeat(300),
            ..config(remote, 1)
        };
        assert!(matches!(
            MediaCore::new(now, SystemTime::UNIX_EPOCH, &long_name),
            Err(MediaError::Rtcp(RtcpError::CnameTooLong(300)))
        ));
    }

    #[test]
    fn seeds_expand_to_different_values() {
        let one = SeedValues::expand(1);
        let two = SeedValues::expand(2);
        assert_ne!(one.initial_timestamp, two.initial_timestamp);
        assert_ne!(one.rtcp_seed, one.port_search_start);
        assert_ne!(random_u64(), random_u64());
    }
}
