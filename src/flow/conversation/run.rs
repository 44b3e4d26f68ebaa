//! Running flow tests: each conversation is a fresh simulated call at the
//! test's instant, turn by turn, every expectation compared; what differs
//! is reported with the conversation as it went.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{load_test_file, ConversationTest, Expect, TestFile};
use crate::flow::diagnostic::Diagnostic;
use crate::flow::routing::Dial;
use crate::flow::simulator::{describe, CallerInput, SimulatedCall, Simulator, TurnReport};
use crate::intent::DetectorKind;

/// Runs flow-test files, keeping one [`Simulator`] per flow so its
/// detector and prepared intents are made once.
pub struct Runner {
    models: PathBuf,
    detector: Option<DetectorKind>,
    simulators: HashMap<PathBuf, Simulator>,
}

/// What one file gave.
#[derive(Debug)]
pub struct FileOutcome {
    pub path: PathBuf,
    /// Problems of the file (or its flow): nothing ran.
    pub problems: Vec<Diagnostic>,
    /// The flow could not be simulated (a model missing, ...).
    pub error: Option<String>,
    pub tests: Vec<TestOutcome>,
}

/// One conversation's result.
#[derive(Debug)]
pub struct TestOutcome {
    pub name: String,
    pub line: usize,
    /// What differs at the start of the call (the greeting).
    pub opening: Vec<Mismatch>,
    pub turns: Vec<TurnOutcome>,
    /// The whole conversation, as [`describe`] shows it.
    pub transcript: Vec<String>,
    /// Detection failed (an LLM that cannot be reached, ...).
    pub error: Option<String>,
}

/// One turn's result.
#[derive(Debug)]
pub struct TurnOutcome {
    pub line: usize,
    pub input: CallerInput,
    pub mismatches: Vec<Mismatch>,
}

/// An expectation that was not met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub what: String,
    pub expected: String,
    pub actual: String,
}

impl Runner {
    /// `models`: the models folder; `detector`: replaces each flow's own
    /// choice of detector.
    pub fn new(models: &Path, detector: Option<DetectorKind>) -> Self {
        Runner {
            models: models.to_path_buf(),
            detector,
            simulators: HashMap::new(),
        }
    }

    /// Loads, checks and runs one file.
    pub fn run_file(&mut self, path: &Path) -> FileOutcome {
        let mut outcome = FileOutcome {
            path: path.to_path_buf(),
            problems: Vec::new(),
            error: None,
            tests: Vec::new(),
        };
        let file = match load_test_file(path) {
            Ok(file) => file,
            Err(problems) => {
                outcome.problems = problems;
                return outcome;
            }
        };
        let key = std::fs::canonicalize(&file.flow_path).unwrap_or(file.flow_path.clone());
        if !self.simulators.contains_key(&key) {
            match Simulator::load(&file.flow_path, &self.models, self.detector) {
                Ok(simulator) => {
                    self.simulators.insert(key.clone(), simulator);
                }
                Err(error) => {
                    outcome.error = Some(format!("{}: {error}", file.flow_path.display()));
                    return outcome;
                }
            }
        }
        let Some(simulator) = self.simulators.get(&key) else {
            return outcome;
        };
        outcome.tests = run_tests(&file, simulator);
        outcome
    }
}

/// Runs every test of a checked file on `simulator` (which must simulate
/// the file's flow).
pub fn run_tests(file: &TestFile, simulator: &Simulator) -> Vec<TestOutcome> {
    file.tests.iter().map(|t| run_test(t, simulator)).collect()
}

fn run_test(test: &ConversationTest, simulator: &Simulator) -> TestOutcome {
    let caller = test.caller_attributes(simulator.flow(), |n| simulator.identify(n));
    let mut call = simulator.call(test.at, caller, test.state.clone());
    let mut outcome = TestOutcome {
        name: test.name.clone(),
        line: test.line,
        opening: Vec::new(),
        turns: Vec::new(),
        transcript: describe(call.opening()),
        error: None,
    };
    if let Some(greeting) = &test.greeting {
        let said = said(call.opening());
        if !contains(&said, greeting) {
            outcome.opening.push(Mismatch {
                what: "greeting".into(),
                expected: format!("text containing {greeting:?}"),
                actual: format!("{said:?}"),
            });
        }
    }
    for turn in &test.turns {
        let mut mismatches = Vec::new();
        if call.is_finished() {
            mismatches.push(Mismatch {
                what: "call".into(),
                expected: "still in progress".into(),
                actual: "already transferred or ended".into(),
            });
        }
        let report = match call.turn(test.at, &turn.input) {
            Ok(report) => report,
            Err(error) => {
                outcome.error = Some(format!("line {}: {error}", turn.line));
                break;
            }
        };
        outcome.transcript.extend(describe(&report));
        mismatches.extend(compare(&turn.expect, &report, &call));
        outcome.turns.push(TurnOutcome {
            line: turn.line,
            input: turn.input.clone(),
            mismatches,
        });
    }
    outcome
}

