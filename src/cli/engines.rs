//! Loading the speech engines from the models folder, with hash checks.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::models::verified_path;
use crate::speech::stt::{WhisperConfig, WhisperStt};
use crate::speech::tts::PiperTts;

/// `tiny.en`, `base`, or a path to a ggml file of your own (not hash-checked).
pub fn load_whisper(
    models: &Path,
    model: &str,
    config: WhisperConfig,
) -> Result<(WhisperStt, Duration)> {
    let started = Instant::now();
    let path = if model.ends_with(".bin") || model.contains('/') {
        Path::new(model).to_path_buf()
    } else {
        verified_path(models, &format!("whisper-{model}"))?
    };
    let stt = WhisperStt::load(&path, config)?;
    Ok((stt, started.elapsed()))
}

/// `model`, with `escalate` (if any) re-decoding what it is unsure of.
pub fn load_recogniser(
    models: &Path,
    model: &str,
    escalate: Option<&str>,
    config: WhisperConfig,
) -> Result<(WhisperStt, Duration)> {
    let started = Instant::now();
    let (mut stt, _) = load_whisper(models, model, config.clone())?;
    if let Some(bigger) = escalate {
        let (escalation, _) = load_whisper(
            models,
            bigger,
            WhisperConfig {
                language: None,
                ..config
            },
        )?;
        stt = stt.with_escalation(escalation);
    }
    Ok((stt, started.elapsed()))
}

pub fn load_piper(models: &Path, threads: usize) -> Result<(PiperTts, Duration)> {
    let started = Instant::now();
    let model = verified_path(models, "piper-joe")?;
    let config = verified_path(models, "piper-joe-config")?;
    let tts = PiperTts::load(&model, &config, threads)?;
    Ok((tts, started.elapsed()))
}
