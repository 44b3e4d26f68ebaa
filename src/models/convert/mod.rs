//! Model conversions, pure Rust (no Python numerics are needed):
//!
//! - a CTranslate2 Whisper model (`model.bin`, format version 6) to
//!   whisper.cpp's ggml format, as whisper.cpp's `convert-pt-to-ggml.py`
//!   would write it from the original PyTorch checkpoint (this file, with
//!   `ct2`, `ggml`, `npz`, `tiktoken`);
//! - all-MiniLM-L6-v2's safetensors weights to an ONNX graph for ONNX
//!   Runtime ([`minilm`], written by [`onnx`]).
//!
//! Whisper's call order: [`Ct2Model::read`] the source, then [`convert`] with the mel
//! filter bank ([`npz::read_mel_filters`]) and the BPE vocabulary
//! ([`tiktoken::read`]); `convert` writes the ggml file and reports progress.

pub mod ct2;
pub mod ggml;
pub mod minilm;
pub mod npz;
pub mod onnx;
pub mod tiktoken;

use std::io::Write;

pub use ct2::{Ct2Model, DType, Variable};

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("not a CTranslate2 Whisper model: {0}")]
    NotCt2(String),
    #[error("{0}")]
    BadSource(String),
    #[error("missing variable {0}")]
    MissingVariable(String),
    #[error("variable {name} has {detail}")]
    BadVariable { name: String, detail: String },
    #[error("mel filters: {0}")]
    MelFilters(String),
    #[error("vocabulary: {0}")]
    Vocabulary(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Hyper-parameters in the order whisper.cpp reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HyperParameters {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    /// 1: float16 weights.
    pub ftype: i32,
}

impl HyperParameters {
    /// Reads the shapes of the model. English-only models have a vocabulary
    /// of 51 864 tokens, multilingual ones 51 865 or more.
    pub fn of(model: &Ct2Model) -> Result<Self, ConvertError> {
        let shape =
            |name: &str| -> Result<Vec<usize>, ConvertError> { Ok(model.get(name)?.shape.clone()) };
        let dims2 = |name: &str| -> Result<(i32, i32), ConvertError> {
            match shape(name)?.as_slice() {
                [a, b] => Ok((*a as i32, *b as i32)),
                other => Err(ConvertError::BadVariable {
                    name: name.into(),
                    detail: format!("shape {other:?}, expected 2 dimensions"),
                }),
            }
        };
        let (n_vocab, n_text_state) = dims2("decoder/embeddings/weight")?;
        let (n_audio_ctx, n_audio_state) = dims2("encoder/position_encodings/encodings")?;
        let (n_text_ctx, _) = dims2("decoder/position_encodings/encodings")?;
        let conv1 = shape("encoder/conv1/weight")?;
        let n_mels = *conv1.get(1).ok_or_else(|| ConvertError::BadVariable {
            name: "encoder/conv1/weight".into(),
            detail: format!("shape {conv1:?}"),
        })? as i32;
        Ok(HyperParameters {
            n_vocab,
            n_audio_ctx,
            n_audio_state,
            n_audio_head: model.scalar("encoder/num_heads")? as i32,
            n_audio_layer: model.count_layers("encoder") as i32,
            n_text_ctx,
            n_text_state,
            n_text_head: model.scalar("decoder/num_heads")? as i32,
            n_text_layer: model.count_layers("decoder") as i32,
            n_mels,
            ftype: 1,
        })
    }

    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }
}

/// Progress of a conversion, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub tensors_done: usize,
    pub tensors_total: usize,
}

/// Writes `model` as a ggml file to `out`.
pub fn convert(
    model: &Ct2Model,
    mel_filters: &npz::Array2,
    vocabulary: &[Vec<u8>],
    out: &mut dyn Write,
    progress: &mut dyn FnMut(Progress),
) -> Result<HyperParameters, ConvertError> {
    let hp = HyperParameters::of(model)?;
    if mel_filters.rows != hp.n_mels as usize {
        return Err(ConvertError::MelFilters(format!(
            "{} rows, the model has {} mel bands",
            mel_filters.rows, hp.n_mels
        )));
    }
    let tensors = ggml::tensors(model, &hp)?;
    ggml::write_header(out, &hp, mel_filters, vocabulary)?;
    let total = tensors.len();
    for (i, tensor) in tensors.iter().enumerate() {
        ggml::write_tensor(out, tensor)?;
        progress(Progress {
            tensors_done: i + 1,
            tensors_total: total,
        });
    }
    out.flush()?;
    Ok(hp)
}
