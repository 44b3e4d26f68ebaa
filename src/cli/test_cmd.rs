//! `switchboard test FILE...`: run flow tests, conversations written in
//! YAML (see docs/flows.md, "Flow tests"), against their flows with the
//! real intent detector. Prints PASS or FAIL per test, with what differed
//! and the conversation for a failure; a file with problems gets them as
//! `file:line:col`. Exits non-zero if anything failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::flow::conversation::Runner;
use crate::intent::DetectorKind;

#[derive(clap::Args)]
pub struct Args {
    /// Use this detector (embedded, llm, hybrid) instead of each flow's own.
    #[arg(long, value_name = "KIND")]
    detector: Option<DetectorKind>,
    /// Flow-test files, or folders of them (every .yaml inside).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(models: &Path, args: Args) -> Result<ExitCode> {
    let mut files = Vec::new();
    for path in &args.files {
        files.extend(test_files(path)?);
    }
    let mut runner = Runner::new(models, args.detector);
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    for file in &files {
        let outcome = runner.run_file(file);
        print!("{outcome}");
        let (p, f) = outcome.counts();
        passed += p;
        failed += f;
        if !outcome.problems.is_empty() || outcome.error.is_some() {
            broken += 1;
        }
    }
    let mut summary = format!("{passed} passed, {failed} failed");
    if broken > 0 {
        summary.push_str(&format!(", {broken} file(s) could not run"));
    }
    println!("{summary}");
    Ok(if failed == 0 && broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A file as given, or the `.yaml` files of a folder in name order.
pub fn test_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}
