//! The TCP listener under rsipstack, with every message screened
//! (`screen.rs`: [`crate::sip::validate::check`]) before the stack sees it,
//! as on UDP.
//!
//! rsipstack's own TCP listener frames the stream with a codec that parses
//! each message itself and drops, without a word, what its parser refuses.
//! So the agent accepts TCP connections here instead:
//!
//! 1. [`Framer`], a core without I/O, cuts the byte stream into messages by
//!    Content-Length (RFC 3261 18.3), across partial reads and pipelined
//!    messages. Line breaks before a start line are skipped (RFC 3261 7.5);
//!    CRLFCRLF is a keep-alive ping, answered CRLF (RFC 5626 3.5.1).
//! 2. Each message is screened: a malformed request is answered on the same
//!    connection, which stays open; a well-formed message goes to the stack
//!    as rsipstack's own TCP connection would hand it on: a
//!    [`TransportEvent::Incoming`] carrying a [`TcpConnection`] whose write
//!    half is this socket's, so the stack's responses and in-dialog
//!    requests (flow reuse, RFC 5626) go out on it.
//! 3. A stream that cannot be framed any further (no Content-Length, one
//!    that is not a number, two that disagree, or a message beyond
//!    [`MAX_MESSAGE`]) gets 400 (513 for the size) and is closed: nothing
//!    after it can be told apart (RFC 3261 18.3). When the peer closes its
//!    side, what is left unframed is judged as it stands (e.g. a
//!    Content-Length larger than what was sent gets 400). Either way the
//!    connection stays open [`CLOSE_GRACE`] longer, for the stack's answers
//!    to the messages before.
//!
//! The hook into the stack: rsipstack offers no public sender for
//! transport events, but it serves a [`ChannelConnection`] added to its
//! connection table by forwarding every event put into its channel. One
//! such channel, whose address is our TCP address, carries the events of
//! all accepted connections; it is also registered as a listener so our
//! TCP address is among the stack's own addresses (Via, Contact) as
//! rsipstack's listener was. Nothing is ever sent on the channel itself:
//! a request the stack would send to our own TCP address fails instead of
//! looping back.
//!
//! Connections the agent opens itself (to a PBX over TCP) are rsipstack's
//! and framed by it; only what peers send to our listener is screened.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip::Transport;
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::connection::TransportSender;
use rsipstack::transport::stream::{StreamConnection, StreamConnectionInner};
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportEvent, TransportLayer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::log::log_line;
use super::screen::{refuse, screen, Refusal, Screened};
use super::CancellationToken;

/// The largest message accepted on a stream, header section and body: the
/// bound on what one connection buffers. rsipstack's own limit.
pub(crate) const MAX_MESSAGE: usize = 65_535;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// How long a connection that is done with (the peer closed its side, or
/// the stream broke) stays open for the answers still on their way.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// RFC 5626 3.5.1: a ping is a double CRLF, its pong a single one.
const PING: &[u8] = b"\r\n\r\n";
const PONG: &[u8] = b"\r\n";

/// One unit cut from a stream by [`Framer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A keep-alive ping: answer [`PONG`].
    Ping,
    /// One message: its header section and Content-Length octets of body.
    Message(Vec<u8>),
    /// The stream cannot be cut any further: answer `status` if `message`
    /// (everything buffered, starting with the offending header section) is
    /// a request, then close.
    Unframeable {
        message: Vec<u8>,
        status: u16,
        reason: String,
    },
}

/// Cuts a SIP byte stream into messages (RFC 3261 18.3). A core without
/// I/O: bytes go in with [`Framer::handle_bytes`], frames come out of
/// [`Framer::poll_frame`] until it returns `None`; at the end of the
/// stream [`Framer::finish`] returns what is left.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    buffer: Vec<u8>,
    /// Where the search for the end of the header section resumes: the
    /// start of the first line not yet seen whole.
    scanned: usize,
    /// The length of the message at the head of the buffer, once its
    /// header section is complete.
    message_len: Option<usize>,
    /// An [`Frame::Unframeable`] was returned: nothing more comes out.
    broken: bool,
}

