//! The live call with a flow: what `switchboard run --flow` does with each
//! caller. Audio in, turns found by the endpointer, speech recognised and
//! understood, the flow's interpreter deciding, replies spoken a sentence
//! at a time, barge-in, DTMF, no-input reprompts, transfer with failover,
//! and a record of every turn.
//!
//! - [`AgentMode`] (this file): what all calls share, loaded once: the
//!   flows ([`FlowSet`], reloadable), the recogniser's worker pool, the
//!   voice and its phrase cache, the clock, the destinations' state, the
//!   metrics and the call records.
//! - [`conversation`]: the driver of one call, a tokio task around the
//!   pure cores (the [`crate::flow::Interpreter`], the
//!   [`crate::call::turn`] endpointer and barge-in detector, [`Playout`]).
//! - [`phrases`]: synthesised sentences, prepared when a flow loads.
//! - [`playout`]: what the agent is saying at an instant.

pub mod conversation;
pub mod phrases;
pub mod playout;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

pub use conversation::{handle_call, keypad_menu};
pub use phrases::Phrases;
pub use playout::Playout;

use crate::call::transfer::TransferMethod;
use crate::call::turn::{BargeInConfig, EndpointerConfig};
use crate::flow::simulator::{Simulator, SimulatorError};
use crate::flow::{DestinationState, Dial, Target};
use crate::metrics::Metrics;
use crate::records::Store;
use crate::speech::stt::SttPool;

/// Said when a turn's work takes longer than [`AgentMode::acknowledge_after`],
/// and again (the next one, the last repeating) every
/// [`AgentMode::reassure_every`] after that, so that the caller is never
/// left in silence.
pub const ACKNOWLEDGEMENTS: &[&str] = &["One moment.", "Still with you, just a moment."];

/// The flows a running agent serves. A call goes to the flow whose name
/// or file name (without `.yaml`) is the user part of the dialled URI;
/// any other call to the first flow.
pub struct FlowSet {
    flows: Vec<(String, Arc<Simulator>)>,
}

impl FlowSet {
    /// Loads and checks every flow and builds its intent detector
    /// (blocking: loads models). Any error in any flow fails the set.
    pub fn load(paths: &[PathBuf], models: &Path) -> Result<FlowSet, SimulatorError> {
        let mut flows = Vec::new();
        for path in paths {
            let simulator = Simulator::load(path, models, None)?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            flows.push((stem, Arc::new(simulator)));
        }
        Ok(FlowSet { flows })
    }

    /// The flow for a call to `callee` (a URI).
    pub fn select(&self, callee: &str) -> Option<Arc<Simulator>> {
        let user = user_part(callee);
        self.flows
            .iter()
            .find(|(stem, s)| user == Some(stem.as_str()) || user == Some(s.flow().name.as_str()))
            .or_else(|| self.flows.first())
            .map(|(_, s)| s.clone())
    }

    pub fn flows(&self) -> impl Iterator<Item = &Arc<Simulator>> {
        self.flows.iter().map(|(_, s)| s)
    }
}

/// The user part of a `sip:` URI (`sip:support@pbx` -> `support`).
fn user_part(uri: &str) -> Option<&str> {
    let uri = uri.trim().trim_start_matches('<');
    let rest = uri.split_once(':')?.1;
    let user = rest.split_once('@')?.0;
    Some(user.split(';').next().unwrap_or(user))
}

/// The agent's clock: wall time for schedules, which `--at` can start at
/// another moment (it then runs at the normal rate from there).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin_wall: DateTime<Utc>,
    origin: Instant,
}

impl Clock {
    /// The real time.
    pub fn system() -> Clock {
        Clock::starting_at(Utc::now())
    }

    /// A clock that reads `at` now.
    pub fn starting_at(at: DateTime<Utc>) -> Clock {
        Clock {
            origin_wall: at,
            origin: Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.origin.elapsed()).unwrap_or_default();
        self.origin_wall + elapsed
    }
}

/// How targets are reached.
#[derive(Debug, Clone)]
pub struct DialPlan {
    /// Host (and port) of the PBX that takes `sip:EXTENSION@HOST`
    /// transfers: the registrar's host, or `--transfer-host`.
    pub host: Option<String>,
    pub method: TransferMethod,
    /// Our URI, for the From of a transfer INVITE.
    pub from: String,
    /// How long a transfer INVITE may ring before the next target.
    pub no_answer: Duration,
    /// How long a REFER may take to succeed before the next target.
    pub refer_timeout: Duration,
}

impl DialPlan {
    /// The URI to transfer `target` to, or why there is none.
    pub fn uri(&self, target: &Target) -> Result<String, String> {
        match &target.dial {
            Dial::Sip(uri) => Ok(uri.clone()),
            Dial::Extension(extension) => match &self.host {
                Some(host) => Ok(format!("sip:{extension}@{host}")),
                None => Err(format!(
                    "extension {extension} needs a PBX: register with --registrar or give --transfer-host"
                )),
            },
            Dial::Trunk {
                gateway, number, ..
            } => {
                let rest = gateway
                    .strip_prefix("sip:")
                    .or_else(|| gateway.strip_prefix("sips:"))
                    .unwrap_or(gateway);
                let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                Ok(format!("sip:{number}@{host}"))
            }
        }
    }
}

