//! Reader of CTranslate2's `model.bin` (binary format version 6).
//!
//! Layout: `u32 version`, string spec name, `u32 revision`, `u32` variable
//! count, then per variable: string name, `u8 rank`, `rank x u32` dims,
//! `u8 dtype`, `u32` byte count, raw little-endian data; then `u32` alias
//! count and (alias, target) string pairs. Strings are a `u16` length
//! (including a trailing NUL) followed by the bytes.

use std::collections::BTreeMap;
use std::io::Read;

use super::ConvertError;

/// CTranslate2's element types (`ctranslate2::DataType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One named array of the model.
#[derive(Clone, Debug)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<u8>,
}

impl Variable {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// The elements as f32, whatever the stored float type.
    pub fn to_f32(&self) -> Vec<f32> {
        match self.dtype {
            DType::F32 => self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => self
                .data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => self
                .data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::I8 => self.data.iter().map(|b| *b as i8 as f32).collect(),
            DType::I16 => self
                .data
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
                .collect(),
            DType::I32 => self
                .data
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
        }
    }

    /// The elements as little-endian f16 bytes.
    pub fn to_f16_bytes(&self) -> Vec<u8> {
        if self.dtype == DType::F16 {
            return self.data.clone();
        }
        self.to_f32()
            .into_iter()
            .flat_map(|v| half::f16::from_f32(v).to_le_bytes())
            .collect()
    }
}

/// A whole model, variables by name (aliases resolved).
#[derive(Debug)]
pub struct Ct2Model {
    pub spec: String,
    pub variables: BTreeMap<String, Variable>,
}

/// Bounds that keep a hostile or corrupt file from making us allocate
/// without limit before the data runs out.
const MAX_VARIABLES: u32 = 100_000;
const MAX_RANK: u8 = 8;

impl Ct2Model {
    pub fn read(reader: &mut dyn Read) -> Result<Ct2Model, ConvertError> {
        let mut r = Reader { inner: reader };
        let version = r.u32()?;
        if version != 6 {
            return Err(ConvertError::NotCt2(format!(
                "binary version {version}, this converter reads version 6"
            )));
        }
        let spec = r.string()?;
        if spec != "WhisperSpec" {
            return Err(ConvertError::NotCt2(format!(
                "spec {spec:?}, expected WhisperSpec"
            )));
        }
        let _revision = r.u32()?;
        let count = r.u32()?;
        if count > MAX_VARIABLES {
            return Err(ConvertError::NotCt2(format!("{count} variables")));
        }
        let mut variables = BTreeMap::new();
        for _ in 0..count {
            let name = r.string()?;
            let rank = r.u8()?;
            if rank > MAX_RANK {
                return Err(ConvertError::BadVariable {
                    name,
                    detail: format!("rank {rank}"),
                });
            }
            let mut shape = Vec::with_capacity(rank as usize);
            for _ in 0..rank {
                shape.push(r.u32()? as usize);
            }
            let code = r.u8()?;
            let dtype = DType::from_code(code).ok_or_else(|| ConvertError::BadVariable {
                name: name.clone(),
                detail: format!("unknown data type {code}"),
            })?;
            let bytes = r.u32()? as usize;
            let elements: usize = shape.iter().product();
            if elements.checked_mul(dtype.size()) != Some(bytes) {
                return Err(ConvertError::BadVariable {
                    name,
                    detail: format!("{bytes} bytes for shape {shape:?} of {dtype:?}"),
                });
            }
            let data = r.bytes(bytes)?;
            variables.insert(name, Variable { shape, dtype, data });
        }
        // Aliases are optional at the end of the file.
        if let Ok(aliases) = r.u32() {
            for _ in 0..aliases.min(MAX_VARIABLES) {
                let alias = r.string()?;
                let target = r.string()?;
                if let Some(v) = variables.get(&target).cloned() {
                    variables.insert(alias, v);
                }
            }
        }
        Ok(Ct2Model { spec, variables })
    }

    pub fn get(&self, name: &str) -> Result<&Variable, ConvertError> {
        self.variables
            .get(name)
            .ok_or_else(|| ConvertError::MissingVariable(name.to_string()))
    }

    /// A scalar such as `encoder/num_heads`.
    pub fn scalar(&self, name: &str) -> Result<i64, ConvertError> {
        let v = self.get(name)?;
        match v.to_f32().as_slice() {
            [x] => Ok(*x as i64),
            _ => Err(ConvertError::BadVariable {
                name: name.into(),
                detail: format!("shape {:?}, expected a scalar", v.shape),
            }),
        }
    }

    /// Number of `prefix/layer_N` blocks.
    pub fn count_layers(&self, prefix: &str) -> usize {
        let start = format!("{prefix}/layer_");
        let mut n = 0;
        while self
            .variables
            .range(format!("{start}{n}/")..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&format!("{start}{n}/")))
        {
            n += 1;
        }
        n
    }
}

struct Reader<'a> {
    inner: &'a mut dyn Read,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, ConvertError> {
        // Read in bounded steps so a lying length cannot allocate more than
        // the file actually holds.
        let mut out = Vec::new();
        let taken = (&mut self.inner).take(n as u64).read_to_end(&mut out)?;
        if taken != n {
            return Err(ConvertError::NotCt2(format!(
                "file ends early: wanted {n} bytes, got {taken}"
            )));
        }
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ConvertError> {
        let mut b = [0u8; N];
        self.inner.read_exact(&mut b).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ConvertError::NotCt2("file ends early".into())
            } else {
                ConvertError::Io(e)
            }
        })?;
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8, ConvertError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, ConvertError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, ConvertError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, ConvertError> {
        let len = self.u16()? as usize;
        let mut bytes = self.bytes(len)?;
        if bytes.last() == Some(&0) {
            bytes.pop();
        }
        String::from_utf8(bytes).map_err(|_| ConvertError::NotCt2("a name is not UTF-8".into()))
    }
}
