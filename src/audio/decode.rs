//! Reading audio files with symphonia: WAV (PCM, G.711 μ-law and A-law),
//! FLAC and Ogg Vorbis, at any rate and channel count, mixed down to mono.
//!
//! Every failure a file can cause is an [`AudioError`] with a message a
//! user can act on; nothing here panics on bad input.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::{SampleRate, Samples};

/// Why a file could not be read as audio.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: not a recognised audio file (WAV, FLAC or Ogg Vorbis): {detail}")]
    Unrecognised { path: PathBuf, detail: String },
    #[error("{path}: no audio track")]
    NoAudioTrack { path: PathBuf },
    #[error(
        "{path}: unsupported codec: {detail} (supported: PCM, G.711 μ-law/A-law, FLAC, Vorbis)"
    )]
    UnsupportedCodec { path: PathBuf, detail: String },
    #[error("{path}: the file is truncated: {detail}")]
    Truncated { path: PathBuf, detail: String },
    #[error("{path}: malformed audio: {detail}")]
    Malformed { path: PathBuf, detail: String },
    #[error("{path}: the file holds no audio samples (zero length)")]
    ZeroLength { path: PathBuf },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads a whole audio file and mixes it down to mono at its own rate.
pub fn read_file(path: &Path) -> Result<Samples, AudioError> {
    let p = || path.to_path_buf();
    let file = File::open(path).map_err(|source| AudioError::Open { path: p(), source })?;
    let len = file
        .metadata()
        .map_err(|source| AudioError::Open { path: p(), source })?
        .len();
    if len == 0 {
        return Err(AudioError::Empty { path: p() });
    }
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymphoniaError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                AudioError::Truncated {
                    path: p(),
                    detail: "the header ends early".into(),
                }
            }
            // The container was recognised but its codec is not one we
            // decode (a WAV of GSM 6.10, say).
            SymphoniaError::Unsupported(what) if !what.contains("no suitable") => {
                AudioError::UnsupportedCodec {
                    path: p(),
                    detail: what.to_string(),
                }
            }
            other => AudioError::Unrecognised {
                path: p(),
                detail: other.to_string(),
            },
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| AudioError::NoAudioTrack { path: p() })?;
    let track_id = track.id;
    let expected_frames = track.num_frames;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|c| c.audio())
        .ok_or_else(|| AudioError::NoAudioTrack { path: p() })?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| AudioError::UnsupportedCodec {
            path: p(),
            detail: format!("{} ({e})", params.codec),
        })?;

    let mut rate = params.sample_rate;
    let mut mono: Vec<f32> = Vec::new();
    let mut interleaved: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(io)) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                // Some demuxers report the end of the stream this way; a
                // short count below tells truncation apart.
                break;
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => {
                return Err(AudioError::Malformed {
                    path: p(),
                    detail: e.to_string(),
                })
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            // A corrupt packet is skipped, as players do; the frame count
            // check below still catches a file that is mostly missing.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => {
                return Err(AudioError::Malformed {
                    path: p(),
                    detail: e.to_string(),
                })
            }
        };
        let spec = buffer.spec();
        rate = Some(spec.rate());
        let channels = spec.channels().count().max(1);
        buffer.copy_to_vec_interleaved(&mut interleaved);
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
    }

    if let Some(expected) = expected_frames {
        // A header that promises more than the file holds: the file was cut.
        if (mono.len() as u64) < expected {
            return Err(AudioError::Truncated {
                path: p(),
                detail: format!(
                    "the header announces {expected} frames but only {} are present",
                    mono.len()
                ),
            });
        }
    }
    let rate = match rate {
        Some(r) if r > 0 => SampleRate(r),
        _ => {
            return Err(AudioError::Malformed {
                path: p(),
                detail: "no sample rate".into(),
            })
        }
    };
    if mono.is_empty() {
        return Err(AudioError::ZeroLength { path: p() });
    }
    Ok(Samples::new(rate, mono))
}
