//! The flow interpreter: one call's conversation as a plain state machine.
//!
//! It contains no audio, no speech recognition, no intent model, no
//! network and no clock. The driver (a live call in `src/call/`, or the
//! `chat`, `test` and `replay` commands through
//! [`crate::flow::simulator`]) feeds it typed inputs with the current
//! instant and carries out the [`Action`]s it returns:
//!
//! 1. [`Interpreter::handle_call_started`] with the caller's attributes
//!    (the driver looked them up: [`CallerAttributes::identify`]): the
//!    greeting, the start node's prompt, and a [`Listen`].
//! 2. For each [`Listen`]: whatever the caller does, quoting the listen's
//!    [`TurnId`]: [`Interpreter::handle_utterance`] (the transcript, the
//!    language the recogniser heard, and the [`IntentResult`] the detector
//!    gave for the intents the listen names),
//!    [`Interpreter::handle_key`] (a DTMF key),
//!    [`Interpreter::handle_slot_value`] (a value found another way), or
//!    [`Interpreter::handle_no_input`] when the listen's `timeout` passed
//!    without speech. The answer is more actions, ending with another
//!    [`Listen`], a [`Transfer`] or a [`Hangup`].
//! 3. [`Interpreter::poll_event`] for what happened (intent matched,
//!    clarification asked, escalation, routing decision), for logs, call
//!    records and the simulators' reports.
//!
//! The no-input timer belongs to the driver because only it knows when
//! the prompt finished playing and whether the caller is speaking; the
//! interpreter says how long to wait ([`Listen::timeout`]).
//!
//! **Turns.** Each accepted input starts a new turn; every action carries
//! the turn it belongs to, and an input quoting an older turn is ignored
//! ([`Event::InputIgnored`]). So a transcript that arrives after the
//! no-input timeout already moved the call on is dropped instead of
//! answering a question the agent no longer asks, and a driver can drop
//! queued audio of an old turn by its id.
//!
//! `now` is wall-clock time: schedules are evaluated at it when a transfer
//! is routed, and relative dates ("tomorrow") are read from it. Routing
//! also needs the destinations' live state, which the driver owns and
//! passes in.

mod slots;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

pub use slots::{finish_keys, from_key, from_speech, Keyed, SlotProblem};

use super::caller::CallerAttributes;
use super::model::{Flow, Node, Reprompt, Slot, SlotKind, Step, Steps};
use super::routing::{self, route, DestinationState, RouteDecision, RouteError, RouteRequest};
use super::routing::{Slots, Target, Wanted};
use super::schedule::parse_timezone;
use crate::intent::IntentResult;

/// Identifies one turn of the conversation: what the agent says and the
/// caller's answer to it. Starts at 1 with the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TurnId(pub u32);

impl TurnId {
    fn next(self) -> TurnId {
        TurnId(self.0.saturating_add(1))
    }
}

impl fmt::Display for TurnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "turn {}", self.0)
    }
}

/// Settings that are not part of the flow file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterpreterConfig {
    /// How long a [`Listen`] waits for the caller after the prompt.
    pub no_input_timeout: Duration,
    /// Steps one input may run before the call is ended as looping. The
    /// checker rejects `goto` cycles that never wait for the caller; this
    /// is the second line of defence.
    pub max_steps: usize,
}

impl Default for InterpreterConfig {
    fn default() -> Self {
        InterpreterConfig {
            no_input_timeout: Duration::from_secs(6),
            max_steps: 256,
        }
    }
}

/// Reprompts allowed where neither the node nor the flow sets `no_input`
/// or `no_match`: the question is asked again twice, then the call ends.
pub const DEFAULT_REPROMPT_LIMIT: u32 = 2;

/// What the caller said in one turn.
#[derive(Debug, Clone)]
pub struct Utterance {
    /// The turn of the [`Listen`] this answers.
    pub turn: TurnId,
    /// The transcript; empty or blank counts as no input.
    pub transcript: String,
    /// The language the recogniser identified (ISO 639-1), if it did. It
    /// replaces the caller's language for routing: Spanish speech routes
    /// by the flow's `routing.languages` rule for `es`. Leave it out when
    /// the language was forced rather than identified (an English-only
    /// model reports `en` for any speech).
    pub language: Option<String>,
    /// The detector's answer for the intents of the listen. None when the
    /// listen offers no intents (a slot, keys only).
    pub intent: Option<IntentResult>,
}

/// Something the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Say(Say),
    Listen(Listen),
    Transfer(Transfer),
    Hangup(Hangup),
}

