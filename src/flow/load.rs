//! Reading a flow file: YAML syntax, structure, then the semantic checks,
//! with a line and column for every problem.
//!
//! serde_yaml reads the structure but stops at the first error and knows no
//! positions once a value is deserialised, so loading runs in three passes:
//!
//! 1. yaml-rust2's marked event parser records where every key and value of
//!    the document starts (a [`SourceMap`] keyed by path, like
//!    `nodes.main.intents[0].examples`), reports syntax errors and
//!    duplicate keys (which serde_yaml would silently merge).
//! 2. serde_yaml deserialises the [`Flow`]. An unknown key is reported, then
//!    blanked out of the text (replaced by spaces, so every other position
//!    stays put) and deserialisation retried, so all unknown keys of a file
//!    are reported at once. Any other structural error is reported and ends
//!    loading; after an unknown key was blanked it is not reported, since it
//!    may only be a consequence of the blanking.
//! 3. [`check`] runs every semantic check on the
//!    flow and reports every problem, placed with the source map.

use std::collections::HashMap;
use std::path::Path;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::caller::CsvDirectory;
use super::check::check;
use super::diagnostic::{closest, Diagnostic};
use super::model::Flow;

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A place in a file: 1-based line, 1-based column in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    fn from_marker(marker: Marker) -> Position {
        // yaml-rust2 markers: 1-based lines, 0-based columns.
        Position {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// Where one key/value pair (or sequence item) sits in the text.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The key, for mapping entries.
    key: Option<Position>,
    /// The start of the value (for a mapping, its first key).
    value: Position,
    /// Character offsets of the key and of whatever follows the value,
    /// the span blanked out when the key is unknown or duplicated.
    start: usize,
    end: Option<usize>,
}

/// Positions of every key and value of a YAML document, by path.
#[derive(Debug, Default)]
pub struct SourceMap {
    entries: HashMap<Vec<Segment>, Entry>,
}

impl SourceMap {
    /// Where the value at `path` starts; for a path not in the file (a key
    /// left out), the nearest enclosing value that is.
    pub fn value(&self, path: &[Segment]) -> Position {
        self.find(path).map_or(FILE_START, |e| e.value)
    }

    /// Where the key of the entry at `path` is (the value for a sequence
    /// item); falls back like [`SourceMap::value`].
    pub fn key(&self, path: &[Segment]) -> Position {
        self.find(path)
            .map_or(FILE_START, |e| e.key.unwrap_or(e.value))
    }

    /// Whether `path` is written in the file.
    pub fn contains(&self, path: &[Segment]) -> bool {
        self.entries.contains_key(path)
    }

    fn find(&self, path: &[Segment]) -> Option<&Entry> {
        (0..=path.len())
            .rev()
            .find_map(|len| self.entries.get(&path[..len]))
    }

    fn entry_with_key_at(&self, at: Position) -> Option<(&[Segment], &Entry)> {
        self.entries
            .iter()
            .find(|(_, e)| e.key == Some(at))
            .map(|(path, e)| (path.as_slice(), e))
    }
}

const FILE_START: Position = Position { line: 1, column: 1 };

/// Builds paths for [`SourceMap`] lookups: `path(&["nodes", name]).index(0)`.
#[derive(Debug, Clone, Default)]
pub struct PathBuf(pub Vec<Segment>);

impl PathBuf {
    /// A path of keys.
    pub fn of(keys: &[&str]) -> PathBuf {
        PathBuf(
            keys.iter()
                .map(|k| Segment::Key((*k).to_string()))
                .collect(),
        )
    }

    /// This path followed by a key.
    pub fn key(&self, key: &str) -> PathBuf {
        let mut next = self.0.clone();
        next.push(Segment::Key(key.to_string()));
        PathBuf(next)
    }

    /// This path followed by a sequence index.
    pub fn index(&self, index: usize) -> PathBuf {
        let mut next = self.0.clone();
        next.push(Segment::Index(index));
        PathBuf(next)
    }
}

impl std::ops::Deref for PathBuf {
    type Target = [Segment];
    fn deref(&self) -> &[Segment] {
        &self.0
    }
}

/// Reads, parses and checks a flow file. Every problem comes back, each
/// with its place in the file; a customer CSV named by the flow is read
/// and checked too (relative to the flow file).
pub fn load_flow(path: &Path) -> Result<Flow, Vec<Diagnostic>> {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            return Err(vec![Diagnostic {
                file: name,
                line: 0,
                column: 0,
                message: format!("cannot read the flow: {e}"),
                hint: None,
            }])
        }
    };
    let (flow, mut diagnostics, map) = parse_and_check(&name, &text);
    if let (Some(flow), Some(map)) = (&flow, &map) {
        diagnostics.extend(check_customer_file(path, &name, flow, map));
    }
    finish(flow, diagnostics)
}

