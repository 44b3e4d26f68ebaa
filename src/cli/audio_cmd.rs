//! `switchboard audio telephone IN -o OUT`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::audio::telephone::TelephoneChannel;
use crate::audio::wav::{write_file, WavEncoding};
use crate::audio::{read_file, SampleRate, Samples};
use crate::media::g711::Law;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Pass a file through a simulated telephone line (300-3400 Hz, 8 kHz
    /// G.711, light noise) and write it as a μ-law WAV.
    Telephone {
        input: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Noise level in dBFS (default -60; "off" for none).
        #[arg(long, default_value = "-60")]
        noise: String,
        /// Noise seed, so the same input always gives the same file.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Line codec: pcmu or pcma.
        #[arg(long, default_value = "pcmu")]
        codec: String,
        /// Seconds of line silence added before and after.
        #[arg(long, default_value_t = 0.0)]
        pad: f32,
    },
}

pub fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Telephone {
            input,
            output,
            noise,
            seed,
            codec,
            pad,
        } => {
            let law = match codec.as_str() {
                "pcmu" => Law::MuLaw,
                "pcma" => Law::ALaw,
                other => anyhow::bail!("unknown codec {other:?}: use pcmu or pcma"),
            };
            let noise_dbfs = match noise.as_str() {
                "off" => None,
                level => Some(
                    level
                        .parse::<f32>()
                        .map_err(|_| anyhow::anyhow!("--noise: {level:?} is not a number"))?,
                ),
            };
            let audio = read_file(&input)?;
            let padding =
                Samples::silence(audio.rate, std::time::Duration::from_secs_f32(pad.max(0.0)));
            let mut padded = padding.clone();
            padded.extend(&audio);
            padded.extend(&padding);
            let line = TelephoneChannel {
                law,
                noise_dbfs,
                seed,
                ..Default::default()
            }
            .transmit(&padded);
            debug_assert_eq!(line.rate, SampleRate::TELEPHONE);
            write_file(&output, &line, WavEncoding::G711(law))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
