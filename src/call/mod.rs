//! The per-call orchestration that joins signalling and media: a call leg
//! with its audio ([`leg`]), two legs bridged back to back ([`bridge`]),
//! transfer with failover by REFER or INVITE ([`transfer`]), and the simple
//! answering mode of `switchboard run` ([`simple`]).

pub mod agent;
pub mod bridge;
pub mod leg;
pub mod log;
pub mod simple;
pub mod transfer;
pub mod turn;
