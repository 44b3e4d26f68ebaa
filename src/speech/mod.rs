//! Speech in and out.
//!
//! - [`stt`]: the [`SpeechToText`](stt::SpeechToText) trait, Whisper behind
//!   it, and [`SttPool`](stt::SttPool), the bounded worker pool through
//!   which async code reaches it.
//! - [`tts`]: the [`TextToSpeech`](tts::TextToSpeech) trait and Piper
//!   behind it, yielding audio one sentence at a time.
//! - [`vad`]: voice activity scores (earshot), used to keep silence and
//!   noise away from the recogniser.
//! - [`text`]: sentence splitting, repetition detection and word error rate.

pub mod stt;
pub mod text;
pub mod tts;
pub mod vad;
