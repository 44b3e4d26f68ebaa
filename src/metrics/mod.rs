//! Metrics for operators, exposed in Prometheus' text format (version
//! 0.0.4) on `/metrics` by [`serve`].
//!
//! A handful of fixed metrics, no registry crate: counters and gauges are
//! atomics, labelled counters a small map, histograms fixed buckets. Every
//! call site updates them through [`Metrics`], shared behind an `Arc`.

mod server;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub use server::{serve, MetricsError};

/// Latency buckets, seconds: from 50 ms to 10 s.
const BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0,
];

/// A latency histogram with [`BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Cumulative counts per bucket, then +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of observations, microseconds.
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.counts[BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(value.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                self.counts[i].load(Ordering::Relaxed)
            );
        }
        let count = self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Counters by one label value.
#[derive(Debug, Default)]
pub struct LabelledCounter {
    values: Mutex<BTreeMap<String, u64>>,
}

impl LabelledCounter {
    /// Adds one for `label`.
    pub fn increment(&self, label: &str) {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        *values.entry(label.to_string()).or_default() += 1;
    }

    /// The count for `label`.
    pub fn get(&self, label: &str) -> u64 {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values.get(label).copied().unwrap_or(0)
    }

    fn render(&self, out: &mut String, name: &str, label: &str) {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        for (value, count) in values.iter() {
            let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", escape(value));
        }
    }
}

/// Stages of a caller turn whose latency is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// End of the caller's speech to the transcript.
    Stt,
    /// Transcript to the intent.
    Intent,
    /// Intent to the first sentence's audio.
    Tts,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::Stt, Stage::Intent, Stage::Tts];

    fn name(self) -> &'static str {
        match self {
            Stage::Stt => "stt",
            Stage::Intent => "intent",
            Stage::Tts => "tts",
        }
    }
}

/// Every metric the agent exposes.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Calls in progress.
    pub active_calls: AtomicI64,
    /// Calls ended, by outcome (`transferred`, `caller_hung_up`, ...).
    pub calls_by_outcome: LabelledCounter,
    /// Calls transferred, by destination.
    pub calls_by_destination: LabelledCounter,
    /// Calls turned away because the agent was at capacity.
    pub calls_rejected: AtomicU64,
    /// End of the caller's speech to the first audio of the reply.
    pub reply_latency: Histogram,
    /// Per stage of a turn.
    stage_latency: [Histogram; 3],
    /// Speech recognition failures.
    pub stt_errors: AtomicU64,
    /// LLM failures (timeouts, bad replies, unreachable).
    pub llm_errors: AtomicU64,
}

impl Metrics {
    /// Records a stage's latency.
    pub fn observe_stage(&self, stage: Stage, value: Duration) {
        let index = Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0);
        self.stage_latency[index].observe(value);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP switchboard_active_calls Calls in progress.");
        let _ = writeln!(out, "# TYPE switchboard_active_calls gauge");
        let _ = writeln!(
            out,
            "switchboard_active_calls {}",
            self.active_calls.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP switchboard_calls_total Calls ended, by outcome."
        );
        let _ = writeln!(out, "# TYPE switchboard_calls_total counter");
        self.calls_by_outcome
            .render(&mut out, "switchboard_calls_total", "outcome");
        let _ = writeln!(
            out,
            "# HELP switchboard_transfers_total Calls transferred, by destination."
        );
        let _ = writeln!(out, "# TYPE switchboard_transfers_total counter");
        self.calls_by_destination
            .render(&mut out, "switchboard_transfers_total", "destination");
        let _ = writeln!(
            out,
            "# HELP switchboard_calls_rejected_total Calls turned away at capacity."
        );
        let _ = writeln!(out, "# TYPE switchboard_calls_rejected_total counter");
        let _ = writeln!(
            out,
            "switchboard_calls_rejected_total {}",
            self.calls_rejected.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP switchboard_reply_latency_seconds End of caller speech to the first audio of the reply."
        );
        let _ = writeln!(out, "# TYPE switchboard_reply_latency_seconds histogram");
        self.reply_latency
            .render(&mut out, "switchboard_reply_latency_seconds", "");
        let _ = writeln!(
            out,
            "# HELP switchboard_stage_latency_seconds Latency of each stage of a caller turn."
        );
        let _ = writeln!(out, "# TYPE switchboard_stage_latency_seconds histogram");
        for (stage, histogram) in Stage::ALL.iter().zip(&self.stage_latency) {
            histogram.render(
                &mut out,
                "switchboard_stage_latency_seconds",
                &format!("stage=\"{}\"", stage.name()),
            );
        }
        for (name, help, value) in [
            (
                "switchboard_stt_errors_total",
                "Speech recognition failures.",
                &self.stt_errors,
            ),
            (
                "switchboard_llm_errors_total",
                "LLM failures: timeouts, unusable replies, unreachable.",
                &self.llm_errors,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }
}

/// Escapes a label value (Prometheus text format: backslash, quote,
/// newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let metrics = Metrics::default();
        metrics.reply_latency.observe(Duration::from_millis(420));
        metrics.reply_latency.observe(Duration::from_millis(90));
        let text = metrics.render();
        assert!(text.contains("switchboard_reply_latency_seconds_bucket{le=\"0.1\"} 1"));
        assert!(text.contains("switchboard_reply_latency_seconds_bucket{le=\"0.5\"} 2"));
        assert!(text.contains("switchboard_reply_latency_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("switchboard_reply_latency_seconds_sum 0.51"));
        assert!(text.contains("switchboard_reply_latency_seconds_count 2"));
    }

    #[test]
    fn labelled_counters_escape_their_values() {
        let metrics = Metrics::default();
        metrics.calls_by_destination.increment("billing");
        metrics.calls_by_destination.increment("billing");
        metrics.calls_by_outcome.increment("odd \"name\"");
        metrics.observe_stage(Stage::Stt, Duration::from_millis(200));
        let text = metrics.render();
        assert!(text.contains("switchboard_transfers_total{destination=\"billing\"} 2"));
        assert!(text.contains("switchboard_calls_total{outcome=\"odd \\\"name\\\"\"} 1"));
        assert!(
            text.contains("switchboard_stage_latency_seconds_bucket{stage=\"stt\",le=\"0.2\"} 1")
        );
        assert!(text.contains("switchboard_stage_latency_seconds_count{stage=\"tts\"} 0"));
    }
}
