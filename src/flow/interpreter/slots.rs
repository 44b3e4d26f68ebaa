//! Slot values from what the caller says or keys, normalised so routing
//! and records see one spelling:
//!
//! | Type | Spoken | Keyed | Value |
//! |---|---|---|---|
//! | `digits` | "four four one zero", "forty four ten", "4410", "double four one oh" | digits, `#` ends, `*` starts again | `4410` |
//! | `account_number` | as digits; a word mixing letters and digits is kept (`AB1234`) | as digits | `AB1234` |
//! | `yes_no` | yes, yeah, sure, correct, that's right / no, nope, not, don't, wrong: the first one said counts | `1` yes, `2` no | `yes` / `no` |
//! | `date` | today, tomorrow, yesterday; "March 5th", "the fifth of March 2026"; `2026-03-05`; `3/5/2026` (month first) | eight digits, `YYYYMMDD` | `2026-03-05` |
//!
//! `min_digits`/`max_digits` count digits (letters of an account number do
//! not count). A date without a year is in the current year. Everything is
//! pure: "today" is the date the caller gives.

use chrono::{Datelike, Days, NaiveDate};

use crate::flow::model::{Slot, SlotKind};

/// Why a value was not accepted; the agent reprompts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotProblem {
    #[error("no {0} heard")]
    NotUnderstood(&'static str),
    #[error("{got} digits, fewer than {min}")]
    TooFewDigits { min: u32, got: usize },
    #[error("{got} digits, more than {max}")]
    TooManyDigits { max: u32, got: usize },
    #[error("no such date")]
    NoSuchDate,
}

/// Where keying a slot stands after one more key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyed {
    /// More keys are expected (or `#`).
    Pending,
    /// The value is complete.
    Done(String),
    /// The keys make no value; the agent reprompts.
    Rejected(SlotProblem),
}

/// The value of `slot` in an utterance.
pub fn from_speech(slot: &Slot, text: &str, today: NaiveDate) -> Result<String, SlotProblem> {
    match slot.kind {
        SlotKind::Digits => {
            let digits: String = number_words(text, false).concat();
            check_digits(slot, digits, "digits")
        }
        SlotKind::AccountNumber => {
            let value: String = number_words(text, true).concat();
            check_digits(slot, value, "account number")
        }
        SlotKind::YesNo => yes_or_no(text).ok_or(SlotProblem::NotUnderstood("yes or no")),
        SlotKind::Date => date(text, today),
    }
}

/// Adds one key to `keyed` (the keys so far for this slot) and says where
/// the value stands.
pub fn from_key(slot: &Slot, keyed: &mut String, key: char) -> Keyed {
    match (slot.kind, key) {
        (SlotKind::YesNo, '1') => Keyed::Done("yes".into()),
        (SlotKind::YesNo, '2') => Keyed::Done("no".into()),
        (SlotKind::YesNo, _) => Keyed::Rejected(SlotProblem::NotUnderstood("yes or no")),
        (_, '*') => {
            keyed.clear();
            Keyed::Pending
        }
        (_, '#') => match finish_keys(slot, keyed) {
            Ok(value) => Keyed::Done(value),
            Err(problem) => Keyed::Rejected(problem),
        },
        (_, digit) if digit.is_ascii_digit() => {
            keyed.push(digit);
            let complete = match slot.kind {
                SlotKind::Date => keyed.len() >= 8,
                _ => slot
                    .max_digits
                    .is_some_and(|max| keyed.len() >= max as usize),
            };
            if complete {
                match finish_keys(slot, keyed) {
                    Ok(value) => Keyed::Done(value),
                    Err(problem) => Keyed::Rejected(problem),
                }
            } else {
                Keyed::Pending
            }
        }
        _ => Keyed::Rejected(SlotProblem::NotUnderstood(what(slot.kind))),
    }
}

