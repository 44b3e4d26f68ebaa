//! Reading audio files of every supported kind, at several rates and
//! channel counts, mixed down to mono; resampling to the telephone and
//! recognition rates; WAV output read back.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use switchboard::audio::resample::resample;
use switchboard::audio::wav::{write_file, WavEncoding};
use switchboard::audio::{read_file, SampleRate, Samples};
use switchboard::media::g711::Law;

fn sox(args: &[&str]) {
    let status = Command::new("sox")
        .args(args)
        .status()
        .expect("sox (installed by scripts/setup)");
    assert!(status.success(), "sox {args:?}");
}

#[test]
fn reads_wav_flac_and_vorbis_at_any_rate_and_channel_count() {
    let dir = temp_dir("formats");
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    // A 1 kHz tone at half scale, 1.5 s.
    let cases: &[(&str, &[&str], u32)] = &[
        (
            "pcm16-stereo-44k.wav",
            &["-r", "44100", "-c", "2", "-b", "16", "-e", "signed-integer"],
            44_100,
        ),
        (
            "pcm16-mono-11k.wav",
            &["-r", "11025", "-c", "1", "-b", "16", "-e", "signed-integer"],
            11_025,
        ),
        (
            "mulaw-8k.wav",
            &["-r", "8000", "-c", "1", "-e", "mu-law"],
            8_000,
        ),
        (
            "alaw-8k.wav",
            &["-r", "8000", "-c", "1", "-e", "a-law"],
            8_000,
        ),
        ("flac-48k-stereo.flac", &["-r", "48000", "-c", "2"], 48_000),
        ("vorbis-32k.ogg", &["-r", "32000", "-c", "1"], 32_000),
        (
            "six-channels-16k.wav",
            &["-r", "16000", "-c", "6", "-b", "16", "-e", "signed-integer"],
            16_000,
        ),
    ];
    for (name, format, rate) in cases {
        let mut args: Vec<&str> = vec!["-n"];
        args.extend_from_slice(format);
        let path = p(name);
        args.extend_from_slice(&[&path, "synth", "1.5", "sine", "1000", "vol", "0.5"]);
        sox(&args);
        let audio = read_file(Path::new(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(audio.rate, SampleRate(*rate), "{name}");
        let seconds = audio.duration().as_secs_f32();
        assert!((seconds - 1.5).abs() < 0.06, "{name}: {seconds} s");
        let level = audio.tone_amplitude(1000.0);
        assert!((level - 0.5).abs() < 0.05, "{name}: tone level {level}");

        for target in [SampleRate::TELEPHONE, SampleRate::SPEECH_RECOGNITION] {
            let r = resample(&audio, target);
            assert_eq!(r.rate, target);
            assert!(
                (r.duration().as_secs_f32() - seconds).abs() < 0.01,
                "{name} -> {target}"
            );
            let level = r.tone_amplitude(1000.0);
            assert!(
                (level - 0.5).abs() < 0.06,
                "{name} -> {target}: tone level {level}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stereo_is_mixed_down_by_averaging() {
    let dir = temp_dir("mixdown");
    let path = dir.join("opposed.wav");
    // Left: the tone; right: the tone inverted. Their average is silence.
    sox(&[
        "-n",
        "-r",
        "8000",
        "-c",
        "2",
        "-b",
        "16",
        path.to_str().unwrap(),
        "synth",
        "1",
        "sine",
        "500",
        "sine",
        "500",
        "remix",
        "1",
        "2v-1",
        "vol",
        "0.5",
    ]);
    let audio = read_file(&path).unwrap();
    assert!(
        audio.rms_dbfs() < -60.0,
        "mixdown kept {} dBFS",
        audio.rms_dbfs()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn written_wav_files_read_back() {
    let dir = temp_dir("wav-out");
    let tone: Vec<f32> = (0..8000)
        .map(|i| 0.4 * (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 8000.0).sin())
        .collect();
    let audio = Samples::new(SampleRate::TELEPHONE, tone);
    for (name, encoding, tolerance) in [
        ("pcm.wav", WavEncoding::Pcm16, 1e-4),
        ("ulaw.wav", WavEncoding::G711(Law::MuLaw), 0.02),
        ("alaw.wav", WavEncoding::G711(Law::ALaw), 0.02),
    ] {
        let path = dir.join(name);
        write_file(&path, &audio, encoding).unwrap();
        let back = read_file(&path).unwrap();
        assert_eq!(back.rate, audio.rate, "{name}");
        assert_eq!(back.data.len(), audio.data.len(), "{name}");
        let worst = back
            .data
            .iter()
            .zip(&audio.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < tolerance, "{name}: off by {worst}");
        // sox agrees on what was written.
        let info = Command::new("sox")
            .args(["--i", "-r", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&info.stdout).trim(),
            "8000",
            "{name}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