/// Everything the calls of a running agent share.
pub struct AgentMode {
    flows: RwLock<Arc<FlowSet>>,
    flow_paths: Vec<PathBuf>,
    models: PathBuf,
    pub stt: SttPool,
    /// Whether the recogniser can identify languages (a multilingual
    /// model decides or re-decides): only then does the language it
    /// reports say anything about the caller.
    pub identifies_language: bool,
    pub phrases: Arc<Phrases>,
    /// Bounds intent detection and synthesis running at once, so that a
    /// burst of calls queues instead of starving the media tasks.
    pub workers: Arc<Semaphore>,
    pub clock: Clock,
    pub destinations: Mutex<DestinationState>,
    pub dial: DialPlan,
    pub metrics: Arc<Metrics>,
    pub records: Option<Arc<Store>>,
    /// Write what each caller said here (`--record-dir`).
    pub record_dir: Option<PathBuf>,
    pub endpointer: EndpointerConfig,
    pub barge_in: BargeInConfig,
    /// Play [`ACKNOWLEDGEMENT`] when a reply is not under way this long
    /// after the caller stopped speaking.
    pub acknowledge_after: Duration,
    /// And again this long after an acknowledgement ended.
    pub reassure_every: Duration,
}

/// What [`AgentMode::new`] needs besides the loaded flows.
pub struct AgentParts {
    pub flow_paths: Vec<PathBuf>,
    pub models: PathBuf,
    pub stt: SttPool,
    pub identifies_language: bool,
    pub phrases: Arc<Phrases>,
    pub workers: usize,
    pub clock: Clock,
    pub dial: DialPlan,
    pub metrics: Arc<Metrics>,
    pub records: Option<Arc<Store>>,
    pub record_dir: Option<PathBuf>,
}

impl AgentMode {
    pub fn new(flows: FlowSet, parts: AgentParts) -> AgentMode {
        AgentMode {
            flows: RwLock::new(Arc::new(flows)),
            flow_paths: parts.flow_paths,
            models: parts.models,
            stt: parts.stt,
            identifies_language: parts.identifies_language,
            phrases: parts.phrases,
            workers: Arc::new(Semaphore::new(parts.workers.max(1))),
            clock: parts.clock,
            destinations: Mutex::new(DestinationState::default()),
            dial: parts.dial,
            metrics: parts.metrics,
            records: parts.records,
            record_dir: parts.record_dir,
            endpointer: EndpointerConfig::default(),
            barge_in: BargeInConfig::default(),
            acknowledge_after: Duration::from_millis(1000),
            reassure_every: Duration::from_millis(2500),
        }
    }

    /// The flows now; a call keeps the set it started with.
    pub fn flows(&self) -> Arc<FlowSet> {
        match self.flows.read() {
            Ok(flows) => flows.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads the flow files again (blocking) and, if all of them check,
    /// serves new calls with them; calls in progress keep theirs. On any
    /// error the old flows stay and the error is returned.
    pub fn reload(&self) -> Result<usize, SimulatorError> {
        let flows = FlowSet::load(&self.flow_paths, &self.models)?;
        for simulator in flows.flows() {
            // New sentences are synthesised now, not on a caller's time.
            let _ = self.phrases.prepare(simulator.flow(), &[], |_, _| {});
        }
        let count = flows.flows.len();
        match self.flows.write() {
            Ok(mut current) => *current = Arc::new(flows),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(flows),
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::routing::RatePerMinute;

    #[test]
    fn the_user_part_selects_the_flow() {
        assert_eq!(user_part("sip:support@127.0.0.1:5060"), Some("support"));
        assert_eq!(user_part("<sip:200;x=y@pbx>"), Some("200"));
        assert_eq!(user_part("sip:pbx.example.com"), None);
    }

    #[test]
    fn targets_become_uris() {
        let plan = DialPlan {
            host: Some("pbx.example.com:5060".into()),
            method: TransferMethod::default(),
            from: "sip:agent@pbx.example.com".into(),
            no_answer: Duration::from_secs(20),
            refer_timeout: Duration::from_secs(30),
        };
        let target = |dial| Target {
            destination: "billing".into(),
            group: None,
            dial,
        };
        assert_eq!(
            plan.uri(&target(Dial::Extension("201".into()))).unwrap(),
            "sip:201@pbx.example.com:5060"
        );
        assert_eq!(
            plan.uri(&target(Dial::Sip("sip:desk@10.0.0.1".into())))
                .unwrap(),
            "sip:desk@10.0.0.1"
        );
        assert_eq!(
            plan.uri(&target(Dial::Trunk {
                trunk: "a".into(),
                gateway: "sip:gw.carrier.example".into(),
                number: "+442071234567".into(),
                prefix: "+44".into(),
                rate: RatePerMinute(0.01),
            }))
            .unwrap(),
            "sip:+442071234567@gw.carrier.example"
        );
        let no_pbx = DialPlan { host: None, ..plan };
        assert!(no_pbx
            .uri(&target(Dial::Extension("201".into())))
            .unwrap_err()
            .contains("--transfer-host"));
    }

    #[test]
    fn the_clock_starts_where_it_is_told() {
        let at = DateTime::parse_from_rfc3339("2025-01-07T22:00:00-05:00")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::starting_at(at);
        let now = clock.now();
        assert!(now >= at && now - at < chrono::Duration::seconds(5));
    }
}
