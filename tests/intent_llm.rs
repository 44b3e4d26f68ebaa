//! The LLM and hybrid intent detectors against a real OpenAI-compatible
//! server: llama.cpp's (xllamacpp) with SmolLM2-135M-Instruct, started by
//! the tests on 127.0.0.1 (`tests/llm/`). The request we send is read by a
//! recording proxy; valid, cut-off (`finish_reason: "length"`) and late
//! answers are handled; the hybrid detector asks the LLM only when unsure
//! and keeps the embedded answer when the LLM is late or its server is
//! stopped.
//!
//! SmolLM2-135M always answers in the schema but often picks the wrong
//! intent, so these tests check the protocol, not accuracy (the benchmark
//! `cargo bench --bench intent` prints that).

mod llm;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use llm::{LlmServer, Proxy, MODEL};
use switchboard::flow::{load_flow, Flow};
use switchboard::intent::{
    build_detector, DetectorConfig, DetectorKind, EmbeddedClassifier, EmbeddedConfig,
    HybridDetector, IntentContext, IntentDetector, IntentError, IntentResult, IntentSource,
    IntentSpec, LlmConfig, LlmDetector, LlmError, PreparedIntents, UNSURE,
};

/// Long enough for any answer from the test server, even with other jobs
/// on the machine (a request has taken 60 s under load); the tests about
/// timeouts set their own, short ones.
const PATIENT: Duration = Duration::from_secs(120);

/// Said to a support line but none of its intents: the embedded
/// classifier is unsure of it, so the hybrid detector asks the LLM.
const OFF_TOPIC: &str = "Do you sell pizza?";

/// A fixture transcript the embedded classifier routes with confidence.
const PLAIN_BILLING: &str = "Hi, I was charged twice on my last bill and I would like a refund.";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn support_flow() -> &'static Flow {
    static FLOW: OnceLock<Flow> = OnceLock::new();
    FLOW.get_or_init(|| {
        load_flow(&root().join("flows/support.yaml")).expect("flows/support.yaml loads")
    })
}

/// The intents of the support flow's main node.
fn support_intents() -> Vec<IntentSpec> {
    let main = support_flow().nodes.get("main").expect("a main node");
    main.intents
        .iter()
        .map(|i| IntentSpec {
            name: i.name.clone(),
            description: i.description.trim().to_string(),
            examples: i.examples.clone(),
        })
        .collect()
}

/// The detector's config for the support flow at `base_url`.
fn config(base_url: &str) -> LlmConfig {
    let flow = support_flow();
    LlmConfig {
        timeout: PATIENT,
        max_tokens: 128,
        persona: flow.persona.clone(),
        instructions: flow.instructions.clone(),
        ..LlmConfig::new(base_url, MODEL)
    }
}

/// One server for the tests that only need it running; it exits with the
/// test binary (see `tests/llm/mod.rs`).
fn server() -> &'static LlmServer {
    static SERVER: OnceLock<LlmServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = LlmServer::start();
        println!(
            "LLM server (pid {}) ready in {} ms",
            server.pid(),
            server.start_time.as_millis()
        );
        server
    })
}