fn said(report: &TurnReport) -> String {
    report.said().collect::<Vec<_>>().join(" ")
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn show_option(value: Option<&str>, none: &str) -> String {
    value.map_or_else(|| none.to_string(), str::to_string)
}

fn compare(expect: &Expect, report: &TurnReport, call: &SimulatedCall) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut check = |what: &str, expected: String, actual: String, ok: bool| {
        if !ok {
            out.push(Mismatch {
                what: what.to_string(),
                expected,
                actual,
            });
        }
    };
    if let Some(node) = &expect.node {
        check(
            "node",
            node.clone(),
            report.node.clone(),
            *node == report.node,
        );
    }
    if let Some(intent) = &expect.intent {
        let matched = report.matched_intent();
        let mut actual = show_option(matched, "none");
        if let (None, Some(result)) = (matched, &report.intent) {
            actual.push_str(&format!(
                " (best {} at confidence {:.2})",
                result.best().unwrap_or("-"),
                result.confidence
            ));
        }
        check(
            "intent",
            show_option(intent.as_deref(), "none"),
            actual,
            intent.as_deref() == matched,
        );
    }
    let destination = report.destination().map(|t| t.destination.as_str());
    if let Some(expected) = &expect.destination {
        check(
            "destination",
            show_option(expected.as_deref(), "no transfer"),
            show_option(destination, "no transfer"),
            expected.as_deref() == destination,
        );
    }
    if let Some(expected) = &expect.targets {
        let actual: Vec<String> = report
            .transfer()
            .map(|t| {
                t.targets
                    .iter()
                    .map(|t| match &t.dial {
                        Dial::Trunk { trunk, .. } => format!("{} via {trunk}", t.destination),
                        _ => t.destination.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        check(
            "targets",
            format!("[{}]", expected.join(", ")),
            format!("[{}]", actual.join(", ")),
            *expected == actual,
        );
    }
    if let Some(text) = &expect.agent {
        let said = said(report);
        check(
            "agent",
            format!("text containing {text:?}"),
            format!("{said:?}"),
            contains(&said, text),
        );
    }
    if let Some(text) = &expect.reason {
        // A transfer's reason, or the decision's when nothing was available.
        let actual = report
            .transfer()
            .map(|t| t.reason.as_str())
            .or(report.decision().map(|d| d.reason.as_str()))
            .unwrap_or("");
        check(
            "reason",
            format!("text containing {text:?}"),
            if actual.is_empty() {
                "no routing decision".into()
            } else {
                format!("{actual:?}")
            },
            !actual.is_empty() && contains(actual, text),
        );
    }
    if let Some(hangup) = expect.hangup {
        let actual = report.hangup();
        check(
            "hangup",
            if hangup { "a hang-up" } else { "no hang-up" }.into(),
            actual.map_or_else(
                || "no hang-up".into(),
                |h| format!("hang-up ({})", h.reason),
            ),
            hangup == actual.is_some(),
        );
    }
    for (slot, value) in &expect.slots {
        let actual = call.interpreter().slots().get(slot).map(String::as_str);
        check(
            &format!("slot {slot}"),
            value.clone(),
            show_option(actual, "not collected"),
            actual == Some(value.as_str()),
        );
    }
    out
}

impl TestOutcome {
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self.opening.is_empty()
            && self.turns.iter().all(|t| t.mismatches.is_empty())
    }
}

impl FileOutcome {
    /// Whether the file loaded, ran and every test passed.
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.error.is_none() && self.tests.iter().all(|t| t.passed())
    }

    /// Tests that passed and failed.
    pub fn counts(&self) -> (usize, usize) {
        let passed = self.tests.iter().filter(|t| t.passed()).count();
        (passed, self.tests.len() - passed)
    }
}

impl fmt::Display for FileOutcome {
    /// `PASS name` per test; for a failure, each turn's differences
    /// (expected, then actual) and the conversation as it went.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.path.display();
        for problem in &self.problems {
            writeln!(f, "{problem}")?;
        }
        if let Some(error) = &self.error {
            writeln!(f, "{file}: error: {error}")?;
        }
        for test in &self.tests {
            if test.passed() {
                writeln!(f, "PASS  {file}:{}: {}", test.line, test.name)?;
                continue;
            }
            writeln!(f, "FAIL  {file}:{}: {}", test.line, test.name)?;
            if let Some(error) = &test.error {
                writeln!(f, "      error: {error}")?;
            }
            let blocks = std::iter::once(("call start".to_string(), &test.opening)).chain(
                test.turns.iter().map(|t| {
                    (
                        format!("{file}:{}: caller {}", t.line, t.input),
                        &t.mismatches,
                    )
                }),
            );
            for (label, mismatches) in blocks {
                if mismatches.is_empty() {
                    continue;
                }
                writeln!(f, "      {label}")?;
                for m in mismatches {
                    writeln!(f, "        {:<12} expected: {}", m.what, m.expected)?;
                    writeln!(f, "        {:<12} actual:   {}", "", m.actual)?;
                }
            }
            writeln!(f, "      conversation:")?;
            for line in &test.transcript {
                writeln!(f, "        {line}")?;
            }
        }
        Ok(())
    }
}
