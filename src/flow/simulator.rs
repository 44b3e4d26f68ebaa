//! A call without telephony: the [`Interpreter`] driven by text, keys and
//! silence, with the flow's own intent detector. `switchboard chat`,
//! `switchboard test` and `switchboard replay` are built on it, so what
//! they show is what the interpreter does on a live call.
//!
//! It is a small synchronous driver: it looks the caller up in the flow's
//! customer CSV, prepares each node's intents once, runs the detector for
//! utterances when the interpreter listens for intents, and collects the
//! interpreter's actions and events per turn. Detection is blocking and
//! CPU-bound (see [`crate::intent`]); keep it off async runtimes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::caller::{CallerAttributes, CsvDirectory, CsvError, CustomerDirectory};
use super::detector::{detector_config, intent_specs};
use super::diagnostic::Diagnostic;
use super::interpreter::{
    Action, Event, Hangup, Interpreter, InterpreterConfig, Listen, Transfer, Utterance,
};
use super::load::load_flow;
use super::model::Flow;
use super::routing::{DestinationState, Dial, RouteDecision, Target};
use crate::intent::{
    build_detector, DetectorKind, IntentContext, IntentDetector, IntentError, IntentResult,
    PreparedIntents,
};

/// A flow ready to take simulated calls: its detector, each node's
/// prepared intents and its customers.
pub struct Simulator {
    flow: Arc<Flow>,
    path: PathBuf,
    detector: Arc<dyn IntentDetector + Send + Sync>,
    kind: DetectorKind,
    /// Node name -> its intents, prepared by `detector`.
    prepared: BTreeMap<String, PreparedIntents>,
    /// The flow's customer CSV, if it names one (a webhook is the live
    /// driver's business: simulated callers are looked up by CSV only).
    customers: Option<CsvDirectory>,
    config: InterpreterConfig,
}

