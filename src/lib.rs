//! Switchboard: an AI call-flow agent that answers calls on a PBX, listens,
//! works out what the caller wants and transfers the call.
//!
//! The crate is laid out one folder per concern (see `docs/architecture.md`):
//!
//! - [`audio`]: typed sample buffers, file decoding, resampling, WAV output
//!   and a simulated telephone channel.
//! - [`media`]: telephone codecs (G.711), RTP, jitter buffer, DTMF, RTCP.
//! - [`records`]: call and turn records in SQLite.
//! - [`sip`]: SIP signalling (SDP, digest authentication, message checks).
//! - [`speech`]: speech-to-text and text-to-speech behind traits, with
//!   bounded worker pools so inference never runs on the async runtime.
//! - [`metrics`]: counters and latency histograms for operators, served
//!   in Prometheus' text format.
//! - [`models`]: the pinned model catalogue, fetching, hash checks and the
//!   CTranslate2-to-ggml Whisper converter.
//! - [`call`]: one call's signalling and media joined: legs, bridging,
//!   transfer with failover, the simple answering mode.
//! - [`cli`]: the `switchboard` command line.

pub mod audio;
pub mod call;
pub mod cli;
pub mod flow;
pub mod intent;
pub mod media;
pub mod metrics;
pub mod models;
pub mod records;
pub mod sip;
pub mod speech;
