//! Bad input never panics: each case gets a clear message and a non-zero
//! exit, through the real binary.

mod common;

use std::fs;

use common::*;

/// Runs `transcribe` on `file` and checks for a failure that names the
/// problem (`expect` appears in the message) without a panic.
fn assert_rejected(args: &[&str], expect: &str) {
    let out = switchboard(args);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        stdout(&out)
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?}: exit {:?}, stderr {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(
        err.contains(expect),
        "{args:?}: expected {expect:?} in {err:?}"
    );
}

fn wav_header(format_tag: u16, bits: u16, data_len: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&format_tag.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&8000u32.to_le_bytes());
    h.extend_from_slice(&(8000 * bits as u32 / 8).to_le_bytes());
    h.extend_from_slice(&(bits / 8).max(1).to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

#[test]
fn bad_audio_files_get_clear_errors() {
    let dir = temp_dir("bad-audio");
    let good = fs::read(fixtures().join("billing-01-piper.wav")).unwrap();

    let empty = dir.join("empty.wav");
    fs::write(&empty, b"").unwrap();
    let truncated = dir.join("truncated.wav");
    fs::write(&truncated, &good[..good.len() / 3]).unwrap();
    let cut_header = dir.join("cut-header.wav");
    fs::write(&cut_header, &good[..20]).unwrap();
    let not_audio = dir.join("notes.wav");
    fs::write(
        &not_audio,
        "these are meeting notes, not audio\n".repeat(50),
    )
    .unwrap();
    // WAVE_FORMAT_GSM610 (0x31): a real codec that is not supported.
    let gsm = dir.join("gsm.wav");
    let mut bytes = wav_header(0x31, 0, 650);
    bytes.extend(std::iter::repeat_n(0u8, 650));
    fs::write(&gsm, bytes).unwrap();
    let zero = dir.join("zero.wav");
    fs::write(&zero, wav_header(1, 16, 0)).unwrap();

    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    assert_rejected(&["transcribe", &s(&empty)], "the file is empty");
    assert_rejected(&["transcribe", &s(&truncated)], "truncated");
    assert_rejected(&["transcribe", &s(&cut_header)], "truncated");
    assert_rejected(
        &["transcribe", &s(&not_audio)],
        "not a recognised audio file",
    );
    assert_rejected(&["transcribe", &s(&gsm)], "unsupported codec");
    assert_rejected(&["transcribe", &s(&zero)], "zero length");
    assert_rejected(&["transcribe", &s(&dir.join("absent.wav"))], "cannot open");
    // The same checks guard the telephone tool.
    assert_rejected(
        &[
            "audio",
            "telephone",
            &s(&not_audio),
            "-o",
            &s(&dir.join("x.wav")),
        ],
        "not a recognised",
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_and_corrupt_models_get_clear_errors() {
    let dir = temp_dir("bad-models");
    let fixture = fixtures().join("billing-01-piper.wav");
    let fixture = fixture.to_str().unwrap();
    let models = dir.to_str().unwrap();

    assert_rejected(
        &["--models", models, "transcribe", fixture],
        "is missing: run scripts/setup",
    );
    assert_rejected(
        &["--models", models, "say", "hello", "-o", "/dev/null"],
        "is missing",
    );

    // A model file with the wrong content: same name, different bytes.
    fs::create_dir_all(dir.join("whisper")).unwrap();
    let mut corrupt = fs::read(common::models().join("whisper/ggml-tiny.en.bin")).unwrap();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    fs::write(dir.join("whisper/ggml-tiny.en.bin"), corrupt).unwrap();
    assert_rejected(
        &["--models", models, "transcribe", fixture],
        "expected 3fe94b31",
    );

    // A file that is not a model at all, given by path (no pinned hash).
    let junk = dir.join("junk.bin");
    fs::write(&junk, b"not a model").unwrap();
    assert_rejected(
        &["transcribe", "--model", junk.to_str().unwrap(), fixture],
        "could not load",
    );
    fs::remove_dir_all(&dir).unwrap();
}
