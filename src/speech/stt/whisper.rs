//! Whisper (whisper.cpp through whisper-rs), tuned for short telephone
//! utterances:
//!
//! - the encoder window (`audio_ctx`) is sized to the audio plus a margin,
//!   instead of always encoding 30 s;
//! - decoding is greedy, with whisper.cpp's temperature fallback off;
//! - the token budget is proportional to the duration, so a loop can never
//!   run away;
//! - a loop (the utterance decoded again and again) is collapsed to its
//!   first copy; a budget used up without a loop triggers a second pass
//!   with a wider window;
//! - silence and noise never reach the model (a voice-activity gate), and
//!   text the model itself thinks is not speech is dropped;
//! - optionally, a larger model re-decodes utterances the first one was
//!   unsure of.
//!
//! One loaded model serves all threads; each call borrows a decoder state
//! from a small free list.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::cpu::CpuBudget;
use super::{Cancel, Escalation, SpeechToText, SttError, TranscribeOptions, Transcript};
use crate::audio::resample::resample;
use crate::audio::{SampleRate, Samples};
use crate::models::ModelError;
use crate::speech::text::{
    collapse_repeated_sentences, collapse_repetitions, cut_restart, is_repetitive,
};
use crate::speech::vad;

/// Tuning knobs, with defaults chosen for 8 kHz telephone speech.
#[derive(Clone, Debug)]
pub struct WhisperConfig {
    /// Threads per decoding.
    pub threads: usize,
    /// Encoder positions added to the audio's own (50 per second): 64
    /// (1.28 s). Against 128, on the fixtures through the support flow
    /// (`switchboard replay`), the same 76 of 84 routed, and on the
    /// turns as the live agent cuts them the same 68 of 80, with
    /// recognition p50 161 ms instead of 193 and p95 464 instead of 555
    /// (base's second opinion gains most). 32 routed one fewer and made
    /// a sentence of pink noise.
    pub window_margin: usize,
    /// Smallest encoder window, in positions.
    pub min_window: usize,
    /// Token budget: this many per second of audio, plus `tokens_base`.
    pub tokens_per_second: f32,
    pub tokens_base: usize,
    /// Below this much voice, the audio is treated as silence.
    pub min_voice: Duration,
    /// Text is dropped when the no-speech probability exceeds this and the
    /// confidence is below `min_confidence`.
    pub no_speech_threshold: f32,
    pub min_confidence: f32,
    /// Text below this confidence is dropped whatever the no-speech
    /// probability: Whisper's classic hallucinations on noise ("You",
    /// "Thank you.") come out at a few percent.
    pub hallucination_confidence: f32,
    /// Language to force (`"en"`), or `None` to detect (multilingual only).
    pub language: Option<String>,
    /// Below this confidence, the escalation model (if any) decodes again.
    pub escalate_below: f32,
    /// The languages (ISO 639-1) a multilingual model without a forced
    /// `language` chooses among when it identifies the caller's; empty:
    /// all of Whisper's. A call flow that routes on English and Spanish
    /// gains nothing from Thai, which base took a synthetic British voice
    /// for, then spent 4.8 s decoding Thai.
    pub languages: Vec<String>,
}

impl Default for WhisperConfig {
    fn default() -> Self {
        WhisperConfig {
            threads: 2,
            window_margin: 64,
            min_window: 128,
            tokens_per_second: 5.0,
            tokens_base: 6,
            min_voice: Duration::from_millis(150),
            no_speech_threshold: 0.6,
            min_confidence: 0.5,
            hallucination_confidence: 0.15,
            language: None,
            // Measured on the fixtures: tiny.en alone 8.3% WER, p50 231 ms;
            // re-decoding below 0.8 with base: 6.6% WER, p50 228 ms, at the
            // cost of ~0.6 s on the one utterance in six it re-decodes.
            escalate_below: 0.8,
            languages: Vec::new(),
        }
    }
}

/// A loaded Whisper model.
pub struct WhisperStt {
    context: WhisperContext,
    /// Decoder states not in use; one is created when none is free.
    states: Mutex<Vec<WhisperState>>,
    /// Decoder states created so far, the one made at load included.
    states_created: AtomicUsize,
    config: WhisperConfig,
    name: String,
    multilingual: bool,
    /// A larger model for utterances this one is unsure of.
    escalation: Option<Box<WhisperStt>>,
}

