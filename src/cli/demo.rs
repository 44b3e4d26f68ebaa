//! `switchboard demo`: speech in and out, end to end, on the default models.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::engines::{load_piper, load_recogniser};
use crate::audio::telephone::TelephoneChannel;
use crate::audio::SampleRate;
use crate::speech::stt::{SpeechToText, TranscribeOptions, WhisperConfig};
use crate::speech::text::word_errors;
use crate::speech::tts::speak;

#[derive(clap::Args)]
pub struct Args {
    /// What the simulated caller says.
    #[arg(default_value = "Hi, I was charged twice on my last bill and I would like a refund.")]
    text: String,
}

pub fn run(models: &Path, args: Args) -> Result<ExitCode> {
    let (tts, tts_load) = load_piper(models, 1)?;
    let (stt, stt_load) =
        load_recogniser(models, "tiny.en", Some("base"), WhisperConfig::default())?;
    println!(
        "models loaded: voice {} ms, recogniser {} ms",
        tts_load.as_millis(),
        stt_load.as_millis()
    );
    println!("caller says:   {:?}", args.text);

    let mut caller = crate::audio::Samples::new(SampleRate(22_050), Vec::new());
    let mut synthesis_ms = 0;
    let mut first_ms = None;
    for sentence in speak(&tts, &args.text, SampleRate(22_050)) {
        let sentence = sentence?;
        synthesis_ms += sentence.elapsed.as_millis();
        first_ms.get_or_insert(sentence.elapsed.as_millis());
        caller.extend(&sentence.audio);
    }
    println!(
        "synthesised:   {:.2} s of speech in {synthesis_ms} ms (first sentence after {} ms)",
        caller.duration().as_secs_f32(),
        first_ms.unwrap_or(0)
    );
    let line = TelephoneChannel::default().transmit(&caller);
    println!("telephone:     300-3400 Hz, 8 kHz G.711 mu-law, noise at -60 dBFS");
    let heard = stt.transcribe(&line, &TranscribeOptions::default())?;
    println!("agent hears:   {:?}", heard.text);
    println!(
        "recognised:    in {} ms ({} pass(es), confidence {:.2}, real-time factor {:.3})",
        heard.elapsed.as_millis(),
        heard.passes,
        heard.confidence,
        heard.elapsed.as_secs_f32() / heard.audio.as_secs_f32().max(0.001)
    );
    let (errors, words) = word_errors(&args.text, &heard.text);
    println!("word errors:   {errors} of {words}");
    Ok(ExitCode::SUCCESS)
}
