//! The per-call orchestration that joins signalling and media: a call leg
//! with its audio ([`leg`]), two legs bridged back to back ([`bridge`]),
//! transfer with failover by REFER or INVITE ([`transfer`]), the simple
//! answering mode of `switchboard run` ([`simple`]), and what a caller
//! said, kept with `--record-dir` ([`recording`]).

pub mod agent;
pub mod bridge;
pub mod leg;
pub mod log;
pub mod recording;
pub mod simple;
pub mod transfer;
pub mod turn;