/// One decoding pass's raw result.
struct Pass {
    text: String,
    tokens: usize,
    confidence: f32,
    no_speech: f32,
    language: Option<String>,
}

impl WhisperStt {
    /// Loads a ggml model file. The caller checks its hash first
    /// ([`crate::models::verified_path`]).
    pub fn load(path: &Path, config: WhisperConfig) -> Result<WhisperStt, ModelError> {
        whisper_rs::install_logging_hooks();
        let load_err = |detail: String| ModelError::Load {
            path: path.to_path_buf(),
            detail,
        };
        if !path.exists() {
            return Err(ModelError::Missing {
                path: path.to_path_buf(),
            });
        }
        let path_str = path
            .to_str()
            .ok_or_else(|| load_err("path is not UTF-8".into()))?;
        let context =
            WhisperContext::new_with_params(path_str, WhisperContextParameters::default())
                .map_err(|e| load_err(format!("whisper.cpp could not load it ({e})")))?;
        let multilingual = context.is_multilingual();
        let first = context
            .create_state()
            .map_err(|e| load_err(format!("could not create a decoder state ({e})")))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().trim_start_matches("ggml-").to_string())
            .unwrap_or_default();
        Ok(WhisperStt {
            context,
            states: Mutex::new(vec![first]),
            states_created: AtomicUsize::new(1),
            config,
            name,
            multilingual,
            escalation: None,
        })
    }

    /// Adds a model that re-decodes utterances this one is unsure of.
    pub fn with_escalation(mut self, model: WhisperStt) -> Self {
        self.escalation = Some(Box::new(model));
        self
    }

    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    /// Whether some of its transcripts come with an identified language:
    /// this model or its escalation is multilingual and not forced to one
    /// language.
    pub fn identifies_language(&self) -> bool {
        (self.multilingual && self.config.language.is_none())
            || self
                .escalation
                .as_ref()
                .is_some_and(|e| e.identifies_language())
    }

    /// How many decoder states this model has created (one at load, then
    /// one for each decode that found none free). Each is tens of MB.
    pub fn decoder_states(&self) -> usize {
        self.states_created.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &WhisperConfig {
        &self.config
    }

    fn window_for(&self, samples: usize) -> usize {
        let positions = samples.div_ceil(320); // 16 kHz, 2 mel frames a position
        (positions + self.config.window_margin).clamp(self.config.min_window, 1500)
    }

    fn token_budget(&self, audio: Duration) -> usize {
        (audio.as_secs_f32() * self.config.tokens_per_second).ceil() as usize
            + self.config.tokens_base
    }

    fn decode(
        &self,
        pcm: &[f32],
        window: usize,
        budget: usize,
        options: &TranscribeOptions,
    ) -> Result<Pass, SttError> {
        // Before a state is taken: one taken and dropped is one to create
        // again.
        if cancelled(options) {
            return Err(SttError::Cancelled);
        }
        let mut state = match self.states.lock().ok().and_then(|mut s| s.pop()) {
            Some(s) => s,
            None => {
                let state = self
                    .context
                    .create_state()
                    .map_err(|e| SttError::Inference(format!("creating a decoder state: {e}")))?;
                self.states_created.fetch_add(1, Ordering::Relaxed);
                state
            }
        };
        let cores = CpuBudget::global().take(self.config.threads);
        let threads = cores.threads;
        let params = |language: Option<&'static str>| {
            let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
            params.set_n_threads(threads as i32);
            if let Some(cancel) = &options.cancel {
                // whisper-rs 0.16's `set_abort_callback_safe` hands its
                // trampoline a pointer of another type than it reads (a
                // boxed trait object read as the closure), so the flag is
                // passed raw. SAFETY: `aborted` reads an AtomicBool through
                // the pointer; `options`, which owns the flag, outlives
                // `full`.
                unsafe {
                    params.set_abort_callback(Some(aborted));
                    params.set_abort_callback_user_data(cancel.flag_ptr());
                }
            }
            params.set_translate(false);
            params.set_no_context(true);
            params.set_no_timestamps(true);
            params.set_single_segment(true);
            params.set_print_special(false);
            params.set_print_progress(false);
            params.set_print_realtime(false);
            params.set_print_timestamps(false);
            params.set_suppress_blank(true);
            params.set_suppress_nst(true);
            params.set_temperature(0.0);
            params.set_temperature_inc(0.0);
            params.set_max_tokens(budget as i32);
            params.set_audio_ctx(window as i32);
            params.set_language(language);
            params.set_detect_language(false);
            if let Some(prompt) = options.prompt.as_deref() {
                params.set_initial_prompt(prompt);
            }
            params
        };
        // whisper.cpp identifies the language before it applies `audio_ctx`:
        // on a fresh decoder state it encoded the full 30 s window (3 s with
        // base on 2 cores), later the window of the state's previous
        // utterance. So the utterance is decoded as English first (encoding
        // its own window), the language read from the decoder's first step
        // on that encoding, and decoded again only if it is another one.
        let forced: Option<&'static str> = if self.multilingual {
            // whisper.cpp's own copy of the name, which lives forever.
            self.config
                .language
                .as_deref()
                .and_then(whisper_rs::get_lang_id)
                .and_then(whisper_rs::get_lang_str)
        } else {
            Some("en")
        };
        let mut result = state.full(params(forced.or(Some("en"))), pcm);
        let mut language = forced.map(str::to_string);
        if forced.is_none() && result.is_ok() && !cancelled(options) {
            let heard =
                identify_language(&self.context, &mut state, threads, &self.config.languages);
            if let Some(other) = heard.filter(|l| *l != "en") {
                result = state.full(params(Some(other)), pcm);
            }
            language = heard.map(str::to_string);
        }
        drop(cores);
        // A cancelled decode leaves the state reusable: whisper.cpp checks
        // the abort flag only between whole graph computations (after the
        // encoder, after each decoder step), resets its scheduler when one
        // fails, and clears the results and the KV cache when the next
        // decode starts. Keeping it matters: a call's recognition is
        // cancelled at most pauses between words (`SpeechResumed`), and a
        // fresh state costs its allocation and tens of MB of churn.
        let pass = if cancelled(options) {
            Err(SttError::Cancelled)
        } else {
            result
                .map_err(|e| SttError::Inference(e.to_string()))
                .and_then(|()| Self::read_pass(&state))
                .map(|mut pass| {
                    pass.language = language;
                    pass
                })
        };
        if let Ok(mut free) = self.states.lock() {
            free.push(state);
        }
        pass
    }

    fn read_pass(state: &WhisperState) -> Result<Pass, SttError> {
        let mut text = String::new();
        let mut tokens = 0usize;
        let mut probability_sum = 0.0f32;
        let mut no_speech = 0.0f32;
        for segment in state.as_iter() {
            no_speech = no_speech.max(segment.no_speech_probability());
            if let Ok(t) = segment.to_str_lossy() {
                text.push_str(&t);
            }
            for i in 0..segment.n_tokens() {
                if let Some(token) = segment.get_token(i) {
                    let data = token.token_data();
                    // Special tokens (timestamps, markers) sort above EOT.
                    if token
                        .to_str_lossy()
                        .map(|s| s.starts_with("[_") || s.starts_with("<|"))
                        .unwrap_or(true)
                    {
                        continue;
                    }
                    tokens += 1;
                    probability_sum += data.p;
                }
            }
        }
        let language =
            whisper_rs::get_lang_str(state.full_lang_id_from_state()).map(str::to_string);
        Ok(Pass {
            text: text.trim().to_string(),
            tokens,
            confidence: if tokens > 0 {
                probability_sum / tokens as f32
            } else {
                0.0
            },
            no_speech,
            language,
        })
    }
}