/// Why a flow cannot be simulated.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("{}", show(.0))]
    Flow(Vec<Diagnostic>),
    #[error(transparent)]
    Customers(#[from] CsvError),
    #[error(transparent)]
    Intent(#[from] IntentError),
}

fn show(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Simulator {
    /// Loads and checks the flow, builds the detector it asks for (or
    /// `kind` instead) with the models in `models`, and prepares its
    /// intents. Blocking: loads models, embeds every example.
    pub fn load(
        flow_path: &Path,
        models: &Path,
        kind: Option<DetectorKind>,
    ) -> Result<Simulator, SimulatorError> {
        let flow = load_flow(flow_path).map_err(SimulatorError::Flow)?;
        let mut config = detector_config(&flow);
        if let Some(kind) = kind {
            config.kind = kind;
        }
        let detector = build_detector(&config, models)?;
        Simulator::with_detector(Arc::new(flow), flow_path, detector, config.kind)
    }

    /// A simulator for a loaded flow with a detector built elsewhere
    /// (shared between flows, or a fake in tests).
    pub fn with_detector(
        flow: Arc<Flow>,
        flow_path: &Path,
        detector: Arc<dyn IntentDetector + Send + Sync>,
        kind: DetectorKind,
    ) -> Result<Simulator, SimulatorError> {
        let mut prepared = BTreeMap::new();
        for (name, node) in flow.nodes.iter() {
            let specs = intent_specs(node);
            if !specs.is_empty() {
                prepared.insert(name.to_string(), detector.prepare(&specs)?);
            }
        }
        let customers = flow
            .callers
            .as_ref()
            .and_then(|c| c.customers.as_ref())
            .and_then(|c| c.csv.as_deref())
            .map(|csv| {
                let path = flow_path.parent().unwrap_or(Path::new("")).join(csv);
                CsvDirectory::from_path(&path)
            })
            .transpose()?;
        Ok(Simulator {
            flow,
            path: flow_path.to_path_buf(),
            detector,
            kind,
            prepared,
            customers,
            config: InterpreterConfig::default(),
        })
    }

    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    /// The flow file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The detector in use.
    pub fn detector_kind(&self) -> DetectorKind {
        self.kind
    }

    /// The caller's attributes as a live call would have them: region by
    /// prefix, tier and language from the customer CSV.
    pub fn identify(&self, number: &str) -> CallerAttributes {
        let customer = self
            .customers
            .as_ref()
            .and_then(|d| d.lookup(number).ok().flatten());
        CallerAttributes::identify(self.flow.callers.as_ref(), number, customer.as_ref())
    }

    /// A fresh interpreter for one call of this flow (the live driver in
    /// `src/call/agent/` runs it itself).
    pub fn interpreter(&self) -> Interpreter {
        Interpreter::new(Arc::clone(&self.flow), self.config)
    }

    /// The flow's detector on `text` for the intents `listen` offers, or
    /// `None` when it offers none (keys or a slot only) or `text` is blank.
    /// Blocking: keep it off async runtimes.
    pub fn detect(&self, listen: &Listen, text: &str) -> Result<Option<IntentResult>, IntentError> {
        if listen.intents.is_empty() || text.trim().is_empty() {
            return Ok(None);
        }
        let Some(prepared) = self.prepared.get(&listen.node) else {
            return Ok(None);
        };
        let slots: Vec<String> = self
            .flow
            .nodes
            .get(&listen.node)
            .map(|n| n.slots.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default();
        let context = IntentContext::new(prepared).with_slots(&slots);
        self.detector.detect(text, &context).map(Some)
    }

    /// Answers a call at `now`: the greeting and the start node.
    pub fn call(
        &self,
        now: DateTime<Utc>,
        caller: CallerAttributes,
        destinations: DestinationState,
    ) -> SimulatedCall<'_> {
        let mut interpreter = Interpreter::new(Arc::clone(&self.flow), self.config);
        let started = Instant::now();
        let actions = interpreter.handle_call_started(now, caller, &destinations);
        let handle_time = started.elapsed();
        let events = std::iter::from_fn(|| interpreter.poll_event()).collect();
        let opening = TurnReport {
            input: None,
            intent: None,
            actions,
            events,
            node: interpreter.node().to_string(),
            detect_time: Duration::ZERO,
            handle_time,
        };
        SimulatedCall {
            simulator: self,
            interpreter,
            destinations,
            opening,
        }
    }
}

/// What the caller does in one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerInput {
    /// Speech, as its transcript, and the language heard if known.
    Says {
        text: String,
        language: Option<String>,
    },
    /// DTMF keys, pressed one after another.
    Presses(String),
    /// Nothing until the no-input timeout.
    Silence,
}

impl fmt::Display for CallerInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallerInput::Says {
                text,
                language: Some(language),
            } => write!(f, "says {text:?} ({language})"),
            CallerInput::Says { text, .. } => write!(f, "says {text:?}"),
            CallerInput::Presses(keys) => write!(f, "presses {keys}"),
            CallerInput::Silence => f.write_str("says nothing"),
        }
    }
}

/// Everything one turn produced.
#[derive(Debug, Clone)]
pub struct TurnReport {
    /// None for the call's opening (greeting and start node).
    pub input: Option<CallerInput>,
    /// The detector's answer, when the interpreter listened for intents.
    pub intent: Option<IntentResult>,
    pub actions: Vec<Action>,
    pub events: Vec<Event>,
    /// The node the call is in after the turn.
    pub node: String,
    /// Intent detection.
    pub detect_time: Duration,
    /// The interpreter, routing included.
    pub handle_time: Duration,
}

impl TurnReport {
    /// What the agent said, in order.
    pub fn said(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().filter_map(|a| match a {
            Action::Say(say) => Some(say.text.as_str()),
            _ => None,
        })
    }

    pub fn transfer(&self) -> Option<&Transfer> {
        self.actions.iter().find_map(|a| match a {
            Action::Transfer(t) => Some(t),
            _ => None,
        })
    }

    pub fn hangup(&self) -> Option<&Hangup> {
        self.actions.iter().find_map(|a| match a {
            Action::Hangup(h) => Some(h),
            _ => None,
        })
    }

    /// The first target of the transfer: where the call goes.
    pub fn destination(&self) -> Option<&Target> {
        self.transfer().and_then(|t| t.targets.first())
    }