/// The value of the keys so far, when the caller ends with `#` or stops
/// keying (the no-input timeout).
pub fn finish_keys(slot: &Slot, keyed: &str) -> Result<String, SlotProblem> {
    match slot.kind {
        SlotKind::YesNo => Err(SlotProblem::NotUnderstood("yes or no")),
        SlotKind::Date => {
            let number = |range: std::ops::Range<usize>| {
                keyed.get(range).and_then(|s| s.parse::<u32>().ok())
            };
            if keyed.len() != 8 {
                return Err(SlotProblem::NotUnderstood("date"));
            }
            match (number(0..4), number(4..6), number(6..8)) {
                (Some(year), Some(month), Some(day)) => {
                    ymd(i32::try_from(year).unwrap_or(0), month, day)
                }
                _ => Err(SlotProblem::NotUnderstood("date")),
            }
        }
        SlotKind::Digits | SlotKind::AccountNumber => {
            check_digits(slot, keyed.to_string(), what(slot.kind))
        }
    }
}

fn what(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Digits => "digits",
        SlotKind::AccountNumber => "account number",
        SlotKind::YesNo => "yes or no",
        SlotKind::Date => "date",
    }
}

fn check_digits(slot: &Slot, value: String, what: &'static str) -> Result<String, SlotProblem> {
    let got = value.chars().filter(char::is_ascii_digit).count();
    if got == 0 {
        return Err(SlotProblem::NotUnderstood(what));
    }
    if let Some(min) = slot.min_digits.filter(|min| got < *min as usize) {
        return Err(SlotProblem::TooFewDigits { min, got });
    }
    if let Some(max) = slot.max_digits.filter(|max| got > *max as usize) {
        return Err(SlotProblem::TooManyDigits { max, got });
    }
    Ok(value)
}

/// Lower-case words, split at spaces and punctuation (`-` and `,` too:
/// "4-4-1-0", "twenty-five", "4,410").
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn unit(word: &str) -> Option<u32> {
    Some(match word {
        "zero" | "nought" => 0,
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        _ => return None,
    })
}

fn teen(word: &str) -> Option<u32> {
    Some(match word {
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "thirteen" => 13,
        "fourteen" => 14,
        "fifteen" => 15,
        "sixteen" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        _ => return None,
    })
}

fn tens(word: &str) -> Option<u32> {
    Some(match word {
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        _ => return None,
    })
}

fn is_number_word(word: &str) -> bool {
    word.chars().all(|c| c.is_ascii_digit())
        || unit(word).is_some()
        || teen(word).is_some()
        || tens(word).is_some()
        || matches!(word, "double" | "triple" | "hundred")
}

/// The numbers said, as digit strings in order: digits, digit words,
/// "oh" between numbers, teens, tens with an optional unit, "double" and
/// "triple", "hundred". With `letters`, a word mixing letters and digits
/// is kept upper-cased (account numbers such as AB1234).
fn number_words(text: &str, letters: bool) -> Vec<String> {
    let words = words(text);
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str);
        let numeric_neighbour = |w: Option<&str>| w.is_some_and(is_number_word);
        if word.chars().all(|c| c.is_ascii_digit()) {
            out.push(word.to_string());
        } else if letters
            && word.chars().any(|c| c.is_ascii_digit())
            && word.chars().all(|c| c.is_ascii_alphanumeric())
        {
            out.push(word.to_uppercase());
        } else if let Some(u) = unit(word) {
            out.push(u.to_string());
        } else if matches!(word, "oh" | "o")
            && (numeric_neighbour(next) || (i > 0 && numeric_neighbour(Some(&words[i - 1]))))
        {
            out.push("0".into());
        } else if let Some(t) = teen(word) {
            out.push(t.to_string());
        } else if let Some(t) = tens(word) {
            match next.and_then(unit).filter(|u| *u > 0) {
                Some(u) => {
                    out.push((t + u).to_string());
                    i += 1;
                }
                None => out.push(t.to_string()),
            }
        } else if let (Some(times), Some(repeated)) = (
            match word {
                "double" => Some(2),
                "triple" => Some(3),
                _ => None,
            },
            next.and_then(|w| {
                unit(w)
                    .map(|u| u.to_string())
                    .or_else(|| matches!(w, "oh" | "o").then(|| "0".to_string()))
            }),
        ) {
            out.push(repeated.repeat(times));
            i += 1;
        } else if word == "hundred" {
            // "four hundred" is 400; "four hundred and ten" is 410.
            if let Some(last) = out.last_mut() {
                let rest: Vec<&str> = words[i + 1..]
                    .iter()
                    .map(String::as_str)
                    .skip_while(|w| *w == "and")
                    .collect();
                let below = match rest.first().copied() {
                    Some(w) if teen(w).is_some() => teen(w).map(|v| (v, 1)),
                    Some(w) if tens(w).is_some() => {
                        let t = tens(w).unwrap_or(0);
                        match rest.get(1).and_then(|w| unit(w)).filter(|u| *u > 0) {
                            Some(u) => Some((t + u, 2)),
                            None => Some((t, 1)),
                        }
                    }
                    Some(w) if unit(w).is_some_and(|u| u > 0) => unit(w).map(|v| (v, 1)),
                    _ => None,
                };
                match below {
                    Some((value, used)) => {
                        last.push_str(&format!("{value:02}"));
                        let skipped_and = words[i + 1..]
                            .iter()
                            .take_while(|w| w.as_str() == "and")
                            .count();
                        i += skipped_and + used;
                    }
                    None => last.push_str("00"),
                }
            }
        }
        i += 1;
    }
    out
}

