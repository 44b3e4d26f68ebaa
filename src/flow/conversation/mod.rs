//! Flow tests: conversations written in YAML, run against a flow with its
//! real intent detector (`switchboard test`, `tests/flow_conversations.rs`).
//!
//! ```yaml
//! flow: ../support.yaml               # relative to this file
//! at: "2025-01-07T10:00:00-05:00"     # RFC 3339; per test too
//! caller: "+12125550199"              # per test too; default anonymous
//! tests:
//!   - name: a billing question in opening hours
//!     greeting: How can I help        # in what is said at the start
//!     turns:
//!       - says: I was charged twice on my last bill.
//!         intent: billing
//!         destination: billing
//!         agent: putting you through to our billing team
//! ```
//!
//! A turn is one caller input, `says` (text; `language` is the language
//! the recogniser would report), `presses` (DTMF keys) or `silence: true`,
//! and what to expect after it, each optional: `node`, `intent` (`null`:
//! none matched), `destination` (the first target; `null`: no transfer),
//! `targets` (all, in order, `name` or `name via trunk`), `agent` (text
//! the agent says in the turn), `reason` (text in the routing reason),
//! `hangup` and `slots`. A test may set the destinations' `state`
//! (`unreachable`, `busy`, `trunks_down`) and, for flows that look
//! customers up by webhook, the `customer` record.
//!
//! Loading gives every problem of a file as a [`Diagnostic`] at its
//! `file:line:col`, like flows; see [`load_test_file`]. Running is in
//! [`run`].

mod run;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

pub use run::{FileOutcome, Mismatch, Runner, TestOutcome, TurnOutcome};

use super::caller::{CallerAttributes, Customer};
use super::diagnostic::{suggestion_hint, Diagnostic};
use super::load::{load_flow, parse_document, PathBuf as KeyPath, Position, SourceMap};
use super::model::{Flow, Table};
use super::routing::DestinationState;
use super::simulator::CallerInput;

