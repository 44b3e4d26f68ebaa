//! Text utilities for speech: sentence splitting for TTS, repetition
//! detection for STT, and word error rate for tests and benchmarks.

/// Splits text into sentences for synthesis, so the first can play while the
/// rest is synthesised. Breaks after `.`, `!` or `?` followed by a space,
/// but not after common abbreviations or inside numbers such as `3.5`.
pub fn sentences(text: &str) -> Vec<String> {
    const ABBREVIATIONS: &[&str] = &[
        "mr.", "mrs.", "ms.", "dr.", "st.", "e.g.", "i.e.", "etc.", "vs.", "no.",
    ];
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        current.push(c);
        if matches!(c, '.' | '!' | '?') {
            let next = chars.get(i + 1);
            let at_break = next.is_none_or(|n| n.is_whitespace());
            let last_word = current
                .split_whitespace()
                .last()
                .unwrap_or("")
                .to_lowercase();
            if at_break && !(c == '.' && ABBREVIATIONS.contains(&last_word.as_str())) {
                let s = current.trim();
                if !s.is_empty() {
                    out.push(s.to_string());
                }
                current.clear();
            }
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Lowercase words with punctuation stripped and digits spelled out, so
/// "Two" and "2," compare equal.
pub fn normalized_words(text: &str) -> Vec<String> {
    const DIGITS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    let mut words = Vec::new();
    for raw in text.split_whitespace() {
        let cleaned: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '\'')
            .flat_map(char::to_lowercase)
            .collect();
        let cleaned = cleaned.trim_matches('\'').to_string();
        if cleaned.is_empty() {
            continue;
        }
        if cleaned.chars().all(|c| c.is_ascii_digit()) {
            words.extend(
                cleaned
                    .chars()
                    .map(|d| DIGITS[d as usize - '0' as usize].to_string()),
            );
        } else {
            words.push(cleaned);
        }
    }
    words
}

/// Word-level edit distance between a reference and a hypothesis, and the
/// number of reference words: WER = errors / reference words.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = normalized_words(reference);
    let h = normalized_words(hypothesis);
    let mut previous: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut row = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitution = previous[j] + usize::from(rw != hw);
            row[j + 1] = substitution.min(previous[j + 1] + 1).min(row[j] + 1);
        }
        previous = row;
    }
    (previous[h.len()], r.len())
}

/// True if the words contain a run that repeats back to back: a phrase of
/// four or more words twice, of two or three words three times, or one word
/// four times. This is how a recogniser looping on a short window shows.
pub fn is_repetitive(text: &str) -> bool {
    find_repetition(&normalized_words(text)).is_some()
}

/// Removes back-to-back repeats of the kind [`is_repetitive`] finds, keeping
/// the first copy, and a cut-off copy at the very end (a loop stopped by the
/// token budget). Works on the original words so punctuation survives.
pub fn collapse_repetitions(text: &str) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    loop {
        let normalized: Vec<String> = words
            .iter()
            .map(|w| normalized_words(w).join(" "))
            .collect();
        let Some((start, n, copies)) = find_repetition(&normalized) else {
            break;
        };
        let after = start + n * copies;
        let tail = &normalized[after..];
        // A copy cut off by the budget: whole words of the unit, the last
        // possibly cut mid-word.
        let cut_copy = !tail.is_empty()
            && tail.len() <= n
            && tail
                .iter()
                .zip(&normalized[start..])
                .enumerate()
                .all(|(i, (t, u))| {
                    if i + 1 == tail.len() {
                        !t.is_empty() && u.starts_with(t.as_str())
                    } else {
                        t == u
                    }
                });
        let end = if cut_copy { words.len() } else { after };
        words.drain(start + n..end);
    }
    words.join(" ")
}

/// Drops a sentence that says again, word for word, the one before it
/// ("Operator. Operator. Operator." -> "Operator."). A recogniser looping
/// on a short utterance writes whole sentences again, too few or too
/// short for [`is_repetitive`], which needs one word four times so as to
/// keep "no, no, no"; a caller who says a sentence twice means it once.
pub fn collapse_repeated_sentences(text: &str) -> String {
    let all = sentences(text);
    let mut kept: Vec<&str> = Vec::new();
    let mut last: Vec<String> = Vec::new();
    for sentence in &all {
        let words = normalized_words(sentence);
        if !words.is_empty() && words == last {
            continue;
        }
        last = words;
        kept.push(sentence);
    }
    if kept.len() == all.len() {
        return text.to_string();
    }
    kept.join(" ")
}

