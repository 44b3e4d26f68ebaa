//! The interpreter in virtual time: inputs at fixed instants, the actions
//! and events that come out. No model, no audio, no clock.

use std::time::Duration;

use chrono::{TimeZone, Utc};

use super::*;
use crate::flow::load::load_str;
use crate::flow::routing::Dial;

const FLOW: &str = r#"
name: unit
language: en
greeting: Hello, how can I help?
confirm: Putting you through to {destination}.
start: main
no_input:
  limit: 1
  say: ["Are you still there?"]
  then: [say: Goodbye., hangup]
nodes:
  main:
    intents:
      - name: billing
        description: Bills.
        examples: [my bill]
        then: [transfer: billing]
      - name: extension
        description: Dial an extension.
        examples: [an extension please]
        then: [goto: dial]
      - name: hours
        description: Opening hours.
        examples: [when are you open]
        then: [say: We are open nine to five.]
      - name: callback
        description: A call back.
        examples: [call me back]
        then: [goto: callback]
    keys:
      "0": [transfer: operator]
      "2": [transfer: spanish]
    no_match:
      limit: 2
      say: ["Sorry, billing or an extension?", "Once more: billing or an extension?"]
      then: [transfer: operator]
  dial:
    slots:
      - {name: ext, type: digits, prompt: "Which extension?", min_digits: 3, max_digits: 3}
    then: [collect: ext, transfer: "{ext}"]
    no_match:
      limit: 1
      say: ["That extension doesn't exist. Say the three digits again."]
      then: [transfer: operator]
  callback:
    say: I can arrange a call back.
    slots:
      - {name: day, type: date, prompt: Which day?}
      - {name: sure, type: yes_no, prompt: Shall I book it?}
    then: [collect: day, collect: sure, say: Booked., hangup]
destinations:
  billing: {label: billing, extension: "201"}
  operator: {label: an operator, extension: "200"}
  spanish: {label: the Spanish team, extension: "210"}
  voicemail: {label: voicemail, extension: "299"}
  desk: {extension: "301"}
schedules:
  office:
    timezone: America/New_York
    weekly: {tue: ["09:00-17:00"]}
routing:
  languages: {es: spanish}
  hours: office
  after_hours: voicemail
"#;

fn flow() -> Arc<Flow> {
    Arc::new(load_str("unit.yaml", FLOW).unwrap_or_else(|d| panic!("{d:#?}")))
}

/// Tuesday 2025-01-07 10:00 in New York: open.
fn tuesday_morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 7, 15, 0, 0).unwrap()
}

fn seconds(t: DateTime<Utc>, s: i64) -> DateTime<Utc> {
    t + chrono::Duration::seconds(s)
}

/// A detector's answer naming `intent` (None: unsure).
fn detected(intent: Option<&str>, confidence: f32) -> IntentResult {
    IntentResult {
        intent: intent.map(str::to_string),
        unsure: intent.is_none(),
        confidence,
        ..IntentResult::empty(Duration::from_millis(5))
    }
}

fn utterance(turn: TurnId, text: &str, intent: Option<&str>) -> Utterance {
    Utterance {
        turn,
        transcript: text.to_string(),
        language: None,
        intent: Some(detected(intent, if intent.is_some() { 0.9 } else { 0.2 })),
    }
}

