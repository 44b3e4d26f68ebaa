//! The UDP socket under rsipstack, with every datagram screened
//! (`screen.rs`: [`crate::sip::validate::check`]) before the stack parses
//! it. A malformed request is answered here, statelessly, back to where it
//! came from (RFC 3581 4); a malformed response is dropped; each of them
//! leaves one log line. The stack reads a well-formed message as the
//! screen delivers it. Keep-alives (RFC 5626 4.4.1) pass through: the
//! stack answers them. TCP goes through the same screen in `tcp.rs`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use rsipstack::platform::net::UdpSocket as StackUdpSocket;
use rsipstack::sip::Transport;

use super::log::log_line;
use super::screen::{screen, Screened};

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
            match screen(datagram, from, Transport::Udp) {
                // The stack parses what it is given again: give it the
                // message as screened, or the datagram if that does not fit.
                Screened::Deliver(message) => {
                    let screened = message.to_bytes();
                    return match buf.get_mut(..screened.len()) {
                        Some(into) => {
                            into.copy_from_slice(&screened);
                            Ok((screened.len(), from))
                        }
                        None => Ok((len, from)),
                    };
                }
                Screened::Answer(response) => {
                    if let Err(error) = self.socket.send_to(&response, from).await {
                        log_line(format_args!("could not answer {from} over UDP: {error}"));
                    }
                }
                Screened::Discard => {}
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