impl Action {
    /// The turn the action belongs to.
    pub fn turn(&self) -> TurnId {
        match self {
            Action::Say(s) => s.turn,
            Action::Listen(l) => l.turn,
            Action::Transfer(t) => t.turn,
            Action::Hangup(h) => h.turn,
        }
    }
}

/// A sentence for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say {
    pub turn: TurnId,
    pub text: String,
    pub purpose: SayPurpose,
}

/// Why the agent says something, which decides whether the caller may
/// interrupt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SayPurpose {
    /// The flow's greeting.
    Greeting,
    /// A node's `say` or a slot's `prompt`.
    Prompt,
    /// A no-input or no-match reprompt (a clarifying question).
    Reprompt,
    /// A `say` step.
    Step,
    /// The sentence before a transfer; played to the end, then the call
    /// is transferred.
    Confirmation,
}

impl SayPurpose {
    /// Whether the caller speaking (barge-in) stops it.
    pub fn interruptible(self) -> bool {
        !matches!(self, SayPurpose::Confirmation)
    }
}

/// Wait for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Inputs answering this listen quote it.
    pub turn: TurnId,
    pub node: String,
    /// The intents to detect, in the flow's order; empty when collecting a
    /// slot or when the node listens for keys only.
    pub intents: Vec<String>,
    /// The DTMF keys the node acts on (when collecting a slot, keys enter
    /// its value instead).
    pub keys: Vec<char>,
    /// The slot being collected, if any.
    pub slot: Option<SlotRequest>,
    /// Call [`Interpreter::handle_no_input`] after this long without
    /// speech, counted from the end of the prompt.
    pub timeout: Duration,
}

/// The slot a [`Listen`] collects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRequest {
    pub name: String,
    pub kind: SlotKind,
    pub min_digits: Option<u32>,
    pub max_digits: Option<u32>,
}

/// Transfer the call: try the targets in order (the next one is the
/// failover), then record the one that answered with
/// [`DestinationState::record_transfer`]. The call is over for the
/// interpreter.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub turn: TurnId,
    /// From [`routing::route`], never empty.
    pub targets: Vec<Target>,
    /// Every routing rule applied, for logs and call records.
    pub reason: String,
}

/// End the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Hangup {
    pub turn: TurnId,
    pub reason: HangupReason,
}

/// Why the interpreter ended the call.
#[derive(Debug, Clone, PartialEq)]
pub enum HangupReason {
    /// A `hangup` step.
    Step,
    /// Steps ran out in a node that does not listen.
    EndOfFlow,
    /// Reprompts ran out where the flow configures no escalation.
    RepromptsExhausted,
    /// Routing found no target available (the reason says why).
    NoTarget(String),
    /// A transfer could not be routed at all.
    Unroutable(RouteError),
    /// More than [`InterpreterConfig::max_steps`] steps without waiting.
    Loop,
}

impl fmt::Display for HangupReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HangupReason::Step => f.write_str("hangup step"),
            HangupReason::EndOfFlow => f.write_str("end of the flow"),
            HangupReason::RepromptsExhausted => f.write_str("reprompts used up, no escalation"),
            HangupReason::NoTarget(reason) => write!(f, "no target available ({reason})"),
            HangupReason::Unroutable(error) => write!(f, "cannot route: {error}"),
            HangupReason::Loop => f.write_str("the flow loops without waiting for the caller"),
        }
    }
}

/// Which kind of reprompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The caller said nothing.
    NoInput,
    /// Nothing the caller said or keyed was recognised.
    NoMatch,
}

impl Miss {
    pub fn as_str(self) -> &'static str {
        match self {
            Miss::NoInput => "no_input",
            Miss::NoMatch => "no_match",
        }
    }
}

/// What happened, in order, for logs, records and reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    NodeEntered {
        turn: TurnId,
        node: String,
    },
    IntentMatched {
        turn: TurnId,
        node: String,
        intent: String,
        confidence: f32,
    },
    KeyMatched {
        turn: TurnId,
        node: String,
        key: char,
    },
    /// A reprompt: `count` of `limit` in this visit of the node.
    Reprompted {
        turn: TurnId,
        node: String,
        miss: Miss,
        count: u32,
        limit: u32,
    },
    /// The reprompts ran out; the escalation steps run.
    Escalated {
        turn: TurnId,
        node: String,
        miss: Miss,
    },
    /// Speech in a language other than the caller's so far.
    LanguageDetected {
        turn: TurnId,
        language: String,
    },
    SlotFilled {
        turn: TurnId,
        slot: String,
        value: String,
    },
    SlotRejected {
        turn: TurnId,
        slot: String,
        problem: String,
    },
    Routed {
        turn: TurnId,
        decision: RouteDecision,
    },
    /// An input for an old turn, or after the call ended.
    InputIgnored {
        turn: TurnId,
        current: TurnId,
    },
}

