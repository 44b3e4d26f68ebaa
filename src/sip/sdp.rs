//! SDP (RFC 4566) parsing and RFC 3264 offer/answer for a G.711 telephone
//! agent.
//!
//! The agent speaks exactly one kind of media: PCMU (payload type 0) or PCMA
//! (payload type 8) at 8 kHz in 20 ms packets, plus RFC 4733
//! `telephone-event/8000` for DTMF on whatever dynamic payload type the peer
//! chose. Everything else in an offer is declined, never an error.
//!
//! Pure: no I/O, no clock, no randomness. Session ids and versions are
//! parameters, so the same inputs always give the same text.
//!
//! Call order:
//! - a call comes in: [`parse`] the INVITE body, [`answer`] it, send
//!   [`Answer::sdp`] in the 200 OK and give [`Answer::media`] to the media
//!   layer. [`SdpError::NoCommonCodec`] is answered `488 Not Acceptable
//!   Here` (RFC 3261 13.3.1.1); any other error is a malformed body.
//! - a re-INVITE arrives (hold, resume, new address): the same, with the
//!   `o=` version one higher than the last answer (RFC 3264 8).
//! - we place a call: [`offer`] goes in the INVITE, then [`parse`] the
//!   answer and call [`accept_answer`].
//!
//! The parser is liberal where that costs nothing (LF-only line endings,
//! missing `s=`/`t=`, unknown lines are skipped, and so are attributes
//! whose value cannot be read, such as RFC 4475's `a=rtpmap:31 LPC`), and
//! strict on the lines the media layer depends on (`v=`, `o=`, `c=`, `m=`).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// The packet duration we send and ask for, in milliseconds.
pub const PTIME_MS: u32 = 20;

/// The payload type we offer for `telephone-event` when we place a call.
pub const TELEPHONE_EVENT_PAYLOAD_TYPE: u8 = 101;

/// The RFC 4733 events we accept: DTMF 0-9, *, #, A-D (0-15) and flash (16).
const TELEPHONE_EVENTS: &str = "0-16";

/// What is wrong with a session description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body does not begin with `v=0` (RFC 4566 5.1): not SDP at all.
    #[error("SDP does not start with v=0")]
    MissingVersion,
    /// A line the media layer depends on does not follow RFC 4566 5.
    #[error("SDP line {line}: {problem}")]
    Malformed {
        /// 1-based line number in the body.
        line: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A media stream has no `c=` line, neither its own nor the session's
    /// (RFC 4566 5.7).
    #[error("SDP media stream {index} has no connection address")]
    MissingConnection {
        /// 0-based index of the `m=` line.
        index: usize,
    },
    /// No audio stream offers PCMU or PCMA over plain RTP/AVP: answer 488
    /// (RFC 3261 13.3.1.1, RFC 3264 6).
    #[error("no audio stream offers PCMU or PCMA over RTP/AVP")]
    NoCommonCodec,
}

/// The audio codecs the agent speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 mu-law, static payload type 0 (RFC 3551 6).
    Pcmu,
    /// G.711 A-law, static payload type 8 (RFC 3551 6).
    Pcma,
}

impl Codec {
    /// The static payload type of RFC 3551 table 4.
    pub const fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in `a=rtpmap`.
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    fn from_static_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    fn from_rtpmap(map: &RtpMap) -> Option<Codec> {
        // RFC 4566 6: encoding names are case-insensitive; G.711 is mono 8 kHz.
        if map.clock_rate != 8000 || map.channels.is_some_and(|c| c != 1) {
            return None;
        }
        [Codec::Pcmu, Codec::Pcma]
            .into_iter()
            .find(|codec| map.encoding.eq_ignore_ascii_case(codec.encoding_name()))
    }
}

/// Direction of a media stream (RFC 4566 6, RFC 3264 5.1), always from the
/// point of view of the side that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Both ways; the default when no attribute is given.
    SendRecv,
    /// The writer sends only: it has put the other side on hold.
    SendOnly,
    /// The writer receives only.
    RecvOnly,
    /// Neither way.
    Inactive,
}

impl Direction {
    /// The direction an answerer writes for this offered one (RFC 3264 6.1):
    /// sendonly becomes recvonly and the other way round.
    pub const fn reversed(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// The attribute name, as written after `a=`.
    pub const fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether the writer sends media.
    pub const fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the writer receives media.
    pub const fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn from_attribute(name: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.attribute() == name)
    }
}

/// The `o=` line (RFC 4566 5.2); kept as text because only a session that
/// changes it matters, not its numeric value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The originator's login, `-` when none.
    pub username: String,
    /// Identifies the session across re-offers.
    pub session_id: String,
    /// Increases with each change of the description (RFC 3264 8).
    pub version: String,
    /// Address of the machine that created the session.
    pub address: String,
}

