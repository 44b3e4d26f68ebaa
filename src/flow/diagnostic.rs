//! What the loader and checker report: a message at a place in a file,
//! with a hint saying what to do, plus the "did you mean" helpers.

use std::fmt;

/// One problem in a flow file (or a file it refers to).
///
/// Displays as `file:line:col: message`, followed by `\n  hint: ...` when
/// there is a hint, the form editors and terminals turn into links. Line
/// and column are 1-based; column counts characters. A problem with no
/// place in the file (it cannot be read) has line and column 0 and displays
/// as `file: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Edit distance counting an insertion, deletion, substitution or swap of
/// two neighbours as one (optimal string alignment), so `exmaples` is one
/// edit from `examples`, as a reader would count it.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// The candidate closest to `wrong`, if it is close enough to be a typo:
/// about a third of the word's length in edits (one for words up to four
/// characters, two from five: `sails` for `sales`). Ties go to
/// the earlier candidate, so the answer is stable. Case is ignored.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    let allowed = ((wrong.chars().count() + 1) / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(&wrong_lower, &candidate.to_lowercase());
        if distance <= allowed && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// `did you mean "x"? ` when something is close, then `what: a, b, c`
/// (or `no what are defined` when there are none).
pub fn suggestion_hint<'a>(
    wrong: &str,
    what: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    let names: Vec<&str> = candidates.into_iter().collect();
    let listing = if names.is_empty() {
        format!("no {what} are defined")
    } else {
        format!("{what}: {}", names.join(", "))
    };
    match closest(wrong, names.iter().copied()) {
        Some(near) => format!("did you mean \"{near}\"? {listing}"),
        None => listing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_file_line_col_message_then_hint() {
        let d = Diagnostic {
            file: "flows/support.yaml".into(),
            line: 12,
            column: 5,
            message: "unknown destination \"biling\"".into(),
            hint: Some("did you mean \"billing\"?".into()),
        };
        assert_eq!(
            d.to_string(),
            "flows/support.yaml:12:5: unknown destination \"biling\"\n  hint: did you mean \"billing\"?"
        );
        let no_place = Diagnostic {
            line: 0,
            column: 0,
            hint: None,
            message: "cannot read the file".into(),
            ..d
        };
        assert_eq!(
            no_place.to_string(),
            "flows/support.yaml: cannot read the file"
        );
    }

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("biling", "billing"), 1);
        assert_eq!(edit_distance("exmaples", "examples"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_only_suggests_likely_typos() {
        let names = ["billing", "support", "sales"];
        assert_eq!(closest("biling", names), Some("billing"));
        assert_eq!(closest("Sales", names), Some("sales"));
        assert_eq!(closest("sails", names), Some("sales"));
        assert_eq!(closest("weather", names), None);
        assert_eq!(closest("bob", ["carl"]), None);
    }

    #[test]
    fn hint_lists_candidates_with_or_without_a_guess() {
        assert_eq!(
            suggestion_hint("biling", "destinations", ["billing", "sales"]),
            "did you mean \"billing\"? destinations: billing, sales"
        );
        assert_eq!(
            suggestion_hint("zzz", "destinations", ["billing"]),
            "destinations: billing"
        );
        assert_eq!(
            suggestion_hint("zzz", "nodes", std::iter::empty::<&str>()),
            "no nodes are defined"
        );
    }
}
