//! Flow tests: every conversation in `flows/tests/` run through the same
//! code as `switchboard test`, with the real embedded intent model; the
//! branches of the support flow they must cover; broken test files and
//! their diagnostics; and `switchboard test` and `switchboard chat`
//! through the binary, chat with piped stdin.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use switchboard::flow::conversation::{load_test_file, Runner};
use switchboard::flow::simulator::CallerInput;

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_flow_test_passes() {
    let _cpu = cpu_lock();
    let mut runner = Runner::new(&models(), None);
    let files = yaml_files(&root().join("flows/tests"));
    assert!(files.len() >= 5, "{files:?}");
    let (mut passed, mut failed) = (0, Vec::new());
    for file in &files {
        let outcome = runner.run_file(file);
        print!("{outcome}");
        let (p, _) = outcome.counts();
        passed += p;
        if !outcome.passed() {
            failed.push(file.display().to_string());
        }
    }
    println!("{passed} conversations passed");
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert!(passed >= 40, "only {passed} conversations");
}

/// The tests must reach every destination of the support flow, by speech,
/// keys and silence, in and out of hours, for every kind of caller.
#[test]
fn the_support_flow_tests_cover_every_branch() {
    let mut destinations = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let (mut silences, mut spanish_speech, mut states, mut callers) = (0, 0, 0, BTreeSet::new());
    for path in yaml_files(&root().join("flows/tests")) {
        let file = load_test_file(&path).unwrap_or_else(|d| panic!("{d:#?}"));
        if !file.flow_path.ends_with("support.yaml") {
            continue;
        }
        for test in &file.tests {
            callers.insert(test.caller.clone());
            if test.state != Default::default() {
                states += 1;
            }
            for turn in &test.turns {
                if let Some(Some(d)) = &turn.expect.destination {
                    destinations.insert(d.clone());
                }
                match &turn.input {
                    CallerInput::Presses(k) => {
                        keys.extend(k.chars());
                    }
                    CallerInput::Silence => silences += 1,
                    CallerInput::Says {
                        language: Some(l), ..
                    } if l == "es" => spanish_speech += 1,
                    CallerInput::Says { .. } => {}
                }
            }
        }
    }
    let flow = switchboard::flow::load_flow(&root().join("flows/support.yaml")).unwrap();
    let all: BTreeSet<String> = flow.destinations.names().map(String::from).collect();
    assert_eq!(destinations, all, "destinations reached by the tests");
    assert!(keys.contains(&'0') && keys.contains(&'2'), "{keys:?}");
    assert!(silences >= 3 && spanish_speech >= 1 && states >= 3);
    // Premium, Spanish-speaking customer, Spain, Puerto Rico, New York.
    for number in [
        "+12125550140",
        "+13055550123",
        "+34915550100",
        "+17875550100",
        "+12125550199",
    ] {
        assert!(callers.contains(number), "no test calls from {number}");
    }
}

/// Each file of `tests/flows/broken-tests/` gives exactly the diagnostics
/// in its `# expect:` and `#   hint:` comments.
#[test]
fn broken_test_files_are_reported_at_their_place() {
    let files = yaml_files(Path::new("tests/flows/broken-tests"));
    assert!(files.len() >= 8, "{files:?}");
    let mut failures = Vec::new();
    for path in &files {
        let mut want: Vec<String> = Vec::new();
        for line in fs::read_to_string(path).unwrap().lines() {
            if let Some(d) = line.strip_prefix("# expect: ") {
                want.push(d.to_string());
            } else if let Some(hint) = line.strip_prefix("#   hint: ") {
                let last = want.last_mut().expect("hint after expect");
                last.push_str("\n  hint: ");
                last.push_str(hint);
            }
        }
        assert!(!want.is_empty(), "{}: no expect", path.display());
        let got: Vec<String> = match load_test_file(path) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| d.to_string()).collect(),
        };
        if got != want {
            failures.push(format!(
                "{}\n  want:\n{}\n  got:\n{}",
                path.display(),
                want.join("\n"),
                got.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_test_command_passes_and_fails_with_the_difference() {
    let _cpu = cpu_lock();
    let passing = root().join("flows/tests/support-hours.yaml");
    let out = switchboard(&["test", passing.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("PASS  "), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(" passed, 0 failed"),
        "{}",
        stdout(&out)
    );

    let dir = temp_dir("flow-test");
    let failing = dir.join("wrong.yaml");
    fs::write(
        &failing,
        format!(
            "flow: {}\nat: \"2025-01-07T10:00:00-05:00\"\ntests:\n  - name: billing expected at sales\n    turns:\n      - says: I was charged twice this month.\n        destination: sales\n        intent: billing\n",
            root().join("flows/support.yaml").display()
        ),
    )
    .unwrap();
    let out = switchboard(&["test", failing.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  "), "{text}");
    assert!(
        text.contains("wrong.yaml:6: caller says \"I was charged twice this month.\""),
        "{text}"
    );
    assert!(text.contains("destination  expected: sales"), "{text}");
    assert!(text.contains("actual:   billing"), "{text}");
    assert!(
        !text.contains("intent       expected"),
        "the intent was right: {text}"
    );
    assert!(text.contains("conversation:"), "{text}");
    assert!(text.contains("0 passed, 1 failed"), "{text}");

    let broken = root().join("tests/flows/broken-tests/two-inputs.yaml");
    let out = switchboard(&["test", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("two-inputs.yaml:8:9: turn has more than one input"),
        "{}",
        stdout(&out)
    );
}

/// Runs `switchboard chat` with `input` on a pipe.
fn chat(args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("chat")
        .args(args)
        .env("SWITCHBOARD_MODELS", models())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running switchboard chat");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

#[test]
fn chat_reads_a_conversation_from_a_pipe() {
    let _cpu = cpu_lock();
    let flow = root().join("flows/support.yaml");
    let flow = flow.to_str().unwrap();
    let at = "2025-01-07T10:00:00-05:00";
    // Unclear, silence, then the key for Spanish.
    let (ok, text) = chat(
        &[flow, "--at", at, "--caller", "+12125550199"],
        "What is the weather like?\n\n/press 2\n",
    );
    assert!(ok, "{text}");
    for expected in [
        "agent   Thanks for calling Acme. How can I help you today?",
        "caller  says \"What is the weather like?\"",
        "intent  unsure",
        "confidence ",
        "reprompt no_match 1 of 2",
        "caller  says nothing",
        "reprompt no_input 1 of 2",
        "route   spanish (210): key 2 in node main → spanish; open by schedule office (Tue 2025-01-07 10:00 EST)",
        "agent   Thanks, I'm putting you through to our Spanish-speaking team now.",
        "(call ended)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // A premium customer asking about a bill: the intent, its confidence
    // and the tier rule in the reason.
    let (ok, text) = chat(
        &[flow, "--at", at, "--caller", "+12125550140"],
        "Somebody took money from my card twice this month.\n",
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("caller +12125550140 (region new-york, tier premium, language en)"),
        "{text}"
    );
    assert!(text.contains("intent  billing, confidence "), "{text}");
    assert!(
        text.contains("route   priority (220): intent billing in node main → billing; tier premium → priority"),
        "{text}"
    );
}
