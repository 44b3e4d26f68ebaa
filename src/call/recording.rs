//! `switchboard run --record-dir`: what a caller said in a call (the audio
//! received, 8 kHz), written to `DIR/<Call-ID>.wav` when the call ends, and
//! with a flow each of the caller's turns as the agent transcribed it
//! (lead-in, speech, and the trailing pad, or as much of it as the
//! recognition that stood for the turn had: see
//! [`crate::call::turn::EndedTurn::standing_partial`]) to
//! `DIR/<Call-ID>-turn<N>.wav`: to hear exactly what the agent heard, or to
//! replay a real caller's turn against a changed flow (`switchboard
//! replay`).

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

    /// Writes one of the caller's turns, off the async runtime, without
    /// waiting; logs only a failure (the call's own file is logged).
    pub fn turn(&mut self, call_id: &str, audio: Samples) {
        self.turns += 1;
        let path = self
            .dir
            .join(format!("{}-turn{}.wav", file_name(call_id), self.turns));
        let call_id = call_id.to_string();
        tokio::task::spawn_blocking(move || save(&call_id, &path, &audio, false));
    }

    /// Appends a received frame, up to the limit.
    pub fn push(&mut self, frame: &Samples) {
        if self.audio.data.len() < LIMIT {
            self.audio.extend(frame);
        }
    }

    /// Writes the whole call, off the async runtime (up to 9.6 MB), and
    /// logs where, or why not.
    pub async fn finish(self, call_id: &str) {
        let path = self.dir.join(format!("{}.wav", file_name(call_id)));
        let call_id = call_id.to_string();
        let audio = self.audio;
        let _ = tokio::task::spawn_blocking(move || save(&call_id, &path, &audio, true)).await;
    }
}

/// Writes `audio` to `path` as 16-bit WAV; logs a failure, and a success
/// when `log_success`.
fn save(call_id: &str, path: &Path, audio: &Samples, log_success: bool) {
    match write_file(path, audio, WavEncoding::Pcm16) {
        Ok(()) if log_success => call_log(
            call_id,
            format_args!(
                "recorded {:.1} s to {}",
                audio.duration().as_secs_f32(),
                path.display()
            ),
        ),
        Ok(()) => {}
        Err(error) => call_log(
            call_id,
            format_args!("recording {} not written: {error}", path.display()),
        ),
    }
}

/// A Call-ID as a file name, the stem of a call's files: anything but
/// letters, digits, `-` and `.` becomes `_` (a Call-ID may hold `/` or
/// `@`).
pub fn file_name(call_id: &str) -> String {
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

    #[tokio::test]
    async fn a_recording_is_written_where_asked() {
        let dir = std::env::temp_dir().join(format!("sw-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut recording = Recording::start(Some(&dir)).unwrap();
        recording.push(&Samples::new(SampleRate::TELEPHONE, vec![0.25; 160]));
        recording.push(&Samples::new(SampleRate::TELEPHONE, vec![-0.25; 160]));
        let said = Samples::new(SampleRate::TELEPHONE, vec![0.5; 480]);
        recording.turn("call/1@host", said);
        recording.finish("call/1@host").await;
        // The turn is written in the background.
        let turn = dir.join("call_1_host-turn1.wav");
        for _ in 0..100 {
            if crate::audio::decode::read_file(&turn).is_ok_and(|a| a.data.len() == 480) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            crate::audio::decode::read_file(&turn).unwrap().data.len(),
            480
        );
        let audio = crate::audio::decode::read_file(&dir.join("call_1_host.wav")).unwrap();
        assert_eq!(audio.data.len(), 320);
        assert_eq!(audio.rate, SampleRate::TELEPHONE);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
