//! `switchboard transcribe [--json] FILE...`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use super::engines::load_recogniser;
use crate::audio::read_file;
use crate::speech::stt::{SpeechToText, TranscribeOptions, WhisperConfig};

#[derive(clap::Args)]
pub struct Args {
    /// One JSON object per line: file, text, timings.
    #[arg(long)]
    json: bool,
    /// Whisper model: tiny.en, base, or a path to a ggml file.
    #[arg(long, default_value = "tiny.en")]
    model: String,
    /// Threads per decoding.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Words to prime the recogniser with (Whisper's initial prompt).
    #[arg(long)]
    prompt: Option<String>,
    /// Language to force with a multilingual model (default: detect).
    #[arg(long)]
    language: Option<String>,
    /// Languages to choose among when detecting, comma-separated ISO 639-1
    /// codes (default: all of Whisper's).
    #[arg(long, value_delimiter = ',')]
    languages: Vec<String>,
    /// Encoder positions added to the audio's own (50 a second; 1500
    /// positions is Whisper's full 30 s window).
    #[arg(long, default_value_t = WhisperConfig::default().window_margin)]
    window_margin: usize,
    /// A larger model (tiny.en, base, or a ggml path) that decodes again
    /// when the first is unsure.
    #[arg(long, default_value = "base")]
    escalate: String,
    /// Never re-decode with a larger model.
    #[arg(long)]
    no_escalate: bool,
    /// Confidence below which --escalate is used.
    #[arg(long, default_value_t = WhisperConfig::default().escalate_below)]
    escalate_below: f32,
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(models: &Path, args: Args) -> Result<ExitCode> {
    let config = WhisperConfig {
        threads: args.threads,
        language: args.language.clone(),
        languages: args.languages.clone(),
        window_margin: args.window_margin,
        escalate_below: args.escalate_below,
        ..Default::default()
    };
    let escalate =
        (!args.no_escalate && args.escalate != args.model).then_some(args.escalate.as_str());
    let (stt, load) = load_recogniser(models, &args.model, escalate, config)?;
    if !args.json {
        eprintln!("loaded {} in {} ms", args.model, load.as_millis());
    }
    let options = TranscribeOptions {
        prompt: args.prompt,
        ..Default::default()
    };
    let mut failed = false;
    for file in &args.files {
        let result = read_file(file)
            .map_err(anyhow::Error::from)
            .and_then(|audio| Ok(stt.transcribe(&audio, &options)?));
        match result {
            Ok(t) => {
                if args.json {
                    let mut value = serde_json::to_value(&t)?;
                    value["file"] = file.display().to_string().into();
                    println!("{value}");
                } else {
                    println!(
                        "{}: {:?} ({:.2} s audio, {} ms, confidence {:.2})",
                        file.display(),
                        t.text,
                        t.audio.as_secs_f32(),
                        t.elapsed.as_millis(),
                        t.confidence
                    );
                }
            }
            Err(e) => {
                failed = true;
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({"file": file.display().to_string(), "error": format!("{e:#}")})
                    );
                }
                eprintln!("error: {e:#}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