/// One call's conversation; see the module documentation.
#[derive(Debug, Clone)]
pub struct Interpreter {
    flow: Arc<Flow>,
    config: InterpreterConfig,
    /// Who is calling. Its language follows the caller's speech.
    caller: CallerAttributes,
    /// Collected values, for `collect`, `{slot}` targets and records.
    slots: Slots,
    turn: TurnId,
    phase: Phase,
    /// The node the call is in: the last one entered.
    node: String,
    /// Reprompts used in this visit of `node`, per kind.
    no_input_count: u32,
    no_match_count: u32,
    /// DTMF digits keyed so far for the slot being collected.
    keyed: String,
    /// The last listen, for drivers and reports.
    listening: Option<Listen>,
    events: VecDeque<Event>,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    NotStarted,
    Listening(Awaiting),
    Finished,
}

/// What the caller's next input answers.
#[derive(Debug, Clone, PartialEq)]
enum Awaiting {
    /// The node's intents and keys.
    Choice,
    /// A slot; then the steps continue at `resume`.
    Slot { name: String, resume: Cursor },
}

/// A position in one of the flow's step lists.
#[derive(Debug, Clone, PartialEq)]
struct Cursor {
    list: StepList,
    next: usize,
}

/// A step list of the flow, by where it is written; looked up again on use
/// so the interpreter holds no borrows of the flow.
#[derive(Debug, Clone, PartialEq)]
enum StepList {
    Intent {
        node: String,
        index: usize,
    },
    Key {
        node: String,
        key: char,
    },
    Then {
        node: String,
    },
    /// A reprompt's escalation: the node's, or the flow's (`node: None`).
    Escalation {
        node: Option<String>,
        miss: Miss,
    },
}

/// Per-input working state.
struct Turn<'a> {
    now: DateTime<Utc>,
    destinations: &'a DestinationState,
    out: Vec<Action>,
    steps: usize,
}

impl Interpreter {
    pub fn new(flow: Arc<Flow>, config: InterpreterConfig) -> Self {
        let node = flow.start.clone();
        Interpreter {
            flow,
            config,
            caller: CallerAttributes::default(),
            slots: Slots::new(),
            turn: TurnId(0),
            phase: Phase::NotStarted,
            node,
            no_input_count: 0,
            no_match_count: 0,
            keyed: String::new(),
            listening: None,
            events: VecDeque::new(),
        }
    }

    /// The call was answered: the greeting, then the start node.
    pub fn handle_call_started(
        &mut self,
        now: DateTime<Utc>,
        caller: CallerAttributes,
        destinations: &DestinationState,
    ) -> Vec<Action> {
        if self.phase != Phase::NotStarted {
            debug_assert!(false, "handle_call_started called twice");
            return Vec::new();
        }
        self.caller = caller;
        self.turn = self.turn.next();
        let mut turn = Turn::new(now, destinations);
        let flow = Arc::clone(&self.flow);
        self.say(&mut turn, SayPurpose::Greeting, &flow.greeting);
        let start = flow.start.clone();
        if let Some(cursor) = self.enter(&mut turn, &start) {
            self.run(&mut turn, cursor);
        }
        turn.out
    }