/// Actions in a compact form for assertions.
fn shown(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Say(s) => format!("{} say {:?}: {}", s.turn.0, s.purpose, s.text),
            Action::Listen(l) => match &l.slot {
                Some(slot) => format!("{} listen {} slot {}", l.turn.0, l.node, slot.name),
                None => format!("{} listen {}", l.turn.0, l.node),
            },
            Action::Transfer(t) => format!(
                "{} transfer {}",
                t.turn.0,
                t.targets
                    .iter()
                    .map(|t| match &t.dial {
                        Dial::Extension(e) => format!("{}@{e}", t.destination),
                        other => format!("{}@{other:?}", t.destination),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Action::Hangup(h) => format!("{} hangup: {}", h.turn.0, h.reason),
        })
        .collect()
}

fn events(interpreter: &mut Interpreter) -> Vec<Event> {
    std::iter::from_fn(|| interpreter.poll_event()).collect()
}

struct Call {
    interpreter: Interpreter,
    state: DestinationState,
    now: DateTime<Utc>,
}

impl Call {
    fn start(caller: CallerAttributes, now: DateTime<Utc>) -> (Call, Vec<String>) {
        let mut interpreter = Interpreter::new(flow(), InterpreterConfig::default());
        let state = DestinationState::default();
        let actions = interpreter.handle_call_started(now, caller, &state);
        (
            Call {
                interpreter,
                state,
                now,
            },
            shown(&actions),
        )
    }

    fn turn(&self) -> TurnId {
        self.interpreter.turn()
    }

    fn says(&mut self, text: &str, intent: Option<&str>) -> Vec<String> {
        self.now = seconds(self.now, 3);
        let u = utterance(self.turn(), text, intent);
        shown(&self.interpreter.handle_utterance(self.now, u, &self.state))
    }

    fn presses(&mut self, key: char) -> Vec<String> {
        self.now = seconds(self.now, 1);
        let turn = self.turn();
        shown(
            &self
                .interpreter
                .handle_key(self.now, turn, key, &self.state),
        )
    }

    fn waits(&mut self) -> Vec<String> {
        let timeout = self.interpreter.listening().expect("listening").timeout;
        self.now = seconds(self.now, timeout.as_secs() as i64);
        let turn = self.turn();
        shown(
            &self
                .interpreter
                .handle_no_input(self.now, turn, &self.state),
        )
    }
}

#[test]
fn greeting_then_the_start_node_listens() {
    let (call, actions) = Call::start(CallerAttributes::default(), tuesday_morning());
    assert_eq!(
        actions,
        ["1 say Greeting: Hello, how can I help?", "1 listen main"]
    );
    let listen = call.interpreter.listening().unwrap();
    assert_eq!(
        listen.intents,
        ["billing", "extension", "hours", "callback"]
    );
    assert_eq!(listen.keys, ['0', '2']);
    assert_eq!(listen.timeout, Duration::from_secs(6));
    assert_eq!(listen.slot, None);
}

#[test]
fn an_intent_is_confirmed_in_one_sentence_then_transferred() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    assert_eq!(
        call.says("I have a question about my bill", Some("billing")),
        [
            "2 say Confirmation: Putting you through to billing.",
            "2 transfer billing@201"
        ]
    );
    assert!(call.interpreter.is_finished());
    let events = events(&mut call.interpreter);
    assert!(events.iter().any(|e| matches!(e, Event::IntentMatched { intent, confidence, .. } if intent == "billing" && *confidence == 0.9)));
    let reason = events
        .iter()
        .find_map(|e| match e {
            Event::Routed { decision, .. } => Some(decision.reason.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        reason,
        "intent billing in node main → billing; open by schedule office (Tue 2025-01-07 10:00 EST)"
    );
    // Nothing more is accepted.
    assert!(call.says("hello?", None).is_empty());
}

#[test]
fn two_clarifications_then_the_escalation() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    assert_eq!(
        call.says("the thing from last week", None),
        [
            "2 say Reprompt: Sorry, billing or an extension?",
            "2 listen main"
        ]
    );
    assert_eq!(
        call.says("do you sell pizza", None),
        [
            "3 say Reprompt: Once more: billing or an extension?",
            "3 listen main"
        ]
    );
    assert_eq!(
        call.says("what's the weather", None),
        [
            "4 say Confirmation: Putting you through to an operator.",
            "4 transfer operator@200"
        ]
    );
    let reprompts: Vec<(Miss, u32, u32)> = events(&mut call.interpreter)
        .into_iter()
        .filter_map(|e| match e {
            Event::Reprompted {
                miss, count, limit, ..
            } => Some((miss, count, limit)),
            Event::Escalated { miss, .. } => Some((miss, 0, 0)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reprompts,
        [
            (Miss::NoMatch, 1, 2),
            (Miss::NoMatch, 2, 2),
            (Miss::NoMatch, 0, 0)
        ]
    );
}

#[test]
fn the_detectors_proposed_question_replaces_the_flows() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    let turn = call.turn();
    let mut result = detected(None, 0.3);
    result.reply = Some("We don't sell pizza. Is it about a bill?".into());
    let u = Utterance {
        turn,
        transcript: "do you sell pizza".into(),
        language: None,
        intent: Some(result),
    };
    let actions = call
        .interpreter
        .handle_utterance(tuesday_morning(), u, &call.state);
    assert_eq!(
        shown(&actions),
        [
            "2 say Reprompt: We don't sell pizza. Is it about a bill?",
            "2 listen main"
        ]
    );
}

#[test]
fn silence_reprompts_then_runs_the_flow_wide_escalation() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    assert_eq!(
        call.waits(),
        ["2 say Reprompt: Are you still there?", "2 listen main"]
    );
    // A blank transcript is no input too.
    assert_eq!(
        call.says("  ", None),
        ["3 say Step: Goodbye.", "3 hangup: hangup step"]
    );
}

#[test]
fn an_answer_to_an_old_turn_is_ignored() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    let first = call.turn();
    call.waits();
    // The transcript of the first turn arrives after the timeout moved on.
    let late = utterance(first, "my bill", Some("billing"));
    let actions = call
        .interpreter
        .handle_utterance(call.now, late, &call.state);
    assert!(actions.is_empty());
    let ignored = events(&mut call.interpreter).into_iter().any(|e| {
        e == Event::InputIgnored {
            turn: first,
            current: TurnId(2),
        }
    });
    assert!(ignored);
    assert!(!call.interpreter.is_finished());
}