/// Parses and checks flow text; `name` is the file name used in
/// diagnostics. Touches no files (a customer CSV is not read).
pub fn load_str(name: &str, text: &str) -> Result<Flow, Vec<Diagnostic>> {
    let (flow, diagnostics, _) = parse_and_check(name, text);
    finish(flow, diagnostics)
}

fn finish(flow: Option<Flow>, mut diagnostics: Vec<Diagnostic>) -> Result<Flow, Vec<Diagnostic>> {
    diagnostics.sort();
    diagnostics.dedup();
    match flow {
        Some(flow) if diagnostics.is_empty() => Ok(flow),
        _ => Err(diagnostics),
    }
}

/// All three passes; the flow is returned even when there are problems so
/// callers can add checks of their own.
fn parse_and_check(name: &str, text: &str) -> (Option<Flow>, Vec<Diagnostic>, Option<SourceMap>) {
    let mut parsed = parse_document::<Flow>(
        name,
        text,
        "a flow needs at least name, greeting, start and nodes",
    );
    let mut diagnostics = std::mem::take(&mut parsed.diagnostics);
    if let (Some(flow), Some(map)) = (&parsed.value, &parsed.map) {
        let semantic = check(flow, map, name);
        diagnostics.extend(
            semantic
                .into_iter()
                .filter(|d| !parsed.follows_unknown_key(d)),
        );
    }
    (parsed.value, diagnostics, parsed.map)
}

/// A YAML document read by [`parse_document`]: the value if its structure
/// is right, every problem found on the way, and where everything is.
pub(crate) struct Parsed<T> {
    pub value: Option<T>,
    pub diagnostics: Vec<Diagnostic>,
    pub map: Option<SourceMap>,
    /// Where the mappings that held an unknown key are (their key and their
    /// first entry): a semantic problem reported there ("intent has no
    /// examples") may just be the misspelt key ("exmaples") missing, so it
    /// is not reported twice.
    blanked_parents: Vec<Position>,
}

impl<T> Parsed<T> {
    /// Whether a semantic problem sits where an unknown key was blanked out,
    /// so it may only follow from it.
    pub fn follows_unknown_key(&self, d: &Diagnostic) -> bool {
        self.blanked_parents.contains(&Position {
            line: d.line,
            column: d.column,
        })
    }
}