    /// The caller said something (or nothing: a blank transcript is no
    /// input).
    pub fn handle_utterance(
        &mut self,
        now: DateTime<Utc>,
        utterance: Utterance,
        destinations: &DestinationState,
    ) -> Vec<Action> {
        let Some(awaiting) = self.accept(utterance.turn) else {
            return Vec::new();
        };
        let mut turn = Turn::new(now, destinations);
        let spoken_language = self.hear_language(utterance.language.as_deref());
        if utterance.transcript.trim().is_empty() {
            self.miss(&mut turn, Miss::NoInput, awaiting, None);
            return turn.out;
        }
        let flow = Arc::clone(&self.flow);
        let node_name = self.node.clone();
        let Some(node) = flow.nodes.get(&node_name) else {
            self.hang_up(&mut turn, HangupReason::EndOfFlow);
            return turn.out;
        };
        let result = utterance.intent.as_ref();
        match awaiting {
            Awaiting::Choice => {
                if let Some(result) = result {
                    self.take_detected_slots(node, result, now);
                }
                let matched = result
                    .and_then(|r| r.intent.as_deref())
                    .and_then(|name| node.intents.iter().position(|i| i.name == name));
                if let Some(index) = matched {
                    let intent = &node.intents[index];
                    self.events.push_back(Event::IntentMatched {
                        turn: self.turn,
                        node: node_name.clone(),
                        intent: intent.name.clone(),
                        confidence: result.map_or(0.0, |r| r.confidence),
                    });
                    let list = StepList::Intent {
                        node: node_name,
                        index,
                    };
                    self.run(&mut turn, Cursor { list, next: 0 });
                } else if let Some((language, target)) = spoken_language
                    .as_deref()
                    .and_then(|l| self.language_rule(l).map(|t| (l.to_string(), t)))
                {
                    // Speech in a language the line routes elsewhere: the
                    // intents (written in the line's language) cannot be
                    // expected to match; its rule decides.
                    let prefix = format!("language {language} detected in speech → {target}");
                    self.transfer(&mut turn, Wanted::Target(&target), None, Some(prefix));
                } else {
                    let reply = result.and_then(|r| r.reply.clone());
                    self.miss(&mut turn, Miss::NoMatch, Awaiting::Choice, reply);
                }
            }
            Awaiting::Slot { name, resume } => {
                let Some(slot) = node.slots.iter().find(|s| s.name == name) else {
                    self.hang_up(&mut turn, HangupReason::EndOfFlow);
                    return turn.out;
                };
                let today = self.today(now);
                let detected = result.and_then(|r| r.slots.get(&name));
                let value = detected
                    .and_then(|v| from_speech(slot, v, today).ok())
                    .map(Ok)
                    .unwrap_or_else(|| from_speech(slot, &utterance.transcript, today));
                match value {
                    Ok(value) => {
                        self.fill(&name, value);
                        self.run(&mut turn, resume);
                    }
                    Err(problem) => {
                        self.reject(&name, problem.to_string());
                        self.miss(
                            &mut turn,
                            Miss::NoMatch,
                            Awaiting::Slot { name, resume },
                            None,
                        );
                    }
                }
            }
        }
        turn.out
    }

    /// The caller pressed a key (`0`-`9`, `*`, `#`).
    pub fn handle_key(
        &mut self,
        now: DateTime<Utc>,
        turn_id: TurnId,
        key: char,
        destinations: &DestinationState,
    ) -> Vec<Action> {
        let Some(awaiting) = self.accept(turn_id) else {
            return Vec::new();
        };
        let mut turn = Turn::new(now, destinations);
        let flow = Arc::clone(&self.flow);
        let node_name = self.node.clone();
        let Some(node) = flow.nodes.get(&node_name) else {
            self.hang_up(&mut turn, HangupReason::EndOfFlow);
            return turn.out;
        };
        match awaiting {
            Awaiting::Choice => {
                if node.keys.contains(key.encode_utf8(&mut [0; 4])) {
                    self.events.push_back(Event::KeyMatched {
                        turn: self.turn,
                        node: node_name.clone(),
                        key,
                    });
                    let list = StepList::Key {
                        node: node_name,
                        key,
                    };
                    self.run(&mut turn, Cursor { list, next: 0 });
                } else {
                    self.miss(&mut turn, Miss::NoMatch, Awaiting::Choice, None);
                }
            }
            Awaiting::Slot { name, resume } => {
                let Some(slot) = node.slots.iter().find(|s| s.name == name) else {
                    self.hang_up(&mut turn, HangupReason::EndOfFlow);
                    return turn.out;
                };
                let mut keyed = std::mem::take(&mut self.keyed);
                match from_key(slot, &mut keyed, key) {
                    Keyed::Pending => {
                        self.keyed = keyed;
                        self.listen(&mut turn, Awaiting::Slot { name, resume });
                    }
                    Keyed::Done(value) => {
                        self.fill(&name, value);
                        self.run(&mut turn, resume);
                    }
                    Keyed::Rejected(problem) => {
                        self.reject(&name, problem.to_string());
                        self.miss(
                            &mut turn,
                            Miss::NoMatch,
                            Awaiting::Slot { name, resume },
                            None,
                        );
                    }
                }
            }
        }
        turn.out
    }

