//! Writing WAV files: 16-bit PCM, or G.711 μ-law/A-law (8 bits a sample,
//! a quarter of the size, which is how the audio fixtures are stored).

use std::io::Write;
use std::path::Path;

use super::{f32_to_i16, AudioError, Samples};
use crate::media::g711::Law;

/// How samples are stored in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WavEncoding {
    Pcm16,
    G711(Law),
}

/// Encodes mono samples as a complete WAV file in memory.
pub fn encode(samples: &Samples, encoding: WavEncoding) -> Vec<u8> {
    let (format_tag, bits, data): (u16, u16, Vec<u8>) = match encoding {
        WavEncoding::Pcm16 => (
            1,
            16,
            samples
                .data
                .iter()
                .flat_map(|s| f32_to_i16(*s).to_le_bytes())
                .collect(),
        ),
        WavEncoding::G711(law) => (
            match law {
                Law::ALaw => 6,
                Law::MuLaw => 7,
            },
            8,
            samples
                .data
                .iter()
                .map(|s| law.encode(f32_to_i16(*s)))
                .collect(),
        ),
    };
    let block_align = bits / 8;
    let rate = samples.rate.0;
    // Non-PCM formats carry a cbSize field and a fact chunk (WAVE spec).
    let extended = format_tag != 1;
    let fmt_len: u32 = if extended { 18 } else { 16 };
    let fact_len: u32 = if extended { 12 } else { 0 };
    let mut out = Vec::with_capacity(data.len() + 58);
    out.extend_from_slice(b"RIFF");
    let riff_len = 4 + (8 + fmt_len) + fact_len + (8 + data.len() as u32);
    out.extend_from_slice(&riff_len.to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&fmt_len.to_le_bytes());
    out.extend_from_slice(&format_tag.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * block_align as u32).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    if extended {
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(b"fact");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&(samples.data.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// Writes mono samples to a WAV file.
pub fn write_file(path: &Path, samples: &Samples, encoding: WavEncoding) -> Result<(), AudioError> {
    let bytes = encode(samples, encoding);
    let result = std::fs::File::create(path).and_then(|mut f| f.write_all(&bytes));
    result.map_err(|source| AudioError::Write {
        path: path.to_path_buf(),
        source,
    })
}