/// A flow-test file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    flow: String,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    caller: Option<String>,
    tests: Vec<TestSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestSpec {
    name: String,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    caller: Option<String>,
    #[serde(default)]
    customer: Option<CustomerSpec>,
    #[serde(default)]
    state: StateSpec,
    #[serde(default)]
    greeting: Option<String>,
    turns: Vec<TurnSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerSpec {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    language: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateSpec {
    #[serde(default)]
    unreachable: Vec<String>,
    #[serde(default)]
    busy: Vec<String>,
    #[serde(default)]
    trunks_down: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TurnSpec {
    #[serde(default)]
    says: Option<String>,
    #[serde(default)]
    presses: Option<String>,
    #[serde(default)]
    silence: Option<bool>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    node: Option<String>,
    #[serde(default, deserialize_with = "present")]
    intent: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    destination: Option<Option<String>>,
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    hangup: Option<bool>,
    #[serde(default)]
    slots: Option<Table<String>>,
}

/// Tells a key written as `null` (Some(None)) from a key left out (None).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A checked flow-test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    /// As given.
    pub path: PathBuf,
    /// The flow, relative to the current directory.
    pub flow_path: PathBuf,
    pub tests: Vec<ConversationTest>,
}

/// One conversation and what to expect of it.
#[derive(Debug, Clone)]
pub struct ConversationTest {
    pub name: String,
    /// Where it is written, for reports.
    pub line: usize,
    pub at: DateTime<Utc>,
    /// The caller's number as the PBX gives it.
    pub caller: String,
    /// Replaces the customer lookup (for flows with a webhook).
    pub customer: Option<Customer>,
    pub state: DestinationState,
    /// Text expected in what is said when the call starts.
    pub greeting: Option<String>,
    pub turns: Vec<TurnTest>,
}

impl ConversationTest {
    /// The caller as the test sets them up, for a flow's `callers`.
    pub fn caller_attributes(
        &self,
        flow: &Flow,
        lookup: impl Fn(&str) -> CallerAttributes,
    ) -> CallerAttributes {
        match &self.customer {
            Some(customer) => {
                CallerAttributes::identify(flow.callers.as_ref(), &self.caller, Some(customer))
            }
            None => lookup(&self.caller),
        }
    }
}

/// One caller input and what to expect after it.
#[derive(Debug, Clone)]
pub struct TurnTest {
    pub line: usize,
    pub input: CallerInput,
    pub expect: Expect,
}

/// What a turn must show; `None` is not checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    pub node: Option<String>,
    /// `Some(None)`: no intent matched.
    pub intent: Option<Option<String>>,
    /// `Some(None)`: no transfer.
    pub destination: Option<Option<String>>,
    pub targets: Option<Vec<String>>,
    pub agent: Option<String>,
    pub reason: Option<String>,
    pub hangup: Option<bool>,
    pub slots: Vec<(String, String)>,
}

const EMPTY_HINT: &str = "a flow test needs flow, at and tests; see docs/flows.md, \"Flow tests\"";

/// The caller number used when neither the file nor the test names one.
pub const ANONYMOUS: &str = "anonymous";

/// Reads and checks a flow-test file and the flow it names: every problem
/// at its place, the flow's own problems included.
pub fn load_test_file(path: &Path) -> Result<TestFile, Vec<Diagnostic>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic {
            file: name.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read the test file: {e}"),
            hint: None,
        }]
    })?;
    let parsed = parse_document::<FileSpec>(&name, &text, EMPTY_HINT);
    let mut diagnostics = parsed.diagnostics.clone();
    let (Some(spec), Some(map)) = (&parsed.value, &parsed.map) else {
        return Err(diagnostics);
    };
    let flow_path = path.parent().unwrap_or(Path::new("")).join(&spec.flow);
    let mut checker = Checker {
        file: &name,
        map,
        out: Vec::new(),
    };
    let flow = match load_flow(&flow_path) {
        Ok(flow) => Some(flow),
        Err(problems) => {
            let unreadable = problems.iter().any(|d| d.line == 0);
            checker.report(
                map.value(&KeyPath::of(&["flow"])),
                if unreadable {
                    format!("cannot read flow \"{}\"", spec.flow)
                } else {
                    format!("flow \"{}\" has problems", spec.flow)
                },
                Some(format!(
                    "the path is relative to the test file: {}",
                    flow_path.display()
                )),
            );
            if !unreadable {
                checker.out.extend(problems);
            }
            None
        }
    };
    let tests = checker.tests(spec, flow.as_ref());
    diagnostics.extend(
        checker
            .out
            .into_iter()
            .filter(|d| d.file != name || !parsed.follows_unknown_key(d)),
    );
    if diagnostics.is_empty() {
        Ok(TestFile {
            path: path.to_path_buf(),
            flow_path,
            tests,
        })
    } else {
        diagnostics.sort_by_key(|d| (d.file != name, d.line, d.column));
        diagnostics.dedup();
        Err(diagnostics)
    }
}

