//! Intent benchmark on the fixture transcripts (audio-fixtures/manifest.yaml)
//! against the support flow's main node: latency p50/p95 and accuracy of
//! the embedded classifier, the LLM detector and the hybrid of the two.
//!
//! Run: `cargo bench --bench intent` (after scripts/setup). Target on 2
//! cores: embedded p50 and p95 <= 10 ms.
//!
//! The LLM is SmolLM2-135M-Instruct served by llama.cpp (`tests/llm/`),
//! started here; its start time is printed. It is fast and always answers
//! in the schema, but too small to pick intents well. To measure another
//! model (optional, not for CI):
//!
//! - `SWITCHBOARD_BENCH_LLM_GGUF=/path/model.gguf`: serve that GGUF file
//!   the same way instead of SmolLM2 (`SWITCHBOARD_BENCH_LLM_THREADS`:
//!   its threads, 1 by default, which is fastest on a busy 2-core machine);
//! - `SWITCHBOARD_BENCH_LLM_URL=http://host:port/v1` with
//!   `SWITCHBOARD_BENCH_LLM_MODEL=name` (and `SWITCHBOARD_BENCH_LLM_KEY_ENV`,
//!   the variable holding its key): an OpenAI-compatible server already
//!   running;
//! - `SWITCHBOARD_BENCH_LLM=0`: the embedded classifier only.

#[path = "../tests/llm/mod.rs"]
mod llm;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use switchboard::flow::load_flow;
use switchboard::intent::{
    EmbeddedClassifier, EmbeddedConfig, HybridDetector, IntentContext, IntentDetector,
    IntentResult, IntentSource, IntentSpec, LlmConfig, LlmDetector, UNSURE,
};

#[derive(serde::Deserialize)]
struct Fixture {
    intent: Option<String>,
    text: String,
}

#[derive(serde::Deserialize)]
struct Manifest {
    fixtures: Vec<Fixture>,
}

/// Rounds of the embedded classifier over every transcript, for stable
/// percentiles.
const EMBEDDED_ROUNDS: usize = 5;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The distinct non-empty transcripts with the intent each should get
/// (`unsure` for the unclear ones).
fn transcripts(root: &Path) -> Vec<(String, String)> {
    let manifest: Manifest = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("audio-fixtures/manifest.yaml")).unwrap(),
    )
    .unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    for fixture in manifest.fixtures {
        let (Some(intent), false) = (fixture.intent, fixture.text.trim().is_empty()) else {
            continue;
        };
        if !out.iter().any(|(text, _)| *text == fixture.text) {
            out.push((fixture.text, intent));
        }
    }
    out
}

/// Latency and accuracy of one detector over the transcripts.
struct Run {
    latencies: Vec<Duration>,
    correct: usize,
    failed: usize,
    asked_llm: usize,
}

fn run(
    detector: &dyn IntentDetector,
    context: &IntentContext<'_>,
    transcripts: &[(String, String)],
    rounds: usize,
    show_misses: bool,
) -> Run {
    let mut result = Run {
        latencies: Vec::new(),
        correct: 0,
        failed: 0,
        asked_llm: 0,
    };
    for round in 0..rounds {
        for (text, expected) in transcripts {
            let started = Instant::now();
            let answer: Result<IntentResult, _> = detector.detect(text, context);
            result.latencies.push(started.elapsed());
            if round > 0 {
                continue;
            }
            match answer {
                Ok(answer) => {
                    let got = answer.intent.as_deref().unwrap_or(UNSURE);
                    result.asked_llm += usize::from(answer.source == IntentSource::Llm);
                    if got == expected {
                        result.correct += 1;
                    } else if show_misses {
                        println!("    miss: {text:?} -> {got} (expected {expected})");
                    }
                }
                Err(error) => {
                    result.failed += 1;
                    println!("    error: {text:?}: {error}");
                }
            }
        }
    }
    result.latencies.sort();
    result
}