const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "yea",
    "sure",
    "correct",
    "right",
    "affirmative",
    "absolutely",
    "ok",
    "okay",
    "exactly",
    "definitely",
    "indeed",
    "si",
    "sí",
];
const NO: &[&str] = &[
    "no",
    "nope",
    "nah",
    "not",
    "don't",
    "isn't",
    "negative",
    "wrong",
    "incorrect",
    "never",
];

/// `yes` or `no` by the first decisive word: "that's not right" is no,
/// "yes, no problem" is yes.
fn yes_or_no(text: &str) -> Option<String> {
    words(text).iter().find_map(|w| {
        let w = w.as_str();
        if NO.contains(&w) || w.ends_with("n't") {
            Some("no".to_string())
        } else if YES.contains(&w) {
            Some("yes".to_string())
        } else {
            None
        }
    })
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn month(word: &str) -> Option<u32> {
    let word = word.trim_end_matches('.');
    MONTHS
        .iter()
        .position(|m| *m == word || (word.len() >= 3 && m.starts_with(word)))
        .map(|i| i as u32 + 1)
}

fn ordinal_word(word: &str) -> Option<u32> {
    Some(match word {
        "first" => 1,
        "second" => 2,
        "third" => 3,
        "fourth" => 4,
        "fifth" => 5,
        "sixth" => 6,
        "seventh" => 7,
        "eighth" => 8,
        "ninth" => 9,
        "tenth" => 10,
        "eleventh" => 11,
        "twelfth" => 12,
        "thirteenth" => 13,
        "fourteenth" => 14,
        "fifteenth" => 15,
        "sixteenth" => 16,
        "seventeenth" => 17,
        "eighteenth" => 18,
        "nineteenth" => 19,
        "twentieth" => 20,
        "thirtieth" => 30,
        _ => return None,
    })
}

/// A day of the month at `words[i]`, and how many words it took: `5`,
/// `5th`, `fifth`, `twenty first`, `twenty-five`.
fn day_at(words: &[String], i: usize) -> Option<(u32, usize)> {
    let word = words.get(i)?.as_str();
    let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
    let suffix = &word[digits.len()..];
    if !digits.is_empty() && matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
        return digits
            .parse()
            .ok()
            .filter(|d| (1..=31).contains(d))
            .map(|d| (d, 1));
    }
    if let Some(d) = ordinal_word(word)
        .or_else(|| unit(word))
        .or_else(|| teen(word))
    {
        return Some((d, 1));
    }
    let t = tens(word)?;
    match words.get(i + 1).map(String::as_str) {
        Some(next) => match ordinal_word(next).or_else(|| unit(next)) {
            Some(u) if (1..10).contains(&u) => Some((t + u, 2)),
            _ => Some((t, 1)),
        },
        None => Some((t, 1)),
    }
}

fn ymd(year: i32, month: u32, day: u32) -> Result<String, SlotProblem> {
    NaiveDate::from_ymd_opt(year, month, day)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or(SlotProblem::NoSuchDate)
}

