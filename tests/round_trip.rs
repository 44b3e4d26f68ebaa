//! Speech out and back in: Piper synthesises a caller sentence by sentence,
//! the simulated telephone line degrades it, Whisper transcribes it.

mod common;

use common::*;
use switchboard::audio::telephone::TelephoneChannel;
use switchboard::audio::{read_file, SampleRate, Samples};
use switchboard::models::verified_path;
use switchboard::speech::stt::{load_default, SpeechToText, TranscribeOptions, WhisperConfig};
use switchboard::speech::text::word_errors;
use switchboard::speech::tts::{speak, PiperTts};

#[test]
fn tts_then_telephone_then_stt_gives_back_the_words() {
    let _cpu = cpu_lock();
    let m = models();
    let tts = PiperTts::load(
        &verified_path(&m, "piper-joe").unwrap(),
        &verified_path(&m, "piper-joe-config").unwrap(),
        1,
    )
    .unwrap();
    // The recogniser that ships: tiny.en, with base re-decoding what it
    // is unsure of. (Piper's synthesis is random, so tiny.en alone lands
    // either side of the bound from one run to the next.)
    let stt = load_default(&m, WhisperConfig::default()).unwrap();

    // Four sentences, so that one word Piper renders ambiguously at 8 kHz
    // (its synthesis is random) does not decide the outcome.
    let text = "My router stopped working this morning. Can you send a technician? \
                I would also like to pay my last bill. Please call me back on my mobile.";
    let mut caller = Samples::new(SampleRate(22_050), Vec::new());
    let mut pieces = 0;
    for sentence in speak(&tts, text, SampleRate(22_050)) {
        let sentence = sentence.unwrap();
        assert!(
            sentence.audio.duration().as_secs_f32() > 0.5,
            "{:?} is too short",
            sentence.text
        );
        assert!(
            sentence.audio.rms_dbfs() > -35.0,
            "{:?} is too quiet",
            sentence.text
        );
        pieces += 1;
        caller.extend(&sentence.audio);
    }
    assert_eq!(
        pieces, 4,
        "the text should be synthesised one sentence at a time"
    );

    let line = TelephoneChannel::default().transmit(&caller);
    assert_eq!(line.rate, SampleRate::TELEPHONE);
    let heard = stt
        .transcribe(&line, &TranscribeOptions::default())
        .unwrap();
    let (errors, words) = word_errors(text, &heard.text);
    println!("{text:?} -> {:?}: {errors}/{words} word errors", heard.text);
    // At most 2 words in 11, as when this test had one sentence pair.
    assert!(
        errors * 11 <= words * 2,
        "round trip lost too much: {:?}",
        heard.text
    );
}

#[test]
fn say_writes_8khz_telephone_audio() {
    let dir = temp_dir("say");
    let out_path = dir.join("out.wav");
    let out = switchboard(&[
        "say",
        "Thank you for calling Acme.",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let audio = read_file(&out_path).unwrap();
    assert_eq!(audio.rate, SampleRate::TELEPHONE);
    assert!(audio.duration().as_secs_f32() > 1.0);
    assert!(audio.rms_dbfs() > -35.0);
    std::fs::remove_dir_all(&dir).unwrap();
}
