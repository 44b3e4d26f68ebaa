//! Choosing a flow's intent detector: embedded, LLM, or hybrid.
//!
//! A flow names the kind it wants (or takes the default: hybrid when an LLM
//! is configured, embedded otherwise, [`DetectorKind::default_for`]) and
//! [`build_detector`] loads it once, at start-up. The result is shared by
//! every call; `detect` is blocking, so async code runs it with
//! `tokio::task::spawn_blocking`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use super::{
    EmbeddedClassifier, EmbeddedConfig, HybridDetector, IntentDetector, IntentError, LlmConfig,
    LlmDetector, LlmError,
};

/// Which detector a flow uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    /// The sentence-embedding classifier alone: local, ~10 ms a turn.
    Embedded,
    /// The LLM alone, for every turn.
    Llm,
    /// The embedded classifier, and the LLM where it is unsure.
    Hybrid,
}

impl DetectorKind {
    /// Hybrid when an LLM is configured, embedded otherwise.
    pub fn default_for(llm_configured: bool) -> Self {
        if llm_configured {
            Self::Hybrid
        } else {
            Self::Embedded
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Llm => "llm",
            Self::Hybrid => "hybrid",
        }
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A detector name that is none of `embedded`, `llm`, `hybrid`.
#[derive(Debug, thiserror::Error)]
#[error("unknown intent detector {0:?}: use embedded, llm or hybrid")]
pub struct UnknownDetectorKind(pub String);

impl FromStr for DetectorKind {
    type Err = UnknownDetectorKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "embedded" => Ok(Self::Embedded),
            "llm" => Ok(Self::Llm),
            "hybrid" => Ok(Self::Hybrid),
            _ => Err(UnknownDetectorKind(s.to_string())),
        }
    }
}

/// What [`build_detector`] builds.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectorConfig {
    pub kind: DetectorKind,
    /// Required for [`DetectorKind::Llm`] and [`DetectorKind::Hybrid`];
    /// ignored by [`DetectorKind::Embedded`].
    pub llm: Option<LlmConfig>,
}

impl DetectorConfig {
    /// The default kind for `llm` ([`DetectorKind::default_for`]).
    pub fn default_for(llm: Option<LlmConfig>) -> Self {
        Self {
            kind: DetectorKind::default_for(llm.is_some()),
            llm,
        }
    }
}

/// Builds the detector `config` asks for, loading the sentence model from
/// `models` (hash-checked) for the embedded and hybrid kinds. Blocking.
/// Contacts no LLM: a server that is down shows on the first turn (and in
/// the hybrid detector only costs the LLM's help).
pub fn build_detector(
    config: &DetectorConfig,
    models: &Path,
) -> Result<Arc<dyn IntentDetector + Send + Sync>, IntentError> {
    let llm = |detector: &'static str| -> Result<LlmDetector, IntentError> {
        let llm_config = config
            .llm
            .clone()
            .ok_or(LlmError::NotConfigured { detector })?;
        Ok(LlmDetector::new(llm_config)?)
    };
    Ok(match config.kind {
        DetectorKind::Embedded => {
            Arc::new(EmbeddedClassifier::load(models, EmbeddedConfig::default())?)
        }
        DetectorKind::Llm => Arc::new(llm("llm")?),
        DetectorKind::Hybrid => {
            // The LLM first: a missing key fails fast, before the model load.
            let llm = llm("hybrid")?;
            let embedded = EmbeddedClassifier::load(models, EmbeddedConfig::default())?;
            Arc::new(HybridDetector::new(embedded, llm))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_print() {
        for kind in [
            DetectorKind::Embedded,
            DetectorKind::Llm,
            DetectorKind::Hybrid,
        ] {
            assert_eq!(kind.to_string().parse::<DetectorKind>().unwrap(), kind);
        }
        assert_eq!(" LLM ".parse::<DetectorKind>().unwrap(), DetectorKind::Llm);
        assert_eq!(
            "gpt".parse::<DetectorKind>().unwrap_err().to_string(),
            "unknown intent detector \"gpt\": use embedded, llm or hybrid"
        );
        let kind: DetectorKind = serde_yaml::from_str("hybrid").unwrap();
        assert_eq!(kind, DetectorKind::Hybrid);
    }

    #[test]
    fn hybrid_is_the_default_with_an_llm() {
        let llm = LlmConfig::new("http://127.0.0.1:1/v1", "local");
        assert_eq!(
            DetectorConfig::default_for(Some(llm)).kind,
            DetectorKind::Hybrid
        );
        assert_eq!(
            DetectorConfig::default_for(None).kind,
            DetectorKind::Embedded
        );
    }

    #[test]
    fn an_llm_kind_without_an_llm_is_an_error() {
        for kind in [DetectorKind::Llm, DetectorKind::Hybrid] {
            let config = DetectorConfig { kind, llm: None };
            let error = build_detector(&config, Path::new("/nonexistent"))
                .err()
                .unwrap();
            assert!(
                matches!(error, IntentError::Llm(LlmError::NotConfigured { detector }) if detector == kind.as_str()),
                "{error}"
            );
        }
    }

    #[test]
    fn an_llm_detector_builds_without_a_server() {
        let config = DetectorConfig {
            kind: DetectorKind::Llm,
            llm: Some(LlmConfig::new("http://127.0.0.1:1/v1", "local")),
        };
        assert!(build_detector(&config, Path::new("/nonexistent")).is_ok());
    }
}
