//! Speech benchmark: model load times, STT latency per fixture utterance
//! (p50, p95, real-time factor) with its word error rate, and TTS time to
//! the first sentence's audio and real-time factor.
//!
//! Run: `cargo bench --bench speech` (after scripts/setup). Figures are
//! printed with the machine's core count; targets on 2 cores: STT p50
//! <= 250 ms at WER <= 8%, first TTS audio <= 150 ms, all models loaded
//! within 3 s.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchboard::audio::{read_file, SampleRate};
use switchboard::models::verified_path;
use switchboard::speech::stt::{load_default, SpeechToText, TranscribeOptions, WhisperConfig};
use switchboard::speech::text::word_errors;
use switchboard::speech::tts::{speak, PiperTts, TextToSpeech};

#[derive(serde::Deserialize)]
struct Fixture {
    file: String,
    text: String,
}

#[derive(serde::Deserialize)]
struct Manifest {
    fixtures: Vec<Fixture>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let models = root.join("models");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("speech benchmark on {cores} core(s)");

    // Model load.
    let started = Instant::now();
    let stt = load_default(
        &models,
        WhisperConfig {
            threads: cores.min(4),
            ..Default::default()
        },
    )
    .expect("run scripts/setup first");
    let stt_load = started.elapsed();
    let started = Instant::now();
    let tts = PiperTts::load(
        &verified_path(&models, "piper-joe").unwrap(),
        &verified_path(&models, "piper-joe-config").unwrap(),
        1,
    )
    .unwrap();
    let tts_load = started.elapsed();
    println!(
        "model load: whisper tiny.en + base {}, piper joe {}, total {}",
        ms(stt_load),
        ms(tts_load),
        ms(stt_load + tts_load)
    );

    // STT over every speech fixture.
    let manifest: Manifest = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("audio-fixtures/manifest.yaml")).unwrap(),
    )
    .unwrap();
    let options = TranscribeOptions::default();
    // One warm-up decode, as a running agent has done long before a call.
    let first = &manifest.fixtures[0];
    let _ = stt.transcribe(
        &read_file(&root.join("audio-fixtures").join(&first.file)).unwrap(),
        &options,
    );
    let mut latencies = Vec::new();
    let (mut audio_total, mut busy_total) = (Duration::ZERO, Duration::ZERO);
    let (mut errors, mut words) = (0, 0);
    for f in manifest.fixtures.iter().filter(|f| !f.text.is_empty()) {
        let audio = read_file(&root.join("audio-fixtures").join(&f.file)).unwrap();
        let started = Instant::now();
        let t = stt.transcribe(&audio, &options).unwrap();
        let elapsed = started.elapsed();
        latencies.push(elapsed);
        audio_total += audio.duration();
        busy_total += elapsed;
        let (e, n) = word_errors(&f.text, &t.text);
        errors += e;
        words += n;
    }
    latencies.sort();
    println!(
        "stt tiny.en (base below {:.2}): {} utterances, p50 {}, p95 {}, max {}, real-time factor {:.3}, WER {:.2}%",
        WhisperConfig::default().escalate_below,
        latencies.len(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 95.0)),
        ms(*latencies.last().unwrap()),
        busy_total.as_secs_f64() / audio_total.as_secs_f64(),
        100.0 * errors as f64 / words as f64
    );

    // TTS: time to the first sentence's audio, and real-time factor.
    let short = "Thanks, one moment.";
    let long = "I can help with that. Let me transfer you to our billing team now. Please stay on the line.";
    let _ = tts.synthesize("Warm up.");
    let mut first_audio = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let mut sentences = speak(&tts, short, SampleRate::TELEPHONE);
        let _ = sentences.next().unwrap().unwrap();
        first_audio.push(started.elapsed());
    }
    first_audio.sort();
    let started = Instant::now();
    let mut spoken = Duration::ZERO;
    let mut long_first = None;
    for s in speak(&tts, long, SampleRate::TELEPHONE) {
        let s = s.unwrap();
        long_first.get_or_insert(started.elapsed());
        spoken += s.audio.duration();
    }
    let synth = started.elapsed();
    println!(
        "tts piper: first audio for {short:?} p50 {}, p95 {}; 3-sentence reply: first sentence after {}, {:.2} s of speech in {} (real-time factor {:.3})",
        ms(percentile(&first_audio, 50.0)),
        ms(percentile(&first_audio, 95.0)),
        ms(long_first.unwrap_or_default()),
        spoken.as_secs_f64(),
        ms(synth),
        synth.as_secs_f64() / spoken.as_secs_f64()
    );
}
