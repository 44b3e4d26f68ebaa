//! Writer of whisper.cpp's legacy ggml model file, the layout of its
//! `convert-pt-to-ggml.py`: magic, eleven i32 hyper-parameters, the mel
//! filter bank, the BPE tokens, then the tensors (each: i32 rank, i32 name
//! length, i32 type (0 f32, 1 f16), dims innermost first, name, data).

use std::io::Write;

use super::ct2::{Ct2Model, Variable};
use super::npz::Array2;
use super::{ConvertError, HyperParameters};

const GGML_MAGIC: u32 = 0x6767_6d6c;

/// A tensor ready to write, named as whisper.cpp names it.
pub struct Tensor {
    pub name: String,
    /// Row-major shape (outermost first, as PyTorch).
    pub shape: Vec<usize>,
    pub data: TensorData,
}

pub enum TensorData {
    F32(Vec<f32>),
    F16(Vec<u8>),
}

pub fn write_header(
    out: &mut dyn Write,
    hp: &HyperParameters,
    mel: &Array2,
    vocabulary: &[Vec<u8>],
) -> Result<(), ConvertError> {
    out.write_all(&GGML_MAGIC.to_le_bytes())?;
    for v in [
        hp.n_vocab,
        hp.n_audio_ctx,
        hp.n_audio_state,
        hp.n_audio_head,
        hp.n_audio_layer,
        hp.n_text_ctx,
        hp.n_text_state,
        hp.n_text_head,
        hp.n_text_layer,
        hp.n_mels,
        hp.ftype,
    ] {
        out.write_all(&v.to_le_bytes())?;
    }
    out.write_all(&(mel.rows as i32).to_le_bytes())?;
    out.write_all(&(mel.cols as i32).to_le_bytes())?;
    for v in &mel.data {
        out.write_all(&v.to_le_bytes())?;
    }
    out.write_all(&(vocabulary.len() as i32).to_le_bytes())?;
    for token in vocabulary {
        out.write_all(&(token.len() as i32).to_le_bytes())?;
        out.write_all(token)?;
    }
    Ok(())
}

pub fn write_tensor(out: &mut dyn Write, t: &Tensor) -> Result<(), ConvertError> {
    let kind: i32 = match t.data {
        TensorData::F32(_) => 0,
        TensorData::F16(_) => 1,
    };
    out.write_all(&(t.shape.len() as i32).to_le_bytes())?;
    out.write_all(&(t.name.len() as i32).to_le_bytes())?;
    out.write_all(&kind.to_le_bytes())?;
    for d in t.shape.iter().rev() {
        out.write_all(&(*d as i32).to_le_bytes())?;
    }
    out.write_all(t.name.as_bytes())?;
    match &t.data {
        TensorData::F32(v) => {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            out.write_all(&bytes)?;
        }
        TensorData::F16(b) => out.write_all(b)?,
    }
    Ok(())
}

/// Maps every CTranslate2 variable to the tensors whisper.cpp expects.
pub fn tensors(model: &Ct2Model, hp: &HyperParameters) -> Result<Vec<Tensor>, ConvertError> {
    let mut out = Vec::new();
    let mut put =
        |name: String, v: &Variable| push(&mut out, name, v.shape.clone(), v, 0..v.elements());

    // Encoder stem.
    for conv in ["conv1", "conv2"] {
        put(
            format!("encoder.{conv}.weight"),
            model.get(&format!("encoder/{conv}/weight"))?,
        );
        put(
            format!("encoder.{conv}.bias"),
            model.get(&format!("encoder/{conv}/bias"))?,
        );
    }
    put(
        "encoder.positional_embedding".into(),
        model.get("encoder/position_encodings/encodings")?,
    );
    for i in 0..hp.n_audio_layer {
        let (c, w) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
        block(&mut out, model, &c, &w, false)?;
    }
    layer_norm(&mut out, model, "encoder/layer_norm", "encoder.ln_post")?;

    // Decoder.
    let embeddings = model.get("decoder/embeddings/weight")?;
    push(
        &mut out,
        "decoder.token_embedding.weight".into(),
        embeddings.shape.clone(),
        embeddings,
        0..embeddings.elements(),
    );
    let positions = model.get("decoder/position_encodings/encodings")?;
    push(
        &mut out,
        "decoder.positional_embedding".into(),
        positions.shape.clone(),
        positions,
        0..positions.elements(),
    );
    for i in 0..hp.n_text_layer {
        let (c, w) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        block(&mut out, model, &c, &w, true)?;
    }
    layer_norm(&mut out, model, "decoder/layer_norm", "decoder.ln")?;
    Ok(out)
}