    /// A value for a slot of the current node found by other means (an
    /// LLM, a CRM lookup). It is normalised like speech; when it is the
    /// slot being collected, the steps continue.
    pub fn handle_slot_value(
        &mut self,
        now: DateTime<Utc>,
        turn_id: TurnId,
        slot_name: &str,
        value: &str,
        destinations: &DestinationState,
    ) -> Vec<Action> {
        let Some(awaiting) = self.accept(turn_id) else {
            return Vec::new();
        };
        let mut turn = Turn::new(now, destinations);
        let flow = Arc::clone(&self.flow);
        let slot = flow
            .nodes
            .get(&self.node)
            .and_then(|n| n.slots.iter().find(|s| s.name == slot_name));
        let parsed = match slot {
            Some(slot) => from_speech(slot, value, self.today(now)).map_err(|p| p.to_string()),
            None => Err(format!(
                "node \"{}\" has no slot \"{slot_name}\"",
                self.node
            )),
        };
        match (parsed, awaiting) {
            (Ok(value), Awaiting::Slot { name, resume }) if name == slot_name => {
                self.fill(slot_name, value);
                self.run(&mut turn, resume);
            }
            (Ok(value), awaiting) => {
                self.fill(slot_name, value);
                self.listen(&mut turn, awaiting);
            }
            (Err(problem), awaiting) => {
                self.reject(slot_name, problem);
                self.listen(&mut turn, awaiting);
            }
        }
        turn.out
    }

    /// The listen's timeout passed without speech. Keys entered for a slot
    /// so far are taken as the value (the caller stopped keying).
    pub fn handle_no_input(
        &mut self,
        now: DateTime<Utc>,
        turn_id: TurnId,
        destinations: &DestinationState,
    ) -> Vec<Action> {
        let Some(awaiting) = self.accept(turn_id) else {
            return Vec::new();
        };
        let mut turn = Turn::new(now, destinations);
        if let Awaiting::Slot { name, resume } = &awaiting {
            if !self.keyed.is_empty() {
                let keyed = std::mem::take(&mut self.keyed);
                let flow = Arc::clone(&self.flow);
                let slot = flow
                    .nodes
                    .get(&self.node)
                    .and_then(|n| n.slots.iter().find(|s| s.name == *name));
                if let Some(slot) = slot {
                    match finish_keys(slot, &keyed) {
                        Ok(value) => {
                            self.fill(name, value);
                            self.run(&mut turn, resume.clone());
                        }
                        Err(problem) => {
                            self.reject(name, problem.to_string());
                            self.miss(&mut turn, Miss::NoMatch, awaiting, None);
                        }
                    }
                    return turn.out;
                }
            }
        }
        self.miss(&mut turn, Miss::NoInput, awaiting, None);
        turn.out
    }

    /// The caller hung up: nothing more happens.
    pub fn handle_caller_hung_up(&mut self, _now: DateTime<Utc>) {
        self.phase = Phase::Finished;
        self.listening = None;
    }

    /// The next thing that happened, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The current turn: the one the last actions belong to.
    pub fn turn(&self) -> TurnId {
        self.turn
    }

    /// The node the call is in (the start node before the call starts).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// What the interpreter waits for, while it waits.
    pub fn listening(&self) -> Option<&Listen> {
        self.listening.as_ref()
    }

    /// The caller as routing sees them now.
    pub fn caller(&self) -> &CallerAttributes {
        &self.caller
    }

    /// Collected slot values.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// Whether the call was transferred or ended.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    /// Accepts an input for `turn`: the call must be waiting for it. Starts
    /// the next turn and returns what the input answers.
    fn accept(&mut self, turn: TurnId) -> Option<Awaiting> {
        match &self.phase {
            Phase::Listening(_) if turn == self.turn => {}
            _ => {
                self.events.push_back(Event::InputIgnored {
                    turn,
                    current: self.turn,
                });
                return None;
            }
        }
        let Phase::Listening(awaiting) = std::mem::replace(&mut self.phase, Phase::Finished) else {
            return None;
        };
        self.turn = self.turn.next();
        self.listening = None;
        Some(awaiting)
    }

    /// Updates the caller's language from speech; returns it if it changed.
    fn hear_language(&mut self, language: Option<&str>) -> Option<String> {
        let language = language.map(str::trim).filter(|l| !l.is_empty())?;
        if self.caller.language.as_deref() == Some(language) {
            return None;
        }
        self.caller.language = Some(language.to_string());
        self.events.push_back(Event::LanguageDetected {
            turn: self.turn,
            language: language.to_string(),
        });
        Some(language.to_string())
    }

    /// The `routing.languages` target for a language other than the
    /// line's own.
    fn language_rule(&self, language: &str) -> Option<String> {
        let primary = |l: &str| l.split('-').next().unwrap_or(l).to_ascii_lowercase();
        if let Some(line) = &self.flow.language {
            if primary(line) == primary(language) {
                return None;
            }
        }
        let rules = &self.flow.routing.languages;
        rules
            .get(language)
            .or_else(|| rules.get(&primary(language)))
            .cloned()
    }