fn cancelled(options: &TranscribeOptions) -> bool {
    options.cancel.as_ref().is_some_and(Cancel::is_cancelled)
}

/// The most likely language of the audio `state` has just encoded, among
/// `candidates` (all if empty), as whisper.cpp's own identification does
/// it: the start-of-transcript token through the decoder, then the best of
/// the language tokens. `None` if the decoder step fails.
fn identify_language(
    context: &WhisperContext,
    state: &mut WhisperState,
    threads: usize,
    candidates: &[String],
) -> Option<&'static str> {
    state.decode(&[context.token_sot()], 0, threads).ok()?;
    let logits = state.get_logits().ok()?;
    let ids: Vec<i32> = if candidates.is_empty() {
        (0..=whisper_rs::get_lang_max_id()).collect()
    } else {
        candidates
            .iter()
            .filter_map(|l| whisper_rs::get_lang_id(l))
            .collect()
    };
    ids.into_iter()
        .filter_map(|id| {
            let token = usize::try_from(context.token_lang(id)).ok()?;
            Some((id, *logits.get(token)?))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .and_then(|(id, _)| whisper_rs::get_lang_str(id))
}

/// whisper.cpp's abort callback: true once the request was abandoned.
unsafe extern "C" fn aborted(flag: *mut std::ffi::c_void) -> bool {
    // SAFETY: the pointer is `Cancel::flag_ptr` of a live request.
    unsafe {
        (*(flag as *const std::sync::atomic::AtomicBool)).load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl WhisperStt {
    /// Decodes 16 kHz audio that passed the voice gate, with the loop and
    /// hallucination guards and the escalation; returns the chosen pass,
    /// the number of decoding passes, the model that produced it, and
    /// whether a deferred escalation is advised.
    fn recognise(
        &self,
        audio16: &Samples,
        options: &TranscribeOptions,
    ) -> Result<(Pass, u8, String, bool), SttError> {
        let budget = self.token_budget(audio16.duration());
        let window = self.window_for(audio16.data.len());
        let mut pass = self.decode(&audio16.data, window, budget, options)?;
        let mut passes = 1;
        // A short window makes Whisper loop: the utterance, then the same
        // again until the budget runs out. The first copy is the answer, so
        // a loop is collapsed rather than decoded again, even one the
        // budget stopped early in its second copy. Only a budget used up
        // without a loop (text cut short) is worth a wider window.
        let mut looped = is_repetitive(&pass.text);
        if pass.tokens >= budget {
            if let Some(first_copy) = cut_restart(&pass.text) {
                pass.text = first_copy;
                looped = true;
            }
        }
        if !looped && pass.tokens >= budget && window < 1500 {
            let wider = (window * 2 + 256).min(1500);
            let second = self.decode(&audio16.data, wider, budget + budget / 2, options)?;
            passes += 1;
            if second.tokens < budget + budget / 2 || second.confidence > pass.confidence {
                pass = second;
            }
        }
        if is_repetitive(&pass.text) {
            pass.text = collapse_repetitions(&pass.text);
        }
        pass.text = collapse_repeated_sentences(&pass.text);
        let not_speech = pass.no_speech > self.config.no_speech_threshold
            && pass.confidence < self.config.min_confidence;
        let has_words = pass.text.chars().any(char::is_alphanumeric);
        if not_speech || !has_words || pass.confidence < self.config.hallucination_confidence {
            pass.text.clear();
        }
        let mut model = self.name.clone();
        let mut second_opinion = false;
        if let Some(bigger) = &self.escalation {
            if !pass.text.is_empty() && pass.confidence < self.config.escalate_below {
                if options.escalation == Escalation::Defer {
                    second_opinion = true;
                } else {
                    let (better, better_passes, better_model, _) =
                        bigger.recognise(audio16, options)?;
                    passes += better_passes;
                    if better.confidence >= pass.confidence {
                        pass = better;
                        model = better_model;
                    }
                }
            }
        }
        Ok((pass, passes, model, second_opinion))
    }
}

impl SpeechToText for WhisperStt {
    fn transcribe(
        &self,
        audio: &Samples,
        options: &TranscribeOptions,
    ) -> Result<Transcript, SttError> {
        let started = Instant::now();
        let audio16 = resample(audio, SampleRate::SPEECH_RECOGNITION);
        let mut transcript = Transcript {
            audio: audio16.duration(),
            no_speech_probability: 1.0,
            ..Default::default()
        };
        // Silence and noise: no model call, so no hallucinated text. The
        // gate runs once, not again for the escalation model.
        let model = match (&self.escalation, options.escalation) {
            (Some(bigger), Escalation::Only) => bigger.as_ref(),
            _ => self,
        };
        transcript.model = model.name.clone();
        if vad::voiced_duration(&audio16) >= self.config.min_voice {
            let (pass, passes, model, second_opinion) = model.recognise(&audio16, options)?;
            transcript.second_opinion = second_opinion;
            transcript.text = pass.text;
            transcript.language = pass.language;
            transcript.no_speech_probability = pass.no_speech;
            transcript.confidence = pass.confidence;
            transcript.passes = passes;
            transcript.model = model;
        }
        transcript.elapsed = started.elapsed();
        Ok(transcript)
    }
}