/// Passes 1 and 2 for any of our YAML formats (flows, flow tests): syntax,
/// duplicate keys and structure, with every unknown key reported at once.
/// `empty_hint` says what the smallest valid file holds.
pub(crate) fn parse_document<T: serde::de::DeserializeOwned>(
    name: &str,
    text: &str,
    empty_hint: &str,
) -> Parsed<T> {
    let at = |position: Position, message: String, hint: Option<String>| Diagnostic {
        file: name.to_string(),
        line: position.line,
        column: position.column,
        message,
        hint,
    };
    let failed = |diagnostic: Diagnostic| Parsed {
        value: None,
        diagnostics: vec![diagnostic],
        map: None,
        blanked_parents: Vec::new(),
    };

    let outline = match outline(text) {
        Ok(outline) => outline,
        Err(syntax) => return failed(at(syntax.position, syntax.message, None)),
    };
    if outline.documents == 0 {
        let hint = Some(empty_hint.to_string());
        return failed(at(FILE_START, "the file is empty".into(), hint));
    }
    if outline.documents > 1 {
        let hint = Some("a file holds one document; remove the extra `---`".to_string());
        return failed(at(FILE_START, "more than one YAML document".into(), hint));
    }
    let mut diagnostics: Vec<Diagnostic> = outline
        .duplicates
        .iter()
        .map(|d| {
            let what = duplicate_kind(&d.parent);
            at(
                d.position,
                format!("duplicate {what} \"{}\"", d.key),
                Some(format!("first defined at line {}", d.first.line)),
            )
        })
        .collect();

    let mut chars: Vec<char> = text.chars().collect();
    for d in &outline.duplicates {
        blank(&mut chars, d.start, d.end);
    }

    let mut blanked_parents: Vec<Position> = Vec::new();
    // Each round blanks one key, so this ends; the bound is a guard.
    for _ in 0..=chars.len() {
        let current: String = chars.iter().collect();
        match serde_yaml::from_str::<T>(&current) {
            Ok(value) => {
                return Parsed {
                    value: Some(value),
                    diagnostics,
                    map: Some(outline.map),
                    blanked_parents,
                };
            }
            Err(error) => {
                let structural = StructuralError::from_serde(&error);
                let position = structural.position.unwrap_or(FILE_START);
                if structural.unknown_key.is_some() {
                    diagnostics.push(at(position, structural.message, structural.hint));
                    match outline.map.entry_with_key_at(position) {
                        Some((
                            path,
                            Entry {
                                start,
                                end: Some(end),
                                ..
                            },
                        )) => {
                            blank(&mut chars, *start, *end);
                            let parent = &path[..path.len().saturating_sub(1)];
                            blanked_parents.push(outline.map.value(parent));
                            blanked_parents.push(outline.map.key(parent));
                        }
                        // Not a key we recorded (it came through an
                        // alias): report it and stop here.
                        _ => break,
                    }
                } else {
                    if blanked_parents.is_empty() {
                        diagnostics.push(at(position, structural.message, structural.hint));
                    }
                    break;
                }
            }
        }
    }
    Parsed {
        value: None,
        diagnostics,
        map: Some(outline.map),
        blanked_parents,
    }
}

/// What a duplicated key is called in the message, by its section.
fn duplicate_kind(parent: &[Segment]) -> &'static str {
    match parent {
        [Segment::Key(section)] => match section.as_str() {
            "nodes" => "node",
            "destinations" => "destination",
            "groups" => "group",
            "schedules" => "schedule",
            "trunks" => "trunk",
            _ => "key",
        },
        [.., Segment::Key(k)] if k == "keys" => "DTMF key",
        [.., Segment::Key(k)] if k == "rates" => "rate prefix",
        _ => "key",
    }
}

/// Replaces `chars[start..end]` with spaces, keeping line breaks so every
/// position after the span is unchanged.
fn blank(chars: &mut [char], start: usize, end: usize) {
    let end = end.min(chars.len());
    for c in chars.iter_mut().take(end).skip(start) {
        if *c != '\n' && *c != '\r' {
            *c = ' ';
        }
    }
}

/// A serde_yaml error turned into our wording.
struct StructuralError {
    position: Option<Position>,
    message: String,
    hint: Option<String>,
    unknown_key: Option<String>,
}

impl StructuralError {
    fn from_serde(error: &serde_yaml::Error) -> StructuralError {
        let position = error.location().map(|l| Position {
            line: l.line(),
            column: l.column(),
        });
        let mut text = error.to_string();
        if let Some(l) = error.location() {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(stripped) = text.strip_suffix(&suffix) {
                text = stripped.to_string();
            }
        }
        // serde_yaml prefixes the path ("nodes.main: missing field ..."); our
        // diagnostics carry the position instead.
        const STARTS: [&str; 7] = [
            "unknown field",
            "missing field",
            "unknown variant",
            "invalid type",
            "invalid value",
            "invalid length",
            "duplicate field",
        ];
        if let Some(cut) = STARTS.iter().filter_map(|s| text.find(s)).min() {
            text = text[cut..].to_string();
        }
        let mut result = StructuralError {
            position,
            message: text.clone(),
            hint: None,
            unknown_key: None,
        };
        if let Some(rest) = text.strip_prefix("unknown field ") {
            let (key, expected) = split_expected(rest);
            result.message = format!("unknown key \"{key}\"");
            result.hint = Some(valid_names_hint(&key, &expected, "valid keys"));
            result.unknown_key = Some(key);
        } else if let Some(rest) = text.strip_prefix("unknown variant ") {
            let (value, expected) = split_expected(rest);
            let is_step = expected.iter().any(|e| e == "transfer");
            let what = if is_step { "step" } else { "value" };
            result.message = format!("unknown {what} \"{value}\"");
            let list = if is_step { "steps" } else { "valid values" };
            result.hint = Some(valid_names_hint(&value, &expected, list));
        } else if let Some(rest) = text.strip_prefix("missing field ") {
            let (key, _) = split_expected(rest);
            result.message = format!("missing key \"{key}\"");
        } else if let Some(rest) = text
            .strip_prefix("invalid type: ")
            .or_else(|| text.strip_prefix("invalid value: "))
        {
            if let Some((found, expected)) = rest.split_once(", expected ") {
                result.message = format!(
                    "expected {}, found {}",
                    plain_kind(expected),
                    plain_kind(found)
                );
            }
        } else if text.starts_with("EOF while parsing") {
            result.message = "the file is empty".into();
            result.hint = Some("a flow needs at least name, greeting, start and nodes".into());
        }
        result
    }
}

