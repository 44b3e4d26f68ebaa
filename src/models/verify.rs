//! SHA-256 checks of model files, remembered per file by size and
//! modification time in a `.verified.json` beside it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

/// What can be wrong with a model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model {name:?} (see `switchboard models list`)")]
    Unknown { name: String },
    #[error("model file {path} is missing: run scripts/setup (or `switchboard models fetch`) to fetch it")]
    Missing { path: PathBuf },
    #[error("model file {path} has SHA-256 {actual}, expected {expected}: it is corrupt or not the pinned model; delete it and run scripts/setup")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("model file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model file {path} cannot be loaded: {detail}")]
    Load { path: PathBuf, detail: String },
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct Stamp {
    size: u64,
    modified_ns: u128,
    sha256: String,
}

const STAMPS: &str = ".verified.json";

/// Checks that `path` exists and has the SHA-256 `expected`.
pub fn verify(path: &Path, expected: &str) -> Result<(), ModelError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ModelError::Missing {
                path: path.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(ModelError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let stamps_path = path.with_file_name(STAMPS);
    let key = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut stamps: BTreeMap<String, Stamp> = fs::read(&stamps_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let current = |sha256: String| Stamp {
        size: meta.len(),
        modified_ns,
        sha256,
    };
    if stamps.get(&key) == Some(&current(expected.to_string())) {
        return Ok(());
    }
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(ModelError::HashMismatch {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    stamps.insert(key, current(actual));
    // The stamp is only a cache: failing to write it costs a re-hash next
    // time, nothing more. Write then rename so readers never see half.
    if let Ok(json) = serde_json::to_vec_pretty(&stamps) {
        let tmp = stamps_path.with_extension(format!("tmp{}", std::process::id()));
        if fs::write(&tmp, json).is_ok() {
            let _ = fs::rename(&tmp, &stamps_path);
        }
    }
    Ok(())
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_right_hash_and_notices_a_change() {
        let dir = std::env::temp_dir().join(format!("sb-verify-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.bin");
        fs::write(&file, b"hello").unwrap();
        let good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        verify(&file, good).unwrap();
        verify(&file, good).unwrap(); // from the stamp
        fs::write(&file, b"hello!").unwrap();
        assert!(matches!(
            verify(&file, good),
            Err(ModelError::HashMismatch { .. })
        ));
        assert!(matches!(
            verify(&dir.join("absent"), good),
            Err(ModelError::Missing { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
