//! Transcription of the audio fixtures through the real Whisper model:
//! word error rate over all voices, silence and noise left empty, and the
//! worker pool serving concurrent callers.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use switchboard::audio::read_file;
use switchboard::speech::stt::{
    load_default, Cancel, SpeechToText, SttError, SttPool, TranscribeOptions, WhisperConfig,
    WhisperStt,
};
use switchboard::speech::text::word_errors;

fn whisper() -> WhisperStt {
    load_default(&models(), WhisperConfig::default()).expect("tiny.en and base (run scripts/setup)")
}

#[test]
fn fixtures_are_transcribed_within_the_word_error_budget() {
    let _cpu = cpu_lock();
    let stt = whisper();
    let fixtures = manifest();
    assert!(fixtures.len() >= 40, "only {} fixtures", fixtures.len());
    let mut by_voice: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut errors, mut words) = (0, 0);
    for f in &fixtures {
        let audio = read_file(&fixture_path(f)).unwrap();
        let t = stt
            .transcribe(&audio, &TranscribeOptions::default())
            .unwrap();
        if f.text.is_empty() {
            assert_eq!(
                t.text, "",
                "{}: silence or noise transcribed as text",
                f.file
            );
            continue;
        }
        let (e, n) = word_errors(&f.text, &t.text);
        if e > 0 {
            println!("{e} error(s) {}: {:?} -> {:?}", f.file, f.text, t.text);
        }
        let family = f.voice.split(':').next().unwrap_or("").to_string();
        let entry = by_voice.entry(family).or_default();
        entry.0 += e;
        entry.1 += n;
        errors += e;
        words += n;
    }
    for (voice, (e, n)) in &by_voice {
        println!(
            "WER {voice}: {:.1}% ({e}/{n})",
            100.0 * *e as f64 / *n as f64
        );
    }
    let wer = errors as f64 / words as f64;
    println!(
        "WER overall: {:.2}% ({errors}/{words} words, {} fixtures)",
        100.0 * wer,
        fixtures.len()
    );
    assert!(
        by_voice.len() >= 3,
        "fixtures should cover several voices: {by_voice:?}"
    );
    assert!(
        wer <= 0.08,
        "word error rate {:.2}% is above 8%",
        100.0 * wer
    );
}

#[test]
fn an_abandoned_request_is_not_decoded_and_a_live_one_is() {
    let _cpu = cpu_lock();
    let stt = whisper();
    let audio = read_file(&fixtures().join("billing-01-piper.wav")).unwrap();
    let abandoned = Cancel::default();
    abandoned.cancel();
    let options = TranscribeOptions {
        cancel: Some(abandoned),
        ..Default::default()
    };
    let result = stt.transcribe(&audio, &options);
    assert!(matches!(result, Err(SttError::Cancelled)), "{result:?}");
    // whisper.cpp polls the flag while it decodes: a flag never set must
    // never stop it.
    for _ in 0..3 {
        let options = TranscribeOptions {
            cancel: Some(Cancel::default()),
            ..Default::default()
        };
        let heard = stt.transcribe(&audio, &options).unwrap();
        assert!(heard.text.to_lowercase().contains("bill"), "{heard:?}");
    }
}

#[test]
fn a_decoder_state_cancelled_mid_decode_serves_the_next_request() {
    let _cpu = cpu_lock();
    let stt = whisper();
    let audio = read_file(&fixtures().join("billing-01-piper.wav")).unwrap();
    for delay_ms in [20, 60, 120] {
        let cancel = Cancel::default();
        let options = TranscribeOptions {
            cancel: Some(cancel.clone()),
            ..Default::default()
        };
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                cancel.cancel();
            });
            stt.transcribe(&audio, &options)
        });
        // Cancelled in the encoder or between decoder steps (or, on a fast
        // machine, finished first); the state it used goes back to the
        // free list (checked below), and the next request decodes
        // correctly on it.
        assert!(
            matches!(result, Err(SttError::Cancelled)) || result.is_ok(),
            "{result:?}"
        );
        let heard = stt
            .transcribe(&audio, &TranscribeOptions::default())
            .unwrap();
        assert!(
            heard.text.to_lowercase().contains("charged twice"),
            "{heard:?}"
        );
    }
    // One decode at a time: the state made at load served every one.
    assert_eq!(stt.decoder_states(), 1);
}

#[test]
fn the_pool_serves_concurrent_callers_with_one_model() {
    let _cpu = cpu_lock();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(pool_serves_concurrent_callers());
}

async fn pool_serves_concurrent_callers() {
    let stt: Arc<dyn SpeechToText> = Arc::new(whisper());
    let files = [
        "billing-01-piper.wav",
        "support-01-piper.wav",
        "sales-01-piper.wav",
        "operator-02-piper.wav",
    ];
    let mut expected = Vec::new();
    for f in files {
        let audio = read_file(&fixtures().join(f)).unwrap();
        expected.push(
            stt.transcribe(&audio, &TranscribeOptions::default())
                .unwrap()
                .text,
        );
    }
    let pool = Arc::new(SttPool::new(stt, 2, 2));
    let tasks: Vec<_> = files
        .iter()
        .map(|f| {
            let pool = pool.clone();
            let audio = read_file(&fixtures().join(f)).unwrap();
            tokio::spawn(async move { pool.transcribe(audio, TranscribeOptions::default()).await })
        })
        .collect();
    for (task, want) in tasks.into_iter().zip(expected) {
        let got = task.await.unwrap().unwrap();
        assert_eq!(
            got.text, want,
            "a concurrent transcription differs from the sequential one"
        );
        assert!(!got.text.is_empty());
    }
}

#[test]
fn transcribe_command_prints_json_lines() {
    let _cpu = cpu_lock();
    let a = fixtures().join("billing-01-piper.wav");
    let b = fixtures().join("noise-01-silence.wav");
    let out = switchboard(&[
        "transcribe",
        "--json",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("billing-01-piper.wav"));
    let text = lines[0]["text"].as_str().unwrap().to_lowercase();
    assert!(text.contains("charged twice"), "{text}");
    assert!(lines[0]["elapsed"].as_f64().unwrap() > 0.0);
    assert_eq!(lines[1]["text"], "");
}