/// serde's names for kinds of value in the words of a YAML file.
fn plain_kind(kind: &str) -> String {
    match kind {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "sequence" => "a list".into(),
        "a sequence" => "a list".into(),
        "map" | "a map" => "a mapping".into(),
        "unit value" => "nothing".into(),
        "a mapping of names to entries" => "a mapping".into(),
        other if other.starts_with("struct ") => "a mapping".into(),
        other => other.into(),
    }
}

/// Splits "`x`, expected one of `a`, `b`" into `x` and [a, b].
fn split_expected(rest: &str) -> (String, Vec<String>) {
    let mut quoted = rest.split('`').skip(1).step_by(2).map(str::to_string);
    let first = quoted.next().unwrap_or_default();
    (first, quoted.collect())
}

fn valid_names_hint(wrong: &str, expected: &[String], what: &str) -> String {
    let listing = if expected.is_empty() {
        format!("no {what} here")
    } else {
        format!("{what}: {}", expected.join(", "))
    };
    match closest(wrong, expected.iter().map(String::as_str)) {
        Some(near) => format!("did you mean \"{near}\"? {listing}"),
        None => listing,
    }
}

/// The result of the yaml-rust2 pass.
struct Outline {
    map: SourceMap,
    duplicates: Vec<Duplicate>,
    documents: usize,
}

struct Duplicate {
    parent: Vec<Segment>,
    key: String,
    position: Position,
    first: Position,
    start: usize,
    end: usize,
}

struct SyntaxError {
    position: Position,
    message: String,
}

fn outline(text: &str) -> Result<Outline, SyntaxError> {
    let mut recorder = Recorder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut recorder, true).map_err(|e| SyntaxError {
        position: Position::from_marker(*e.marker()),
        message: format!("YAML syntax: {}", e.info()),
    })?;
    let duplicates = recorder
        .duplicates
        .into_iter()
        .filter_map(|d| {
            let entry = recorder.map.entries.get(&d.path)?;
            let first = entry.key?;
            Some(Duplicate {
                parent: d.path[..d.path.len().saturating_sub(1)].to_vec(),
                key: d.key,
                position: d.position,
                first,
                start: d.start,
                end: d.end?,
            })
        })
        .collect();
    Ok(Outline {
        map: recorder.map,
        duplicates,
        documents: recorder.documents,
    })
}

/// An open mapping or sequence while walking the events.
enum Frame {
    Mapping {
        path: Vec<Segment>,
        /// The key just read, waiting for its value.
        pending_key: Option<(String, Position, usize)>,
        /// Keys seen so far, for duplicates.
        seen: HashMap<String, Position>,
        /// Where the last entry went, to close its span at the next key.
        last: Option<LastEntry>,
        /// Whether this mapping's own position still waits for its first key.
        first_key_pending: bool,
    },
    Sequence {
        path: Vec<Segment>,
        next: usize,
    },
    /// A complex (non-scalar) key, skipped with everything inside it.
    Skipped {
        depth: usize,
    },
}

enum LastEntry {
    /// A normal entry at this path.
    Recorded(Vec<Segment>),
    /// A duplicate, by index into `Recorder::duplicates`.
    Duplicate(usize),
}

struct PendingDuplicate {
    path: Vec<Segment>,
    key: String,
    position: Position,
    start: usize,
    end: Option<usize>,
}