impl Framer {
    /// Appends bytes read from the stream.
    pub(crate) fn handle_bytes(&mut self, bytes: &[u8]) {
        if !self.broken {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// The next complete frame, or `None` until more bytes arrive.
    pub(crate) fn poll_frame(&mut self) -> Option<Frame> {
        if self.broken {
            return None;
        }
        if self.message_len.is_none() {
            if self.skip_line_breaks()? {
                return Some(Frame::Ping);
            }
            match self.header_section_end() {
                Some(end) => match content_length(&self.buffer[..end]) {
                    Ok(body) if end.saturating_add(body) <= MAX_MESSAGE => {
                        self.message_len = Some(end + body);
                    }
                    Ok(body) => {
                        return Some(self.unframeable(
                            513,
                            format!(
                                "message of {} octets exceeds the {MAX_MESSAGE} accepted on a stream (RFC 3261 21.5.9)",
                                end.saturating_add(body)
                            ),
                        ))
                    }
                    Err(reason) => return Some(self.unframeable(400, reason)),
                },
                None if self.buffer.len() > MAX_MESSAGE => {
                    return Some(self.unframeable(
                        513,
                        format!(
                            "no end of the header section within {MAX_MESSAGE} octets (RFC 3261 21.5.9)"
                        ),
                    ))
                }
                None => return None,
            }
        }
        let len = self.message_len?;
        if self.buffer.len() < len {
            return None;
        }
        let rest = self.buffer.split_off(len);
        let message = std::mem::replace(&mut self.buffer, rest);
        self.scanned = 0;
        self.message_len = None;
        Some(Frame::Message(message))
    }

    /// At the end of the stream: the bytes of an unfinished message, if
    /// anything but line breaks is left.
    pub(crate) fn finish(&mut self) -> Option<Vec<u8>> {
        if self.broken {
            return None;
        }
        let start = self.buffer.iter().position(|&b| b != b'\r' && b != b'\n')?;
        self.scanned = 0;
        self.message_len = None;
        Some(self.buffer.split_off(start))
    }

    /// Drops line breaks before a start line (RFC 3261 7.5). `Some(true)`
    /// when a ping was taken off the buffer, `Some(false)` when a start
    /// line is next, `None` when only (part of) a ping is buffered.
    fn skip_line_breaks(&mut self) -> Option<bool> {
        let mut at = 0;
        let found_ping = loop {
            let rest = &self.buffer[at..];
            if rest.starts_with(PING) {
                at += PING.len();
                break true;
            }
            if PING.starts_with(rest) {
                // Empty, or a ping may be arriving.
                self.buffer.drain(..at);
                return None;
            }
            match rest[0] {
                b'\r' | b'\n' => at += 1,
                _ => break false,
            }
        };
        self.buffer.drain(..at);
        Some(found_ping)
    }

    /// The end of the header section (just past its empty line) if it has
    /// arrived. Lines end in LF, with or without CR, as `validate` reads
    /// them.
    fn header_section_end(&mut self) -> Option<usize> {
        while let Some(lf) = self.buffer[self.scanned..].iter().position(|&b| b == b'\n') {
            let line = &self.buffer[self.scanned..self.scanned + lf];
            let empty = line.is_empty() || line == b"\r";
            self.scanned += lf + 1;
            if empty {
                return Some(self.scanned);
            }
        }
        None
    }

    fn unframeable(&mut self, status: u16, reason: String) -> Frame {
        self.broken = true;
        Frame::Unframeable {
            message: std::mem::take(&mut self.buffer),
            status,
            reason,
        }
    }
}

/// The body length a header section declares, or why the stream cannot be
/// framed by it.
fn content_length(header: &[u8]) -> Result<usize, String> {
    let text = String::from_utf8_lossy(header);
    let mut lines = text.lines().skip(1);
    let mut values: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    // Header fields with their continuation lines joined (RFC 3261 7.3.1).
    loop {
        let line = lines.next().map(|l| l.trim_end_matches('\r'));
        if let Some(continued) = line.filter(|l| l.starts_with([' ', '\t'])) {
            if let Some(value) = current.as_mut() {
                value.push(' ');
                value.push_str(continued.trim());
            }
            continue;
        }
        values.extend(current.take());
        let Some(line) = line.filter(|l| !l.is_empty()) else {
            break;
        };
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim_end_matches([' ', '\t']);
            // RFC 3261 7.3.3: `l` is the compact form.
            if name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l") {
                current = Some(value.trim().to_string());
            }
        }
    }
    let mut lengths = values.iter().map(|value| {
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "Content-Length {value:?} is not a number of octets; the stream cannot be framed (RFC 3261 18.3)"
            ));
        }
        // Leading zeros are allowed; a value too large for usize is
        // certainly beyond MAX_MESSAGE.
        Ok(value.parse::<usize>().unwrap_or(usize::MAX))
    });
    let Some(first) = lengths.next() else {
        return Err(
            "no Content-Length, which a stream needs to find the end of the message (RFC 3261 18.3, 20.14)"
                .to_string(),
        );
    };
    let first = first?;
    for other in lengths {
        let other = other?;
        if other != first {
            return Err(format!(
                "Content-Length given twice, {first} and {other}; the stream cannot be framed (RFC 3261 18.3)"
            ));
        }
    }
    Ok(first)
}