fn embedded() -> EmbeddedClassifier {
    static EMBEDDED: OnceLock<EmbeddedClassifier> = OnceLock::new();
    EMBEDDED
        .get_or_init(|| {
            EmbeddedClassifier::load(&root().join("models"), EmbeddedConfig::default())
                .expect("the sentence model (run scripts/setup)")
        })
        .clone()
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// What every answer of the LLM detector must satisfy, right or wrong.
fn assert_well_formed(result: &IntentResult, names: &[String]) {
    assert_eq!(result.source, IntentSource::Llm);
    assert_eq!(result.unsure, result.intent.is_none());
    assert!((0.0..=1.0).contains(&result.confidence), "{result:?}");
    if let Some(intent) = &result.intent {
        assert!(names.contains(intent), "{intent:?} is not on offer");
        assert_eq!(result.best(), Some(intent.as_str()));
    }
    if let Some(reply) = &result.reply {
        assert!(!reply.trim().is_empty());
    }
}

#[test]
fn the_request_carries_the_flow_the_schema_and_the_limits() {
    let proxy = Proxy::start(server().addr(), Duration::ZERO);
    let detector = LlmDetector::new(LlmConfig {
        // Cargo sets CARGO_PKG_NAME for the tests it runs: a key that is
        // surely there, without changing this process's environment.
        api_key_env: Some("CARGO_PKG_NAME".into()),
        ..config(&proxy.base_url())
    })
    .expect("detector");
    let intents = support_intents();
    let prepared = detector.prepare(&intents).unwrap();
    let slots = vec!["account_number".to_string()];
    let context = IntentContext::new(&prepared).with_slots(&slots);
    let result = detector.detect(PLAIN_BILLING, &context);

    let recorded = proxy.recorded();
    assert_eq!(recorded.len(), 1, "one request per turn");
    let request = &recorded[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(request.header("authorization"), Some("Bearer switchboard"));
    let body = &request.body;
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["max_tokens"], 128);
    assert_eq!(body["temperature"], 0.0);
    assert!(body.get("stream").is_none() || body["stream"] == false);

    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().expect("system prompt");
    let flow = support_flow();
    for part in [&flow.persona, &flow.instructions] {
        let part = part.as_deref().unwrap().trim();
        assert!(system.contains(part), "system prompt lacks {part:?}");
    }
    for spec in &intents {
        assert!(
            system.contains(&format!("- {}: {}", spec.name, spec.description)),
            "system prompt lacks intent {}",
            spec.name
        );
        assert!(system.contains(&spec.examples[0]));
    }
    assert!(system.contains("account_number"));
    assert_eq!(messages[1]["role"], "user");
    assert_eq!(messages[1]["content"], PLAIN_BILLING);

    let format = &body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["strict"], true);
    let schema = &format["json_schema"]["schema"];
    let mut names: Vec<&str> = intents.iter().map(|s| s.name.as_str()).collect();
    names.push(UNSURE);
    assert_eq!(
        schema["properties"]["intent"]["enum"],
        serde_json::json!(names)
    );
    assert_eq!(
        schema["required"],
        serde_json::json!(["intent", "confidence", "slots", "reply"])
    );
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["slots"]["required"],
        serde_json::json!(["account_number"])
    );
    // 128 tokens less 64 for the JSON and 48 for the slot.
    assert_eq!(schema["properties"]["reply"]["maxLength"], 16);

    // The answer came back through the proxy and was read.
    let names: Vec<String> = intents.iter().map(|s| s.name.clone()).collect();
    assert_well_formed(&result.expect("an answer through the proxy"), &names);
}

#[test]
fn valid_answers_are_read() {
    let detector = LlmDetector::new(config(&server().base_url())).expect("detector");
    let intents = support_intents();
    let names: Vec<String> = intents.iter().map(|s| s.name.clone()).collect();
    let prepared = detector.prepare(&intents).unwrap();
    let context = IntentContext::new(&prepared);
    for text in [
        PLAIN_BILLING,
        "My internet keeps dropping every few minutes.",
        OFF_TOPIC,
    ] {
        let started = Instant::now();
        let result = detector.detect(text, &context).expect("a valid answer");
        println!(
            "LLM {} ms: {text:?} -> {:?} ({:.2}), reply {:?}",
            ms(started.elapsed()),
            result.intent.as_deref().unwrap_or(UNSURE),
            result.confidence,
            result.reply
        );
        assert_well_formed(&result, &names);
        assert!(result.slots.is_empty(), "no slots were asked for");
    }
    // No request for nothing said.
    let empty = detector.detect("  ", &context).unwrap();
    assert!(empty.unsure && empty.elapsed < Duration::from_millis(10));
}

#[test]
fn a_cut_off_answer_is_a_typed_error() {
    let detector = LlmDetector::new(LlmConfig {
        max_tokens: 8,
        ..config(&server().base_url())
    })
    .expect("detector");
    let prepared = detector.prepare(&support_intents()).unwrap();
    let error = detector
        .detect(PLAIN_BILLING, &IntentContext::new(&prepared))
        .expect_err("8 tokens cannot hold the answer");
    assert!(
        matches!(
            error,
            IntentError::Llm(LlmError::Truncated { max_tokens: 8 })
        ),
        "{error}"
    );
    assert!(error.to_string().contains("raise max_tokens"));
}