/// An `a=rtpmap` attribute (RFC 4566 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type it describes, 0-127.
    pub payload_type: u8,
    /// Encoding name, such as `PCMU` or `telephone-event`.
    pub encoding: String,
    /// RTP clock rate in hertz.
    pub clock_rate: u32,
    /// Channel count for audio, when given.
    pub channels: Option<u32>,
}

/// An `a=fmtp` attribute (RFC 4566 6): format parameters, kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// The format (payload type for RTP) the parameters apply to.
    pub format: String,
    /// Everything after the format, such as `0-16` for telephone-event.
    pub parameters: String,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `application`, ...
    pub kind: String,
    /// Transport port; 0 means the stream is disabled or rejected.
    pub port: u16,
    /// Transport protocol, such as `RTP/AVP` or `RTP/SAVP`.
    pub protocol: String,
    /// Formats in the offerer's order of preference (payload types for RTP).
    pub formats: Vec<String>,
    /// The media-level `c=` address, overriding the session's.
    pub connection: Option<IpAddr>,
    /// The media-level direction attribute, overriding the session's.
    pub direction: Option<Direction>,
    /// The media-level `a=ptime`, in milliseconds.
    pub ptime: Option<u32>,
    /// The `a=rtpmap` attributes, in order.
    pub rtpmaps: Vec<RtpMap>,
    /// The `a=fmtp` attributes, in order.
    pub fmtps: Vec<Fmtp>,
}

impl Media {
    fn new(kind: String, port: u16, protocol: String, formats: Vec<String>) -> Media {
        Media {
            kind,
            port,
            protocol,
            formats,
            connection: None,
            direction: None,
            ptime: None,
            rtpmaps: Vec::new(),
            fmtps: Vec::new(),
        }
    }

    /// Whether this stream is one we can carry: audio over plain RTP/AVP,
    /// not disabled. SRTP (`RTP/SAVP`) and feedback profiles are declined.
    fn is_plain_rtp_audio(&self) -> bool {
        self.kind.eq_ignore_ascii_case("audio")
            && self.port != 0
            && self.protocol.eq_ignore_ascii_case("RTP/AVP")
    }

    fn rtpmap(&self, payload_type: u8) -> Option<&RtpMap> {
        self.rtpmaps
            .iter()
            .find(|map| map.payload_type == payload_type)
    }

    /// The payload types of the `m=` line that parse as numbers, in order.
    fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse::<u8>().ok())
    }

    /// The first offered G.711 format: an rtpmap names it, or a static
    /// payload type without rtpmap (RFC 3551 6).
    fn first_codec(&self) -> Option<(Codec, u8)> {
        self.payload_types().find_map(|pt| {
            let codec = match self.rtpmap(pt) {
                Some(map) => Codec::from_rtpmap(map),
                None => Codec::from_static_payload_type(pt),
            };
            codec.map(|c| (c, pt))
        })
    }

    /// The offered `telephone-event/8000` payload type (RFC 4733 7.1.1).
    fn telephone_event(&self) -> Option<u8> {
        self.payload_types().find(|&pt| {
            self.rtpmap(pt).is_some_and(|map| {
                map.encoding.eq_ignore_ascii_case("telephone-event") && map.clock_rate == 8000
            })
        })
    }

    fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|f| f.format.parse::<u8>().ok() == Some(payload_type))
            .map(|f| f.parameters.as_str())
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// The `o=` line, when present.
    pub origin: Option<Origin>,
    /// The `s=` line, when present.
    pub session_name: Option<String>,
    /// The session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// The `t=` line: start and stop times, 0 0 for a permanent session.
    pub timing: Option<(u64, u64)>,
    /// The session-level direction attribute.
    pub direction: Option<Direction>,
    /// A session-level `a=ptime` (not in RFC 4566, but some peers write it).
    pub ptime: Option<u32>,
    /// The `m=` sections, in order.
    pub media: Vec<Media>,
}

impl SessionDescription {
    /// The address a stream's RTP goes to: media-level `c=` wins.
    pub fn connection_of(&self, media: &Media) -> Option<IpAddr> {
        media.connection.or(self.connection)
    }

    /// The direction the writer gave a stream: media level wins over
    /// session level, sendrecv by default (RFC 4566 6). A `c=` of 0.0.0.0
    /// with sendrecv is RFC 2543 hold and reads as sendonly (RFC 3264 8.4).
    pub fn direction_of(&self, media: &Media) -> Direction {
        let written = media
            .direction
            .or(self.direction)
            .unwrap_or(Direction::SendRecv);
        let blackholed = self
            .connection_of(media)
            .is_some_and(|ip| ip.is_unspecified());
        match written {
            Direction::SendRecv if blackholed => Direction::SendOnly,
            Direction::RecvOnly if blackholed => Direction::Inactive,
            other => other,
        }
    }