    /// Today in the line's timezone (that of `routing.hours`), else UTC.
    fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        let flow = &self.flow;
        flow.routing
            .hours
            .as_ref()
            .and_then(|name| flow.schedules.get(name))
            .and_then(|s| parse_timezone(&s.timezone).ok())
            .map_or(now.date_naive(), |tz| now.with_timezone(&tz).date_naive())
    }

    /// Slot values an LLM found in an utterance, for the node's slots.
    fn take_detected_slots(&mut self, node: &Node, result: &IntentResult, now: DateTime<Utc>) {
        let today = self.today(now);
        for (name, value) in &result.slots {
            if let Some(slot) = node.slots.iter().find(|s| s.name == *name) {
                if let Ok(value) = from_speech(slot, value, today) {
                    self.fill(name, value);
                }
            }
        }
    }

    fn fill(&mut self, slot: &str, value: String) {
        self.keyed.clear();
        self.events.push_back(Event::SlotFilled {
            turn: self.turn,
            slot: slot.to_string(),
            value: value.clone(),
        });
        self.slots.insert(slot.to_string(), value);
    }

    fn reject(&mut self, slot: &str, problem: String) {
        self.keyed.clear();
        self.events.push_back(Event::SlotRejected {
            turn: self.turn,
            slot: slot.to_string(),
            problem,
        });
    }

    fn say(&mut self, turn: &mut Turn, purpose: SayPurpose, text: &str) {
        turn.out.push(Action::Say(Say {
            turn: self.turn,
            text: text.to_string(),
            purpose,
        }));
    }

    fn hang_up(&mut self, turn: &mut Turn, reason: HangupReason) {
        self.phase = Phase::Finished;
        self.listening = None;
        turn.out.push(Action::Hangup(Hangup {
            turn: self.turn,
            reason,
        }));
    }

    /// Enters `name`: its prompt, then either a listen (None) or its
    /// `then` steps to run.
    fn enter(&mut self, turn: &mut Turn, name: &str) -> Option<Cursor> {
        let flow = Arc::clone(&self.flow);
        let Some(node) = flow.nodes.get(name) else {
            self.hang_up(turn, HangupReason::EndOfFlow);
            return None;
        };
        self.node = name.to_string();
        self.no_input_count = 0;
        self.no_match_count = 0;
        self.keyed.clear();
        self.events.push_back(Event::NodeEntered {
            turn: self.turn,
            node: name.to_string(),
        });
        if let Some(say) = &node.say {
            self.say(turn, SayPurpose::Prompt, say);
        }
        if listens(node) {
            self.listen(turn, Awaiting::Choice);
            None
        } else if node.then.is_some() {
            Some(Cursor {
                list: StepList::Then {
                    node: name.to_string(),
                },
                next: 0,
            })
        } else {
            self.hang_up(turn, HangupReason::EndOfFlow);
            None
        }
    }

    /// Runs steps from `cursor` until the call waits or ends.
    fn run(&mut self, turn: &mut Turn, mut cursor: Cursor) {
        let flow = Arc::clone(&self.flow);
        loop {
            turn.steps += 1;
            if turn.steps > self.config.max_steps {
                self.hang_up(turn, HangupReason::Loop);
                return;
            }
            let Some(steps) = steps_of(&flow, &cursor.list) else {
                self.hang_up(turn, HangupReason::EndOfFlow);
                return;
            };
            let Some(step) = steps.0.get(cursor.next) else {
                // A list without transfer, goto or hangup: back to waiting
                // in a node that listens, else the flow is over.
                if flow.nodes.get(&self.node).is_some_and(listens) {
                    self.listen(turn, Awaiting::Choice);
                } else {
                    self.hang_up(turn, HangupReason::EndOfFlow);
                }
                return;
            };
            match step {
                Step::Say(text) => {
                    self.say(turn, SayPurpose::Step, text);
                    cursor.next += 1;
                }
                Step::Goto(node) => match self.enter(turn, node) {
                    Some(next) => cursor = next,
                    None => return,
                },
                Step::Collect(slot) => {
                    if self.slots.contains_key(slot) {
                        cursor.next += 1;
                    } else {
                        let resume = Cursor {
                            list: cursor.list.clone(),
                            next: cursor.next + 1,
                        };
                        self.ask(turn, slot, resume);
                        return;
                    }
                }
                Step::Transfer(target) => {
                    let wanted = match &cursor.list {
                        StepList::Intent { node, index } => flow
                            .nodes
                            .get(node)
                            .and_then(|n| n.intents.get(*index))
                            .map_or(Wanted::Target(target), |intent| Wanted::Intent {
                                node,
                                intent: &intent.name,
                            }),
                        StepList::Key { node, key } => Wanted::Key { node, key: *key },
                        _ => Wanted::Target(target),
                    };
                    self.transfer(turn, wanted, Some(&cursor), None);
                    return;
                }
                Step::Hangup => {
                    self.hang_up(turn, HangupReason::Step);
                    return;
                }
            }
        }
    }

    /// Asks for a slot of the current node and waits for it.
    fn ask(&mut self, turn: &mut Turn, name: &str, resume: Cursor) {
        let flow = Arc::clone(&self.flow);
        let Some(slot) = flow
            .nodes
            .get(&self.node)
            .and_then(|n| n.slots.iter().find(|s| s.name == name))
        else {
            self.hang_up(
                turn,
                HangupReason::Unroutable(RouteError::MissingSlot(name.to_string())),
            );
            return;
        };
        if let Some(prompt) = &slot.prompt {
            self.say(turn, SayPurpose::Prompt, prompt);
        }
        self.listen(
            turn,
            Awaiting::Slot {
                name: name.to_string(),
                resume,
            },
        );
    }

    fn listen(&mut self, turn: &mut Turn, awaiting: Awaiting) {
        let flow = Arc::clone(&self.flow);
        let node = flow.nodes.get(&self.node);
        let slot = match &awaiting {
            Awaiting::Slot { name, .. } => node
                .and_then(|n| n.slots.iter().find(|s| s.name == *name))
                .map(|s: &Slot| SlotRequest {
                    name: s.name.clone(),
                    kind: s.kind,
                    min_digits: s.min_digits,
                    max_digits: s.max_digits,
                }),
            Awaiting::Choice => None,
        };
        let choice = slot.is_none();
        let listen = Listen {
            turn: self.turn,
            node: self.node.clone(),
            intents: node
                .filter(|_| choice)
                .map(|n| n.intents.iter().map(|i| i.name.clone()).collect())
                .unwrap_or_default(),
            keys: node
                .filter(|_| choice)
                .map(|n| n.keys.names().filter_map(|k| k.chars().next()).collect())
                .unwrap_or_default(),
            slot,
            timeout: self.config.no_input_timeout,
        };
        self.listening = Some(listen.clone());
        turn.out.push(Action::Listen(listen));
        self.phase = Phase::Listening(awaiting);
    }

    /// A no-input or no-match: a reprompt while the limit lasts (the
    /// detector's proposed reply, else the flow's text, else the question
    /// again), then the escalation.
    fn miss(&mut self, turn: &mut Turn, miss: Miss, awaiting: Awaiting, reply: Option<String>) {
        let flow = Arc::clone(&self.flow);
        let node_name = self.node.clone();
        let node = flow.nodes.get(&node_name);
        let (reprompt, flow_wide): (Option<&Reprompt>, bool) = match miss {
            Miss::NoInput => match node.and_then(|n| n.no_input.as_ref()) {
                Some(r) => (Some(r), false),
                None => (flow.no_input.as_ref(), true),
            },
            Miss::NoMatch => match node.and_then(|n| n.no_match.as_ref()) {
                Some(r) => (Some(r), false),
                None => (flow.no_match.as_ref(), true),
            },
        };
        let count = match miss {
            Miss::NoInput => {
                self.no_input_count += 1;
                self.no_input_count
            }
            Miss::NoMatch => {
                self.no_match_count += 1;
                self.no_match_count
            }
        };
        let limit = reprompt.map_or(DEFAULT_REPROMPT_LIMIT, |r| r.limit);
        if count <= limit {
            self.events.push_back(Event::Reprompted {
                turn: self.turn,
                node: node_name,
                miss,
                count,
                limit,
            });
            let configured = reprompt.and_then(|r| {
                let index = (count as usize - 1).min(r.say.len().saturating_sub(1));
                r.say.get(index).cloned()
            });
            let text = reply
                .filter(|r| !r.trim().is_empty())
                .or(configured)
                .or_else(|| self.question(&awaiting));
            if let Some(text) = text {
                self.say(turn, SayPurpose::Reprompt, &text);
            }
            self.listen(turn, awaiting);
            return;
        }
        self.events.push_back(Event::Escalated {
            turn: self.turn,
            node: node_name.clone(),
            miss,
        });
        match reprompt {
            Some(_) => {
                let list = StepList::Escalation {
                    node: (!flow_wide).then_some(node_name),
                    miss,
                };
                self.run(turn, Cursor { list, next: 0 });
            }
            None => self.hang_up(turn, HangupReason::RepromptsExhausted),
        }
    }

    /// The question a listen answers, asked again: the slot's prompt, the
    /// node's `say`, or for the start node the greeting.
    fn question(&self, awaiting: &Awaiting) -> Option<String> {
        let node = self.flow.nodes.get(&self.node)?;
        if let Awaiting::Slot { name, .. } = awaiting {
            if let Some(prompt) = node
                .slots
                .iter()
                .find(|s| s.name == *name)
                .and_then(|s| s.prompt.clone())
            {
                return Some(prompt);
            }
        }
        node.say
            .clone()
            .or_else(|| (self.node == self.flow.start).then(|| self.flow.greeting.clone()))
    }

    /// Routes and transfers: the confirmation sentence, then the targets.
    /// A `{slot}` target whose value names nothing is a no-match for that
    /// slot, asked again; `at` is where the transfer step is, to continue
    /// there once the slot has a new value.
    fn transfer(
        &mut self,
        turn: &mut Turn,
        wanted: Wanted,
        at: Option<&Cursor>,
        reason_prefix: Option<String>,
    ) {
        let flow = Arc::clone(&self.flow);
        let request = RouteRequest {
            wanted,
            slots: &self.slots,
            caller: &self.caller,
            at: turn.now,
            state: turn.destinations,
        };
        match route(&flow, &request) {
            Ok(mut decision) => {
                if let Some(prefix) = reason_prefix {
                    decision.reason = format!("{prefix}; {}", decision.reason);
                }
                self.events.push_back(Event::Routed {
                    turn: self.turn,
                    decision: decision.clone(),
                });
                let Some(first) = decision.targets.first() else {
                    self.hang_up(turn, HangupReason::NoTarget(decision.reason));
                    return;
                };
                if let Some(sentence) = routing::confirmation(&flow, &first.destination) {
                    self.say(turn, SayPurpose::Confirmation, &sentence);
                }
                self.phase = Phase::Finished;
                self.listening = None;
                turn.out.push(Action::Transfer(Transfer {
                    turn: self.turn,
                    targets: decision.targets,
                    reason: decision.reason,
                }));
            }
            Err(RouteError::SlotNamesNothing { slot, value }) if at.is_some() => {
                self.slots.remove(&slot);
                self.reject(&slot, format!("\"{value}\" names no destination"));
                let resume = at.cloned().unwrap_or(Cursor {
                    list: StepList::Then {
                        node: self.node.clone(),
                    },
                    next: 0,
                });
                self.miss(
                    turn,
                    Miss::NoMatch,
                    Awaiting::Slot { name: slot, resume },
                    None,
                );
            }
            Err(RouteError::MissingSlot(slot)) if at.is_some() => {
                let resume = at.cloned().unwrap_or(Cursor {
                    list: StepList::Then {
                        node: self.node.clone(),
                    },
                    next: 0,
                });
                self.ask(turn, &slot, resume);
            }
            Err(error) => self.hang_up(turn, HangupReason::Unroutable(error)),
        }
    }
}