fn date(text: &str, today: NaiveDate) -> Result<String, SlotProblem> {
    let lower = text.to_lowercase();
    // Written forms first: 2026-03-05 and 3/5/2026 (month first).
    for token in lower.split(|c: char| c.is_whitespace() || matches!(c, ',' | '?' | '!')) {
        let token = token.trim_end_matches('.');
        let parts: Vec<&str> = token.split('-').collect();
        if parts.len() == 3 && parts[0].len() == 4 {
            if let (Ok(y), Ok(m), Ok(d)) = (parts[0].parse(), parts[1].parse(), parts[2].parse()) {
                return ymd(y, m, d);
            }
        }
        let parts: Vec<&str> = token.split('/').collect();
        if parts.len() == 3 || parts.len() == 2 {
            let numbers: Vec<Option<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
            if let [Some(m), Some(d), rest @ ..] = numbers.as_slice() {
                let year = match rest {
                    [Some(y)] if *y < 100 => 2000 + *y as i32,
                    [Some(y)] => *y as i32,
                    [] => today.year(),
                    _ => continue,
                };
                return ymd(year, *m, *d);
            }
        }
    }
    let words = words(&lower);
    for (word, offset) in [("today", 0i64), ("tomorrow", 1), ("yesterday", -1)] {
        if words.iter().any(|w| w == word) {
            let day = if offset >= 0 {
                today.checked_add_days(Days::new(offset.unsigned_abs()))
            } else {
                today.checked_sub_days(Days::new(offset.unsigned_abs()))
            };
            return day
                .map(|d| d.format("%Y-%m-%d").to_string())
                .ok_or(SlotProblem::NoSuchDate);
        }
    }
    let Some(at) = words.iter().position(|w| month(w).is_some()) else {
        return Err(SlotProblem::NotUnderstood("date"));
    };
    let month_number = month(&words[at]).unwrap_or(1);
    let skip_the = |i: usize| {
        if words.get(i).is_some_and(|w| w == "the") {
            i + 1
        } else {
            i
        }
    };
    // "March 5th", "March the fifth", then "5th of March", "the fifth of March".
    let after = day_at(&words, skip_the(at + 1)).map(|(d, used)| (d, skip_the(at + 1) + used));
    let before = || {
        let mut i = at.checked_sub(1)?;
        if words[i] == "of" {
            i = i.checked_sub(1)?;
        }
        // A two-word day ("twenty first") starts one word earlier.
        if i > 0 {
            if let Some((d, 2)) = day_at(&words, i - 1) {
                return Some((d, at + 1));
            }
        }
        day_at(&words, i).map(|(d, _)| (d, at + 1))
    };
    let (day, year_at) = after
        .or_else(before)
        .ok_or(SlotProblem::NotUnderstood("date"))?;
    let year = words
        .get(year_at)
        .filter(|w| w.len() == 4 && w.chars().all(|c| c.is_ascii_digit()))
        .and_then(|w| w.parse().ok())
        .unwrap_or(today.year());
    ymd(year, month_number, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(kind: SlotKind, min: Option<u32>, max: Option<u32>) -> Slot {
        Slot {
            name: "s".into(),
            kind,
            prompt: None,
            min_digits: min,
            max_digits: max,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 30).unwrap()
    }

    #[test]
    fn digits_are_read_from_words_and_numerals() {
        let four = slot(SlotKind::Digits, Some(4), Some(4));
        for said in [
            "4410",
            "four four one zero",
            "Forty four ten.",
            "double four one oh",
            "It's 4-4-1-0, please.",
            "extension forty-four ten",
            "forty four hundred and ten",
        ] {
            let got = number_words(said, false).concat();
            assert_eq!(got, "4410", "{said}");
        }
        assert_eq!(
            from_speech(&four, "four four one zero", today()).as_deref(),
            Ok("4410")
        );
        assert_eq!(
            from_speech(&four, "four hundred", today()),
            Err(SlotProblem::TooFewDigits { min: 4, got: 3 })
        );
        assert_eq!(
            from_speech(&four, "one two three four five", today()),
            Err(SlotProblem::TooManyDigits { max: 4, got: 5 })
        );
        assert_eq!(
            from_speech(&four, "oh I don't know", today()),
            Err(SlotProblem::NotUnderstood("digits"))
        );
        assert_eq!(number_words("four hundred", false).concat(), "400");
        assert_eq!(number_words("nine hundred twelve", false).concat(), "912");
    }

    #[test]
    fn account_numbers_keep_letters_in_words_with_digits() {
        let account = slot(SlotKind::AccountNumber, Some(6), None);
        assert_eq!(
            from_speech(&account, "It's ab123456.", today()).as_deref(),
            Ok("AB123456")
        );
        assert_eq!(
            from_speech(&account, "one two three", today()),
            Err(SlotProblem::TooFewDigits { min: 6, got: 3 })
        );
    }

    #[test]
    fn yes_and_no_by_the_first_decisive_word() {
        let yes_no = slot(SlotKind::YesNo, None, None);
        for (said, value) in [
            ("Yes, please.", "yes"),
            ("yeah that's correct", "yes"),
            ("That's not right.", "no"),
            ("No.", "no"),
            ("I don't think so", "no"),
            ("yes, no problem", "yes"),
        ] {
            assert_eq!(
                from_speech(&yes_no, said, today()).as_deref(),
                Ok(value),
                "{said}"
            );
        }
        assert!(from_speech(&yes_no, "maybe later", today()).is_err());
    }

    #[test]
    fn dates_in_words_and_numbers() {
        let date = slot(SlotKind::Date, None, None);
        for (said, value) in [
            ("March 5th", "2026-03-05"),
            ("the fifth of March 2027", "2027-03-05"),
            ("march the twenty first", "2026-03-21"),
            ("On the twenty first of March.", "2026-03-21"),
            ("2025-12-24", "2025-12-24"),
            ("3/5/2026", "2026-03-05"),
            ("tomorrow", "2026-01-31"),
            ("yesterday please", "2026-01-29"),
            ("Dec 31", "2026-12-31"),
        ] {
            assert_eq!(
                from_speech(&date, said, today()).as_deref(),
                Ok(value),
                "{said}"
            );
        }
        assert_eq!(
            from_speech(&date, "February 30th", today()),
            Err(SlotProblem::NoSuchDate)
        );
        assert_eq!(
            from_speech(&date, "some day soon", today()),
            Err(SlotProblem::NotUnderstood("date"))
        );
    }

    #[test]
    fn keys_fill_slots() {
        let four = slot(SlotKind::Digits, Some(4), Some(4));
        let mut keyed = String::new();
        assert_eq!(from_key(&four, &mut keyed, '4'), Keyed::Pending);
        assert_eq!(from_key(&four, &mut keyed, '*'), Keyed::Pending);
        assert!(keyed.is_empty(), "* starts again");
        for key in ['4', '4', '1'] {
            assert_eq!(from_key(&four, &mut keyed, key), Keyed::Pending);
        }
        assert_eq!(from_key(&four, &mut keyed, '0'), Keyed::Done("4410".into()));

        let open = slot(SlotKind::Digits, Some(2), None);
        let mut keyed = String::new();
        assert_eq!(from_key(&open, &mut keyed, '7'), Keyed::Pending);
        assert_eq!(
            from_key(&open, &mut keyed, '#'),
            Keyed::Rejected(SlotProblem::TooFewDigits { min: 2, got: 1 })
        );
        assert_eq!(finish_keys(&open, "71").as_deref(), Ok("71"));

        let yes_no = slot(SlotKind::YesNo, None, None);
        assert_eq!(
            from_key(&yes_no, &mut String::new(), '1'),
            Keyed::Done("yes".into())
        );
        assert_eq!(
            from_key(&yes_no, &mut String::new(), '2'),
            Keyed::Done("no".into())
        );
        assert!(matches!(
            from_key(&yes_no, &mut String::new(), '5'),
            Keyed::Rejected(_)
        ));

        let date = slot(SlotKind::Date, None, None);
        let mut keyed = String::new();
        for key in "2026030".chars() {
            assert_eq!(from_key(&date, &mut keyed, key), Keyed::Pending);
        }
        assert_eq!(
            from_key(&date, &mut keyed, '5'),
            Keyed::Done("2026-03-05".into())
        );
        assert_eq!(finish_keys(&date, "20261345"), Err(SlotProblem::NoSuchDate));
    }
}