/// A loop the token budget stopped inside its second copy: the text ends a
/// sentence, then starts over with its own first words and breaks off
/// ("I want to cancel my plan. I want to can"). Returns the first copy.
/// Only a decode that used up its budget can be cut like this; a caller
/// who repeats themselves says the whole sentence again, which
/// [`collapse_repetitions`] handles.
pub fn cut_restart(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let normalized: Vec<String> = words
        .iter()
        .map(|w| normalized_words(w).join(" "))
        .collect();
    // The earliest sentence end after which the rest is the beginning again
    // (at least two words of it, the last possibly cut mid-word).
    (1..words.len()).find_map(|k| {
        let ends_sentence = words[k - 1].ends_with(['.', '?', '!']);
        let tail = &normalized[k..];
        let restarts = tail.len() >= 2
            && tail.len() <= k
            && tail.iter().zip(&normalized).enumerate().all(|(i, (t, u))| {
                if i + 1 == tail.len() {
                    !t.is_empty() && u.starts_with(t.as_str())
                } else {
                    t == u
                }
            });
        (ends_sentence && restarts).then(|| words[..k].join(" "))
    })
}

/// Finds (start, phrase length, copies) of the first back-to-back repeat.
fn find_repetition(words: &[String]) -> Option<(usize, usize, usize)> {
    let max_n = words.len() / 2;
    for n in (1..=max_n).rev() {
        let needed = match n {
            1 => 4,
            2 | 3 => 3,
            _ => 2,
        };
        for start in 0..words.len() {
            let mut copies = 1;
            while start + (copies + 1) * n <= words.len()
                && words[start..start + n] == words[start + copies * n..start + (copies + 1) * n]
            {
                copies += 1;
            }
            if copies >= needed {
                return Some((start, n, copies));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_said_again_word_for_word_is_written_once() {
        assert_eq!(
            collapse_repeated_sentences("Operator. Operator. Operator."),
            "Operator."
        );
        assert_eq!(
            collapse_repeated_sentences("I need help with my bill. I need help with my bill!"),
            "I need help with my bill."
        );
        assert_eq!(
            collapse_repeated_sentences("Billing. No, support. Billing."),
            "Billing. No, support. Billing."
        );
        assert_eq!(collapse_repeated_sentences("no, no, no"), "no, no, no");
        assert_eq!(collapse_repeated_sentences(""), "");
    }

    #[test]
    fn a_loop_cut_by_the_budget_is_its_first_copy() {
        assert_eq!(
            cut_restart("I would like to sign up for a new plan. I would like to sign up")
                .as_deref(),
            Some("I would like to sign up for a new plan.")
        );
        assert_eq!(
            cut_restart("I wanted to update the card. I wanted to upd").as_deref(),
            Some("I wanted to update the card.")
        );
        // Not a restart: other words, one word only, no sentence end.
        assert_eq!(cut_restart("I want to cancel. I want a refund"), None);
        assert_eq!(cut_restart("Billing please. Billing"), None);
        assert_eq!(cut_restart("I want to go I want to"), None);
        assert_eq!(cut_restart(""), None);
    }

    #[test]
    fn splits_sentences_but_not_abbreviations_or_numbers() {
        assert_eq!(
            sentences("Hello Dr. Smith. Your plan costs 3.5 dollars! Anything else?"),
            vec![
                "Hello Dr. Smith.",
                "Your plan costs 3.5 dollars!",
                "Anything else?"
            ]
        );
        assert_eq!(sentences("no ending"), vec!["no ending"]);
        assert!(sentences("  ").is_empty());
    }

    #[test]
    fn word_error_rate_counts_edits() {
        assert_eq!(
            word_errors("I want to pay my bill", "i want to pay my bill."),
            (0, 6)
        );
        assert_eq!(
            word_errors("I want to pay my bill", "I want pay my bills"),
            (2, 6)
        );
        assert_eq!(word_errors("press 2", "press two"), (0, 2));
        assert_eq!(word_errors("", "noise"), (1, 0));
    }

    #[test]
    fn finds_and_collapses_loops() {
        assert!(is_repetitive("I need help. I need help. I need help."));
        assert!(is_repetitive("my internet is down my internet is down"));
        assert!(!is_repetitive("no, no, I said billing"));
        // A caller repeating a phrase is flagged too; the cost is a second
        // decoding pass, and collapsing leaves the meaning intact.
        assert!(is_repetitive("I want to cancel, I want to cancel my plan"));
        assert_eq!(
            collapse_repetitions("My router is broken. My router is broken. My router is broken."),
            "My router is broken."
        );
        assert_eq!(collapse_repetitions("billing please"), "billing please");
        assert_eq!(
            collapse_repetitions("Do you sell pizza? Do you sell pizza? Do you sell pizza? Do you"),
            "Do you sell pizza?"
        );
        assert_eq!(
            collapse_repetitions("Operator. Operator. Operator. Operator. Oper"),
            "Operator."
        );
    }
}