    /// Whether the writer has put us on hold: its active audio does not ask
    /// to receive, by `a=sendonly`, `a=inactive` or the RFC 2543 `c=0.0.0.0`
    /// (RFC 3264 8.4).
    pub fn is_hold(&self) -> bool {
        let mut audio = self
            .media
            .iter()
            .filter(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)
            .peekable();
        audio.peek().is_some() && audio.all(|m| !self.direction_of(m).receives())
    }
}

/// What the media layer needs to run the negotiated stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaDescription {
    /// Where to send RTP: the peer's `c=` address and `m=` port. An
    /// unspecified address (0.0.0.0) means send nothing.
    pub remote_addr: SocketAddr,
    /// The negotiated codec.
    pub codec: Codec,
    /// The RTP payload type of that codec; the static one unless the peer
    /// mapped G.711 to a dynamic number.
    pub payload_type: u8,
    /// The payload type of RFC 4733 telephone-events, when both sides use
    /// them.
    pub dtmf_payload_type: Option<u8>,
    /// Our direction: whether we send and whether we expect to receive.
    pub direction: Direction,
    /// The packet duration the peer asked to receive (`a=ptime`), in
    /// milliseconds; [`PTIME_MS`] when it did not say.
    pub ptime: u32,
}

/// An SDP answer and the stream it sets up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer body, CRLF line endings, for `Content-Type: application/sdp`.
    pub sdp: String,
    /// The negotiated stream.
    pub media: MediaDescription,
}

/// Parses a session description. Accepts CRLF or LF line endings; ignores
/// unknown line types and attributes (RFC 4566 5).
pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
    let text = String::from_utf8_lossy(body);
    let mut session = SessionDescription {
        origin: None,
        session_name: None,
        connection: None,
        timing: None,
        direction: None,
        ptime: None,
        media: Vec::new(),
    };
    let mut seen_version = false;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |problem| SdpError::Malformed {
            line: number,
            problem,
        };
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' {
            if !seen_version {
                return Err(SdpError::MissingVersion);
            }
            return Err(malformed("not a <type>=<value> line"));
        }
        let kind = bytes[0];
        // Byte 1 is the ASCII '=', so byte 2 starts a character.
        let value = &line[2..];
        if !seen_version {
            if kind != b'v' || value.trim() != "0" {
                return Err(SdpError::MissingVersion);
            }
            seen_version = true;
            continue;
        }
        match kind {
            b'o' => session.origin = Some(parse_origin(value).ok_or(malformed("bad o= line"))?),
            b's' => session.session_name = Some(value.to_string()),
            b't' => session.timing = Some(parse_timing(value).ok_or(malformed("bad t= line"))?),
            b'c' => {
                let address = parse_connection(value).map_err(malformed)?;
                match session.media.last_mut() {
                    Some(media) => media.connection = Some(address),
                    None => session.connection = Some(address),
                }
            }
            b'm' => session.media.push(parse_media(value).map_err(malformed)?),
            b'a' => apply_attribute(&mut session, value),
            // b=, i=, u=, e=, p=, z=, k=, r= and anything newer: not needed.
            _ => {}
        }
    }
    if !seen_version {
        return Err(SdpError::MissingVersion);
    }
    for (index, media) in session.media.iter().enumerate() {
        if media.port != 0 && session.connection_of(media).is_none() {
            return Err(SdpError::MissingConnection { index });
        }
    }
    Ok(session)
}

fn parse_origin(value: &str) -> Option<Origin> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    match fields.as_slice() {
        [username, session_id, version, _net, _addr_type, address] => Some(Origin {
            username: username.to_string(),
            session_id: session_id.to_string(),
            version: version.to_string(),
            address: address.to_string(),
        }),
        _ => None,
    }
}

fn parse_timing(value: &str) -> Option<(u64, u64)> {
    let mut fields = value.split_whitespace();
    let start = fields.next()?.parse().ok()?;
    let stop = fields.next()?.parse().ok()?;
    fields.next().is_none().then_some((start, stop))
}

