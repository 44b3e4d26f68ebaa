//! Piper voices (VITS models in ONNX) through piper-rs and ONNX Runtime.

use std::path::Path;
use std::sync::Mutex;

use piper_rs::{ModelConfig, Piper};

use super::{TextToSpeech, TtsError};
use crate::audio::{SampleRate, Samples};
use crate::models::ModelError;

/// A loaded Piper voice. The ONNX session is not reentrant through
/// piper-rs's `&mut` API, so calls are serialised by a mutex; synthesis
/// runs at ~0.08x real time, so one voice serves many calls.
pub struct PiperTts {
    voice: Mutex<Piper>,
}

impl PiperTts {
    /// Loads `model` (`.onnx`) and its `config` (`.onnx.json`), running
    /// inference on `threads` threads.
    pub fn load(model: &Path, config: &Path, threads: usize) -> Result<PiperTts, ModelError> {
        let load_err = |path: &Path, detail: String| ModelError::Load {
            path: path.to_path_buf(),
            detail,
        };
        for path in [model, config] {
            if !path.exists() {
                return Err(ModelError::Missing {
                    path: path.to_path_buf(),
                });
            }
        }
        let file = std::fs::File::open(config).map_err(|e| load_err(config, e.to_string()))?;
        let model_config: ModelConfig = serde_json::from_reader(file)
            .map_err(|e| load_err(config, format!("not a Piper voice config: {e}")))?;
        let ort_err = |e: String| load_err(model, format!("ONNX Runtime: {e}"));
        let session = ort::session::Session::builder()
            .map_err(|e| ort_err(e.to_string()))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| ort_err(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| ort_err(e.to_string()))?
            // Spinning worker threads would take cores from whisper.cpp's
            // own spinning threads (see speech::stt::cpu): park them.
            .with_intra_op_spinning(false)
            .map_err(|e| ort_err(e.to_string()))?
            .commit_from_file(model)
            .map_err(|e| load_err(model, format!("ONNX Runtime could not load it: {e}")))?;
        Ok(PiperTts {
            voice: Mutex::new(Piper::from_session(session, model_config)),
        })
    }
}

impl TextToSpeech for PiperTts {
    fn synthesize(&self, sentence: &str) -> Result<Samples, TtsError> {
        let mut voice = self.voice.lock().map_err(|_| {
            TtsError::Synthesis("the voice is poisoned by an earlier failure".into())
        })?;
        let (data, rate) = voice
            .create(sentence, false, None, None, None, None)
            .map_err(|e| TtsError::Synthesis(e.to_string()))?;
        Ok(super::trim_leading_silence(Samples::new(
            SampleRate(rate),
            data,
        )))
    }
}
