//! The converters on the real models. CTranslate2 -> ggml on tiny.en and
//! base: the output is byte-for-byte the pinned file, whisper.cpp loads it,
//! and it transcribes; the multilingual one identifies the language.
//! all-MiniLM-L6-v2 safetensors -> ONNX: byte-for-byte the pinned file (its
//! embeddings are checked in tests/intent_embedded.rs).

mod common;

use std::process::Command;

use common::*;
use switchboard::audio::read_file;
use switchboard::audio::telephone::TelephoneChannel;
use switchboard::models::catalog::find;
use switchboard::models::verify::sha256_file;
use switchboard::speech::stt::{SpeechToText, TranscribeOptions, WhisperConfig, WhisperStt};

/// Converts the catalogue's CT2 file for `model` into a temp folder with
/// the command line, and returns the output path.
fn convert(model: &str) -> std::path::PathBuf {
    let dir = temp_dir(&format!("convert-{model}"));
    let source = models().join(find(&format!("whisper-{model}-ct2")).unwrap().path);
    let output = dir.join(format!("ggml-{model}.bin"));
    let out = switchboard(&[
        "models",
        "convert",
        "--ct2",
        source.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "convert {model}: {}", stderr(&out));
    output
}

#[test]
fn converts_tiny_en_to_the_pinned_ggml_file_that_transcribes() {
    let _cpu = cpu_lock();
    let output = convert("tiny.en");
    let pinned = find("whisper-tiny.en").unwrap().sha256;
    assert_eq!(
        sha256_file(&output).unwrap(),
        pinned,
        "conversion is not reproducible"
    );

    let stt = WhisperStt::load(&output, WhisperConfig::default()).unwrap();
    assert!(!stt.is_multilingual());
    let audio = read_file(&fixtures().join("retention-01-piper.wav")).unwrap();
    let text = stt
        .transcribe(&audio, &TranscribeOptions::default())
        .unwrap()
        .text;
    assert!(
        text.to_lowercase().contains("cancel my service"),
        "{text:?}"
    );
    std::fs::remove_dir_all(output.parent().unwrap()).unwrap();
}

#[test]
fn converts_multilingual_base_which_identifies_the_language() {
    let _cpu = cpu_lock();
    let output = convert("base");
    assert_eq!(
        sha256_file(&output).unwrap(),
        find("whisper-base").unwrap().sha256
    );
    let stt = WhisperStt::load(&output, WhisperConfig::default()).unwrap();
    assert!(stt.is_multilingual());

    // A Spanish caller (espeak-ng) and an English one, language not given.
    let dir = output.parent().unwrap();
    let wav = dir.join("es.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "es", "-s", "140", "-w", wav.to_str().unwrap()])
        .arg("Hola, buenos días. Quiero hablar con alguien sobre mi factura, por favor.")
        .status()
        .expect("espeak-ng (installed by scripts/setup)");
    assert!(status.success());
    let spanish = TelephoneChannel::default().transmit(&read_file(&wav).unwrap());
    let heard = stt
        .transcribe(&spanish, &TranscribeOptions::default())
        .unwrap();
    println!("Spanish: {:?} ({:?})", heard.text, heard.language);
    assert_eq!(heard.language.as_deref(), Some("es"), "{heard:?}");

    let english = read_file(&fixtures().join("billing-05-piper.wav")).unwrap();
    let heard = stt
        .transcribe(&english, &TranscribeOptions::default())
        .unwrap();
    assert_eq!(heard.language.as_deref(), Some("en"), "{heard:?}");
    assert!(heard.text.to_lowercase().contains("payment"), "{heard:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn converts_minilm_to_the_pinned_onnx_file() {
    let dir = temp_dir("convert-minilm");
    std::fs::create_dir_all(dir.join("minilm")).unwrap();
    for name in ["minilm", "minilm-config"] {
        let path = find(name).unwrap().path;
        std::fs::copy(models().join(path), dir.join(path)).unwrap();
    }
    let out = switchboard(&[
        "--models",
        dir.to_str().unwrap(),
        "models",
        "convert",
        "minilm",
    ]);
    assert!(out.status.success(), "convert minilm: {}", stderr(&out));
    let target = find("minilm-onnx").unwrap();
    assert_eq!(
        sha256_file(&dir.join(target.path)).unwrap(),
        target.sha256,
        "conversion is not reproducible"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rejects_a_file_that_is_not_a_ct2_model() {
    let dir = temp_dir("convert-bad");
    let bad = dir.join("model.bin");
    std::fs::write(&bad, b"\x06\x00\x00\x00garbage").unwrap();
    let out = switchboard(&[
        "models",
        "convert",
        "--ct2",
        bad.to_str().unwrap(),
        "-o",
        dir.join("o.bin").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("not a CTranslate2 Whisper model"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
