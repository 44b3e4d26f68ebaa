//! Turn taking on the recorded caller utterances of `audio-fixtures/`, in
//! virtual time: the endpointer finds each utterance as one turn and ends
//! it soon after the speech ends; the barge-in detector ignores the agent's
//! own echo and stops the agent for a caller who talks over it.
//!
//! Where speech really starts and ends in a fixture is measured on the
//! fixture itself (10 ms windows more than 12 dB above its quietest tenth),
//! before line noise is added.

mod common;

use std::time::{Duration, Instant};

use common::*;
use switchboard::audio::{read_file, SampleRate, Samples};
use switchboard::call::turn::{
    BargeIn, BargeInConfig, BargeInEvent, EndedTurn, Endpointer, EndpointerConfig, EndpointerEvent,
    TurnEndReason,
};

const RATE: usize = 8_000;
const FRAME: usize = 160;
const FRAME_TIME: Duration = Duration::from_millis(20);

/// A speech fixture with where its speech is, in samples.
struct Utterance {
    file: String,
    audio: Samples,
    start: usize,
    end: usize,
}

fn speech_fixtures() -> Vec<Utterance> {
    let fixtures: Vec<Utterance> = manifest()
        .iter()
        .filter(|f| !f.text.is_empty())
        .map(|f| {
            let audio = read_file(&fixture_path(f)).expect("reading a fixture");
            assert_eq!(audio.rate, SampleRate::TELEPHONE, "{}", f.file);
            let (start, end) = speech_bounds(&audio);
            Utterance {
                file: f.file.clone(),
                audio,
                start,
                end,
            }
        })
        .collect();
    assert_eq!(fixtures.len(), 80, "speech fixtures in the manifest");
    fixtures
}

/// First and last sample of the 10 ms windows more than 12 dB above the
/// quietest tenth of the recording.
fn speech_bounds(audio: &Samples) -> (usize, usize) {
    let window = RATE / 100;
    let levels: Vec<f32> = audio
        .data
        .chunks_exact(window)
        .map(|c| Samples::new(audio.rate, c.to_vec()).rms_dbfs().max(-100.0))
        .collect();
    let mut sorted = levels.clone();
    sorted.sort_by(f32::total_cmp);
    let threshold = sorted[sorted.len() / 10] + 12.0;
    let first = levels.iter().position(|l| *l > threshold).expect("speech");
    let last = levels.iter().rposition(|l| *l > threshold).expect("speech");
    (first * window, (last + 1) * window)
}

/// White noise of a telephone line, seeded.
fn line_noise(samples: usize, dbfs: f32, seed: u64) -> Vec<f32> {
    let mut rng = switchboard::audio::telephone::XorShift::new(seed);
    let peak = 10f32.powf(dbfs / 20.0) * 3f32.sqrt();
    (0..samples)
        .map(|_| peak * rng.next_signed_unit())
        .collect()
}

fn at_sample(start: Instant, sample: usize) -> Instant {
    start + Duration::from_nanos(sample as u64 * 1_000_000_000 / RATE as u64)
}