    /// The intent the interpreter acted on.
    pub fn matched_intent(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match e {
            Event::IntentMatched { intent, .. } => Some(intent.as_str()),
            _ => None,
        })
    }

    /// The routing decision, also when nothing was available.
    pub fn decision(&self) -> Option<&RouteDecision> {
        self.events.iter().find_map(|e| match e {
            Event::Routed { decision, .. } => Some(decision),
            _ => None,
        })
    }
}

/// One simulated call.
pub struct SimulatedCall<'s> {
    simulator: &'s Simulator,
    interpreter: Interpreter,
    /// The destinations' state; routing reads it, tests may change it
    /// between turns.
    pub destinations: DestinationState,
    opening: TurnReport,
}

impl SimulatedCall<'_> {
    /// The greeting and the start node's actions.
    pub fn opening(&self) -> &TurnReport {
        &self.opening
    }

    pub fn interpreter(&self) -> &Interpreter {
        &self.interpreter
    }

    pub fn is_finished(&self) -> bool {
        self.interpreter.is_finished()
    }

    /// Runs one caller input.
    pub fn turn(
        &mut self,
        now: DateTime<Utc>,
        input: &CallerInput,
    ) -> Result<TurnReport, IntentError> {
        match input {
            CallerInput::Says { text, language } => self.says(now, text, language.as_deref()),
            CallerInput::Presses(keys) => Ok(self.presses(now, keys)),
            CallerInput::Silence => Ok(self.silence(now)),
        }
    }

    /// The caller says `text` (heard in `language`, if known). The flow's
    /// detector runs when the interpreter listens for intents.
    pub fn says(
        &mut self,
        now: DateTime<Utc>,
        text: &str,
        language: Option<&str>,
    ) -> Result<TurnReport, IntentError> {
        let turn = self.interpreter.turn();
        let started = Instant::now();
        let intent = match self.interpreter.listening() {
            Some(listen) => self.simulator.detect(listen, text)?,
            None => None,
        };
        let detect_time = if intent.is_some() {
            started.elapsed()
        } else {
            Duration::ZERO
        };
        let utterance = Utterance {
            turn,
            transcript: text.to_string(),
            language: language.map(str::to_string),
            intent: intent.clone(),
        };
        let started = Instant::now();
        let actions = self
            .interpreter
            .handle_utterance(now, utterance, &self.destinations);
        let handle_time = started.elapsed();
        Ok(self.report(
            CallerInput::Says {
                text: text.to_string(),
                language: language.map(str::to_string),
            },
            intent,
            actions,
            detect_time,
            handle_time,
        ))
    }

    /// The caller presses `keys`, one after another.
    pub fn presses(&mut self, now: DateTime<Utc>, keys: &str) -> TurnReport {
        let started = Instant::now();
        let mut actions = Vec::new();
        for key in keys.chars() {
            let turn = self.interpreter.turn();
            actions.extend(
                self.interpreter
                    .handle_key(now, turn, key, &self.destinations),
            );
        }
        let handle_time = started.elapsed();
        self.report(
            CallerInput::Presses(keys.to_string()),
            None,
            actions,
            Duration::ZERO,
            handle_time,
        )
    }

    /// The caller says nothing until the listen's timeout.
    pub fn silence(&mut self, now: DateTime<Utc>) -> TurnReport {
        let turn = self.interpreter.turn();
        let started = Instant::now();
        let actions = self
            .interpreter
            .handle_no_input(now, turn, &self.destinations);
        let handle_time = started.elapsed();
        self.report(
            CallerInput::Silence,
            None,
            actions,
            Duration::ZERO,
            handle_time,
        )
    }

    fn report(
        &mut self,
        input: CallerInput,
        intent: Option<IntentResult>,
        actions: Vec<Action>,
        detect_time: Duration,
        handle_time: Duration,
    ) -> TurnReport {
        let events = std::iter::from_fn(|| self.interpreter.poll_event()).collect();
        TurnReport {
            input: Some(input),
            intent,
            actions,
            events,
            node: self.interpreter.node().to_string(),
            detect_time,
            handle_time,
        }
    }
}

