//! Converts all-MiniLM-L6-v2 from its safetensors weights to an ONNX graph
//! of standard operators (opset 20), so that ONNX Runtime, already shipped
//! for Piper, runs the sentence encoder: about four times faster than a
//! general tensor library on the short inputs a caller's turn gives.
//!
//! The graph is the BERT encoder of Hugging Face's `BertModel` followed by
//! sentence-transformers' pooling for this model:
//!
//! - inputs `input_ids` and `attention_mask`, int64, `[batch, sequence]`;
//! - embeddings: word + position + token type 0, then LayerNorm;
//! - per layer: self-attention (heads of `hidden / heads`, scores scaled by
//!   `1/sqrt(head)`, padding masked with -10 000 before the softmax), the
//!   output projection, residual and LayerNorm; then the feed-forward
//!   block (erf GELU), residual and LayerNorm;
//! - output `embedding`, float `[batch, hidden]`: the mean of the token
//!   vectors over the attention mask, scaled to unit length.
//!
//! Weights are copied as they are (float32, linear layers transposed for
//! `MatMul`), so the output is a deterministic function of the input and
//! its SHA-256 can be pinned in the catalogue.

use std::collections::HashMap;

use super::onnx::{Attr, Dim, ElemType, Graph};
use super::ConvertError;

/// The parts of `config.json` the graph depends on.
#[derive(Debug, serde::Deserialize)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
}

/// A safetensors file's float32 tensors, by name.
pub struct SafeTensors {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl SafeTensors {
    /// Parses a safetensors file: an 8-byte little-endian header length, a
    /// JSON header of `{name: {dtype, shape, data_offsets}}`, then the data.
    /// Tensors of other types than F32 are skipped (BERT's `position_ids`).
    pub fn parse(bytes: &[u8]) -> Result<Self, ConvertError> {
        let bad = |detail: String| ConvertError::BadSource(format!("safetensors: {detail}"));
        let header_len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
            .ok_or_else(|| bad("shorter than its header".into()))?;
        let data_start = 8usize
            .checked_add(header_len)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| bad(format!("header of {header_len} bytes overruns the file")))?;
        let header: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..data_start])
                .map_err(|e| bad(format!("header: {e}")))?;
        let data = &bytes[data_start..];
        let mut tensors = HashMap::new();
        for (name, info) in header {
            if name == "__metadata__" || info["dtype"] != "F32" {
                continue;
            }
            let shape: Vec<usize> = serde_json::from_value(info["shape"].clone())
                .map_err(|e| bad(format!("{name}: shape: {e}")))?;
            let [start, end]: [usize; 2] = serde_json::from_value(info["data_offsets"].clone())
                .map_err(|e| bad(format!("{name}: data_offsets: {e}")))?;
            let raw = data
                .get(start..end)
                .filter(|r| r.len() == shape.iter().product::<usize>() * 4)
                .ok_or_else(|| {
                    bad(format!(
                        "{name}: data {start}..{end} does not fit {shape:?}"
                    ))
                })?;
            let values = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.insert(name, (shape, values));
        }
        Ok(SafeTensors { tensors })
    }

    /// The tensor `name`, checked to have `shape`.
    fn get(&self, name: &str, shape: &[usize]) -> Result<&[f32], ConvertError> {
        let (actual, values) = self
            .tensors
            .get(name)
            .ok_or_else(|| ConvertError::MissingVariable(name.to_string()))?;
        if actual != shape {
            return Err(ConvertError::BadVariable {
                name: name.to_string(),
                detail: format!("shape {actual:?}, expected {shape:?}"),
            });
        }
        Ok(values)
    }

    /// The tensor `name` of shape `[rows, cols]`, transposed.
    fn transposed(&self, name: &str, rows: usize, cols: usize) -> Result<Vec<f32>, ConvertError> {
        let w = self.get(name, &[rows, cols])?;
        let mut t = vec![0.0; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = w[r * cols + c];
            }
        }
        Ok(t)
    }
}