#[derive(Default)]
struct Recorder {
    map: SourceMap,
    stack: Vec<Frame>,
    duplicates: Vec<PendingDuplicate>,
    documents: usize,
    /// Inside a duplicate's value: record nothing (the first one counts).
    suppress_depth: usize,
}

impl Recorder {
    /// Closes the span of the previous entry of the innermost mapping.
    fn close_last(&mut self, index: usize) {
        if let Some(Frame::Mapping { last, .. }) = self.stack.last_mut() {
            match last.take() {
                Some(LastEntry::Recorded(path)) => {
                    if let Some(entry) = self.map.entries.get_mut(&path) {
                        entry.end = Some(index);
                    }
                }
                Some(LastEntry::Duplicate(i)) => {
                    if let Some(d) = self.duplicates.get_mut(i) {
                        d.end = Some(index);
                    }
                }
                None => {}
            }
        }
    }

    /// Where a value starting now belongs, recording it. Returns its path,
    /// or None inside a skipped or duplicate subtree.
    fn place_value(&mut self, position: Position) -> Option<Vec<Segment>> {
        let suppressed = self.suppress_depth > 0;
        match self.stack.last_mut() {
            None => {
                if !suppressed {
                    self.map.entries.insert(
                        Vec::new(),
                        Entry {
                            key: None,
                            value: position,
                            start: 0,
                            end: None,
                        },
                    );
                }
                Some(Vec::new())
            }
            Some(Frame::Skipped { .. }) => None,
            Some(Frame::Sequence { path, next }) => {
                let mut item = path.clone();
                item.push(Segment::Index(*next));
                *next += 1;
                if !suppressed {
                    self.map.entries.insert(
                        item.clone(),
                        Entry {
                            key: None,
                            value: position,
                            start: 0,
                            end: None,
                        },
                    );
                }
                Some(item)
            }
            Some(Frame::Mapping {
                path,
                pending_key,
                last,
                ..
            }) => {
                let (key, key_position, start) = pending_key.take()?;
                let mut entry_path = path.clone();
                entry_path.push(Segment::Key(key));
                if matches!(last, Some(LastEntry::Duplicate(_))) || suppressed {
                    return Some(entry_path);
                }
                self.map.entries.insert(
                    entry_path.clone(),
                    Entry {
                        key: Some(key_position),
                        value: position,
                        start,
                        end: None,
                    },
                );
                *last = Some(LastEntry::Recorded(entry_path.clone()));
                Some(entry_path)
            }
        }
    }

    /// Handles a scalar in key position. Returns false if the scalar is a
    /// value instead.
    fn take_key(&mut self, key: &str, marker: Marker) -> bool {
        let position = Position::from_marker(marker);
        let is_key = matches!(
            self.stack.last(),
            Some(Frame::Mapping {
                pending_key: None,
                ..
            })
        );
        if !is_key {
            return false;
        }
        self.close_last(marker.index());
        let suppressed = self.suppress_depth > 0;
        let Some(Frame::Mapping {
            path,
            pending_key,
            seen,
            last,
            first_key_pending,
        }) = self.stack.last_mut()
        else {
            return false;
        };
        if *first_key_pending {
            *first_key_pending = false;
            if !suppressed {
                if let Some(entry) = self.map.entries.get_mut(path.as_slice()) {
                    entry.value = position;
                }
            }
        }
        *pending_key = Some((key.to_string(), position, marker.index()));
        if seen.contains_key(key) && !suppressed {
            let mut entry_path = path.clone();
            entry_path.push(Segment::Key(key.to_string()));
            self.duplicates.push(PendingDuplicate {
                path: entry_path,
                key: key.to_string(),
                position,
                start: marker.index(),
                end: None,
            });
            *last = Some(LastEntry::Duplicate(self.duplicates.len() - 1));
        } else {
            seen.insert(key.to_string(), position);
        }
        true
    }