/// `c=IN IP4 192.0.2.1[/ttl[/count]]` (RFC 4566 5.7). A host name is
/// refused: resolving it would be I/O, and no PBX sends one.
fn parse_connection(value: &str) -> Result<IpAddr, &'static str> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [net, addr_type, address] = fields.as_slice() else {
        return Err("c= needs three fields");
    };
    if !net.eq_ignore_ascii_case("IN") {
        return Err("c= network type is not IN");
    }
    let address = address.split('/').next().unwrap_or(address);
    let ip: IpAddr = address
        .parse()
        .map_err(|_| "c= address is not a literal IP address")?;
    match (addr_type.to_ascii_uppercase().as_str(), ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        ("IP4", _) | ("IP6", _) => Err("c= address does not match its address type"),
        _ => Err("c= address type is neither IP4 nor IP6"),
    }
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...` (RFC 4566 5.14).
fn parse_media(value: &str) -> Result<Media, &'static str> {
    let mut fields = value.split_whitespace();
    let kind = fields.next().ok_or("m= line is empty")?;
    let port = fields.next().ok_or("m= line has no port")?;
    let protocol = fields.next().ok_or("m= line has no protocol")?;
    let formats: Vec<String> = fields.map(str::to_string).collect();
    if formats.is_empty() {
        return Err("m= line has no formats");
    }
    let port: u16 = port
        .split('/')
        .next()
        .unwrap_or(port)
        .parse()
        .map_err(|_| "m= port is not a number 0-65535")?;
    // RFC 3551 3: RTP payload types are 7 bits.
    let rtp = protocol.to_ascii_uppercase().starts_with("RTP/");
    if rtp
        && formats
            .iter()
            .any(|f| f.parse::<u8>().map_or(true, |pt| pt > 127))
    {
        return Err("m= payload type is not a number 0-127");
    }
    Ok(Media::new(
        kind.to_string(),
        port,
        protocol.to_string(),
        formats,
    ))
}

/// Applies one `a=` line at session or media level. A value that cannot be
/// read is skipped: a peer's odd attribute for a codec we do not use must
/// not fail the call, and without it the static defaults apply.
fn apply_attribute(session: &mut SessionDescription, value: &str) {
    let (name, argument) = match value.split_once(':') {
        Some((name, argument)) => (name.trim(), Some(argument.trim())),
        None => (value.trim(), None),
    };
    if let Some(direction) = Direction::from_attribute(name) {
        match session.media.last_mut() {
            Some(media) => media.direction = Some(direction),
            None => session.direction = Some(direction),
        }
        return;
    }
    match (name, argument.unwrap_or("")) {
        ("ptime", argument) => {
            if let Some(ptime) = parse_ptime(argument) {
                match session.media.last_mut() {
                    Some(media) => media.ptime = Some(ptime),
                    None => session.ptime = Some(ptime),
                }
            }
        }
        ("rtpmap", argument) => {
            if let (Some(map), Some(media)) = (parse_rtpmap(argument), session.media.last_mut()) {
                media.rtpmaps.push(map);
            }
        }
        ("fmtp", argument) => {
            let (format, parameters) = argument
                .split_once(char::is_whitespace)
                .unwrap_or((argument, ""));
            if let Some(media) = session.media.last_mut() {
                media.fmtps.push(Fmtp {
                    format: format.to_string(),
                    parameters: parameters.trim().to_string(),
                });
            }
        }
        _ => {}
    }
}

/// RFC 4566 6 defines ptime as an integer, but `20.0` is seen in the wild.
fn parse_ptime(argument: &str) -> Option<u32> {
    let whole = argument.split('.').next()?;
    whole.parse().ok().filter(|&ms| ms > 0)
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`.
fn parse_rtpmap(argument: &str) -> Option<RtpMap> {
    let (payload_type, encoding) = argument.split_once(char::is_whitespace)?;
    let payload_type: u8 = payload_type.parse().ok().filter(|&pt| pt <= 127)?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let clock_rate = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(c) => Some(c.trim().parse().ok()?),
        None => None,
    };
    Some(RtpMap {
        payload_type,
        encoding: name.to_string(),
        clock_rate,
        channels,
    })
}

/// The stream we would run for `media`, if it is usable: `None` when it is
/// not plain RTP audio or offers no G.711.
fn negotiate(session: &SessionDescription, media: &Media) -> Option<MediaDescription> {
    if !media.is_plain_rtp_audio() {
        return None;
    }
    let (codec, payload_type) = media.first_codec()?;
    let address = session.connection_of(media)?;
    Some(MediaDescription {
        remote_addr: SocketAddr::new(address, media.port),
        codec,
        payload_type,
        dtmf_payload_type: media.telephone_event(),
        direction: session.direction_of(media).reversed(),
        ptime: media.ptime.or(session.ptime).unwrap_or(PTIME_MS),
    })
}

/// Answers an offer (RFC 3264 6): accepts the first audio stream that
/// offers PCMU or PCMA, with the first of them in the offer's order and
/// telephone-event if offered; mirrors its direction; rejects every other
/// `m=` line with port 0, keeping the offer's order and line count.
pub fn answer(
    offer: &SessionDescription,
    local_ip: IpAddr,
    local_port: u16,
    session_id: u64,
    version: u64,
) -> Result<Answer, SdpError> {
    let (chosen, media) = offer
        .media
        .iter()
        .enumerate()
        .find_map(|(index, m)| negotiate(offer, m).map(|d| (index, d)))
        .ok_or(SdpError::NoCommonCodec)?;
    let mut sdp = session_header(local_ip, session_id, version);
    for (index, offered) in offer.media.iter().enumerate() {
        if index == chosen {
            let events = media
                .dtmf_payload_type
                .map(|pt| (pt, offered.fmtp(pt).unwrap_or(TELEPHONE_EVENTS)));
            write_audio(
                &mut sdp,
                local_port,
                media.codec,
                media.payload_type,
                events,
                media.direction,
            );
        } else {
            // RFC 3264 6: a rejected stream keeps its media type, protocol
            // and formats, with port 0.
            let _ = write!(
                sdp,
                "m={} 0 {} {}\r\n",
                offered.kind,
                offered.protocol,
                offered.formats.join(" ")
            );
        }
    }
    Ok(Answer { sdp, media })
}