fn report(name: &str, run: &Run, total: usize) {
    println!(
        "{name}: p50 {}, p95 {}, max {} over {} calls; accuracy {}/{} ({:.0}%){}{}",
        ms(percentile(&run.latencies, 50.0)),
        ms(percentile(&run.latencies, 95.0)),
        ms(run.latencies.last().copied().unwrap_or_default()),
        run.latencies.len(),
        run.correct,
        total,
        100.0 * run.correct as f64 / total.max(1) as f64,
        if run.failed > 0 {
            format!(", {} errors", run.failed)
        } else {
            String::new()
        },
        if run.asked_llm > 0 {
            format!(", {} answered by the LLM", run.asked_llm)
        } else {
            String::new()
        },
    );
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("intent benchmark on {cores} core(s)");

    let flow = load_flow(&root.join("flows/support.yaml")).expect("flows/support.yaml");
    let intents: Vec<IntentSpec> = flow
        .nodes
        .get("main")
        .expect("a main node")
        .intents
        .iter()
        .map(|i| IntentSpec {
            name: i.name.clone(),
            description: i.description.trim().to_string(),
            examples: i.examples.clone(),
        })
        .collect();
    let transcripts = transcripts(&root);
    let total = transcripts.len();
    println!(
        "{total} distinct fixture transcripts, {} intents + unsure",
        intents.len()
    );

    let started = Instant::now();
    let embedded = EmbeddedClassifier::load(&root.join("models"), EmbeddedConfig::default())
        .expect("run scripts/setup first");
    let load = started.elapsed();
    let started = Instant::now();
    let prepared = embedded.prepare(&intents).expect("intents prepare");
    println!(
        "embedded: model load {}, prepare {} ({} examples)",
        ms(load),
        ms(started.elapsed()),
        intents.iter().map(|i| i.examples.len() + 1).sum::<usize>()
    );
    let context = IntentContext::new(&prepared);
    // Warm-up: first calls allocate.
    let _ = run(&embedded, &context, &transcripts[..3], 1, false);
    let embedded_run = run(&embedded, &context, &transcripts, EMBEDDED_ROUNDS, true);
    report("embedded", &embedded_run, total);
    let p95 = percentile(&embedded_run.latencies, 95.0);
    println!(
        "embedded target p95 <= 10 ms on 2 cores: {}",
        if p95 <= Duration::from_millis(10) {
            "met"
        } else {
            "NOT met"
        }
    );

    if std::env::var("SWITCHBOARD_BENCH_LLM").as_deref() == Ok("0") {
        return;
    }
    // Either a server that runs already, or one started here.
    let (server, base_url, model, key_env) = match std::env::var("SWITCHBOARD_BENCH_LLM_URL") {
        Ok(url) => {
            let model = std::env::var("SWITCHBOARD_BENCH_LLM_MODEL")
                .expect("SWITCHBOARD_BENCH_LLM_MODEL names the model at SWITCHBOARD_BENCH_LLM_URL");
            (
                None,
                url,
                model,
                std::env::var("SWITCHBOARD_BENCH_LLM_KEY_ENV").ok(),
            )
        }
        Err(_) => {
            let gguf = std::env::var("SWITCHBOARD_BENCH_LLM_GGUF")
                .map(PathBuf::from)
                .unwrap_or_else(|_| llm::smollm2());
            let threads = std::env::var("SWITCHBOARD_BENCH_LLM_THREADS")
                .ok()
                .and_then(|t| t.parse().ok());
            let server = llm::LlmServer::start_with(&gguf, threads);
            println!(
                "LLM server: {} ready in {}",
                gguf.file_name().unwrap_or_default().to_string_lossy(),
                ms(server.start_time)
            );
            let url = server.base_url();
            (Some(server), url, llm::MODEL.to_string(), None)
        }
    };
    let config = LlmConfig {
        api_key_env: key_env,
        timeout: Duration::from_secs(120),
        persona: flow.persona.clone(),
        instructions: flow.instructions.clone(),
        ..LlmConfig::new(&base_url, &model)
    };
    println!(
        "LLM: model {model:?} at {base_url}, max_tokens {}",
        config.max_tokens
    );
    let llm = LlmDetector::new(config).expect("LLM detector");
    let started = Instant::now();
    let first = llm.detect(&transcripts[0].0, &context);
    println!(
        "LLM first request: {} ({})",
        ms(started.elapsed()),
        match &first {
            Ok(r) => r.intent.clone().unwrap_or_else(|| UNSURE.into()),
            Err(e) => format!("error: {e}"),
        }
    );
    let llm_run = run(&llm, &context, &transcripts, 1, true);
    report("LLM", &llm_run, total);

    let hybrid = HybridDetector::new(embedded, llm);
    let hybrid_run = run(&hybrid, &context, &transcripts, 1, true);
    report("hybrid", &hybrid_run, total);
    drop(server);
}