/// Builds the serialized ONNX model. `progress(done, total)` is called
/// after each encoder layer.
pub fn convert(
    weights: &SafeTensors,
    config: &BertConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<u8>, ConvertError> {
    let h = config.hidden_size;
    let heads = config.num_attention_heads;
    let inter = config.intermediate_size;
    if config.hidden_act != "gelu" || heads == 0 || h % heads != 0 {
        return Err(ConvertError::BadSource(format!(
            "config: hidden_act {:?}, {h} hidden over {heads} heads: only BERT with exact GELU and whole heads is converted",
            config.hidden_act
        )));
    }
    let head = h / heads;
    let eps = config.layer_norm_eps as f32;
    let (vocab, positions) = {
        let (shape, _) = weights
            .tensors
            .get("embeddings.word_embeddings.weight")
            .ok_or_else(|| {
                ConvertError::MissingVariable("embeddings.word_embeddings.weight".into())
            })?;
        let (pos, _) = weights
            .tensors
            .get("embeddings.position_embeddings.weight")
            .ok_or_else(|| {
                ConvertError::MissingVariable("embeddings.position_embeddings.weight".into())
            })?;
        (shape[0], pos[0])
    };

    let mut g = Graph::new("all-MiniLM-L6-v2");
    let dims = [Dim::Named("batch"), Dim::Named("sequence")];
    let ids = g.input("input_ids", ElemType::Int64, &dims);
    let mask = g.input("attention_mask", ElemType::Int64, &dims);

    // Constants.
    let zero = g.int64s("zero", &[1], &[0]);
    let one = g.int64s("one", &[1], &[1]);
    let two = g.int64s("two", &[1], &[2]);
    let axis_2 = g.int64s("axis_2", &[1], &[2]);
    let axes_1_2 = g.int64s("axes_1_2", &[2], &[1, 2]);
    let split_heads = g.int64s("split_heads", &[4], &[0, 0, heads as i64, head as i64]);
    let join_heads = g.int64s("join_heads", &[3], &[0, 0, h as i64]);
    let one_f = g.floats("one_f", &[], &[1.0]);
    let masked = g.floats("masked", &[], &[-10_000.0]);
    let scale = g.floats("scale", &[], &[1.0 / (head as f32).sqrt()]);
    let tiny = g.floats("tiny", &[], &[1e-9]);

    // Embeddings.
    let word = g.floats(
        "word_embeddings",
        &[vocab, h],
        weights.get("embeddings.word_embeddings.weight", &[vocab, h])?,
    );
    let position = g.floats(
        "position_embeddings",
        &[positions, h],
        weights.get("embeddings.position_embeddings.weight", &[positions, h])?,
    );
    let type_0 = g.floats(
        "token_type_0",
        &[h],
        &weights.get("embeddings.token_type_embeddings.weight", &[2, h])?[..h],
    );
    let x = g.node("Gather", &[&word, &ids], &[]);
    let shape = g.node("Shape", &[&ids], &[]);
    let length = g.node("Slice", &[&shape, &one, &two], &[]);
    let pos = g.node("Slice", &[&position, &zero, &length, &zero], &[]);
    let x = g.node("Add", &[&x, &pos], &[]);
    let x = g.node("Add", &[&x, &type_0], &[]);
    let mut x = layer_norm(&mut g, weights, &x, "embeddings.LayerNorm", h, eps)?;

    // The additive attention mask: 0 where a token is real, -10 000 where
    // it is padding, shaped [batch, 1, 1, sequence].
    let mask_f = g.node("Cast", &[&mask], &[Attr::Int("to", ElemType::Float as i64)]);
    let mask_4d = g.node("Unsqueeze", &[&mask_f, &axes_1_2], &[]);
    let padding = g.node("Sub", &[&one_f, &mask_4d], &[]);
    let bias = g.node("Mul", &[&padding, &masked], &[]);

    for l in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{l}.");
        let project = |g: &mut Graph, which: &str, perm: &[i64]| -> Result<String, ConvertError> {
            let name = format!("{p}attention.self.{which}");
            let y = linear(g, weights, &x, &name, h, h)?;
            let y = g.node("Reshape", &[&y, &split_heads], &[]);
            Ok(g.node("Transpose", &[&y], &[Attr::Ints("perm", perm)]))
        };
        // [batch, heads, sequence, head], keys as [batch, heads, head, sequence].
        let q = project(&mut g, "query", &[0, 2, 1, 3])?;
        let k = project(&mut g, "key", &[0, 2, 3, 1])?;
        let v = project(&mut g, "value", &[0, 2, 1, 3])?;
        let scores = g.node("MatMul", &[&q, &k], &[]);
        let scores = g.node("Mul", &[&scores, &scale], &[]);
        let scores = g.node("Add", &[&scores, &bias], &[]);
        let probs = g.node("Softmax", &[&scores], &[Attr::Int("axis", -1)]);
        let context = g.node("MatMul", &[&probs, &v], &[]);
        let context = g.node(
            "Transpose",
            &[&context],
            &[Attr::Ints("perm", &[0, 2, 1, 3])],
        );
        let context = g.node("Reshape", &[&context, &join_heads], &[]);
        let attended = linear(
            &mut g,
            weights,
            &context,
            &format!("{p}attention.output.dense"),
            h,
            h,
        )?;
        let residual = g.node("Add", &[&attended, &x], &[]);
        x = layer_norm(
            &mut g,
            weights,
            &residual,
            &format!("{p}attention.output.LayerNorm"),
            h,
            eps,
        )?;

        let widened = linear(
            &mut g,
            weights,
            &x,
            &format!("{p}intermediate.dense"),
            h,
            inter,
        )?;
        let activated = g.node("Gelu", &[&widened], &[]);
        let narrowed = linear(
            &mut g,
            weights,
            &activated,
            &format!("{p}output.dense"),
            inter,
            h,
        )?;
        let residual = g.node("Add", &[&narrowed, &x], &[]);
        x = layer_norm(
            &mut g,
            weights,
            &residual,
            &format!("{p}output.LayerNorm"),
            h,
            eps,
        )?;
        progress(l + 1, config.num_hidden_layers);
    }

    // Mean over the real tokens, then unit length.
    let weights_3d = g.node("Unsqueeze", &[&mask_f, &axis_2], &[]);
    let kept = g.node("Mul", &[&x, &weights_3d], &[]);
    let summed = g.node("ReduceSum", &[&kept, &one], &[Attr::Int("keepdims", 0)]);
    let count = g.node(
        "ReduceSum",
        &[&weights_3d, &one],
        &[Attr::Int("keepdims", 0)],
    );
    let count = g.node("Max", &[&count, &tiny], &[]);
    let mean = g.node("Div", &[&summed, &count], &[]);
    g.node_into(
        "LpNormalization",
        &[&mean],
        &[Attr::Int("axis", -1), Attr::Int("p", 2)],
        "embedding",
    );
    g.output(
        "embedding",
        ElemType::Float,
        &[Dim::Named("batch"), Dim::Fixed(h as i64)],
    );
    Ok(g.into_model(20, "switchboard models convert"))
}

