//! The flow checker on real files: the shipped flows load cleanly, and
//! every file of the broken corpus gives exactly the diagnostics written
//! in its own `# expect:` comments.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use switchboard::flow::{check_files, load_flow, Diagnostic};

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn show(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn support_flow_loads_without_errors() {
    let flow =
        load_flow(Path::new("flows/support.yaml")).unwrap_or_else(|d| panic!("{}", show(&d)));
    let destinations: Vec<&str> = flow.destinations.names().collect();
    assert_eq!(
        destinations,
        [
            "billing",
            "support",
            "sales",
            "retention",
            "operator",
            "spanish",
            "priority",
            "voicemail"
        ]
    );
    for (name, destination) in flow.destinations.iter() {
        assert!(destination.extension.is_some(), "{name} is a PBX extension");
    }
    let main = flow.nodes.get(&flow.start).expect("start node");
    let intents: Vec<&str> = main.intents.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        intents,
        ["billing", "support", "sales", "cancel", "operator"]
    );
    for intent in &main.intents {
        assert!(
            intent.examples.len() >= 8,
            "{} has {} examples",
            intent.name,
            intent.examples.len()
        );
    }
    assert!(main.keys.contains("2"), "pressing 2 reaches Spanish");
    assert_eq!(
        main.no_match.as_ref().map(|r| r.limit),
        Some(2),
        "two clarifications"
    );
    assert!(flow.persona.is_some() && flow.instructions.is_some());
    let confirm = flow.confirm.as_deref().expect("confirm sentence");
    assert_eq!(
        confirm.matches(['.', '!', '?']).count(),
        1,
        "one sentence: {confirm}"
    );
}

#[test]
fn every_shipped_flow_loads_without_errors() {
    let mut files = yaml_files("flows");
    files.extend(yaml_files("flows/examples"));
    assert!(files.len() >= 2, "{files:?}");
    let problems = check_files(&files);
    assert!(problems.is_empty(), "{}", show(&problems));
}

/// Examples must not leak the classifier's held-out test sentences.
#[test]
fn support_examples_are_independent_of_the_audio_fixtures() {
    #[derive(Deserialize)]
    struct Manifest {
        fixtures: Vec<Fixture>,
    }
    #[derive(Deserialize)]
    struct Fixture {
        text: String,
    }
    fn words(s: &str) -> Vec<String> {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    }
    // Runs of five words shared with any fixture sentence.
    fn five_grams(s: &str) -> BTreeSet<Vec<String>> {
        words(s).windows(5).map(<[String]>::to_vec).collect()
    }
    let manifest: Manifest =
        serde_yaml::from_str(&fs::read_to_string("audio-fixtures/manifest.yaml").unwrap()).unwrap();
    let held_out: BTreeSet<Vec<String>> = manifest
        .fixtures
        .iter()
        .flat_map(|f| five_grams(&f.text))
        .collect();
    let whole: BTreeSet<Vec<String>> = manifest.fixtures.iter().map(|f| words(&f.text)).collect();
    let flow =
        load_flow(Path::new("flows/support.yaml")).unwrap_or_else(|d| panic!("{}", show(&d)));
    for (_, node) in flow.nodes.iter() {
        for intent in &node.intents {
            for example in &intent.examples {
                assert!(
                    !whole.contains(&words(example)),
                    "fixture sentence copied: {example}"
                );
                let shared: Vec<_> = five_grams(example)
                    .intersection(&held_out)
                    .cloned()
                    .collect();
                assert!(
                    shared.is_empty(),
                    "{example:?} shares {shared:?} with a fixture"
                );
            }
        }
    }
}

/// The diagnostics a corpus file expects, from its `# expect:` and
/// `#   hint:` comment lines, in the form `Diagnostic` displays.
fn expected(path: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in fs::read_to_string(path).unwrap().lines() {
        if let Some(diagnostic) = line.strip_prefix("# expect: ") {
            out.push(diagnostic.to_string());
        } else if let Some(hint) = line.strip_prefix("#   hint: ") {
            let last = out
                .last_mut()
                .unwrap_or_else(|| panic!("{}: hint before expect", path.display()));
            last.push_str("\n  hint: ");
            last.push_str(hint);
        }
    }
    out
}

#[test]
fn broken_corpus_gives_the_expected_diagnostics() {
    let files = yaml_files("tests/flows/broken");
    assert!(files.len() >= 12, "corpus has {} files", files.len());
    let mut failures = Vec::new();
    let mut messages = BTreeSet::new();
    for path in &files {
        let want = expected(path);
        assert_eq!(
            want.len(),
            1,
            "{}: one problem per corpus file",
            path.display()
        );
        let got: Vec<String> = match load_flow(path) {
            Ok(_) => Vec::new(),
            Err(diagnostics) => diagnostics.iter().map(|d| d.to_string()).collect(),
        };
        if got != want {
            failures.push(format!(
                "{}\n  want:\n{}\n  got:\n{}",
                path.display(),
                want.join("\n"),
                got.join("\n")
            ));
        }
        messages.insert(want[0].split(": ").nth(1).map(str::to_string));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(
        messages.len(),
        files.len(),
        "each corpus file shows a different problem"
    );
}

#[test]
fn many_problems_in_one_file_are_all_reported() {
    let path = Path::new("tests/flows/many-problems.yaml");
    let want = expected(path);
    assert!(want.len() >= 5);
    let got: Vec<String> = load_flow(path)
        .unwrap_err()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn check_files_reports_only_broken_files() {
    let files = [
        PathBuf::from("flows/support.yaml"),
        PathBuf::from("tests/flows/broken/unknown-destination.yaml"),
        PathBuf::from("tests/flows/broken/no-such-flow.yaml"),
    ];
    let problems = check_files(&files);
    let shown: Vec<String> = problems.iter().map(|d| d.to_string()).collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(shown[0]
        .starts_with("tests/flows/broken/unknown-destination.yaml:12:26: unknown destination"));
    assert!(
        shown[1].starts_with("tests/flows/broken/no-such-flow.yaml: cannot read the flow: "),
        "{}",
        shown[1]
    );
}

/// Nothing a file contains may panic the loader: every prefix of every
/// corpus file (cut mid-token, mid-line, mid-quote) gives Ok or diagnostics.
#[test]
fn truncated_files_never_panic() {
    let mut files = yaml_files("tests/flows/broken");
    files.push(PathBuf::from("flows/support.yaml"));
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(7).collect();
        for cut in cuts {
            let _ = switchboard::flow::load_str("cut.yaml", &text[..cut]);
        }
    }
}
