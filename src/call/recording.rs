//! `switchboard run --record-dir`: what a caller said in a call (the audio
//! received, 8 kHz), written to `DIR/<Call-ID>.wav` when the call ends, and
//! with a flow each of the caller's turns as the agent transcribed it
//! (lead-in, speech, trailing pad) to `DIR/<Call-ID>-turn<N>.wav`: to hear
//! what the agent heard, or to replay a real caller's turn against a
//! changed flow (`switchboard replay`).

use std::path::{Path, PathBuf};

use super::log::call_log;
use crate::audio::wav::{write_file, WavEncoding};
use crate::audio::{SampleRate, Samples};

/// The most kept of one call: 10 minutes at 8 kHz (9.6 MB as 16-bit).
const LIMIT: usize = 8_000 * 600;

/// The caller's audio of one call, when recording.
pub struct Recording {
    dir: PathBuf,
    audio: Samples,
    turns: u32,
}

impl Recording {
    /// A recording for `dir`, or none without one.
    pub fn start(dir: Option<&Path>) -> Option<Recording> {
        dir.map(|dir| Recording {
            dir: dir.to_path_buf(),
            audio: Samples::new(SampleRate::TELEPHONE, Vec::new()),
            turns: 0,
        })
    }

    /// Writes one of the caller's turns, off the async runtime; logs where,
    /// or why not.
    pub fn turn(&mut self, call_id: &str, audio: &Samples) {
        self.turns += 1;
        let path = self
            .dir
            .join(format!("{}-turn{}.wav", file_name(call_id), self.turns));
        let audio = audio.clone();
        let call_id = call_id.to_string();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = write_file(&path, &audio, WavEncoding::Pcm16) {
                call_log(
                    &call_id,
                    format_args!("turn recording not written: {error}"),
                );
            }
        });
    }

    /// Appends a received frame, up to the limit.
    pub fn push(&mut self, frame: &Samples) {
        if self.audio.data.len() < LIMIT {
            self.audio.extend(frame);
        }
    }

    /// Writes the file and logs where, or why not.
    pub fn finish(self, call_id: &str) {
        let path = self.dir.join(format!("{}.wav", file_name(call_id)));
        match write_file(&path, &self.audio, WavEncoding::Pcm16) {
            Ok(()) => call_log(
                call_id,
                format_args!(
                    "recorded {:.1} s to {}",
                    self.audio.duration().as_secs_f32(),
                    path.display()
                ),
            ),
            Err(error) => call_log(call_id, format_args!("recording not written: {error}")),
        }
    }
}

/// A Call-ID as a file name: anything but letters, digits, `-` and `.`
/// becomes `_` (a Call-ID may hold `/` or `@`).
fn file_name(call_id: &str) -> String {
    call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_id_is_a_safe_file_name() {
        assert_eq!(file_name("a/b@c.d"), "a_b_c.d");
        assert_eq!(file_name("../x"), ".._x");
    }

    #[test]
    fn a_recording_is_written_where_asked() {
        let dir = std::env::temp_dir().join(format!("sw-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut recording = Recording::start(Some(&dir)).unwrap();
        recording.push(&Samples::new(SampleRate::TELEPHONE, vec![0.25; 160]));
        recording.push(&Samples::new(SampleRate::TELEPHONE, vec![-0.25; 160]));
        recording.finish("call/1@host");
        let audio = crate::audio::decode::read_file(&dir.join("call_1_host.wav")).unwrap();
        assert_eq!(audio.data.len(), 320);
        assert_eq!(audio.rate, SampleRate::TELEPHONE);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
