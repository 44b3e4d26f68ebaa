//! `switchboard check FLOW...`: validate call flows; every problem is
//! printed as `file:line:col: message` with a hint, and any problem makes
//! the exit status non-zero.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[arg(required = true)]
    flows: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let diagnostics = crate::flow::check_files(&args.flows);
    for d in &diagnostics {
        eprintln!("{d}");
    }
    if diagnostics.is_empty() {
        for f in &args.flows {
            println!("{}: ok", f.display());
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} problem(s) found", diagnostics.len());
        Ok(ExitCode::FAILURE)
    }
}
