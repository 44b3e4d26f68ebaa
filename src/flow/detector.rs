//! From a flow to the intent layer: which detector it asked for
//! ([`detector_config`]) and the intents each node offers
//! ([`intent_specs`]).
//!
//! The flow's `intent` section is its own type ([`IntentDetection`]) so the
//! file format and its checks do not follow every change of the intent
//! layer; this is the one place that maps it.

use std::time::Duration;

use super::model::{Detector, Flow, IntentDetection, Node};
use crate::intent::{DetectorConfig, DetectorKind, IntentSpec, LlmConfig};

/// The detector configuration a flow asks for: its `intent.detector`, or
/// by default hybrid when an LLM is configured and embedded otherwise.
/// The LLM is told the flow's `persona` and `instructions`.
pub fn detector_config(flow: &Flow) -> DetectorConfig {
    let section = flow.intent.clone().unwrap_or_default();
    let IntentDetection { detector, llm } = section;
    let llm = llm.map(|llm| LlmConfig {
        base_url: llm.base_url,
        model: llm.model,
        api_key_env: llm.api_key_env,
        timeout: Duration::from_millis(llm.timeout_ms),
        max_tokens: llm.max_tokens,
        persona: flow.persona.clone(),
        instructions: flow.instructions.clone(),
    });
    let kind = match detector {
        Some(Detector::Embedded) => DetectorKind::Embedded,
        Some(Detector::Llm) => DetectorKind::Llm,
        Some(Detector::Hybrid) => DetectorKind::Hybrid,
        None => DetectorKind::default_for(llm.is_some()),
    };
    DetectorConfig { kind, llm }
}

/// The intents a node offers, as the detectors take them; empty for a node
/// that listens for keys only (or does not listen).
pub fn intent_specs(node: &Node) -> Vec<IntentSpec> {
    node.intents
        .iter()
        .map(|intent| IntentSpec {
            name: intent.name.clone(),
            description: intent.description.trim().to_string(),
            examples: intent.examples.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::load::load_str;

    const FLOW: &str = "\
name: t
persona: You are Ava.
greeting: Hello.
start: main
nodes:
  main:
    intents:
      - name: billing
        description: >
          Bills and payments.
        examples: [my bill is wrong]
        then: [hangup]
";

    #[test]
    fn embedded_is_the_default_without_an_llm() {
        let flow = load_str("t.yaml", FLOW).unwrap();
        let config = detector_config(&flow);
        assert_eq!(config.kind, DetectorKind::Embedded);
        assert!(config.llm.is_none());
    }

    #[test]
    fn hybrid_is_the_default_with_an_llm_and_the_llm_gets_the_persona() {
        let text = format!(
            "{FLOW}intent:\n  llm: {{base_url: \"http://127.0.0.1:8080/v1\", model: local, timeout_ms: 1500}}\n"
        );
        let flow = load_str("t.yaml", &text).unwrap_or_else(|d| panic!("{d:#?}"));
        let config = detector_config(&flow);
        assert_eq!(config.kind, DetectorKind::Hybrid);
        let llm = config.llm.unwrap();
        assert_eq!(llm.base_url, "http://127.0.0.1:8080/v1");
        assert_eq!(llm.timeout, Duration::from_millis(1500));
        assert_eq!(llm.max_tokens, 160);
        assert_eq!(llm.api_key_env, None);
        assert_eq!(llm.persona.as_deref(), Some("You are Ava."));
    }

    #[test]
    fn an_explicit_detector_wins() {
        let text = format!(
            "{FLOW}intent:\n  detector: embedded\n  llm: {{base_url: \"https://api.example.com/v1\", model: m, api_key_env: LLM_KEY}}\n"
        );
        let flow = load_str("t.yaml", &text).unwrap_or_else(|d| panic!("{d:#?}"));
        let config = detector_config(&flow);
        assert_eq!(config.kind, DetectorKind::Embedded);
        assert_eq!(config.llm.unwrap().api_key_env.as_deref(), Some("LLM_KEY"));
    }

    #[test]
    fn the_section_is_checked() {
        let text = format!(
            "{FLOW}intent:\n  detector: llm\n  llm: {{base_url: localhost:8080, model: \" \", api_key_env: sk-abc123, timeout_ms: 0, max_tokens: 10}}\n"
        );
        let shown: Vec<String> = load_str("t.yaml", &text)
            .unwrap_err()
            .iter()
            .map(|d| d.message.clone())
            .collect();
        assert_eq!(
            shown,
            [
                "invalid LLM URL \"localhost:8080\"",
                "model is empty",
                "invalid environment variable name \"sk-abc123\"",
                "LLM timeout must be between 1 and 60000 ms",
                "max_tokens must be at least 64",
            ]
        );
        let text = format!("{FLOW}intent: {{detector: hybrid}}\n");
        let shown: Vec<String> = load_str("t.yaml", &text)
            .unwrap_err()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            shown,
            ["t.yaml:13:20: detector hybrid needs an llm section\n  hint: add llm: {base_url: ..., model: ...}, or use detector: embedded"]
        );
    }

    #[test]
    fn specs_follow_the_node() {
        let flow = load_str("t.yaml", FLOW).unwrap();
        let specs = intent_specs(flow.nodes.get("main").unwrap());
        assert_eq!(
            specs,
            [IntentSpec::new(
                "billing",
                "Bills and payments.",
                &["my bill is wrong"]
            )]
        );
    }
}
