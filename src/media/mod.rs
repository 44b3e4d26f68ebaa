//! The media path. For now: the G.711 codecs shared by WAV I/O, the
//! simulated telephone channel and (later) RTP.

pub mod g711;