impl<'a> Turn<'a> {
    fn new(now: DateTime<Utc>, destinations: &'a DestinationState) -> Self {
        Turn {
            now,
            destinations,
            out: Vec::new(),
            steps: 0,
        }
    }
}

/// Whether a node waits for the caller's choice.
fn listens(node: &Node) -> bool {
    !node.intents.is_empty() || !node.keys.is_empty()
}

fn steps_of<'f>(flow: &'f Flow, list: &StepList) -> Option<&'f Steps> {
    match list {
        StepList::Intent { node, index } => flow
            .nodes
            .get(node)
            .and_then(|n| n.intents.get(*index))
            .map(|i| &i.then),
        StepList::Key { node, key } => flow
            .nodes
            .get(node)
            .and_then(|n| n.keys.get(key.encode_utf8(&mut [0; 4]))),
        StepList::Then { node } => flow.nodes.get(node).and_then(|n| n.then.as_ref()),
        StepList::Escalation { node, miss } => {
            let reprompt = match node {
                Some(node) => {
                    let node = flow.nodes.get(node)?;
                    match miss {
                        Miss::NoInput => node.no_input.as_ref(),
                        Miss::NoMatch => node.no_match.as_ref(),
                    }
                }
                None => match miss {
                    Miss::NoInput => flow.no_input.as_ref(),
                    Miss::NoMatch => flow.no_match.as_ref(),
                },
            };
            reprompt.map(|r| &r.then)
        }
    }
}