/// Accepts TCP connections on `listener` and screens what they carry, as
/// described in the module documentation, until `cancel` fires. `addr` is
/// our TCP address as peers see it; `transport_layer` is the stack's.
pub(crate) async fn attach(
    listener: std::net::TcpListener,
    addr: SipAddr,
    transport_layer: &TransportLayer,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let (events, channel_events) = tokio::sync::mpsc::unbounded_channel();
    // The channel's own sends (the stack sending to our own TCP address)
    // go nowhere: its receiver is dropped here.
    let (nowhere, _) = tokio::sync::mpsc::unbounded_channel();
    let channel = ChannelConnection::create_connection(
        channel_events,
        nowhere,
        addr.clone(),
        Some(cancel.clone()),
    )
    .await
    .map_err(std::io::Error::other)?;
    transport_layer.add_transport(channel.clone().into());
    transport_layer.add_connection(channel.into());
    let idle_timeout = transport_layer.stream_idle_timeout();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, remote)) => {
                    tokio::spawn(serve_connection(
                        stream,
                        remote,
                        addr.clone(),
                        events.clone(),
                        idle_timeout,
                        cancel.child_token(),
                    ));
                }
                Err(error) => {
                    // e.g. out of file descriptors: the listener stays.
                    log_line(format_args!("TCP accept on {addr} failed: {error}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(())
}

/// Reads one accepted connection until the peer closes it, it idles for
/// `idle_timeout` (zero: never), it cannot be framed, or `cancel` fires;
/// in the first and third cases it closes after [`CLOSE_GRACE`].
async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    local: SipAddr,
    events: TransportSender,
    idle_timeout: Duration,
    cancel: CancellationToken,
) {
    let remote_addr = SipAddr {
        r#type: Some(Transport::Tcp),
        addr: remote.into(),
    };
    let (mut reader, writer) = tokio::io::split(stream);
    // The stack's handle on this connection writes to our socket; it never
    // reads (we do), so its read half stays empty.
    let connection = TcpConnection {
        inner: Arc::new(StreamConnectionInner {
            local_addr: local,
            remote_addr: remote_addr.clone(),
            read_half: tokio::sync::Mutex::new(None),
            write_half: tokio::sync::Mutex::new(writer),
        }),
        // Cancelled when the connection ends, so dialogs stop reusing it.
        cancel_token: Some(cancel.clone()),
    };
    let link = Link {
        connection: SipConnection::Tcp(connection.clone()),
        stream: &connection,
        remote,
        remote_addr,
        events,
    };
    let mut framer = Framer::default();
    let mut chunk = vec![0; READ_CHUNK];
    let linger = 'read: loop {
        let read = tokio::select! {
            _ = cancel.cancelled() => break false,
            read = read_bounded(&mut reader, &mut chunk, idle_timeout) => read,
        };
        let len = match read {
            Some(Ok(0)) => {
                // The peer has closed its side; ours can still answer.
                if let Some(rest) = framer.finish() {
                    link.handle_message(&rest).await;
                }
                break true;
            }
            Some(Ok(len)) => len,
            Some(Err(_)) | None => break false,
        };
        framer.handle_bytes(&chunk[..len]);
        while let Some(frame) = framer.poll_frame() {
            match frame {
                Frame::Ping => {
                    if link.stream.send_raw(PONG).await.is_err() {
                        break 'read false;
                    }
                }
                Frame::Message(message) => {
                    if !link.handle_message(&message).await {
                        break 'read false;
                    }
                }
                Frame::Unframeable {
                    message,
                    status,
                    reason,
                } => {
                    let refusal = Refusal {
                        status,
                        reason: &format!("{reason}; connection closed"),
                        allow: false,
                    };
                    let what = if message.starts_with(b"SIP/") {
                        "message"
                    } else {
                        "request"
                    };
                    if let Screened::Answer(response) =
                        refuse(&message, refusal, what, remote, Transport::Tcp)
                    {
                        let _ = link.stream.send_raw(&response).await;
                    }
                    break 'read true;
                }
            }
        }
    };
    if linger {
        // The stack answers what it was handed asynchronously: give those
        // answers CLOSE_GRACE to go out before the connection closes.
        // What the peer still sends is read and discarded, so closing does
        // not reset the connection under the answers.
        let grace = tokio::time::sleep(CLOSE_GRACE);
        tokio::pin!(grace);
        let mut open = true;
        loop {
            tokio::select! {
                _ = &mut grace => break,
                _ = cancel.cancelled() => break,
                read = reader.read(&mut chunk), if open => {
                    open = matches!(read, Ok(len) if len > 0);
                }
            }
        }
    }
    cancel.cancel();
    let _ = connection.close().await;
}

