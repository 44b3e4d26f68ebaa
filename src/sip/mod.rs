//! SIP signalling. Pure parts: SDP offer/answer, digest authentication and
//! the message checks that decide between handling a request and a 400.

pub mod agent;
pub mod digest;
pub mod sdp;
pub mod validate;
