//! The media path: telephone codecs, RTP, the jitter buffer, RFC 4733
//! DTMF and RTCP reports. Everything here is a core without I/O: inputs
//! carry `now`, outputs are packets and events for a driver to send.

pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod rtcp;
pub mod rtp;
pub mod session;
