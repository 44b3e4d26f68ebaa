//! Sentence embeddings: all-MiniLM-L6-v2 run by ONNX Runtime on the CPU.
//!
//! A sentence is tokenised (WordPiece, lower-cased), run through the
//! six-layer BERT encoder, and its token vectors are averaged over the
//! attention mask and scaled to unit length, exactly as
//! sentence-transformers does for this model. The cosine similarity of two
//! embeddings is then their dot product. The encoder and the pooling are
//! one ONNX graph (`minilm/model.onnx`), written from the published
//! safetensors weights by `switchboard models convert minilm`
//! (`models/convert/minilm.rs`).
//!
//! # Threads
//!
//! [`SentenceEmbedder::embed`] is blocking and CPU-bound: async code must
//! call it from a worker thread, never from the runtime's. Inside, ONNX
//! Runtime splits each pass over its own pool of up to [`MAX_THREADS`]
//! threads (one per core on smaller machines), which sleep rather than
//! spin between passes so they take no time from speech recognition.
//! Concurrent callers take turns on the one session (a pass is a few
//! milliseconds), which is what a server wants: embedding load turns into
//! latency, not into more threads. On two threads one short sentence
//! takes about 3 ms.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::{Tokenizer, TruncationParams};

use super::IntentError;
use crate::models::{verified_path, ModelError};

/// Most threads one embedding pass uses: the matrices of a short sentence
/// are too small to gain from more.
pub const MAX_THREADS: usize = 4;

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
    session: Mutex<Session>,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for SentenceEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEmbedder")
            .field("model", &"all-MiniLM-L6-v2")
            .field("runtime", &"ONNX Runtime")
            .finish()
    }
}

impl SentenceEmbedder {
    /// Loads the model and its tokenizer from `models_dir` (the catalogue
    /// entries `minilm-onnx` and `minilm-tokenizer`), checking each file's
    /// pinned hash first.
    pub fn load(models_dir: &Path) -> Result<Self, IntentError> {
        let model = verified_path(models_dir, "minilm-onnx")?;
        let tokenizer_path = verified_path(models_dir, "minilm-tokenizer")?;

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

        let session = open_session(&model).map_err(|e| load_error(&model, e))?;
        Ok(Self {
            session: Mutex::new(session),
            tokenizer,
        })
    }

    /// Embeds one sentence: a unit vector of [`EMBEDDING_DIM`] numbers.
    /// Blocking (about 3 ms on two threads).
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
            ids: encoding.get_ids().iter().map(|&i| i64::from(i)).collect(),
            mask: encoding
                .get_attention_mask()
                .iter()
                .map(|&m| i64::from(m))
                .collect(),
        })
    }

    /// One forward pass over `batch`, padded to its longest member.
    fn forward(&self, batch: &[&Tokens]) -> Result<Vec<Vec<f32>>, IntentError> {
        let rows = batch.len();
        let len = batch.iter().map(|t| t.ids.len()).max().unwrap_or(0);
        if rows == 0 || len == 0 {
            return Ok(vec![Vec::new(); rows]);
        }
        let mut ids = vec![0i64; rows * len];
        let mut mask = vec![0i64; rows * len];
        for (row, tokens) in batch.iter().enumerate() {
            let n = tokens.ids.len();
            ids[row * len..row * len + n].copy_from_slice(&tokens.ids);
            mask[row * len..row * len + n].copy_from_slice(&tokens.mask);
        }
        let ids = Tensor::from_array(([rows, len], ids.into_boxed_slice()))?;
        let mask = Tensor::from_array(([rows, len], mask.into_boxed_slice()))?;
        // A panic elsewhere while holding the lock leaves the session as
        // it was (a run does not change it), so a poisoned lock is usable.
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outputs = session.run(ort::inputs![
            "input_ids" => ids,
            "attention_mask" => mask
        ])?;
        let (shape, values) = outputs["embedding"].try_extract_tensor::<f32>()?;
        if shape.len() != 2 || shape[0] != rows as i64 || shape[1] != EMBEDDING_DIM as i64 {
            return Err(IntentError::BadEmbedding {
                shape: shape.to_vec(),
            });
        }
        Ok(values
            .chunks_exact(EMBEDDING_DIM)
            .map(<[f32]>::to_vec)
            .collect())
    }
}

/// An ONNX Runtime session on `model`: all graph optimisations, one
/// thread per core up to [`MAX_THREADS`], which sleep between passes.
fn open_session(model: &Path) -> ort::Result<Session> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    Session::builder()?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        .with_intra_op_spinning(false)?
        .commit_from_file(model)
}

/// Token ids and attention mask of one sentence, unpadded.
struct Tokens {
    ids: Vec<i64>,
    mask: Vec<i64>,
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