#[test]
fn a_late_answer_times_out_and_a_slow_one_in_time_is_read() {
    let delay = Duration::from_secs(4);
    let proxy = Proxy::start(server().addr(), delay);
    let intents = support_intents();

    let impatient = LlmDetector::new(LlmConfig {
        timeout: Duration::from_millis(500),
        ..config(&proxy.base_url())
    })
    .expect("detector");
    let prepared = impatient.prepare(&intents).unwrap();
    let context = IntentContext::new(&prepared);
    let started = Instant::now();
    let error = impatient.detect(PLAIN_BILLING, &context).unwrap_err();
    let waited = started.elapsed();
    println!("timed out after {} ms (timeout 500 ms)", ms(waited));
    assert!(
        matches!(&error, IntentError::Llm(LlmError::Timeout { after, .. }) if *after == Duration::from_millis(500)),
        "{error}"
    );
    assert!(
        waited >= Duration::from_millis(500) && waited < delay,
        "{waited:?}"
    );

    let patient = LlmDetector::new(config(&proxy.base_url())).expect("detector");
    let started = Instant::now();
    let result = patient
        .detect(PLAIN_BILLING, &context)
        .expect("a slow answer");
    assert!(started.elapsed() >= delay);
    let names: Vec<String> = intents.iter().map(|s| s.name.clone()).collect();
    assert_well_formed(&result, &names);
}

#[test]
fn hybrid_asks_the_llm_only_when_the_embedded_classifier_is_unsure() {
    let proxy = Proxy::start(server().addr(), Duration::ZERO);
    let hybrid = HybridDetector::new(
        embedded(),
        LlmDetector::new(config(&proxy.base_url())).expect("detector"),
    );
    let prepared = hybrid.prepare(&support_intents()).unwrap();
    let context = IntentContext::new(&prepared);

    let sure = hybrid.detect(PLAIN_BILLING, &context).unwrap();
    assert_eq!(sure.intent.as_deref(), Some("billing"));
    assert_eq!(sure.source, IntentSource::Embedded);
    assert!(
        proxy.recorded().is_empty(),
        "a sure turn never reaches the LLM"
    );

    let alone = embedded().detect(OFF_TOPIC, &context).unwrap();
    assert!(
        alone.unsure,
        "precondition: the embedded classifier is unsure of {OFF_TOPIC:?}"
    );
    let asked = hybrid.detect(OFF_TOPIC, &context).unwrap();
    assert_eq!(proxy.recorded().len(), 1);
    assert_eq!(asked.source, IntentSource::Llm);
    assert_eq!(asked.unsure, asked.intent.is_none());
    if asked.unsure {
        // The embedded scores stay for a "did you mean".
        assert_eq!(asked.best(), alone.best());
    }
    println!(
        "hybrid on {OFF_TOPIC:?}: {:?}, reply {:?}, {} ms",
        asked.intent,
        asked.reply,
        ms(asked.elapsed)
    );
}

#[test]
fn hybrid_keeps_the_embedded_answer_when_the_llm_is_late() {
    let proxy = Proxy::start(server().addr(), Duration::from_secs(5));
    let hybrid = HybridDetector::new(
        embedded(),
        LlmDetector::new(LlmConfig {
            timeout: Duration::from_millis(300),
            ..config(&proxy.base_url())
        })
        .expect("detector"),
    );
    let prepared = hybrid.prepare(&support_intents()).unwrap();
    let context = IntentContext::new(&prepared);
    let alone = embedded().detect(OFF_TOPIC, &context).unwrap();
    let result = hybrid.detect(OFF_TOPIC, &context).unwrap();
    assert_eq!(proxy.recorded().len(), 1, "the LLM was asked");
    assert_eq!(result.source, IntentSource::Embedded);
    assert_eq!((result.unsure, result.best()), (alone.unsure, alone.best()));
    assert_eq!(result.reply, None);
    assert!(
        result.elapsed < Duration::from_secs(3),
        "{:?}",
        result.elapsed
    );
    println!(
        "hybrid with a late LLM answered in {} ms",
        ms(result.elapsed)
    );
}