/// Builds our offer for an outgoing call or a re-INVITE: PCMU, PCMA and
/// telephone-event on payload type 101, 20 ms. `direction` is ours:
/// [`Direction::SendOnly`] puts the peer on hold (RFC 3264 8.4).
pub fn offer(
    local_ip: IpAddr,
    local_port: u16,
    session_id: u64,
    version: u64,
    direction: Direction,
) -> String {
    let mut sdp = session_header(local_ip, session_id, version);
    let _ = write!(
        sdp,
        "m=audio {local_port} RTP/AVP 0 8 {te}\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{te} telephone-event/8000\r\n\
         a=fmtp:{te} {TELEPHONE_EVENTS}\r\n\
         a=ptime:{PTIME_MS}\r\n\
         a={}\r\n",
        direction.attribute(),
        te = TELEPHONE_EVENT_PAYLOAD_TYPE,
    );
    sdp
}

/// Reads the peer's answer to our [`offer`]: the first usable audio stream
/// it accepted (RFC 3264 7).
pub fn accept_answer(answer: &SessionDescription) -> Result<MediaDescription, SdpError> {
    answer
        .media
        .iter()
        .find_map(|m| negotiate(answer, m))
        .ok_or(SdpError::NoCommonCodec)
}

fn session_header(local_ip: IpAddr, session_id: u64, version: u64) -> String {
    let addr_type = match local_ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    format!(
        "v=0\r\n\
         o=switchboard {session_id} {version} IN {addr_type} {local_ip}\r\n\
         s=-\r\n\
         c=IN {addr_type} {local_ip}\r\n\
         t=0 0\r\n"
    )
}

fn write_audio(
    sdp: &mut String,
    port: u16,
    codec: Codec,
    payload_type: u8,
    events: Option<(u8, &str)>,
    direction: Direction,
) {
    let _ = write!(sdp, "m=audio {port} RTP/AVP {payload_type}");
    if let Some((te, _)) = events {
        let _ = write!(sdp, " {te}");
    }
    let _ = write!(
        sdp,
        "\r\na=rtpmap:{payload_type} {}/8000\r\n",
        codec.encoding_name()
    );
    if let Some((te, parameters)) = events {
        let _ = write!(
            sdp,
            "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} {parameters}\r\n"
        );
    }
    let _ = write!(sdp, "a=ptime:{PTIME_MS}\r\na={}\r\n", direction.attribute());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50));

    fn crlf(text: &str) -> String {
        text.lines().map(|l| format!("{l}\r\n")).collect()
    }

    fn answer_of(offer_text: &str) -> Result<Answer, SdpError> {
        let offer = parse(offer_text.as_bytes())?;
        answer(&offer, LOCAL, 40000, 7, 1)
    }

    /// Asterisk (chan_pjsip) initial INVITE.
    const ASTERISK: &str = "v=0
o=- 1912306338 1912306338 IN IP4 192.168.1.10
s=Asterisk
c=IN IP4 192.168.1.10
t=0 0
m=audio 17056 RTP/AVP 0 8 3 111 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:3 GSM/8000
a=rtpmap:111 G726-32/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
";

    /// FreeSWITCH, preferring G.722 then A-law, telephone-event on 96.
    const FREESWITCH: &str = "v=0
o=FreeSWITCH 1700000000 1700000001 IN IP4 10.0.0.5
s=FreeSWITCH
c=IN IP4 10.0.0.5
t=0 0
m=audio 24580 RTP/AVP 9 8 0 102 96 13
a=rtpmap:9 G722/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:102 opus/48000/2
a=fmtp:102 useinbandfec=1; maxplaybackrate=48000
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-16
a=rtpmap:13 CN/8000
a=ptime:20
";

    /// baresip with Opus first, a bandwidth line and RTCP attributes.
    const BARESIP: &str = "v=0