struct Checker<'a> {
    file: &'a str,
    map: &'a SourceMap,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn report(&mut self, at: Position, message: String, hint: Option<String>) {
        self.out.push(Diagnostic {
            file: self.file.to_string(),
            line: at.line,
            column: at.column,
            message,
            hint,
        });
    }

    fn time(&mut self, path: &KeyPath, text: &str) -> Option<DateTime<Utc>> {
        match DateTime::parse_from_rfc3339(text.trim()) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                self.report(
                    self.map.value(path),
                    format!("invalid time \"{text}\""),
                    Some("write RFC 3339 with an offset, e.g. 2025-01-07T10:00:00-05:00".into()),
                );
                None
            }
        }
    }

    fn tests(&mut self, spec: &FileSpec, flow: Option<&Flow>) -> Vec<ConversationTest> {
        let file_at = spec
            .at
            .as_deref()
            .and_then(|at| self.time(&KeyPath::of(&["at"]), at));
        if spec.tests.is_empty() {
            self.report(
                self.map.value(&KeyPath::of(&["tests"])),
                "no tests".into(),
                Some("add a test: {name: ..., turns: [...]}".into()),
            );
        }
        let mut out = Vec::new();
        let mut names: Vec<(&str, usize)> = Vec::new();
        for (i, test) in spec.tests.iter().enumerate() {
            let path = KeyPath::of(&["tests"]).index(i);
            let line = self.map.value(&path).line;
            if test.name.trim().is_empty() {
                self.report(
                    self.map.value(&path.key("name")),
                    "test name is empty".into(),
                    Some("say what the conversation shows".into()),
                );
            } else if let Some((_, first)) = names.iter().find(|(n, _)| *n == test.name) {
                self.report(
                    self.map.value(&path.key("name")),
                    format!("duplicate test \"{}\"", test.name),
                    Some(format!("first defined at line {first}")),
                );
            } else {
                names.push((&test.name, self.map.value(&path.key("name")).line));
            }
            let at = match &test.at {
                Some(at) => self.time(&path.key("at"), at),
                None if spec.at.is_none() => {
                    self.report(
                        self.map.key(&path),
                        format!("test \"{}\" has no time", test.name),
                        Some("add at: to the test or to the file, e.g. at: \"2025-01-07T10:00:00-05:00\"".into()),
                    );
                    None
                }
                None => file_at,
            };
            let state = flow.map(|f| self.state(&path.key("state"), &test.state, f));
            if test.turns.is_empty() {
                self.report(
                    self.map.value(&path.key("turns")),
                    format!("test \"{}\" has no turns", test.name),
                    Some("add what the caller does: says, presses or silence".into()),
                );
            }
            let turns: Vec<TurnTest> = test
                .turns
                .iter()
                .enumerate()
                .filter_map(|(j, turn)| self.turn(&path.key("turns").index(j), turn, flow))
                .collect();
            let customer = test.customer.as_ref().map(|c| Customer {
                number: super::caller::normalize_number(
                    test.caller
                        .as_deref()
                        .or(spec.caller.as_deref())
                        .unwrap_or(""),
                ),
                name: c.name.clone().unwrap_or_default(),
                tier: c.tier.clone(),
                language: c.language.clone(),
            });
            if let (Some(at), Some(state)) = (at, state) {
                out.push(ConversationTest {
                    name: test.name.clone(),
                    line,
                    at,
                    caller: test
                        .caller
                        .clone()
                        .or_else(|| spec.caller.clone())
                        .unwrap_or_else(|| ANONYMOUS.to_string()),
                    customer,
                    state,
                    greeting: test.greeting.clone(),
                    turns,
                });
            }
        }
        out
    }

    fn state(&mut self, path: &KeyPath, spec: &StateSpec, flow: &Flow) -> DestinationState {
        let mut state = DestinationState::default();
        for (key, names) in [("unreachable", &spec.unreachable), ("busy", &spec.busy)] {
            for (i, name) in names.iter().enumerate() {
                match flow.destinations.get(name) {
                    Some(destination) => {
                        if key == "unreachable" {
                            state.set_reachable(name, false);
                        } else {
                            state.set_active_calls(name, destination.capacity.unwrap_or(1));
                        }
                    }
                    None => {
                        let hint = suggestion_hint(name, "destinations", flow.destinations.names());
                        self.report(
                            self.map.value(&path.key(key).index(i)),
                            format!("unknown destination \"{name}\""),
                            Some(hint),
                        );
                    }
                }
            }
        }
        for (i, trunk) in spec.trunks_down.iter().enumerate() {
            if flow.trunks.contains(trunk) {
                state.set_trunk_reachable(trunk, false);
            } else {
                let hint = suggestion_hint(trunk, "trunks", flow.trunks.names());
                self.report(
                    self.map.value(&path.key("trunks_down").index(i)),
                    format!("unknown trunk \"{trunk}\""),
                    Some(hint),
                );
            }
        }
        state
    }

    fn turn(&mut self, path: &KeyPath, spec: &TurnSpec, flow: Option<&Flow>) -> Option<TurnTest> {
        let at = self.map.value(path);
        let inputs = [
            spec.says.is_some(),
            spec.presses.is_some(),
            spec.silence.is_some(),
        ]
        .into_iter()
        .filter(|given| *given)
        .count();
        let input_hint = "give one of says: \"...\", presses: \"2\" or silence: true";
        let mut ok = true;
        if inputs == 0 {
            self.report(at, "turn has no input".into(), Some(input_hint.into()));
            ok = false;
        } else if inputs > 1 {
            self.report(
                at,
                "turn has more than one input".into(),
                Some(input_hint.into()),
            );
            ok = false;
        }
        if spec.silence == Some(false) {
            self.report(
                self.map.value(&path.key("silence")),
                "silence must be true".into(),
                Some("leave it out of turns where the caller does something".into()),
            );
            ok = false;
        }
        if let Some(keys) = &spec.presses {
            if let Some(bad) = keys
                .chars()
                .find(|c| !(c.is_ascii_digit() || *c == '*' || *c == '#'))
            {
                self.report(
                    self.map.value(&path.key("presses")),
                    format!("invalid DTMF key \"{bad}\""),
                    Some("keys are 0-9, * and #; quote them: presses: \"2\"".into()),
                );
                ok = false;
            }
            if keys.is_empty() {
                self.report(
                    self.map.value(&path.key("presses")),
                    "presses is empty".into(),
                    Some("give the keys, e.g. presses: \"2\"".into()),
                );
                ok = false;
            }
        }
        if spec.language.is_some() && spec.says.is_none() {
            self.report(
                self.map.key(&path.key("language")),
                "language needs says".into(),
                Some("language is what the recogniser heard the caller speak".into()),
            );
            ok = false;
        }
        if let Some(flow) = flow {
            self.expectations(path, spec, flow);
        }
        if !ok {
            return None;
        }
        let input = if let Some(text) = &spec.says {
            CallerInput::Says {
                text: text.clone(),
                language: spec.language.clone(),
            }
        } else if let Some(keys) = &spec.presses {
            CallerInput::Presses(keys.clone())
        } else {
            CallerInput::Silence
        };
        Some(TurnTest {
            line: at.line,
            input,
            expect: Expect {
                node: spec.node.clone(),
                intent: spec.intent.clone(),
                destination: spec.destination.clone(),
                targets: spec.targets.clone(),
                agent: spec.agent.clone(),
                reason: spec.reason.clone(),
                hangup: spec.hangup,
                slots: spec
                    .slots
                    .as_ref()
                    .map(|t| t.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
                    .unwrap_or_default(),
            },
        })
    }

    /// Expectations must name things the flow has, or the test could
    /// never pass.
    fn expectations(&mut self, path: &KeyPath, spec: &TurnSpec, flow: &Flow) {
        if let Some(node) = &spec.node {
            if !flow.nodes.contains(node) {
                let hint = suggestion_hint(node, "nodes", flow.nodes.names());
                self.report(
                    self.map.value(&path.key("node")),
                    format!("unknown node \"{node}\""),
                    Some(hint),
                );
            }
        }
        if let Some(Some(intent)) = &spec.intent {
            let mut intents: Vec<&str> = flow
                .nodes
                .iter()
                .flat_map(|(_, n)| n.intents.iter().map(|i| i.name.as_str()))
                .collect();
            intents.dedup();
            if !intents.contains(&intent.as_str()) {
                let hint = suggestion_hint(intent, "intents", intents.iter().copied());
                self.report(
                    self.map.value(&path.key("intent")),
                    format!("unknown intent \"{intent}\""),
                    Some(hint),
                );
            }
        }
        let destination_known =
            |name: &str| flow.destinations.contains(name) || name.starts_with('+');
        if let Some(Some(destination)) = &spec.destination {
            if !destination_known(destination) {
                self.unknown_destination(&path.key("destination"), destination, flow);
            }
        }
        for (i, target) in spec.targets.iter().flatten().enumerate() {
            let name = target.split(" via ").next().unwrap_or(target).trim();
            if !destination_known(name) {
                self.unknown_destination(&path.key("targets").index(i), name, flow);
            }
        }
        if let Some(slots) = &spec.slots {
            let all: Vec<&str> = flow
                .nodes
                .iter()
                .flat_map(|(_, n)| n.slots.iter().map(|s| s.name.as_str()))
                .collect();
            for (slot, _) in slots.iter() {
                if !all.contains(&slot) {
                    let hint = suggestion_hint(slot, "slots", all.iter().copied());
                    self.report(
                        self.map.key(&path.key("slots").key(slot)),
                        format!("unknown slot \"{slot}\""),
                        Some(hint),
                    );
                }
            }
        }
    }

    fn unknown_destination(&mut self, path: &KeyPath, name: &str, flow: &Flow) {
        let hint = if flow.groups.contains(name) {
            format!("\"{name}\" is a group: expect the member that takes the call")
        } else {
            suggestion_hint(name, "destinations", flow.destinations.names())
        };
        self.report(
            self.map.value(path),
            format!("unknown destination \"{name}\""),
            Some(hint),
        );
    }
}