/// One read, bounded by `idle_timeout` unless it is zero; `None` when the
/// connection idled out.
async fn read_bounded(
    reader: &mut tokio::io::ReadHalf<TcpStream>,
    chunk: &mut [u8],
    idle_timeout: Duration,
) -> Option<std::io::Result<usize>> {
    if idle_timeout.is_zero() {
        return Some(reader.read(chunk).await);
    }
    tokio::time::timeout(idle_timeout, reader.read(chunk))
        .await
        .ok()
}

/// One accepted connection as the stack and the screen see it.
struct Link<'a> {
    connection: SipConnection,
    stream: &'a TcpConnection,
    remote: SocketAddr,
    remote_addr: SipAddr,
    events: TransportSender,
}

impl Link<'_> {
    /// Screens one framed message: answers it or hands it to the stack.
    /// False once the stack is gone or the connection cannot be written.
    async fn handle_message(&self, message: &[u8]) -> bool {
        match screen(message, self.remote, Transport::Tcp) {
            Screened::Deliver(message) => {
                // RFC 3261 18.2.1: `received` (and `rport`, RFC 3581) on
                // the top Via, as rsipstack's transports add them.
                let message = match SipConnection::update_msg_received(
                    *message,
                    self.remote,
                    Transport::Tcp,
                ) {
                    Ok(message) => message,
                    Err(error) => {
                        log_line(format_args!(
                            "message from {} over TCP dropped: its Via cannot take `received`: {error}",
                            self.remote
                        ));
                        return true;
                    }
                };
                self.events
                    .send(TransportEvent::Incoming(
                        message,
                        self.connection.clone(),
                        self.remote_addr.clone(),
                    ))
                    .is_ok()
            }
            Screened::Answer(response) => self.stream.send_raw(&response).await.is_ok(),
            Screened::Discard => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str =
        "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n";

    fn invite(body: &str) -> String {
        format!(
            "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK2\r\nContent-Length  : {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn frames(framer: &mut Framer) -> Vec<Frame> {
        std::iter::from_fn(|| framer.poll_frame()).collect()
    }

    fn message(text: &str) -> Frame {
        Frame::Message(text.as_bytes().to_vec())
    }

    #[test]
    fn pipelined_messages_come_out_one_by_one() {
        let stream = format!("{OPTIONS}{}{OPTIONS}", invite("v=0\r\n"));
        let mut framer = Framer::default();
        framer.handle_bytes(stream.as_bytes());
        assert_eq!(
            frames(&mut framer),
            [
                message(OPTIONS),
                message(&invite("v=0\r\n")),
                message(OPTIONS)
            ]
        );
        assert_eq!(framer.finish(), None);
    }

    #[test]
    fn a_message_read_one_byte_at_a_time_is_framed_once_complete() {
        let text = invite("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n");
        let mut framer = Framer::default();
        let mut out = Vec::new();
        for byte in text.as_bytes() {
            framer.handle_bytes(std::slice::from_ref(byte));
            out.extend(frames(&mut framer));
        }
        assert_eq!(out, [message(&text)]);
    }

    #[test]
    fn line_breaks_before_a_message_are_skipped_and_a_double_one_is_a_ping() {
        let mut framer = Framer::default();
        framer.handle_bytes(b"\r\n");
        assert_eq!(frames(&mut framer), [], "may be the start of a ping");
        framer.handle_bytes(b"\r\n");
        assert_eq!(frames(&mut framer), [Frame::Ping]);
        framer.handle_bytes(format!("\r\n{OPTIONS}\r\n\r\n").as_bytes());
        assert_eq!(frames(&mut framer), [message(OPTIONS), Frame::Ping]);
        assert_eq!(framer.finish(), None);
    }

    #[test]
    fn folded_and_compact_content_length_frame_the_body() {
        let text = "MESSAGE sip:a@b SIP/2.0\r\nContent-Length:\r\n  4\r\n\r\nbodyNEXT";
        let mut framer = Framer::default();
        framer.handle_bytes(text.as_bytes());
        assert_eq!(
            frames(&mut framer),
            [message(
                "MESSAGE sip:a@b SIP/2.0\r\nContent-Length:\r\n  4\r\n\r\nbody"
            )]
        );
        assert_eq!(framer.finish(), Some(b"NEXT".to_vec()));
    }

    fn unframeable_status(text: &str) -> (u16, String) {
        let mut framer = Framer::default();
        framer.handle_bytes(text.as_bytes());
        match frames(&mut framer).as_slice() {
            [Frame::Unframeable {
                message,
                status,
                reason,
            }] => {
                assert_eq!(message, text.as_bytes(), "everything buffered is returned");
                framer.handle_bytes(OPTIONS.as_bytes());
                assert_eq!(frames(&mut framer), [], "nothing after a broken frame");
                assert_eq!(framer.finish(), None);
                (*status, reason.clone())
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    #[test]
    fn a_missing_bad_or_ambiguous_content_length_breaks_the_stream() {
        let (status, reason) =
            unframeable_status("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\nv=0\r\n");
        assert_eq!(status, 400);
        assert!(reason.contains("no Content-Length"), "{reason}");
        let (status, reason) = unframeable_status("OPTIONS sip:a@b SIP/2.0\r\nl: -999\r\n\r\n");
        assert_eq!(status, 400);
        assert!(reason.contains("\"-999\""), "{reason}");
        let (status, reason) =
            unframeable_status("OPTIONS sip:a@b SIP/2.0\r\nl: 13\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(status, 400);
        assert!(reason.contains("13 and 5"), "{reason}");
        assert_eq!(
            unframeable_status("OPTIONS sip:a@b SIP/2.0\r\nl:\r\n\r\n").0,
            400
        );
    }

    #[test]
    fn the_same_content_length_twice_still_frames() {
        let text = "OPTIONS sip:a@b SIP/2.0\r\nl: 2\r\nContent-Length: 02\r\n\r\nok";
        let mut framer = Framer::default();
        framer.handle_bytes(text.as_bytes());
        assert_eq!(frames(&mut framer), [message(text)]);
    }

    #[test]
    fn oversize_messages_are_refused_without_buffering_them() {
        let (status, _) = unframeable_status(
            "INVITE sip:a@b SIP/2.0\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        );
        assert_eq!(status, 513);
        let (status, _) = unframeable_status(&format!(
            "INVITE sip:a@b SIP/2.0\r\nContent-Length: {MAX_MESSAGE}\r\n\r\n"
        ));
        assert_eq!(status, 513);
        let mut framer = Framer::default();
        framer.handle_bytes(b"INVITE sip:a@b SIP/2.0\r\nX: ");
        for _ in 0..MAX_MESSAGE / 1024 {
            framer.handle_bytes(&[b'x'; 1024]);
            assert_eq!(frames(&mut framer), []);
        }
        framer.handle_bytes(&[b'x'; 1024]);
        assert!(matches!(
            frames(&mut framer).as_slice(),
            [Frame::Unframeable { status: 513, .. }]
        ));
    }

    #[test]
    fn the_end_of_the_stream_returns_an_unfinished_message() {
        let mut framer = Framer::default();
        framer.handle_bytes(b"\r\nINVITE sip:a@b SIP/2.0\r\nl: 100\r\n\r\nshort");
        assert_eq!(frames(&mut framer), []);
        assert_eq!(
            framer.finish(),
            Some(b"INVITE sip:a@b SIP/2.0\r\nl: 100\r\n\r\nshort".to_vec())
        );
    }

    #[test]
    fn bare_line_feeds_end_the_header_section_as_validate_reads_it() {
        let text = "OPTIONS sip:a@b SIP/2.0\nl: 0\n\n";
        let mut framer = Framer::default();
        framer.handle_bytes(text.as_bytes());
        assert_eq!(frames(&mut framer), [message(text)]);
    }
}
