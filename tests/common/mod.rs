//! Helpers shared by the integration tests: paths, the fixture manifest and
//! running the built binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn models() -> PathBuf {
    root().join("models")
}

pub fn fixtures() -> PathBuf {
    root().join("audio-fixtures")
}

/// Runs `switchboard` with `args`, with the project's models.
pub fn switchboard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("SWITCHBOARD_MODELS", models())
        .output()
        .expect("running the switchboard binary")
}

#[derive(serde::Deserialize, Debug, Clone)]
pub struct Fixture {
    pub file: String,
    pub voice: String,
    pub intent: Option<String>,
    pub destination: Option<String>,
    pub text: String,
}

#[derive(serde::Deserialize)]
struct Manifest {
    fixtures: Vec<Fixture>,
}

pub fn manifest() -> Vec<Fixture> {
    let text =
        std::fs::read_to_string(fixtures().join("manifest.yaml")).expect("reading the manifest");
    serde_yaml::from_str::<Manifest>(&text)
        .expect("parsing the manifest")
        .fixtures
}

pub fn fixture_path(f: &Fixture) -> PathBuf {
    fixtures().join(&f.file)
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Tests that run inference take this lock: whisper.cpp's threads spin
/// while they wait, so two decodings at once on a 2-core machine slow each
/// other down many times over. (Within one test binary; binaries run one
/// after another.)
pub fn cpu_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