#[test]
fn hybrid_keeps_the_embedded_answer_when_the_server_is_stopped() {
    // A server of its own: this test stops it.
    let mut server = LlmServer::start();
    println!(
        "second LLM server (pid {}) ready in {} ms",
        server.pid(),
        server.start_time.as_millis()
    );
    let hybrid = HybridDetector::new(
        embedded(),
        LlmDetector::new(config(&server.base_url())).expect("detector"),
    );
    let prepared = hybrid.prepare(&support_intents()).unwrap();
    let context = IntentContext::new(&prepared);
    let up = hybrid.detect(OFF_TOPIC, &context).unwrap();
    assert_eq!(up.source, IntentSource::Llm, "the running server answers");

    server.stop();
    let started = Instant::now();
    let down = hybrid.detect(OFF_TOPIC, &context).unwrap();
    let took = started.elapsed();
    println!("hybrid with the server stopped answered in {} ms", ms(took));
    assert_eq!(down.source, IntentSource::Embedded);
    assert!(down.unsure && down.reply.is_none());
    // Refused at once: no waiting for the 120 s timeout.
    assert!(took < Duration::from_secs(2), "{took:?}");

    let started = Instant::now();
    let error = hybrid.llm().detect(OFF_TOPIC, &context).unwrap_err();
    println!(
        "the LLM detector alone failed in {} ms: {error}",
        ms(started.elapsed())
    );
    assert!(
        matches!(&error, IntentError::Llm(LlmError::Unreachable { .. })),
        "{error}"
    );
    assert!(error.to_string().contains(&server.base_url()));
}

#[test]
fn detectors_are_built_by_kind_and_run_on_spawn_blocking() {
    let flow_llm = config(&server().base_url());
    let models = root().join("models");
    let intents = support_intents();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for kind in [
            DetectorKind::Llm,
            DetectorKind::Hybrid,
            DetectorKind::Embedded,
        ] {
            let config = DetectorConfig {
                kind,
                llm: Some(flow_llm.clone()),
            };
            let detector = build_detector(&config, &models).expect("built");
            let prepared: Arc<PreparedIntents> = Arc::new(detector.prepare(&intents).unwrap());
            let (d, p) = (detector.clone(), prepared.clone());
            let result =
                tokio::task::spawn_blocking(move || d.detect(OFF_TOPIC, &IntentContext::new(&p)))
                    .await
                    .expect("no panic on the blocking thread")
                    .expect("an answer");
            let expected = match kind {
                DetectorKind::Embedded => IntentSource::Embedded,
                DetectorKind::Llm | DetectorKind::Hybrid => IntentSource::Llm,
            };
            assert_eq!(result.source, expected, "{kind}");
            // Dropped on a runtime worker: must not panic.
            drop(detector);
        }
    });

    assert_eq!(
        DetectorConfig::default_for(Some(flow_llm)).kind,
        DetectorKind::Hybrid
    );
}

/// Refused at once, with no retries: a caller is waiting, and the hybrid
/// detector has its answer already (async-openai's client alone retries a
/// refused connection three times, 0.7 s in all).
#[test]
fn nothing_listening_fails_at_once() {
    let url = format!("http://127.0.0.1:{}/v1", llm::free_port());
    let detector = LlmDetector::new(config(&url)).expect("detector");
    let prepared = detector.prepare(&support_intents()).unwrap();
    let context = IntentContext::new(&prepared);
    let started = Instant::now();
    let error = detector.detect(OFF_TOPIC, &context).unwrap_err();
    let took = started.elapsed();
    println!("refused in {} us: {error}", took.as_micros());
    assert!(
        matches!(&error, IntentError::Llm(LlmError::Unreachable { .. })),
        "{error}"
    );
    assert!(took < Duration::from_millis(300), "{took:?}");
}