o=- 1437616813 2043467330 IN IP4 192.168.0.42
s=-
c=IN IP4 192.168.0.42
t=0 0
m=audio 10690 RTP/AVP 96 9 0 8 100
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:100 telephone-event/8000
a=fmtp:100 0-15
a=rtcp-rsize
a=sendrecv
a=label:1
a=ssrc:2203391203 cname:5f2b8c1e-7a4d
";

    /// A SIPp uac scenario: A-law only, LF line endings, no session name.
    const SIPP: &str = "v=0\no=user1 53655765 2353687637 IN IP4 127.0.0.1\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 6000 RTP/AVP 8 101\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-11,16\n";

    #[test]
    fn asterisk_offer_gets_pcmu_and_telephone_event() {
        let answer = answer_of(&crlf(ASTERISK)).unwrap();
        assert_eq!(
            answer.media,
            MediaDescription {
                remote_addr: "192.168.1.10:17056".parse().unwrap(),
                codec: Codec::Pcmu,
                payload_type: 0,
                dtmf_payload_type: Some(101),
                direction: Direction::SendRecv,
                ptime: 20,
            }
        );
        assert_eq!(
            answer.sdp,
            "v=0\r\n\
             o=switchboard 7 1 IN IP4 192.0.2.50\r\n\
             s=-\r\n\
             c=IN IP4 192.0.2.50\r\n\
             t=0 0\r\n\
             m=audio 40000 RTP/AVP 0 101\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-16\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n"
        );
    }

    #[test]
    fn freeswitch_offer_gets_pcma_in_offer_order_and_its_event_payload_type() {
        let answer = answer_of(&crlf(FREESWITCH)).unwrap();
        assert_eq!(answer.media.codec, Codec::Pcma);
        assert_eq!(answer.media.payload_type, 8);
        assert_eq!(answer.media.dtmf_payload_type, Some(96));
        assert_eq!(answer.media.remote_addr, "10.0.0.5:24580".parse().unwrap());
        assert!(answer.sdp.contains("m=audio 40000 RTP/AVP 8 96\r\n"));
        assert!(answer.sdp.contains("a=rtpmap:8 PCMA/8000\r\n"));
        assert!(answer.sdp.contains("a=rtpmap:96 telephone-event/8000\r\n"));
        assert!(!answer.sdp.contains("G722"));
    }

    #[test]
    fn baresip_offer_skips_opus_and_g722() {
        let answer = answer_of(&crlf(BARESIP)).unwrap();
        assert_eq!(answer.media.codec, Codec::Pcmu);
        assert_eq!(answer.media.dtmf_payload_type, Some(100));
        // The offer's event range is echoed for its payload type.
        assert!(answer.sdp.contains("a=fmtp:100 0-15\r\n"));
        assert!(answer.sdp.contains("m=audio 40000 RTP/AVP 0 100\r\n"));
    }

    #[test]
    fn sipp_offer_with_lf_endings_parses_and_answer_uses_crlf() {
        let answer = answer_of(SIPP).unwrap();
        assert_eq!(answer.media.codec, Codec::Pcma);
        assert_eq!(answer.media.remote_addr, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(answer.media.dtmf_payload_type, Some(101));
        assert!(answer.sdp.ends_with("\r\n"));
        assert!(!answer.sdp.replace("\r\n", "").contains('\n'));
        assert!(!answer.sdp.replace("\r\n", "").contains('\r'));
    }

    #[test]
    fn g729_only_offer_has_no_common_codec() {
        let offer = crlf(
            "v=0
o=- 1 1 IN IP4 10.1.1.1
s=-
c=IN IP4 10.1.1.1
t=0 0
m=audio 5004 RTP/AVP 18 101
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
",
        );
        assert_eq!(answer_of(&offer), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn srtp_only_audio_has_no_common_codec() {
        let offer = crlf(
            "v=0
o=- 1 1 IN IP4 10.1.1.1
s=-
c=IN IP4 10.1.1.1
t=0 0
m=audio 5004 RTP/SAVP 0 8
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR
",
        );
        assert_eq!(answer_of(&offer), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn audio_and_video_offer_rejects_video_with_port_zero_in_order() {
        // The body of RFC 4475's torture messages, video first to check order.
        let offer = crlf(
            "v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.5
s=-
c=IN IP4 192.0.2.5
t=0 0
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
m=audio 49217 RTP/AVP 0 12
",
        );
        let answer = answer_of(&offer).unwrap();
        let m_lines: Vec<&str> = answer.sdp.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(m_lines, ["m=video 0 RTP/AVP 31", "m=audio 40000 RTP/AVP 0"]);
        assert_eq!(answer.media.remote_addr, "192.0.2.5:49217".parse().unwrap());
        assert_eq!(answer.media.dtmf_payload_type, None);
        assert!(!answer.sdp.contains("telephone-event"));
    }

    #[test]
    fn second_audio_stream_is_rejected_and_first_usable_one_wins() {
        let offer = crlf(
            "v=0
o=- 1 1 IN IP4 10.1.1.1
s=-
c=IN IP4 10.1.1.1
t=0 0
m=audio 5004 RTP/AVP 18
m=audio 5006 RTP/AVP 8
m=audio 5008 RTP/AVP 0
",
        );
        let answer = answer_of(&offer).unwrap();
        let m_lines: Vec<&str> = answer.sdp.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            m_lines,
            [
                "m=audio 0 RTP/AVP 18",
                "m=audio 40000 RTP/AVP 8",
                "m=audio 0 RTP/AVP 0"
            ]
        );
        assert_eq!(answer.media.remote_addr.port(), 5006);
    }

    #[test]
    fn sendonly_hold_is_answered_recvonly() {
        let offer = crlf(&ASTERISK.replace("a=sendrecv", "a=sendonly"));
        let parsed = parse(offer.as_bytes()).unwrap();
        assert!(parsed.is_hold());
        let answer = answer(&parsed, LOCAL, 40000, 7, 2).unwrap();
        assert_eq!(answer.media.direction, Direction::RecvOnly);
        assert!(answer.sdp.contains("a=recvonly\r\n"));
        assert!(answer.sdp.contains("o=switchboard 7 2 "));
    }

    #[test]
    fn inactive_hold_is_answered_inactive() {
        let offer = crlf(&ASTERISK.replace("a=sendrecv", "a=inactive"));
        let parsed = parse(offer.as_bytes()).unwrap();
        assert!(parsed.is_hold());
        let answer = answer(&parsed, LOCAL, 40000, 7, 2).unwrap();
        assert_eq!(answer.media.direction, Direction::Inactive);
        assert!(answer.sdp.contains("a=inactive\r\n"));
    }

    #[test]
    fn session_level_direction_applies_unless_media_level_overrides() {
        let session_level = crlf(
            "v=0
o=- 1 1 IN IP4 10.1.1.1
s=-
c=IN IP4 10.1.1.1
t=0 0
a=sendonly
m=audio 5004 RTP/AVP 0
",
        );
        assert!(parse(session_level.as_bytes()).unwrap().is_hold());
        let overridden = session_level.replace("RTP/AVP 0\r\n", "RTP/AVP 0\r\na=sendrecv\r\n");
        let parsed = parse(overridden.as_bytes()).unwrap();
        assert!(!parsed.is_hold());
        assert_eq!(
            answer(&parsed, LOCAL, 1, 1, 1).unwrap().media.direction,
            Direction::SendRecv
        );
    }

    #[test]
    fn rfc2543_hold_with_zero_address_is_hold() {
        let offer = crlf(
            "v=0
o=- 1 2 IN IP4 10.1.1.1
s=-
c=IN IP4 0.0.0.0
t=0 0
m=audio 5004 RTP/AVP 0
",
        );
        let parsed = parse(offer.as_bytes()).unwrap();
        assert!(parsed.is_hold());
        let answer = answer(&parsed, LOCAL, 40000, 7, 3).unwrap();
        assert!(answer.media.remote_addr.ip().is_unspecified());
        assert_eq!(answer.media.direction, Direction::RecvOnly);
        assert!(!answer.media.direction.sends());
    }

    #[test]
    fn resume_after_hold_is_not_hold() {
        let parsed = parse(crlf(ASTERISK).as_bytes()).unwrap();
        assert!(!parsed.is_hold());
    }

    #[test]
    fn media_level_connection_overrides_session_level() {
        let offer = crlf(
            "v=0
o=- 1 1 IN IP4 10.1.1.1
s=-
c=IN IP4 10.1.1.1
t=0 0
m=audio 5004 RTP/AVP 0
c=IN IP4 10.9.9.9
",
        );
        let answer = answer_of(&offer).unwrap();
        assert_eq!(answer.media.remote_addr, "10.9.9.9:5004".parse().unwrap());
    }

    #[test]
    fn ipv6_offer_is_accepted_and_answer_uses_ip6() {
        let offer = crlf(
            "v=0
o=- 1 1 IN IP6 2001:db8::1
s=-
c=IN IP6 2001:db8::1
t=0 0
m=audio 5004 RTP/AVP 8
",
        );
        let parsed = parse(offer.as_bytes()).unwrap();
        let local = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
        let answer = answer(&parsed, local, 40000, 1, 1).unwrap();
        assert_eq!(
            answer.media.remote_addr,
            "[2001:db8::1]:5004".parse().unwrap()
        );
        assert!(answer.sdp.contains("c=IN IP6 2001:db8::2\r\n"));
    }

    #[test]
    fn dynamic_payload_type_for_pcmu_is_kept() {
        let offer = crlf(
            "v=0
o=- 1 1 IN IP4 10.1.1.1
s=-
c=IN IP4 10.1.1.1
t=0 0
m=audio 5004 RTP/AVP 98
a=rtpmap:98 pcmu/8000/1
",
        );
        let answer = answer_of(&offer).unwrap();
        assert_eq!(
            (answer.media.codec, answer.media.payload_type),
            (Codec::Pcmu, 98)
        );
        assert!(answer.sdp.contains("a=rtpmap:98 PCMU/8000\r\n"));
    }

    #[test]
    fn peer_ptime_is_reported() {
        let offer = crlf(&ASTERISK.replace("a=ptime:20", "a=ptime:30"));
        assert_eq!(answer_of(&offer).unwrap().media.ptime, 30);
        let without = crlf(&ASTERISK.replace("a=ptime:20\n", ""));
        assert_eq!(answer_of(&without).unwrap().media.ptime, PTIME_MS);
    }

    #[test]
    fn our_offer_round_trips_through_the_parser() {
        let text = offer(LOCAL, 30000, 42, 1, Direction::SendRecv);
        assert_eq!(
            text,
            "v=0\r\n\
             o=switchboard 42 1 IN IP4 192.0.2.50\r\n\
             s=-\r\n\
             c=IN IP4 192.0.2.50\r\n\
             t=0 0\r\n\
             m=audio 30000 RTP/AVP 0 8 101\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-16\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n"
        );
        // A peer that answers our offer by the same rules picks PCMU.
        let parsed = parse(text.as_bytes()).unwrap();
        let peer = answer(&parsed, "198.51.100.7".parse().unwrap(), 7000, 9, 1).unwrap();
        let media = accept_answer(&parse(peer.sdp.as_bytes()).unwrap()).unwrap();
        assert_eq!(media.remote_addr, "198.51.100.7:7000".parse().unwrap());
        assert_eq!(media.codec, Codec::Pcmu);
        assert_eq!(media.dtmf_payload_type, Some(101));
        assert_eq!(media.direction, Direction::SendRecv);
    }

    #[test]
    fn hold_offer_from_us_is_sendonly() {
        let text = offer(LOCAL, 30000, 42, 2, Direction::SendOnly);
        let parsed = parse(text.as_bytes()).unwrap();
        assert!(parsed.is_hold());
    }

    #[test]
    fn answer_that_rejects_audio_is_no_common_codec() {
        let peer = crlf(
            "v=0
o=- 1 1 IN IP4 10.1.1.1
s=-
c=IN IP4 10.1.1.1
t=0 0
m=audio 0 RTP/AVP 0
",
        );
        let parsed = parse(peer.as_bytes()).unwrap();
        assert_eq!(accept_answer(&parsed), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn malformed_descriptions_are_errors() {
        let base = crlf(ASTERISK);
        let cases: [(String, SdpError); 7] = [
            ("hello".to_string(), SdpError::MissingVersion),
            (String::new(), SdpError::MissingVersion),
            (base.replace("v=0", "v=1"), SdpError::MissingVersion),
            (
                base.replace("m=audio 17056", "m=audio 70000"),
                SdpError::Malformed {
                    line: 6,
                    problem: "m= port is not a number 0-65535",
                },
            ),
            (
                base.replace("c=IN IP4 192.168.1.10", "c=IN IP4 pbx.example.com"),
                SdpError::Malformed {
                    line: 4,
                    problem: "c= address is not a literal IP address",
                },
            ),
            (
                base.replace("c=IN IP4 192.168.1.10\r\n", ""),
                SdpError::MissingConnection { index: 0 },
            ),
            (
                base.replace("a=ptime:20", "a ptime 20"),
                SdpError::Malformed {
                    line: 13,
                    problem: "not a <type>=<value> line",
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text.as_bytes()), Err(expected), "{text:?}");
        }
        let bad_rtp = base.replace("RTP/AVP 0 8", "RTP/AVP 0 300");
        assert!(matches!(
            parse(bad_rtp.as_bytes()),
            Err(SdpError::Malformed { line: 6, .. })
        ));
    }

    #[test]
    fn unknown_lines_and_attributes_are_ignored() {
        let offer = crlf(&format!(
            "{}b=AS:64\ni=a session\nz=0 0\na=x-unknown:42\na=rtcp:17057 IN IP4 192.168.1.10\n",
            ASTERISK
        ));
        assert_eq!(answer_of(&offer).unwrap().media.codec, Codec::Pcmu);
    }

    #[test]
    fn truncated_and_random_input_never_panics() {
        let offers = [
            crlf(ASTERISK),
            crlf(FREESWITCH),
            crlf(BARESIP),
            SIPP.to_string(),
        ];
        for text in &offers {
            for end in 0..=text.len() {
                if let Ok(parsed) = parse(&text.as_bytes()[..end]) {
                    let _ = answer(&parsed, LOCAL, 1, 1, 1);
                    let _ = accept_answer(&parsed);
                }
            }
        }
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for round in 0..2000 {
            let mut bytes = b"v=0\r\n".to_vec();
            for _ in 0..(round % 300) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Bias towards SDP-like bytes so the parser goes deep.
                let alphabet = b"vocmta=:/ \r\n0123456789INP4RTAV.-";
                let byte = if state % 4 == 0 {
                    (state >> 8) as u8
                } else {
                    alphabet[(state >> 8) as usize % alphabet.len()]
                };
                bytes.push(byte);
            }
            if let Ok(parsed) = parse(&bytes) {
                let _ = answer(&parsed, LOCAL, 1, 1, 1);
            }
        }
    }
}