/// `x @ W^T + b` for a PyTorch linear layer `name` of `[out, in]` weights.
fn linear(
    g: &mut Graph,
    weights: &SafeTensors,
    x: &str,
    name: &str,
    inputs: usize,
    outputs: usize,
) -> Result<String, ConvertError> {
    let w = g.floats(
        &format!("{name}.weight"),
        &[inputs, outputs],
        &weights.transposed(&format!("{name}.weight"), outputs, inputs)?,
    );
    let b = g.floats(
        &format!("{name}.bias"),
        &[outputs],
        weights.get(&format!("{name}.bias"), &[outputs])?,
    );
    let y = g.node("MatMul", &[x, &w], &[]);
    Ok(g.node("Add", &[&y, &b], &[]))
}

fn layer_norm(
    g: &mut Graph,
    weights: &SafeTensors,
    x: &str,
    name: &str,
    h: usize,
    eps: f32,
) -> Result<String, ConvertError> {
    let gamma = g.floats(
        &format!("{name}.weight"),
        &[h],
        weights.get(&format!("{name}.weight"), &[h])?,
    );
    let beta = g.floats(
        &format!("{name}.bias"),
        &[h],
        weights.get(&format!("{name}.bias"), &[h])?,
    );
    Ok(g.node(
        "LayerNormalization",
        &[x, &gamma, &beta],
        &[Attr::Int("axis", -1), Attr::Float("epsilon", eps)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safetensors(entries: &[(&str, &[usize], &[f32])]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, shape, values) in entries {
            let start = data.len();
            data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let header = serde_json::to_vec(&header).unwrap();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend(header);
        out.extend(data);
        out
    }

    #[test]
    fn safetensors_are_read_and_transposed() {
        let bytes = safetensors(&[("w", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]);
        let st = SafeTensors::parse(&bytes).unwrap();
        assert_eq!(
            st.get("w", &[2, 3]).unwrap(),
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        assert_eq!(
            st.transposed("w", 2, 3).unwrap(),
            vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
        assert!(matches!(
            st.get("w", &[3, 2]),
            Err(ConvertError::BadVariable { .. })
        ));
        assert!(matches!(
            st.get("v", &[1]),
            Err(ConvertError::MissingVariable(_))
        ));
    }

    #[test]
    fn truncated_safetensors_are_an_error_not_a_panic() {
        let bytes = safetensors(&[("w", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]);
        for cut in [0, 4, 8, 20, bytes.len() - 1] {
            assert!(SafeTensors::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
