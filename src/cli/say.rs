//! `switchboard say "TEXT" -o out.wav`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::engines::load_piper;
use crate::audio::wav::{write_file, WavEncoding};
use crate::audio::{SampleRate, Samples};
use crate::media::g711::Law;
use crate::speech::tts::speak;

#[derive(clap::Args)]
pub struct Args {
    /// What to say.
    text: String,
    /// Output WAV file (mono).
    #[arg(short, long)]
    output: PathBuf,
    /// Store G.711 μ-law instead of 16-bit PCM.
    #[arg(long)]
    mulaw: bool,
    /// Output sample rate in hertz (8000 for the telephone; 22050 keeps
    /// the voice's full band).
    #[arg(long, default_value_t = 8000)]
    rate: u32,
    /// Inference threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

pub fn run(models: &Path, args: Args) -> Result<ExitCode> {
    let (tts, load) = load_piper(models, args.threads)?;
    eprintln!("loaded voice in {} ms", load.as_millis());
    anyhow::ensure!(
        (4_000..=192_000).contains(&args.rate),
        "--rate {} is out of range",
        args.rate
    );
    let rate = SampleRate(args.rate);
    let mut all = Samples::new(rate, Vec::new());
    for sentence in speak(&tts, &args.text, rate) {
        let sentence = sentence?;
        eprintln!(
            "  {:?}: {:.2} s of audio in {} ms",
            sentence.text,
            sentence.audio.duration().as_secs_f32(),
            sentence.elapsed.as_millis()
        );
        all.extend(&sentence.audio);
    }
    anyhow::ensure!(!all.is_empty(), "nothing to say: the text has no words");
    let encoding = if args.mulaw {
        WavEncoding::G711(Law::MuLaw)
    } else {
        WavEncoding::Pcm16
    };
    write_file(&args.output, &all, encoding).context("writing the output")?;
    println!(
        "{}: {:.2} s at {rate}",
        args.output.display(),
        all.duration().as_secs_f32()
    );
    Ok(ExitCode::SUCCESS)
}