    /// Whether the value about to start is the value of a duplicate key.
    fn value_of_duplicate(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Mapping {
                pending_key: Some(_),
                last: Some(LastEntry::Duplicate(_)),
                ..
            })
        )
    }

    fn start_collection(&mut self, marker: Marker, mapping: bool) {
        if let Some(Frame::Skipped { depth }) = self.stack.last_mut() {
            *depth += 1;
            return;
        }
        if matches!(
            self.stack.last(),
            Some(Frame::Mapping {
                pending_key: None,
                ..
            })
        ) {
            // A mapping or sequence used as a key: not something a flow
            // has; serde reports it, we just walk past it.
            self.close_last(marker.index());
            self.stack.push(Frame::Skipped { depth: 0 });
            return;
        }
        let duplicate_value = self.value_of_duplicate();
        let position = Position::from_marker(marker);
        let Some(path) = self.place_value(position) else {
            return;
        };
        if duplicate_value || self.suppress_depth > 0 {
            self.suppress_depth += 1;
        }
        self.stack.push(if mapping {
            Frame::Mapping {
                path,
                pending_key: None,
                seen: HashMap::new(),
                last: None,
                first_key_pending: true,
            }
        } else {
            Frame::Sequence { path, next: 0 }
        });
    }

    fn end_collection(&mut self, marker: Marker) {
        if let Some(Frame::Skipped { depth }) = self.stack.last_mut() {
            if *depth > 0 {
                *depth -= 1;
                return;
            }
            self.stack.pop();
            // The complex key is done; its value comes next.
            if let Some(Frame::Mapping { pending_key, .. }) = self.stack.last_mut() {
                *pending_key = Some(("?".into(), Position::from_marker(marker), marker.index()));
            }
            return;
        }
        self.close_last(marker.index());
        self.stack.pop();
        if self.suppress_depth > 0 {
            self.suppress_depth -= 1;
        }
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        match event {
            Event::DocumentStart => self.documents += 1,
            Event::Scalar(value, ..) => {
                if matches!(self.stack.last(), Some(Frame::Skipped { .. })) {
                    return;
                }
                if !self.take_key(&value, marker) {
                    self.place_value(Position::from_marker(marker));
                }
            }
            Event::Alias(_) => {
                if !matches!(self.stack.last(), Some(Frame::Skipped { .. })) {
                    self.place_value(Position::from_marker(marker));
                }
            }
            Event::MappingStart(..) => self.start_collection(marker, true),
            Event::SequenceStart(..) => self.start_collection(marker, false),
            Event::MappingEnd | Event::SequenceEnd => self.end_collection(marker),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

/// Reads the customer CSV a flow names, relative to the flow file, and
/// reports problems: a missing file at the flow's `csv:` value, malformed
/// rows at their line in the CSV.
fn check_customer_file(
    flow_path: &Path,
    name: &str,
    flow: &Flow,
    map: &SourceMap,
) -> Vec<Diagnostic> {
    let Some(csv) = flow
        .callers
        .as_ref()
        .and_then(|c| c.customers.as_ref())
        .and_then(|c| c.csv.as_deref())
    else {
        return Vec::new();
    };
    let csv_path = flow_path.parent().unwrap_or(Path::new("")).join(csv);
    match CsvDirectory::from_path(&csv_path) {
        Ok(_) => Vec::new(),
        Err(error) => {
            let (file, position) = match error.line() {
                Some(line) => (csv_path.display().to_string(), Position { line, column: 1 }),
                None => (
                    name.to_string(),
                    map.value(&PathBuf::of(&["callers", "customers", "csv"])),
                ),
            };
            vec![Diagnostic {
                file,
                line: position.line,
                column: position.column,
                message: error.to_string(),
                hint: error.hint(),
            }]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline_of(text: &str) -> Outline {
        match outline(text) {
            Ok(o) => o,
            Err(e) => panic!("syntax error: {}", e.message),
        }
    }

    #[test]
    fn source_map_records_keys_and_values_by_path() {
        let text =
            "a: 1\nnodes:\n  main:\n    intents:\n      - name: x\n        examples: [p, q]\n";
        let o = outline_of(text);
        let intent = PathBuf::of(&["nodes", "main", "intents"]).index(0);
        assert_eq!(o.map.value(&intent), Position { line: 5, column: 9 });
        let examples = intent.key("examples");
        assert_eq!(o.map.key(&examples), Position { line: 6, column: 9 });
        assert_eq!(
            o.map.value(&examples.index(1)),
            Position {
                line: 6,
                column: 23
            }
        );
        // A key left out falls back to its parent.
        assert_eq!(
            o.map.value(&intent.key("then")),
            Position { line: 5, column: 9 }
        );
        assert!(!o.map.contains(&intent.key("then")));
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth() {
        let text = "nodes:\n  main: {say: hi}\n  main:\n    say: again\nx: 1\n";
        let o = outline_of(text);
        assert_eq!(o.duplicates.len(), 1);
        let d = &o.duplicates[0];
        assert_eq!(d.key, "main");
        assert_eq!(d.position, Position { line: 3, column: 3 });
        assert_eq!(d.first, Position { line: 2, column: 3 });
        assert_eq!(duplicate_kind(&d.parent), "node");
        // The duplicate's span runs to the next key, and its own keys are
        // not recorded over the first one's.
        let span: String = text.chars().skip(d.start).take(d.end - d.start).collect();
        assert_eq!(span, "main:\n    say: again\n");
        let say = PathBuf::of(&["nodes", "main", "say"]);
        assert_eq!(
            o.map.value(&say),
            Position {
                line: 2,
                column: 15
            }
        );
    }

    #[test]
    fn blanking_keeps_positions() {
        let mut chars: Vec<char> = "a: 1\nbad: [x,\n  y]\nb: 2\n".chars().collect();
        blank(&mut chars, 5, 18);
        let text: String = chars.iter().collect();
        assert_eq!(text, "a: 1\n        \n    \nb: 2\n");
    }

    #[test]
    fn serde_messages_become_ours() {
        let err = serde_yaml::from_str::<super::super::model::Group>("members: []\nstrateyg: x\n")
            .unwrap_err();
        let s = StructuralError::from_serde(&err);
        assert_eq!(s.message, "unknown key \"strateyg\"");
        assert_eq!(
            s.hint.as_deref(),
            Some("did you mean \"strategy\"? valid keys: members, strategy, busy")
        );
        assert_eq!(s.position, Some(Position { line: 2, column: 1 }));
        assert_eq!(s.unknown_key.as_deref(), Some("strateyg"));

        let err = serde_yaml::from_str::<super::super::model::Group>(
            "members: [a]\nstrategy: round-robin\n",
        )
        .unwrap_err();
        let s = StructuralError::from_serde(&err);
        assert_eq!(s.message, "unknown value \"round-robin\"");
        assert_eq!(
            s.hint.as_deref(),
            Some("did you mean \"round_robin\"? valid values: failover, round_robin, least_recent")
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let (_, diagnostics, _) = parse_and_check("f.yaml", "name: x\ngreeting: \"unclosed\n");
        assert_eq!(diagnostics.len(), 1);
        assert!(
            diagnostics[0].message.starts_with("YAML syntax: "),
            "{}",
            diagnostics[0]
        );
        assert_eq!(diagnostics[0].file, "f.yaml");
    }

    #[test]
    fn every_unknown_key_is_reported_not_only_the_first() {
        let text = "name: x\ngreetng: hi\ngreeting: hi\nstart: main\nnodes:\n  main:\n    sey: hi\n    then: [hangup]\n";
        let diagnostics = load_str("f.yaml", text).unwrap_err();
        let lines: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0].starts_with(
                "f.yaml:2:1: unknown key \"greetng\"\n  hint: did you mean \"greeting\"?"
            ),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("f.yaml:7:5: unknown key \"sey\"\n  hint: did you mean \"say\"?"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn problems_that_follow_from_an_unknown_key_are_not_reported_twice() {
        let text = "name: x\ngreeting: hi\nstart: main\nnodes:\n  main:\n    keys: {\"0\": [transfer: op]}\ndestinations:\n  op:\n    extenson: \"1\"\n";
        let shown: Vec<String> = load_str("f.yaml", text)
            .unwrap_err()
            .iter()
            .map(|d| d.to_string())
            .collect();
        // Not also "destination "op" has no extension, sip or number".
        assert_eq!(
            shown,
            ["f.yaml:9:5: unknown key \"extenson\"\n  hint: did you mean \"extension\"? valid keys: label, extension, sip, number, skills, hours, capacity"]
        );
    }

    #[test]
    fn empty_and_multi_document_files_are_refused() {
        let empty = load_str("f.yaml", "").unwrap_err();
        assert_eq!(empty[0].message, "the file is empty");
        let two = load_str("f.yaml", "a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(two[0].message, "more than one YAML document");
    }
}
