//! The agent's voice: sentences synthesised once and kept as 8 kHz clips.
//!
//! Most of what an agent says is written in the flow (the greeting,
//! prompts, reprompts, the confirmation for each destination), so those
//! sentences are synthesised when the flow loads and every call plays them
//! without waiting for the voice; anything else (an LLM's reply) is
//! synthesised on demand, a sentence at a time, and kept too, up to a
//! bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::audio::resample::resample;
use crate::audio::SampleRate;
use crate::flow::model::{Flow, Step};
use crate::flow::routing::confirmation;
use crate::media::session::Clip;
use crate::speech::text::sentences;
use crate::speech::tts::{TextToSpeech, TtsError};

/// Sentences kept beyond those of the flows.
const MAX_EXTRA: usize = 2_000;

/// Synthesised sentences, shared by every call.
pub struct Phrases {
    tts: Arc<dyn TextToSpeech>,
    cache: Mutex<HashMap<String, Clip>>,
}

impl Phrases {
    pub fn new(tts: Arc<dyn TextToSpeech>) -> Phrases {
        Phrases {
            tts,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The clip for `sentence` if it has been synthesised.
    pub fn cached(&self, sentence: &str) -> Option<Clip> {
        self.cache.lock().ok()?.get(sentence).cloned()
    }

    /// The clip for `sentence`, synthesising it if needed (blocking), and
    /// the time synthesis took (zero from the cache).
    pub fn clip(&self, sentence: &str) -> Result<(Clip, Duration), TtsError> {
        if let Some(clip) = self.cached(sentence) {
            return Ok((clip, Duration::ZERO));
        }
        let started = Instant::now();
        let audio = self.tts.synthesize(sentence)?;
        let clip = Clip::new(&resample(&audio, SampleRate::TELEPHONE))
            .map_err(|e| TtsError::Synthesis(e.to_string()))?;
        let elapsed = started.elapsed();
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() < MAX_EXTRA {
                cache.insert(sentence.to_string(), clip.clone());
            }
        }
        Ok((clip, elapsed))
    }

    /// Synthesises every sentence `flow` can say that is known in advance.
    /// Returns how many sentences it has.
    pub fn prepare(
        &self,
        flow: &Flow,
        extra: &[&str],
        mut progress: impl FnMut(usize, usize),
    ) -> Result<usize, TtsError> {
        let all: Vec<String> = flow_sentences(flow)
            .into_iter()
            .chain(extra.iter().flat_map(|t| sentences(t)))
            .collect();
        for (done, sentence) in all.iter().enumerate() {
            self.clip(sentence)?;
            progress(done + 1, all.len());
        }
        Ok(all.len())
    }
}

/// The sentences written in a flow: greeting, node prompts and `say`
/// steps, reprompts, and the confirmation for every destination.
pub fn flow_sentences(flow: &Flow) -> Vec<String> {
    let mut texts: Vec<String> = vec![flow.greeting.clone()];
    let steps = |list: &[Step], texts: &mut Vec<String>| {
        for step in list {
            if let Step::Say(text) = step {
                texts.push(text.clone());
            }
        }
    };
    for reprompt in [&flow.no_input, &flow.no_match].into_iter().flatten() {
        texts.extend(reprompt.say.iter().cloned());
        steps(&reprompt.then.0, &mut texts);
    }
    for (_, node) in flow.nodes.iter() {
        texts.extend(node.say.iter().cloned());
        for reprompt in [&node.no_input, &node.no_match].into_iter().flatten() {
            texts.extend(reprompt.say.iter().cloned());
            steps(&reprompt.then.0, &mut texts);
        }
        for intent in &node.intents {
            steps(&intent.then.0, &mut texts);
        }
        for (_, keyed) in node.keys.iter() {
            steps(&keyed.0, &mut texts);
        }
        if let Some(then) = &node.then {
            steps(&then.0, &mut texts);
        }
    }
    for name in flow.destinations.names() {
        texts.extend(confirmation(flow, name));
    }
    let mut out: Vec<String> = Vec::new();
    for text in texts {
        for sentence in sentences(&text) {
            if !out.contains(&sentence) {
                out.push(sentence);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::load::load_str;

    #[test]
    fn every_written_sentence_is_found_once() {
        let flow = load_str(
            "t.yaml",
            "\
name: t
greeting: Hello. How can I help?
confirm: Putting you through to {destination}.
start: main
nodes:
  main:
    intents:
      - name: billing
        description: Bills.
        examples: [my bill]
        then: [say: One moment., transfer: billing]
    no_match: {limit: 1, say: [Sorry?], then: [say: Hello., hangup]}
destinations:
  billing: {label: our billing team, extension: \"201\"}
",
        )
        .unwrap_or_else(|d| panic!("{d:#?}"));
        assert_eq!(
            flow_sentences(&flow),
            [
                "Hello.",
                "How can I help?",
                "Sorry?",
                "One moment.",
                "Putting you through to our billing team."
            ]
        );
    }
}
