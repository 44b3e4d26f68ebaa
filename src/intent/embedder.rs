//! Sentence embeddings: all-MiniLM-L6-v2 run by candle on the CPU.
//!
//! A sentence is tokenised (WordPiece, lower-cased), run through the
//! six-layer BERT encoder, and its token vectors are averaged over the
//! attention mask and scaled to unit length, exactly as
//! sentence-transformers does for this model. The cosine similarity of two
//! embeddings is then their dot product.
//!
//! # Threads
//!
//! [`SentenceEmbedder::embed`] is blocking and CPU-bound: async code must
//! call it from a worker thread, never from the runtime's. Inside, candle
//! runs the forward pass on its own rayon pool
//! ([`Device::with_context`]), separate from rayon's global pool. That
//! pool, and the number of threads candle's matrix products split into,
//! have `RAYON_NUM_THREADS` threads if it is set, otherwise one per
//! physical core; both are fixed the first time candle needs them, so set
//! the variable before the first embedding. Concurrent callers share the
//! pool (their work queues), which is what a server wants: embedding load
//! turns into latency, not into more threads. On two threads one short
//! sentence takes about 9 ms.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

use super::IntentError;
use crate::models::{verified_path, ModelError};

/// Length of an embedding.
pub const EMBEDDING_DIM: usize = 384;

/// Longest input in tokens (special tokens included); longer text is cut.
/// all-MiniLM-L6-v2 was trained on 128 tokens and sentence-transformers
/// cuts at 256; a caller's turn is far shorter either way.
pub const MAX_TOKENS: usize = 256;

/// How many sentences one forward pass of [`SentenceEmbedder::embed_batch`]
/// takes. Sentences are sorted by length before being grouped, so padding
/// stays small; the cap bounds the memory of one pass.
const BATCH_SIZE: usize = 32;

/// all-MiniLM-L6-v2 with its tokenizer, loaded once and shared between
/// threads (`embed` takes `&self`).
pub struct SentenceEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl std::fmt::Debug for SentenceEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEmbedder")
            .field("model", &"all-MiniLM-L6-v2")
            .field("device", &self.device)
            .finish()
    }
}

impl SentenceEmbedder {
    /// Loads the model, its configuration and tokenizer from `models_dir`
    /// (the catalogue entries `minilm`, `minilm-config`,
    /// `minilm-tokenizer`), checking each file's pinned hash first.
    pub fn load(models_dir: &Path) -> Result<Self, IntentError> {
        let weights = verified_path(models_dir, "minilm")?;
        let config_path = verified_path(models_dir, "minilm-config")?;
        let tokenizer_path = verified_path(models_dir, "minilm-tokenizer")?;

        let config_text =
            std::fs::read_to_string(&config_path).map_err(|source| ModelError::Io {
                path: config_path.clone(),
                source,
            })?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| load_error(&config_path, e))?;

        // tokenizer.json pads every input to 128 tokens; padding a single
        // sentence only costs time (about 5x), so it is switched off and
        // `embed_batch` pads each batch to its own longest sentence.
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| load_error(&tokenizer_path, e))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| load_error(&tokenizer_path, e))?;

        let device = Device::Cpu;
        // Read into memory rather than memory-mapped: mapping is `unsafe`
        // (the file must not change underneath), and 90 MB read once at
        // start-up is cheap.
        let bytes = std::fs::read(&weights).map_err(|source| ModelError::Io {
            path: weights.clone(),
            source,
        })?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
            .map_err(|e| load_error(&weights, e))?;
        let model = BertModel::load(vb, &config).map_err(|e| load_error(&weights, e))?;
        Ok(Self {
            model,
            tokenizer,
            device,
        })
    }

    /// Embeds one sentence: a unit vector of [`EMBEDDING_DIM`] numbers.
    /// Blocking (about 9 ms on two threads).
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, IntentError> {
        let tokens = self.tokenize(text)?;
        let mut out = self.forward(&[&tokens])?;
        debug_assert_eq!(out.len(), 1);
        Ok(out.pop().unwrap_or_default())
    }

    /// Embeds several sentences, in order, in as few forward passes as
    /// possible. Each result equals `embed` of the same sentence up to
    /// rounding (padding is masked out of attention and of the mean).
    pub fn embed_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, IntentError> {
        let tokens = texts
            .iter()
            .map(|t| self.tokenize(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        // Group sentences of similar length so each batch pads little.
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| tokens[i].ids.len());
        let mut out = vec![Vec::new(); tokens.len()];
        for chunk in order.chunks(BATCH_SIZE) {
            let batch: Vec<&Tokens> = chunk.iter().map(|&i| &tokens[i]).collect();
            for (&i, embedding) in chunk.iter().zip(self.forward(&batch)?) {
                out[i] = embedding;
            }
        }
        Ok(out)
    }

    fn tokenize(&self, text: &str) -> Result<Tokens, IntentError> {
        let encoding =
            self.tokenizer
                .encode(text, true)
                .map_err(|source| IntentError::Tokenize {
                    text: text.chars().take(80).collect(),
                    source,
                })?;
        Ok(Tokens {
            ids: encoding.get_ids().to_vec(),
            mask: encoding.get_attention_mask().to_vec(),
        })
    }

    /// One forward pass over `batch`, padded to its longest member.
    fn forward(&self, batch: &[&Tokens]) -> Result<Vec<Vec<f32>>, IntentError> {
        let rows = batch.len();
        let len = batch.iter().map(|t| t.ids.len()).max().unwrap_or(0);
        if rows == 0 || len == 0 {
            return Ok(vec![Vec::new(); rows]);
        }
        let mut ids = vec![0u32; rows * len];
        let mut mask = vec![0u32; rows * len];
        for (row, tokens) in batch.iter().enumerate() {
            let n = tokens.ids.len();
            ids[row * len..row * len + n].copy_from_slice(&tokens.ids);
            mask[row * len..row * len + n].copy_from_slice(&tokens.mask);
        }
        let device = &self.device;
        let pooled = device.with_context(|| -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = Tensor::from_vec(ids, (rows, len), device)?;
            let mask = Tensor::from_vec(mask, (rows, len), device)?;
            let type_ids = ids.zeros_like()?;
            // (rows, len, 384)
            let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
            // Mean over the real tokens only.
            let weights = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&weights)?.sum(1)?;
            let counts = weights.sum(1)?.clamp(1e-9, f32::MAX)?;
            let mean = summed.broadcast_div(&counts)?;
            // Unit length, so that a dot product is a cosine.
            let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
            mean.broadcast_div(&norms)?.to_vec2::<f32>()
        })?;
        Ok(pooled)
    }
}

/// Token ids and attention mask of one sentence, unpadded.
struct Tokens {
    ids: Vec<u32>,
    mask: Vec<u32>,
}

fn load_error(path: &Path, error: impl std::fmt::Display) -> ModelError {
    ModelError::Load {
        path: PathBuf::from(path),
        detail: error.to_string(),
    }
}

/// Cosine similarity of two embeddings from [`SentenceEmbedder`]: as they
/// have unit length, their dot product.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
