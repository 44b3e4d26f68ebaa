//! Whether a transcript reads as a finished turn: the words of a caller
//! who paused can tell the endpointer more than the pause alone.
//!
//! "I'd like a refund." followed by a short silence is most likely all the
//! caller means to say; "I'd like to talk to someone about my" is not,
//! however long the pause. The speculative recognition of the turn as it
//! would end (see [`super::EndpointerEvent::Partial`]) gives the driver
//! those words before the silence has run out; it tells the endpointer
//! what they read as ([`super::Endpointer::handle_reading`]), which then
//! ends a finished turn sooner and waits longer for an unfinished one.
//!
//! A pure function of the text: Whisper writes the punctuation of what it
//! heard (a full stop or a question mark where the sentence ended, a comma
//! or an ellipsis where it trailed off), and a turn that ends on a word
//! that needs another after it (an article, a conjunction, a preposition,
//! a possessive, a filler) is unfinished whatever the punctuation says.

/// What the words of a turn suggest about its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnReading {
    /// A complete sentence: the caller has most likely finished.
    Finished,
    /// The caller stopped mid-phrase: wait longer for the rest.
    Unfinished,
}

/// Words that need another after them, in English and Spanish (the
/// languages of the shipped models and flow), lower case.
const DANGLING: &[&str] = &[
    // English
    "a", "about", "an", "and", "as", "at", "because", "but", "by", "for", "from", "her", "his", "i",
    "if", "in", "into", "is", "my", "of", "on", "or", "our", "so", "than", "the", "their", "to",
    "um", "uh", "er", "erm", "hmm", "with", "your", // Spanish
    "con", "de", "del", "el", "en", "la", "las", "los", "mi", "o", "para", "pero", "por", "que",
    "su", "un", "una", "y",
];

/// Reads `text` (a transcript of the turn so far); `None` when it says
/// nothing either way (no words, or no punctuation to go by).
pub fn read(text: &str) -> Option<TurnReading> {
    let text = text.trim();
    let last_word = text
        .split_whitespace()
        .next_back()?
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
        .to_lowercase();
    if last_word.is_empty() {
        return None;
    }
    if DANGLING.contains(&last_word.as_str()) {
        return Some(TurnReading::Unfinished);
    }
    if text.ends_with("...") || text.ends_with('…') || text.ends_with(',') || text.ends_with('-')
    {
        return Some(TurnReading::Unfinished);
    }
    if text.ends_with(['.', '?', '!']) {
        return Some(TurnReading::Finished);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_read_finished() {
        assert_eq!(read("I would like a refund."), Some(TurnReading::Finished));
        assert_eq!(
            read(" Can I speak to a person? "),
            Some(TurnReading::Finished)
        );
        assert_eq!(read("Operator!"), Some(TurnReading::Finished));
        assert_eq!(
            read("Quiero pagar mi factura."),
            Some(TurnReading::Finished)
        );
    }

    #[test]
    fn trailing_off_reads_unfinished() {
        assert_eq!(
            read("I want to talk about my"),
            Some(TurnReading::Unfinished)
        );
        assert_eq!(
            read("I was charged twice and..."),
            Some(TurnReading::Unfinished)
        );
        assert_eq!(
            read("My internet keeps dropping,"),
            Some(TurnReading::Unfinished)
        );
        // A full stop after a dangling word is Whisper closing the segment.
        assert_eq!(read("I need help with the."), Some(TurnReading::Unfinished));
        assert_eq!(read("Um."), Some(TurnReading::Unfinished));
        assert_eq!(read("Quiero hablar con"), Some(TurnReading::Unfinished));
    }

    #[test]
    fn no_words_or_no_punctuation_say_nothing() {
        assert_eq!(read(""), None);
        assert_eq!(read("  ...  "), None);
        assert_eq!(read("one two three four"), None);
    }
}