fn signed_ms(later: Instant, earlier: Instant) -> i64 {
    if later >= earlier {
        (later - earlier).as_millis() as i64
    } else {
        -((earlier - later).as_millis() as i64)
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Where `audio` (a copy of whole frames of `stream`) sits in `stream`.
fn position_in(stream: &[f32], audio: &[f32]) -> usize {
    (0..stream.len() / FRAME)
        .map(|frame| frame * FRAME)
        .find(|&at| stream.get(at..at + audio.len()) == Some(audio))
        .expect("a turn's audio is a piece of the stream")
}

#[test]
fn two_utterances_are_two_turns_ended_soon_after_the_speech() {
    let fixtures = speech_fixtures();
    let gap = 3 * RATE / 2;
    let mut delays = Vec::new();
    let mut failures = Vec::new();
    for (i, first) in fixtures.iter().enumerate() {
        let second = &fixtures[(i + 1) % fixtures.len()];
        // Half a second of line, the first utterance, 1.5 s, the second,
        // 1.5 s; -50 dBFS of line noise over all of it.
        let lead = RATE / 2;
        let offsets = [lead, lead + first.audio.data.len() + gap];
        let length = offsets[1] + second.audio.data.len() + gap;
        let mut stream = line_noise(length, -50.0, i as u64 + 1);
        for (utterance, offset) in [first, second].iter().zip(offsets) {
            for (s, x) in stream[offset..].iter_mut().zip(&utterance.audio.data) {
                *s += x;
            }
        }

        let start = Instant::now();
        let mut endpointer = Endpointer::new(EndpointerConfig::default());
        let mut started = Vec::new();
        let mut ended: Vec<(Instant, EndedTurn)> = Vec::new();
        for (k, frame) in stream.chunks_exact(FRAME).enumerate() {
            let now = start + FRAME_TIME * (k as u32 + 1);
            endpointer.handle_audio(now, &Samples::new(SampleRate::TELEPHONE, frame.to_vec()));
            while let Some(event) = endpointer.poll_event() {
                match event {
                    EndpointerEvent::SpeechStarted { at } => started.push(at),
                    EndpointerEvent::TurnEnded(turn) => ended.push((now, turn)),
                    _ => {}
                }
            }
        }

        let name = format!("{} + {}", first.file, second.file);
        if started.len() != 2 || ended.len() != 2 {
            let truth: Vec<String> = [first, second]
                .iter()
                .zip(offsets)
                .map(|(u, o)| format!("{}..{}", (o + u.start) / 8, (o + u.end) / 8))
                .collect();
            let found: Vec<String> = ended
                .iter()
                .map(|(_, t)| {
                    let end = signed_ms(t.speech_ended_at, start);
                    format!("{}..{}", end - t.speech_duration.as_millis() as i64, end)
                })
                .collect();
            failures.push(format!(
                "{name}: {} turns started, {} ended: speech {truth:?} ms, turns {found:?}",
                started.len(),
                ended.len()
            ));
            continue;
        }
        for (((utterance, offset), onset), (ended_at, turn)) in [first, second]
            .iter()
            .zip(offsets)
            .zip(&started)
            .zip(&ended)
        {
            let (real_start, real_end) = (offset + utterance.start, offset + utterance.end);
            let begin = position_in(&stream, &turn.audio.data);
            let finish = begin + turn.audio.data.len();
            let onset_error = signed_ms(*onset, at_sample(start, real_start));
            let end_error = signed_ms(turn.speech_ended_at, at_sample(start, real_end));
            if turn.reason != TurnEndReason::Silence
                || onset_error.abs() > 200
                || end_error.abs() > 200
                || begin > real_start
                || finish < real_end
            {
                failures.push(format!(
                    "{}: onset {onset_error:+} ms, end {end_error:+} ms, audio {begin}..{finish} \
                     for speech {real_start}..{real_end}, {:?}",
                    utterance.file, turn.reason
                ));
            }
            delays.push(signed_ms(*ended_at, at_sample(start, real_end)));
        }
    }
    delays.sort_unstable();
    let (p50, p95) = (percentile(&delays, 0.5), percentile(&delays, 0.95));
    let over = delays.iter().filter(|d| **d > 500).count();
    println!(
        "end of speech -> TurnEnded over {} turns: p50 {p50} ms, p95 {p95} ms, \
         min {} ms, max {} ms, {over} over 500 ms",
        delays.len(),
        delays[0],
        delays[delays.len() - 1]
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(p95 <= 600, "p95 end-of-turn delay {p95} ms");
}

#[test]
fn silence_and_noise_fixtures_start_no_turn() {
    let mut turns = Vec::new();
    for f in manifest().iter().filter(|f| f.text.is_empty()) {
        let audio = read_file(&fixture_path(f)).expect("reading a fixture");
        let start = Instant::now();
        let mut endpointer = Endpointer::new(EndpointerConfig::default());
        for (k, frame) in audio.data.chunks_exact(FRAME).enumerate() {
            let now = start + FRAME_TIME * (k as u32 + 1);
            endpointer.handle_audio(now, &Samples::new(audio.rate, frame.to_vec()));
            while let Some(event) = endpointer.poll_event() {
                if let EndpointerEvent::SpeechStarted { at } = event {
                    turns.push(format!("{} at {:?}", f.file, at - start));
                }
            }
        }
    }
    println!("turns on noise fixtures: {turns:?}");
    // The rumble (brown noise, amplitude-modulated at 0.5 Hz) is voice to
    // the model and swells faster than the floor follows; the others are
    // not.
    assert!(
        turns.iter().all(|t| t.starts_with("noise-04-rumble")),
        "{turns:?}"
    );
}

/// One call: the agent plays each of `prompts` from its start (samples)
/// while the caller's line carries `caller` from its start. The echo of
/// what the agent sends comes back at -20 dB 120 ms later, for as long as
/// it plays, over -50 dBFS of line noise. The barge-in detector and the
/// endpointer listen; a barge-in stops the prompt and hands the caller's
/// speech to the endpointer, as a driver would.
struct Call {
    /// Barge-ins: when decided and the onset reported.
    barge_ins: Vec<(Instant, Instant)>,
    /// Turns the endpointer found.
    turns: Vec<EndedTurn>,
    /// The caller's line as heard, echo included.
    stream: Vec<f32>,
    start: Instant,
}

fn call(
    prompts: &[(usize, &Samples)],
    caller: Option<(usize, &Samples)>,
    length: usize,
    seed: u64,
) -> Call {
    const ECHO_FRAMES: usize = 6;
    let echo_gain = 10f32.powf(-20.0 / 20.0);
    let mut line = line_noise(length, -50.0, seed);
    if let Some((from, caller)) = caller {
        for (s, x) in line[from..].iter_mut().zip(&caller.data) {
            *s += x;
        }
    }
    let start = Instant::now();
    let mut barge_in = BargeIn::new(BargeInConfig::default());
    let mut endpointer = Endpointer::new(EndpointerConfig::default());
    let mut playing = false;
    // The prompt a barge-in stopped.
    let mut stopped = None;
    let mut sent: Vec<Option<Vec<f32>>> = Vec::new();
    let mut stream = Vec::with_capacity(length);
    let mut barge_ins = Vec::new();
    let mut turns = Vec::new();
    for k in 0..length / FRAME {
        let sent_at = start + FRAME_TIME * k as u32;
        let at = k * FRAME;
        // The agent's frame k, if a prompt is playing.
        let out = prompts.iter().enumerate().find_map(|(i, (from, prompt))| {
            let offset = at.checked_sub(*from)?;
            let frame = prompt.data.get(offset..offset + FRAME)?;
            (stopped != Some(i)).then(|| frame.to_vec())
        });
        match &out {
            Some(frame) => {
                if !playing {
                    endpointer.handle_playback(sent_at, true);
                }
                let level = Samples::new(SampleRate::TELEPHONE, frame.clone()).rms_dbfs();
                barge_in.handle_playback(sent_at, true, level);
            }
            None if playing => {
                barge_in.handle_playback(sent_at, false, 0.0);
                endpointer.handle_playback(sent_at, false);
            }
            None => {}
        }
        playing = out.is_some();
        sent.push(out);
        // The caller's frame k comes in, with the echo of frame k - 6.
        let mut frame = line[at..at + FRAME].to_vec();
        if let Some(Some(echoed)) = k.checked_sub(ECHO_FRAMES).map(|j| &sent[j]) {
            for (s, e) in frame.iter_mut().zip(echoed) {
                *s += e * echo_gain;
            }
        }
        stream.extend_from_slice(&frame);
        let now = start + FRAME_TIME * (k as u32 + 1);
        let frame = Samples::new(SampleRate::TELEPHONE, frame);
        barge_in.handle_audio(now, &frame);
        endpointer.handle_audio(now, &frame);
        while let Some(BargeInEvent::BargeIn { onset_at }) = barge_in.poll_event() {
            barge_ins.push((now, onset_at));
            stopped = prompts
                .iter()
                .position(|(from, prompt)| (*from..from + prompt.data.len()).contains(&at));
            playing = false;
            barge_in.handle_playback(now, false, 0.0);
            endpointer.handle_barge_in(now, onset_at);
        }
        while let Some(event) = endpointer.poll_event() {
            if let EndpointerEvent::TurnEnded(turn) = event {
                turns.push(turn);
            }
        }
    }
    Call {
        barge_ins,
        turns,
        stream,
        start,
    }
}

#[test]
fn the_agents_echo_causes_no_barge_in_and_no_turn() {
    let fixtures = speech_fixtures();
    let mut false_alarms = Vec::new();
    for (i, agent) in fixtures.iter().enumerate() {
        // A first prompt, then this one after a second's pause.
        let first = &fixtures[(i + 1) % fixtures.len()].audio;
        let second_at = first.data.len() + RATE;
        let length = second_at + agent.audio.data.len() + RATE;
        let prompts = [(0, first), (second_at, &agent.audio)];
        let call = call(&prompts, None, length, 100 + i as u64);
        if !call.barge_ins.is_empty() || !call.turns.is_empty() {
            false_alarms.push(format!(
                "{}: barge-ins at {:?}, {} turns",
                agent.file,
                call.barge_ins
                    .iter()
                    .map(|(at, _)| *at - call.start)
                    .collect::<Vec<_>>(),
                call.turns.len()
            ));
        }
    }
    println!(
        "echo only (-20 dB, 120 ms): {} of {} calls of two prompts with a false barge-in or turn",
        false_alarms.len(),
        fixtures.len()
    );
    assert!(false_alarms.is_empty(), "{}", false_alarms.join("\n"));
}

/// How the barge-ins of one set of calls went.
#[derive(Default)]
struct BargeIns {
    /// Caller onset to decision, ms, sorted.
    delays: Vec<i64>,
    /// Calls whose turn missed the start of the caller's speech (the first
    /// word drowned in the agent's echo, before the onset reported).
    late_turns: Vec<String>,
    /// Calls whose turn took in much audio from before the caller's
    /// speech (the agent's echo): more than the lead-in and a frame.
    early_turns: Vec<String>,
    /// Anything else wrong.
    failures: Vec<String>,
}

/// Turn audio before the caller's onset beyond this is the agent's echo
/// (the endpointer keeps a 200 ms lead-in).
const EARLY_MS: usize = 300;

fn samples_of_ms(ms: usize) -> usize {
    ms * RATE / 1000
}

/// The agent says one fixture (twice over, so that it is still talking),
/// and the caller's recording starts a second into it; with `greeting`,
/// the agent has first played another prompt and the echo path is known.
fn talk_over_the_agent(greeting: bool) -> BargeIns {
    let fixtures = speech_fixtures();
    let mut result = BargeIns::default();
    for (i, caller) in fixtures.iter().enumerate() {
        let other = &fixtures[(i + fixtures.len() / 2) % fixtures.len()];
        let mut agent = other.audio.clone();
        agent.extend(&other.audio);
        let first = &fixtures[(i + fixtures.len() / 2 + 1) % fixtures.len()].audio;
        let agent_at = if greeting { first.data.len() + RATE } else { 0 };
        let from = agent_at + RATE;
        let length = from + caller.audio.data.len() + RATE;
        let mut prompts = vec![(agent_at, &agent)];
        if greeting {
            prompts.insert(0, (0, first));
        }
        let call = call(
            &prompts,
            Some((from, &caller.audio)),
            length,
            200 + i as u64,
        );
        let (real_start, real_end) = (from + caller.start, from + caller.end);
        let onset = at_sample(call.start, real_start);
        let name = format!("{} over {}", caller.file, other.file);
        let &[(decided_at, onset_at)] = call.barge_ins.as_slice() else {
            let times: Vec<i64> = call
                .barge_ins
                .iter()
                .map(|(at, _)| signed_ms(*at, onset))
                .collect();
            result
                .failures
                .push(format!("{name}: barge-ins at {times:?} ms from the onset"));
            continue;
        };
        let delay = signed_ms(decided_at, onset);
        result.delays.push(delay);
        let onset_error = signed_ms(onset_at, onset);
        if delay < 0 || onset_error.abs() > 400 {
            result.failures.push(format!(
                "{name}: decided {delay} ms after the onset, onset reported {onset_error:+} ms"
            ));
        }
        // What the caller said is the next turn, to its end.
        match call.turns.as_slice() {
            [turn] => {
                let begin = position_in(&call.stream, &turn.audio.data);
                let finish = begin + turn.audio.data.len();
                if finish < real_end {
                    result.failures.push(format!(
                        "{name}: turn audio {begin}..{finish} for speech {real_start}..{real_end}"
                    ));
                } else if begin > real_start {
                    result.late_turns.push(format!(
                        "{name}: turn from {} ms after the onset",
                        (begin - real_start) / 8
                    ));
                } else if begin + samples_of_ms(EARLY_MS) < real_start {
                    result.early_turns.push(format!(
                        "{name}: turn from {} ms before the onset",
                        (real_start - begin) / 8
                    ));
                }
            }
            turns => result
                .failures
                .push(format!("{name}: {} turns", turns.len())),
        }
    }
    result.delays.sort_unstable();
    result
}

fn report(what: &str, result: &BargeIns) {
    let delays = &result.delays;
    if let (Some(first), Some(last)) = (delays.first(), delays.last()) {
        println!(
            "{what}: caller onset -> barge-in over {} calls: p50 {} ms, p95 {} ms, \
             min {first} ms, max {last} ms, {} over 250 ms; {} turns missing the first word, \
             {} taking in more than {EARLY_MS} ms before it",
            delays.len(),
            percentile(delays, 0.5),
            percentile(delays, 0.95),
            delays.iter().filter(|d| **d > 250).count(),
            result.late_turns.len(),
            result.early_turns.len()
        );
    }
    for line in result
        .late_turns
        .iter()
        .chain(&result.early_turns)
        .chain(&result.failures)
    {
        println!("  {line}");
    }
}

#[test]
fn a_caller_talking_over_the_agent_stops_it_within_250_ms_and_is_the_next_turn() {
    let result = talk_over_the_agent(true);
    report("after a greeting", &result);
    assert!(result.failures.is_empty(), "{}", result.failures.join("\n"));
    // Taking the turn back to the caller's word never takes in the echo.
    assert!(
        result.early_turns.is_empty(),
        "{}",
        result.early_turns.join("\n")
    );
    assert_eq!(result.delays.len(), 80);
    let p95 = percentile(&result.delays, 0.95);
    assert!(p95 <= 250, "p95 onset -> barge-in {p95} ms");
    let max = result.delays[result.delays.len() - 1];
    assert!(max <= 500, "slowest barge-in {max} ms after the onset");
}

#[test]
fn a_caller_talking_over_the_first_prompt_is_heard_too() {
    // The first prompt of a call: the echo path is not known yet, so the
    // detector starts from G.168's 6 dB and must learn while the agent
    // talks. Reported, and bounded less tightly.
    let result = talk_over_the_agent(false);
    report("first prompt", &result);
    assert_eq!(result.delays.len(), 80, "{:?}", result.failures);
    assert!(
        result.early_turns.is_empty(),
        "{}",
        result.early_turns.join("\n")
    );
    let p50 = percentile(&result.delays, 0.5);
    assert!(p50 <= 250, "p50 onset -> barge-in {p50} ms");
}

#[test]
fn a_short_noise_over_the_agent_is_no_barge_in() {
    // A knock: 60 ms of loud noise, twice, while the agent talks.
    let fixtures = speech_fixtures();
    let agent = &fixtures[0].audio;
    let mut knock = line_noise(RATE * 6 / 100, -10.0, 7);
    knock.extend(vec![0.0; RATE / 2]);
    knock.extend(line_noise(RATE * 6 / 100, -10.0, 8));
    let knock = Samples::new(SampleRate::TELEPHONE, knock);
    let call = call(&[(0, agent)], Some((RATE, &knock)), agent.data.len(), 9);
    assert!(call.barge_ins.is_empty(), "{:?}", call.barge_ins);
    assert!(call.turns.is_empty());
}

/// The partial that recognition starts on once the caller is silent (the
/// early pad) is the whole turn as far as the recogniser can tell: when it
/// stands for the turn, it holds every sound of the speech that stands
/// clear of the line (6 dB over its noise); otherwise a second partial
/// with the whole trailing pad follows. A complete partial at a pause the
/// caller goes on after is followed by `SpeechResumed` (its recognition
/// stops). Prints how soon after the end of the speech recognition starts.
#[test]
fn a_standing_early_partial_holds_the_whole_speech() {
    const LINE_DBFS: f32 = -50.0;
    let config = EndpointerConfig::default();
    let mut starts = Vec::new();
    let mut early_stands = 0;
    let mut at_pauses = 0;
    let mut failures = Vec::new();
    let fixtures = speech_fixtures();
    for (i, utterance) in fixtures.iter().enumerate() {
        let offset = RATE / 2;
        let length = offset + utterance.audio.data.len() + 3 * RATE / 2;
        let mut stream = line_noise(length, LINE_DBFS, i as u64 + 1);
        for (s, x) in stream[offset..].iter_mut().zip(&utterance.audio.data) {
            *s += x;
        }
        let start = Instant::now();
        let mut endpointer = Endpointer::new(config.clone());
        let mut complete: Vec<(Instant, Samples)> = Vec::new();
        // Complete partials (by length) and resumptions, in order.
        let mut sequence: Vec<Option<usize>> = Vec::new();
        let mut ended = Vec::new();
        for (k, frame) in stream.chunks_exact(FRAME).enumerate() {
            let now = start + FRAME_TIME * (k as u32 + 1);
            endpointer.handle_audio(now, &Samples::new(SampleRate::TELEPHONE, frame.to_vec()));
            while let Some(event) = endpointer.poll_event() {
                match event {
                    EndpointerEvent::Partial {
                        audio,
                        complete: true,
                        ..
                    } => {
                        sequence.push(Some(audio.data.len()));
                        complete.push((now, audio));
                    }
                    EndpointerEvent::SpeechResumed => sequence.push(None),
                    EndpointerEvent::TurnEnded(turn) => ended.push(turn),
                    _ => {}
                }
            }
        }
        let [turn] = ended.as_slice() else {
            failures.push(format!("{}: {} turns", utterance.file, ended.len()));
            continue;
        };
        let Some(standing) = complete
            .iter()
            .position(|(_, a)| Some(a.data.len()) == turn.standing_partial)
        else {
            failures.push(format!(
                "{}: no partial stands for the turn",
                utterance.file
            ));
            continue;
        };
        // Every pause the caller went on after: its partial (and the one
        // with the whole pad, if a soft sound followed the early one), then
        // the resumption, before the next pause.
        let rest_of_pad =
            samples_of_ms((config.trailing_pad - config.early_pad).as_millis() as usize);
        let mut open: Option<usize> = None;
        let mut pauses = 0usize;
        for step in &sequence {
            match (*step, open) {
                (None, Some(_)) => open = None,
                (None, None) => {
                    failures.push(format!("{}: resumed after no pause", utterance.file))
                }
                (Some(len), Some(early)) if len != early + rest_of_pad => failures.push(format!(
                    "{}: a partial at a pause without the caller resuming first",
                    utterance.file
                )),
                (Some(_), Some(_)) => {}
                (Some(len), None) => {
                    pauses += 1;
                    open = Some(len);
                }
            }
        }
        // The turn's own pause is the last one, never resumed.
        if open.is_none() {
            failures.push(format!("{}: resumed after the turn's end", utterance.file));
        }
        let pauses = pauses.saturating_sub(1);
        let (at, audio) = &complete[standing];
        at_pauses += pauses;
        let begin = position_in(&stream, &audio.data[..FRAME]);
        let audible_end = offset + audible_end(&utterance.audio, LINE_DBFS + 6.0);
        if begin + audio.data.len() < audible_end {
            failures.push(format!(
                "{}: the standing partial ends {} ms before the speech",
                utterance.file,
                (audible_end - begin - audio.data.len()) / 8
            ));
        }
        if audio.data.len() < turn.audio.data.len() {
            early_stands += 1;
        }
        starts.push(signed_ms(*at, at_sample(start, offset + utterance.end)));
    }
    starts.sort_unstable();
    println!(
        "early pad {} ms: the early partial stands for {early_stands} of {} turns; \
         end of speech -> the standing partial: p50 {} ms, p95 {} ms, max {} ms; \
         {at_pauses} complete partials at pauses the caller went on after",
        config.early_pad.as_millis(),
        fixtures.len(),
        percentile(&starts, 0.5),
        percentile(&starts, 0.95),
        starts.last().copied().unwrap_or_default()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The end of the last 10 ms window of `audio` louder than `dbfs`.
fn audible_end(audio: &Samples, dbfs: f32) -> usize {
    let window = RATE / 100;
    audio
        .data
        .chunks_exact(window)
        .rposition(|c| Samples::new(audio.rate, c.to_vec()).rms_dbfs() > dbfs)
        .map_or(0, |last| (last + 1) * window)
}