#[test]
fn keys_act_in_the_node_and_unknown_keys_are_no_match() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    assert_eq!(
        call.presses('7'),
        [
            "2 say Reprompt: Sorry, billing or an extension?",
            "2 listen main"
        ]
    );
    assert_eq!(
        call.presses('2'),
        [
            "3 say Confirmation: Putting you through to the Spanish team.",
            "3 transfer spanish@210"
        ]
    );
}

#[test]
fn after_hours_every_request_goes_to_voicemail() {
    // Tuesday 17:00 in New York: just closed.
    let evening = Utc.with_ymd_and_hms(2025, 1, 7, 22, 0, 0).unwrap();
    let (mut call, _) = Call::start(CallerAttributes::default(), evening);
    assert_eq!(
        call.says("my bill", Some("billing")),
        [
            "2 say Confirmation: Putting you through to voicemail.",
            "2 transfer voicemail@299"
        ]
    );
}

#[test]
fn spanish_speech_routes_by_the_language_rule() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    let u = Utterance {
        turn: call.turn(),
        transcript: "Quiero hablar de mi factura".into(),
        language: Some("es".into()),
        intent: Some(detected(None, 0.1)),
    };
    let actions = call.interpreter.handle_utterance(call.now, u, &call.state);
    assert_eq!(
        shown(&actions),
        [
            "2 say Confirmation: Putting you through to the Spanish team.",
            "2 transfer spanish@210"
        ]
    );
    let Some(Action::Transfer(transfer)) = actions.last() else {
        panic!()
    };
    assert!(
        transfer
            .reason
            .starts_with("language es detected in speech → spanish; requested spanish"),
        "{}",
        transfer.reason
    );
    assert_eq!(call.interpreter.caller().language.as_deref(), Some("es"));
}

#[test]
fn a_caller_whose_language_has_a_rule_is_routed_there_whatever_they_ask() {
    let caller = CallerAttributes {
        language: Some("es".into()),
        ..Default::default()
    };
    let (mut call, _) = Call::start(caller, tuesday_morning());
    assert_eq!(
        call.says("my bill", Some("billing"))[1],
        "2 transfer spanish@210"
    );
    // English speech overrides the region's language.
    let caller = CallerAttributes {
        language: Some("es".into()),
        ..Default::default()
    };
    let (mut call, _) = Call::start(caller, tuesday_morning());
    let u = Utterance {
        language: Some("en".into()),
        ..utterance(call.turn(), "my bill", Some("billing"))
    };
    let actions = call.interpreter.handle_utterance(call.now, u, &call.state);
    assert_eq!(shown(&actions)[1], "2 transfer billing@201");
}

#[test]
fn a_say_step_without_an_ending_returns_to_listening() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    assert_eq!(
        call.says("when are you open", Some("hours")),
        ["2 say Step: We are open nine to five.", "2 listen main"]
    );
    assert!(!call.interpreter.is_finished());
}

#[test]
fn a_slot_names_the_transfer_target_and_a_wrong_value_is_asked_again() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    assert_eq!(
        call.says("an extension please", Some("extension")),
        ["2 say Prompt: Which extension?", "2 listen dial slot ext"]
    );
    // Too few digits: rejected, the node's no-match text.
    assert_eq!(
        call.says("forty", None),
        [
            "3 say Reprompt: That extension doesn't exist. Say the three digits again.",
            "3 listen dial slot ext"
        ]
    );
    assert!(events(&mut call.interpreter).iter().any(|e| matches!(
        e,
        Event::SlotRejected { slot, problem, .. } if slot == "ext" && problem == "2 digits, fewer than 3"
    )));
    // Digits keyed one by one; the third completes the value.
    assert_eq!(call.presses('3'), ["4 listen dial slot ext"]);
    assert_eq!(call.presses('0'), ["5 listen dial slot ext"]);
    assert_eq!(
        call.presses('1'),
        [
            "6 say Confirmation: Putting you through to desk.",
            "6 transfer desk@301"
        ]
    );
    assert_eq!(
        call.interpreter.slots().get("ext").map(String::as_str),
        Some("301")
    );
}

