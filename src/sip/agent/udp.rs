//! The UDP socket under rsipstack, with every datagram checked by
//! [`crate::sip::validate::check`] before the stack parses it.
//!
//! rsipstack drops what its parser refuses without a word, and cannot
//! represent extension methods at all. Here a malformed request gets its
//! precise answer (400, 416, 420, 415, 406, 505), an unknown method gets
//! 501 with `Allow` (RFC 3261 8.2.1), a malformed response is dropped
//! (RFC 3261 18.1.2), and each of them leaves one log line. Keep-alives
//! (RFC 5626 4.4.1) pass through: the stack answers them.
//!
//! TCP has no such hook in rsipstack 0.7: its stream framing parses
//! messages itself, so only UDP is checked.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use rsipstack::platform::net::UdpSocket as StackUdpSocket;

use super::log::log_line;
use super::policy::ALLOW;
use crate::sip::validate::{self, Accepted, Verdict};

/// A bound UDP socket that validates what it receives.
pub(crate) struct ValidatingSocket {
    socket: tokio::net::UdpSocket,
}

impl ValidatingSocket {
    /// Wraps a bound socket.
    pub(crate) fn new(socket: tokio::net::UdpSocket) -> ValidatingSocket {
        ValidatingSocket { socket }
    }

    /// Receives datagrams until one is fit for the stack, answering or
    /// dropping the others. Cancel safe: a datagram is either returned or
    /// fully handled before the next await.
    async fn recv_checked(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (len, from) = self.socket.recv_from(buf).await?;
            let datagram = &buf[..len];
            if datagram.iter().all(u8::is_ascii_whitespace) {
                return Ok((len, from));
            }
            match validate::check(datagram) {
                Verdict::Accept(Accepted::Message(_)) => return Ok((len, from)),
                Verdict::Accept(Accepted::Extension(request)) => {
                    log_line(format_args!(
                        "{} from {from} answered 501: unknown method (RFC 3261 8.2.1)",
                        request.method
                    ));
                    self.answer(datagram, 501, &[("Allow", ALLOW)], from).await;
                }
                Verdict::Reject { status, reason } => {
                    log_line(format_args!(
                        "request from {from} answered {status}: {reason}"
                    ));
                    self.answer(datagram, status, &[], from).await;
                }
                Verdict::Drop { reason } => {
                    log_line(format_args!("message from {from} dropped: {reason}"));
                }
            }
        }
    }

    /// Sends a stateless answer to a request that never reaches the stack,
    /// back to where it came from (RFC 3581 4).
    async fn answer(&self, request: &[u8], status: u16, extra: &[(&str, &str)], to: SocketAddr) {
        let tag = rsipstack::transaction::random_text(10);
        if let Some(response) = validate::reject_response(request, status, &tag, extra) {
            if let Err(error) = self.socket.send_to(&response, to).await {
                log_line(format_args!("could not send {status} to {to}: {error}"));
            }
        }
    }
}

// rsipstack declares this trait with `async_trait`; these are the
// signatures that macro expands to, written out so the crate does not need
// `async-trait` itself.
impl StackUdpSocket for ValidatingSocket {
    fn recv_from<'life0, 'life1, 'async_trait>(
        &'life0 self,
        buf: &'life1 mut [u8],
    ) -> Pin<Box<dyn Future<Output = rsipstack::Result<(usize, SocketAddr)>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.recv_checked(buf))
    }

    fn send_to<'life0, 'life1, 'async_trait>(
        &'life0 self,
        buf: &'life1 [u8],
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = rsipstack::Result<usize>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { Ok(self.socket.send_to(buf, addr).await?) })
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}
