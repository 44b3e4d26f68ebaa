//! Reads one float32 matrix from a NumPy `.npz` (a zip of `.npy` files),
//! enough for Whisper's `mel_filters.npz`.

use std::io::{Read, Seek};

use super::ConvertError;

/// A row-major 2-D array.
#[derive(Clone, Debug)]
pub struct Array2 {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

/// Reads the array `name` (for example `mel_80`) from an npz archive.
pub fn read_mel_filters<R: Read + Seek>(archive: R, name: &str) -> Result<Array2, ConvertError> {
    let err = |m: String| ConvertError::MelFilters(m);
    let mut zip =
        zip::ZipArchive::new(archive).map_err(|e| err(format!("not an npz archive: {e}")))?;
    let mut member = zip
        .by_name(&format!("{name}.npy"))
        .map_err(|_| err(format!("no array {name} in the archive")))?;
    let mut bytes = Vec::new();
    member.read_to_end(&mut bytes)?;
    parse_npy(&bytes).map_err(err)
}

/// Parses a version 1/2/3 `.npy` holding little-endian f32 or f64, C order.
pub fn parse_npy(bytes: &[u8]) -> Result<Array2, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not an .npy array".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!(".npy version {v}")),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated .npy header")?;
    if header.contains("'fortran_order': True") {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let width = if header.contains("'<f4'") {
        4
    } else if header.contains("'<f8'") {
        8
    } else {
        return Err(format!("unsupported dtype in {header}"));
    };
    let shape_start = header.find("'shape': (").ok_or("no shape")? + "'shape': (".len();
    let shape_end = header[shape_start..].find(')').ok_or("bad shape")? + shape_start;
    let dims: Vec<usize> = header[shape_start..shape_end]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad dimension {s:?}"))
        })
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(format!("expected a 2-D array, found shape {dims:?}"));
    };
    let payload = &bytes[start + header_len..];
    let count = rows.checked_mul(cols).ok_or("shape overflows")?;
    if payload.len() != count * width {
        return Err(format!("{} bytes of data for {rows}x{cols}", payload.len()));
    }
    let data = if width == 4 {
        payload
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        payload
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect()
    };
    Ok(Array2 { rows, cols, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_small_array() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let mut padded = header.to_string();
        while (10 + padded.len() + 1) % 64 != 0 {
            padded.push(' ');
        }
        padded.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(padded.len() as u16).to_le_bytes());
        bytes.extend_from_slice(padded.as_bytes());
        for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let a = parse_npy(&bytes).unwrap();
        assert_eq!((a.rows, a.cols), (2, 3));
        assert_eq!(a.data[5], 6.0);
        assert!(parse_npy(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse_npy(b"garbage").is_err());
    }
}