/// A target as reports show it: `billing (201)`, `desk (sip:...)`,
/// `payroll-vendor via carrier-a (+4420 at 0.009/min)`.
pub fn describe_target(target: &Target) -> String {
    match &target.dial {
        Dial::Extension(extension) => format!("{} ({extension})", target.destination),
        Dial::Sip(uri) => format!("{} ({uri})", target.destination),
        Dial::Trunk {
            trunk,
            prefix,
            rate,
            ..
        } => format!("{} via {trunk} ({prefix} at {rate})", target.destination),
    }
}

/// A target's address: the extension, the SIP URI, or the number.
pub fn address(target: &Target) -> &str {
    match &target.dial {
        Dial::Extension(extension) => extension,
        Dial::Sip(uri) => uri,
        Dial::Trunk { number, .. } => number,
    }
}

/// A turn as lines for people: what the caller did, the intent with its
/// confidence, the routing decision with its reason, what the agent said
/// and what it does next. `chat` prints these; failed flow tests show
/// them as the conversation.
pub fn describe(report: &TurnReport) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(input) = &report.input {
        lines.push(format!("caller  {input}"));
    }
    if let Some(result) = &report.intent {
        let source = match result.source {
            crate::intent::IntentSource::Embedded => "embedded",
            crate::intent::IntentSource::Llm => "llm",
        };
        let best = result
            .scores
            .iter()
            .take(3)
            .map(|(name, score)| format!("{name} {score:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        let intent = match &result.intent {
            Some(name) => name.clone(),
            None => format!("unsure (best {})", result.best().unwrap_or("-")),
        };
        lines.push(format!(
            "intent  {intent}, confidence {:.2} ({source}, {} ms; scores {best})",
            result.confidence,
            report.detect_time.as_millis()
        ));
    }
    for event in &report.events {
        match event {
            Event::KeyMatched { key, node, .. } => {
                lines.push(format!("key     {key} in node {node}"))
            }
            Event::Reprompted {
                miss, count, limit, ..
            } => lines.push(format!("reprompt {} {count} of {limit}", miss.as_str())),
            Event::Escalated { miss, node, .. } => lines.push(format!(
                "escalate after the last {} reprompt in node {node}",
                miss.as_str()
            )),
            Event::LanguageDetected { language, .. } => {
                lines.push(format!("language {language} heard"))
            }
            Event::SlotFilled { slot, value, .. } => {
                lines.push(format!("slot    {slot} = {value}"))
            }
            Event::SlotRejected { slot, problem, .. } => {
                lines.push(format!("slot    {slot} not taken: {problem}"))
            }
            Event::Routed { decision, .. } => {
                let to = match decision.targets.first() {
                    Some(first) => describe_target(first),
                    None => "nobody".into(),
                };
                lines.push(format!("route   {to}: {}", decision.reason));
            }
            Event::InputIgnored { .. } => lines.push("(the call has ended)".into()),
            Event::NodeEntered { .. } | Event::IntentMatched { .. } => {}
        }
    }
    for action in &report.actions {
        match action {
            Action::Say(say) => lines.push(format!("agent   {}", say.text)),
            Action::Listen(listen) => {
                let what = match &listen.slot {
                    Some(slot) => format!("slot {} ({})", slot.name, slot.kind.as_str()),
                    None => {
                        let mut parts = Vec::new();
                        if !listen.intents.is_empty() {
                            parts.push(format!("intents {}", listen.intents.join(", ")));
                        }
                        if !listen.keys.is_empty() {
                            let keys: Vec<String> =
                                listen.keys.iter().map(char::to_string).collect();
                            parts.push(format!("keys {}", keys.join(" ")));
                        }
                        parts.join("; ")
                    }
                };
                lines.push(format!("        [listening in {}: {what}]", listen.node));
            }
            Action::Transfer(transfer) => {
                let targets: Vec<String> = transfer.targets.iter().map(describe_target).collect();
                lines.push(format!("        [transfer to {}]", targets.join(", then ")));
            }
            Action::Hangup(hangup) => lines.push(format!("        [hang up: {}]", hangup.reason)),
        }
    }
    lines
}