#[test]
fn an_extension_that_names_nothing_counts_as_no_match() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    call.says("an extension please", Some("extension"));
    assert_eq!(
        call.says("nine nine nine", None),
        [
            "3 say Reprompt: That extension doesn't exist. Say the three digits again.",
            "3 listen dial slot ext"
        ]
    );
    assert_eq!(
        call.says("two oh one", None),
        [
            "4 say Confirmation: Putting you through to billing.",
            "4 transfer billing@201"
        ]
    );
    // The limit is 1: a second wrong extension escalates.
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    call.says("an extension please", Some("extension"));
    call.says("nine nine nine", None);
    assert_eq!(
        call.says("eight eight eight", None)[1],
        "4 transfer operator@200"
    );
}

#[test]
fn slots_are_collected_in_order_and_keys_end_with_the_timeout() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    assert_eq!(
        call.says("call me back", Some("callback")),
        [
            "2 say Prompt: I can arrange a call back.",
            "2 say Prompt: Which day?",
            "2 listen callback slot day"
        ]
    );
    assert_eq!(
        call.says("tomorrow", None),
        [
            "3 say Prompt: Shall I book it?",
            "3 listen callback slot sure"
        ]
    );
    assert_eq!(
        call.presses('1'),
        ["4 say Step: Booked.", "4 hangup: hangup step"]
    );
    let slots = call.interpreter.slots();
    assert_eq!(slots.get("day").map(String::as_str), Some("2025-01-08"));
    assert_eq!(slots.get("sure").map(String::as_str), Some("yes"));
}

#[test]
fn keyed_digits_are_taken_when_the_caller_stops_keying() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    call.says("an extension please", Some("extension"));
    call.presses('2');
    call.presses('0');
    // Two digits then silence: too few for min_digits 3.
    assert_eq!(
        call.waits(),
        [
            "5 say Reprompt: That extension doesn't exist. Say the three digits again.",
            "5 listen dial slot ext"
        ]
    );
}

#[test]
fn a_slot_value_from_elsewhere_continues_the_steps() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    call.says("an extension please", Some("extension"));
    let turn = call.turn();
    let actions = call
        .interpreter
        .handle_slot_value(call.now, turn, "ext", "201", &call.state);
    assert_eq!(shown(&actions)[1], "3 transfer billing@201");
}

#[test]
fn without_reprompt_settings_the_question_is_asked_twice_then_the_call_ends() {
    let text = FLOW
        .replace("    no_match:\n      limit: 2\n      say: [\"Sorry, billing or an extension?\", \"Once more: billing or an extension?\"]\n      then: [transfer: operator]\n", "");
    let flow = Arc::new(load_str("unit.yaml", &text).unwrap_or_else(|d| panic!("{d:#?}")));
    let mut interpreter = Interpreter::new(flow, InterpreterConfig::default());
    let state = DestinationState::default();
    let now = tuesday_morning();
    interpreter.handle_call_started(now, CallerAttributes::default(), &state);
    let mut out = Vec::new();
    for _ in 0..3 {
        let u = utterance(interpreter.turn(), "pizza", None);
        out.extend(shown(&interpreter.handle_utterance(now, u, &state)));
    }
    assert_eq!(
        out,
        [
            "2 say Reprompt: Hello, how can I help?",
            "2 listen main",
            "3 say Reprompt: Hello, how can I help?",
            "3 listen main",
            "4 hangup: reprompts used up, no escalation"
        ]
    );
}

#[test]
fn a_loop_the_checker_would_reject_still_ends() {
    // Parsed without the checker, which reports this loop.
    let text = "name: l\ngreeting: Hi.\nstart: a\nnodes:\n  a: {then: [say: A., goto: b]}\n  b: {then: [goto: a]}\n";
    let diagnostics = load_str("l.yaml", text).unwrap_err();
    assert_eq!(
        diagnostics[0].message,
        "nodes a → b → a loop without waiting for the caller"
    );
    let flow: Flow = serde_yaml::from_str(text).unwrap();
    let mut interpreter = Interpreter::new(Arc::new(flow), InterpreterConfig::default());
    let actions = interpreter.handle_call_started(
        tuesday_morning(),
        CallerAttributes::default(),
        &DestinationState::default(),
    );
    assert!(matches!(
        actions.last(),
        Some(Action::Hangup(Hangup {
            reason: HangupReason::Loop,
            ..
        }))
    ));
}

#[test]
fn nobody_available_ends_the_call_with_the_reason() {
    let (mut call, _) = Call::start(CallerAttributes::default(), tuesday_morning());
    call.state.set_reachable("billing", false);
    let actions = call.says("my bill", Some("billing"));
    assert_eq!(actions.len(), 1);
    assert!(
        actions[0].starts_with("2 hangup: no target available (intent billing in node main → billing; open by schedule office"),
        "{actions:?}"
    );
}

#[test]
fn confirmations_cannot_be_interrupted() {
    assert!(!SayPurpose::Confirmation.interruptible());
    assert!(SayPurpose::Prompt.interruptible());
}