/// One transformer block: self-attention, cross-attention (decoder only)
/// and the MLP.
fn block(
    out: &mut Vec<Tensor>,
    model: &Ct2Model,
    c: &str,
    w: &str,
    cross: bool,
) -> Result<(), ConvertError> {
    layer_norm(
        out,
        model,
        &format!("{c}/self_attention/layer_norm"),
        &format!("{w}.attn_ln"),
    )?;
    // Fused [3d, d]: query, key, value. Whisper's key projection has no bias.
    let qkv_w = model.get(&format!("{c}/self_attention/linear_0/weight"))?;
    let qkv_b = model.get(&format!("{c}/self_attention/linear_0/bias"))?;
    let d = split_rows(qkv_w, 3, &format!("{c}/self_attention/linear_0/weight"))?;
    let cols = qkv_w.shape[1];
    for (k, part) in ["query", "key", "value"].iter().enumerate() {
        push(
            out,
            format!("{w}.attn.{part}.weight"),
            vec![d, cols],
            qkv_w,
            k * d * cols..(k + 1) * d * cols,
        );
        if *part != "key" {
            push(
                out,
                format!("{w}.attn.{part}.bias"),
                vec![d],
                qkv_b,
                k * d..(k + 1) * d,
            );
        }
    }
    linear(
        out,
        model,
        &format!("{c}/self_attention/linear_1"),
        &format!("{w}.attn.out"),
    )?;

    if cross {
        layer_norm(
            out,
            model,
            &format!("{c}/attention/layer_norm"),
            &format!("{w}.cross_attn_ln"),
        )?;
        linear(
            out,
            model,
            &format!("{c}/attention/linear_0"),
            &format!("{w}.cross_attn.query"),
        )?;
        // Fused [2d, d]: key, value.
        let kv_w = model.get(&format!("{c}/attention/linear_1/weight"))?;
        let kv_b = model.get(&format!("{c}/attention/linear_1/bias"))?;
        let d = split_rows(kv_w, 2, &format!("{c}/attention/linear_1/weight"))?;
        let cols = kv_w.shape[1];
        push(
            out,
            format!("{w}.cross_attn.key.weight"),
            vec![d, cols],
            kv_w,
            0..d * cols,
        );
        push(
            out,
            format!("{w}.cross_attn.value.weight"),
            vec![d, cols],
            kv_w,
            d * cols..2 * d * cols,
        );
        push(
            out,
            format!("{w}.cross_attn.value.bias"),
            vec![d],
            kv_b,
            d..2 * d,
        );
        linear(
            out,
            model,
            &format!("{c}/attention/linear_2"),
            &format!("{w}.cross_attn.out"),
        )?;
    }

    layer_norm(
        out,
        model,
        &format!("{c}/ffn/layer_norm"),
        &format!("{w}.mlp_ln"),
    )?;
    linear(
        out,
        model,
        &format!("{c}/ffn/linear_0"),
        &format!("{w}.mlp.0"),
    )?;
    linear(
        out,
        model,
        &format!("{c}/ffn/linear_1"),
        &format!("{w}.mlp.2"),
    )?;
    Ok(())
}

fn split_rows(v: &Variable, parts: usize, name: &str) -> Result<usize, ConvertError> {
    match v.shape.as_slice() {
        [rows, _] if rows % parts == 0 => Ok(rows / parts),
        other => Err(ConvertError::BadVariable {
            name: name.into(),
            detail: format!("shape {other:?}, expected [{parts}d, d]"),
        }),
    }
}

fn linear(out: &mut Vec<Tensor>, model: &Ct2Model, c: &str, w: &str) -> Result<(), ConvertError> {
    let weight = model.get(&format!("{c}/weight"))?;
    let bias = model.get(&format!("{c}/bias"))?;
    push(
        out,
        format!("{w}.weight"),
        weight.shape.clone(),
        weight,
        0..weight.elements(),
    );
    push(
        out,
        format!("{w}.bias"),
        bias.shape.clone(),
        bias,
        0..bias.elements(),
    );
    Ok(())
}

fn layer_norm(
    out: &mut Vec<Tensor>,
    model: &Ct2Model,
    c: &str,
    w: &str,
) -> Result<(), ConvertError> {
    let gamma = model.get(&format!("{c}/gamma"))?;
    let beta = model.get(&format!("{c}/beta"))?;
    push(
        out,
        format!("{w}.weight"),
        gamma.shape.clone(),
        gamma,
        0..gamma.elements(),
    );
    push(
        out,
        format!("{w}.bias"),
        beta.shape.clone(),
        beta,
        0..beta.elements(),
    );
    Ok(())
}

/// Adds elements `range` of `v` as a tensor, choosing the element type as
/// whisper.cpp's converter does: f32 for 1-D tensors, the conv biases
/// (reshaped to `[n, 1]`) and both positional embeddings; f16 otherwise.
fn push(
    out: &mut Vec<Tensor>,
    name: String,
    mut shape: Vec<usize>,
    v: &Variable,
    range: std::ops::Range<usize>,
) {
    let conv_bias = name == "encoder.conv1.bias" || name == "encoder.conv2.bias";
    if conv_bias {
        shape = vec![shape[0], 1];
    }
    let f32_tensor = shape.len() < 2 || conv_bias || name.ends_with("positional_embedding");
    let size = v.dtype.size();
    let slice = Variable {
        shape: shape.clone(),
        dtype: v.dtype,
        data: v.data[range.start * size..range.end * size].to_vec(),
    };
    let data = if f32_tensor {
        TensorData::F32(slice.to_f32())
    } else {
        TensorData::F16(slice.to_f16_bytes())
    };
    out.push(Tensor { name, shape, data });
}
