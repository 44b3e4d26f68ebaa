//! The call-flow file format as Rust types.
//!
//! These types mirror `flows/schema.json` one to one and are deserialised
//! with `deny_unknown_fields`, so a misspelt key is an error, not a silently
//! ignored setting. Values whose syntax the checker reports on (times,
//! dates, timezones, phone numbers, transfer targets) stay strings here: a
//! bad one must not stop deserialisation, or the checker could report only
//! the first problem of a file. [`crate::flow::check`] validates them and
//! [`crate::flow::schedule`] / [`crate::flow::routing`] parse them on use.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A whole flow file: what the agent says, what it listens for, and where
/// calls can go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Short identifier used in logs and reports.
    pub name: String,
    /// Free text for people reading the file.
    #[serde(default)]
    pub description: Option<String>,
    /// The language the line is run in (BCP 47 primary tag, e.g. `en`).
    #[serde(default)]
    pub language: Option<String>,
    /// Who the LLM plays: name, tone, company. Goes into its system prompt.
    #[serde(default)]
    pub persona: Option<String>,
    /// Rules for the LLM beyond the persona (what not to promise, etc.).
    #[serde(default)]
    pub instructions: Option<String>,
    /// Which intent detector the flow uses; none: the embedded classifier.
    #[serde(default)]
    pub intent: Option<IntentDetection>,
    /// The first thing every caller hears.
    pub greeting: String,
    /// The one sentence said before any transfer; `{destination}` is
    /// replaced by the destination's label.
    #[serde(default)]
    pub confirm: Option<String>,
    /// The node the call starts in, after the greeting.
    pub start: String,
    /// Reprompt defaults for nodes that set none themselves.
    #[serde(default)]
    pub no_input: Option<Reprompt>,
    /// See [`Flow::no_input`].
    #[serde(default)]
    pub no_match: Option<Reprompt>,
    /// The conversation, by node name.
    pub nodes: Table<Node>,
    /// Everywhere a call can be transferred to, by name.
    #[serde(default)]
    pub destinations: Table<Destination>,
    /// Named sets of destinations with a failover or balancing strategy.
    #[serde(default)]
    pub groups: Table<Group>,
    /// Named opening hours, referenced by destinations and `routing.hours`.
    #[serde(default)]
    pub schedules: Table<Schedule>,
    /// Carriers for external numbers, with their per-prefix rates.
    #[serde(default)]
    pub trunks: Table<Trunk>,
    /// Where caller attributes (region, tier, language) come from.
    #[serde(default)]
    pub callers: Option<Callers>,
    /// Rules applied on top of what the caller asked for.
    #[serde(default)]
    pub routing: Routing,
}

impl Flow {
    /// The languages the flow tells callers apart by (its language
    /// routing, and the languages its destinations speak), with English:
    /// what a speech recogniser identifying the caller's language needs to
    /// choose among.
    pub fn languages(&self) -> Vec<String> {
        let mut languages = vec!["en".to_string()];
        let named = self
            .routing
            .languages
            .0
            .iter()
            .map(|(language, _)| language);
        let spoken = self
            .destinations
            .0
            .iter()
            .flat_map(|(_, d)| d.skills.languages.iter());
        for language in named.chain(spoken) {
            let language = language.trim().to_lowercase();
            if !language.is_empty() && !languages.contains(&language) {
                languages.push(language);
            }
        }
        languages
    }
}

/// How the flow works out what callers want: the detector, and the LLM
/// it may use. Mapped to the intent layer's configuration by
/// [`crate::flow::detector::detector_config`].
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentDetection {
    /// None: `hybrid` when `llm` is set, `embedded` otherwise.
    #[serde(default)]
    pub detector: Option<Detector>,
    /// The LLM for the `llm` and `hybrid` detectors.
    #[serde(default)]
    pub llm: Option<LlmSettings>,
}

/// The intent detectors a flow can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// The local sentence-embedding classifier (about 10 ms a turn).
    Embedded,
    /// The LLM for every turn.
    Llm,
    /// The embedded classifier, and the LLM for the turns it is unsure of.
    Hybrid,
}

impl Detector {
    /// The name used in flow files.
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Embedded => "embedded",
            Detector::Llm => "llm",
            Detector::Hybrid => "hybrid",
        }
    }
}

/// An OpenAI-compatible chat-completions endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    /// Up to and including the API version: `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// The model name the server knows.
    pub model: String,
    /// The environment variable holding the API key (never the key itself,
    /// which must not sit in a flow file). None: no key (a local server).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// How long a caller may wait for one answer; past it the hybrid
    /// detector keeps the embedded answer.
    #[serde(default = "default_llm_timeout_ms")]
    pub timeout_ms: u64,
    /// Cap on generated tokens; the reply's length is derived from it.
    #[serde(default = "default_llm_max_tokens")]
    pub max_tokens: u32,
}

fn default_llm_timeout_ms() -> u64 {
    5000
}

fn default_llm_max_tokens() -> u32 {
    160
}

/// One step of the conversation: a prompt and what the agent listens for.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Said on entering the node (the start node is entered after the
    /// greeting, so it usually has none).
    #[serde(default)]
    pub say: Option<String>,
    /// What the caller may want, for the intent classifier.
    #[serde(default)]
    pub intents: Vec<Intent>,
    /// DTMF keys (`0`-`9`, `*`, `#`) and what each does.
    #[serde(default)]
    pub keys: Table<Steps>,
    /// Values the agent recognises in this node: filled whenever the caller
    /// says them, asked for by `collect` steps.
    #[serde(default)]
    pub slots: Vec<Slot>,
    /// Steps run right after `say`. Only for nodes without intents or
    /// keys: those wait for the caller instead.
    #[serde(default)]
    pub then: Option<Steps>,
    /// Overrides the flow's `no_input` for this node.
    #[serde(default)]
    pub no_input: Option<Reprompt>,
    /// Overrides the flow's `no_match` for this node.
    #[serde(default)]
    pub no_match: Option<Reprompt>,
}

/// Something a caller may want, described for the classifier.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// Unique within its node; used in logs and routing reasons.
    pub name: String,
    /// What the intent covers, in words the LLM classifier reads.
    pub description: String,
    /// Phrases a caller would say; the classifier's few-shot examples.
    #[serde(default)]
    pub examples: Vec<String>,
    /// What happens when this intent is detected.
    pub then: Steps,
}

/// A value to collect from the caller.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    /// Referenced by `collect:` and by `{name}` transfer targets.
    pub name: String,
    /// How the value is recognised and normalised.
    #[serde(rename = "type")]
    pub kind: SlotKind,
    /// What the agent asks to collect it.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Fewest digits accepted (`digits` and `account_number` only).
    #[serde(default)]
    pub min_digits: Option<u32>,
    /// Most digits accepted (`digits` and `account_number` only).
    #[serde(default)]
    pub max_digits: Option<u32>,
}

/// The kinds of value a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    /// Letters and digits identifying a customer account.
    AccountNumber,
    /// Yes or no, spoken or as keys 1/2.
    YesNo,
    /// A calendar date, normalised to YYYY-MM-DD.
    Date,
    /// A digit string, spoken or keyed.
    Digits,
}

impl SlotKind {
    /// The name used in flow files.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::AccountNumber => "account_number",
            SlotKind::YesNo => "yes_no",
            SlotKind::Date => "date",
            SlotKind::Digits => "digits",
        }
    }
}

/// What to do when the caller says nothing, or nothing that matched.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reprompt {
    /// How many times the agent reprompts before running `then`.
    pub limit: u32,
    /// The reprompts, used in order; the last repeats if `limit` is larger.
    /// Empty: the node's own `say` is repeated.
    #[serde(default)]
    pub say: Vec<String>,
    /// The escalation once the limit is used up.
    pub then: Steps,
}

/// A list of steps run in order. A `transfer`, `goto` or `hangup` ends it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Steps(pub Vec<Step>);

impl<'de> Deserialize<'de> for Steps {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Steps are written `- transfer: billing`, a one-key map, which
        // serde_yaml only reads as an enum through its singleton-map adapter.
        serde_yaml::with::singleton_map_recursive::deserialize(deserializer).map(Steps)
    }
}

impl Steps {
    /// The steps in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Step> {
        self.0.iter()
    }
}

/// One action of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Say a sentence.
    Say(String),
    /// Transfer the call: a destination or group name, an external number
    /// (`+...`, routed over the trunks) or `{slot}` (the slot's value names
    /// a destination or its extension).
    Transfer(String),
    /// Continue in another node.
    Goto(String),
    /// Ask for a slot of the current node, then continue with the next step.
    Collect(String),
    /// End the call.
    Hangup,
}

impl Step {
    /// The key this step is written with.
    pub fn keyword(&self) -> &'static str {
        match self {
            Step::Say(_) => "say",
            Step::Transfer(_) => "transfer",
            Step::Goto(_) => "goto",
            Step::Collect(_) => "collect",
            Step::Hangup => "hangup",
        }
    }

    /// Whether the step ends its list: nothing after it runs.
    pub fn ends_list(&self) -> bool {
        matches!(self, Step::Transfer(_) | Step::Goto(_) | Step::Hangup)
    }
}

/// What a `transfer` step (or a routing rule) names, by its spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetRef<'a> {
    /// A destination or group name.
    Name(&'a str),
    /// An external number (`+` first), routed over the trunks.
    Number(&'a str),
    /// `{slot}`: the collected value names a destination or its extension.
    Slot(&'a str),
}

impl<'a> TargetRef<'a> {
    /// Classifies a target as written in the flow.
    pub fn parse(text: &'a str) -> TargetRef<'a> {
        if let Some(slot) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            TargetRef::Slot(slot)
        } else if text.starts_with('+') {
            TargetRef::Number(text)
        } else {
            TargetRef::Name(text)
        }
    }
}

/// A place calls go: exactly one of `extension`, `sip` or `number`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// How the agent names it when confirming ("our billing team");
    /// defaults to the destination's name.
    #[serde(default)]
    pub label: Option<String>,
    /// A PBX extension (digits).
    #[serde(default)]
    pub extension: Option<String>,
    /// A SIP URI (`sip:` or `sips:`).
    #[serde(default)]
    pub sip: Option<String>,
    /// An external number in E.164 form, reached over the trunks at least
    /// cost.
    #[serde(default)]
    pub number: Option<String>,
    /// What this destination can handle.
    #[serde(default)]
    pub skills: Skills,
    /// A schedule name; outside it the destination is skipped.
    #[serde(default)]
    pub hours: Option<String>,
    /// Most simultaneous calls; at capacity it counts as busy. None: no limit.
    #[serde(default)]
    pub capacity: Option<u32>,
}

/// Skills of a destination, matched against caller attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skills {
    /// The department, for reports and reasons.
    #[serde(default)]
    pub department: Option<String>,
    /// Languages spoken; in a group, members speaking the caller's
    /// language are tried first. Empty: not stated.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Customer tiers served; callers of other tiers are never sent here.
    /// Empty: every caller.
    #[serde(default)]
    pub tiers: Vec<String>,
}

/// Destinations tried together.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Destination names; for `failover`, in the order they are tried.
    pub members: Vec<String>,
    /// How the members are ordered for each call.
    #[serde(default)]
    pub strategy: Strategy,
    /// What to do with members at capacity.
    #[serde(default)]
    pub busy: BusyPolicy,
}

/// How a group orders its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Always in the listed order.
    #[default]
    Failover,
    /// Start after the member that took the previous call.
    RoundRobin,
    /// The member idle the longest first.
    LeastRecent,
}

/// What routing does with a member that is at capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusyPolicy {
    /// Keep it, after the members with room.
    #[default]
    Last,
    /// Leave it out.
    Skip,
}

/// Opening hours in one timezone.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// IANA name, e.g. `America/New_York`; times are local to it.
    pub timezone: String,
    /// Opening ranges per weekday.
    #[serde(default)]
    pub weekly: Weekly,
    /// Closed all day, as `YYYY-MM-DD` in the schedule's timezone.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// Opening ranges (`HH:MM-HH:MM`, end exclusive, `24:00` allowed as an end)
/// per weekday. A day left out is closed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weekly {
    #[serde(default)]
    pub mon: Vec<String>,
    #[serde(default)]
    pub tue: Vec<String>,
    #[serde(default)]
    pub wed: Vec<String>,
    #[serde(default)]
    pub thu: Vec<String>,
    #[serde(default)]
    pub fri: Vec<String>,
    #[serde(default)]
    pub sat: Vec<String>,
    #[serde(default)]
    pub sun: Vec<String>,
}

impl Weekly {
    /// The days in calendar order with their key names, Monday first.
    pub fn days(&self) -> [(&'static str, &[String]); 7] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ]
    }
}

/// A carrier for external calls.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// The carrier's SIP URI; the dialled number goes in its user part.
    pub gateway: String,
    /// Price per minute by E.164 prefix (`"+44"`); the longest matching
    /// prefix applies. Numbers matching none cannot use this trunk.
    pub rates: Table<f64>,
}

/// Sources of caller attributes.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callers {
    /// Geographic prefixes of caller numbers; the longest match wins.
    #[serde(default)]
    pub regions: Vec<Region>,
    /// Where known customers are looked up.
    #[serde(default)]
    pub customers: Option<CustomerSource>,
}

/// A number prefix and what it says about the caller.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// E.164 prefix, e.g. `+1212`.
    pub prefix: String,
    /// The region's name, recorded in caller attributes.
    pub region: String,
    /// The language assumed for callers from here who are not customers
    /// with a language of their own.
    #[serde(default)]
    pub language: Option<String>,
}

/// Exactly one of a CSV file or a webhook.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerSource {
    /// A CSV file with a header `number,name,tier,language`, relative to
    /// the flow file.
    #[serde(default)]
    pub csv: Option<String>,
    /// An HTTP endpoint asked per call.
    #[serde(default)]
    pub webhook: Option<Webhook>,
}

/// An HTTP customer lookup (see [`crate::flow::caller::webhook_request`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http://` or `https://` URL receiving a POST per call.
    pub url: String,
    /// How long the call waits for an answer before routing without one.
    #[serde(default = "default_webhook_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_webhook_timeout_ms() -> u64 {
    1500
}

/// Rules that override or complete what the caller asked for, applied in
/// the order documented in [`crate::flow::routing`].
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// Caller language (e.g. `es`) to the destination or group serving it.
    #[serde(default)]
    pub languages: Table<String>,
    /// Customer tier (e.g. `premium`) to the destination or group serving it.
    #[serde(default)]
    pub tiers: Table<String>,
    /// The line's opening hours (a schedule name). Outside them every call
    /// goes to `after_hours`.
    #[serde(default)]
    pub hours: Option<String>,
    /// Where calls go while `hours` is closed.
    #[serde(default)]
    pub after_hours: Option<String>,
    /// Where calls go when every target was unreachable, closed or skipped.
    #[serde(default)]
    pub fallback: Option<String>,
}

/// A map that keeps the file's order, used for every `name: {...}` section.
///
/// Order matters: it breaks ties between equally cheap trunks and orders
/// reports. Duplicate keys never reach this type: the loader reports them
/// and keeps the first.
#[derive(Debug, Clone, PartialEq)]
pub struct Table<T>(pub Vec<(String, T)>);

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table(Vec::new())
    }
}

impl<T> Table<T> {
    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether an entry is called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Entries in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Names in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Position of `name` in file order.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(n, _)| n == name)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for TableVisitor<T> {
            type Value = Table<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names to entries")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Table<T>, A::Error> {
                let mut entries: Vec<(String, T)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, T>()? {
                    // The loader blanks out duplicates before serde sees
                    // them; keeping the first is a second line of defence.
                    if !entries.iter().any(|(n, _)| *n == name) {
                        entries.push((name, value));
                    }
                }
                Ok(Table(entries))
            }
        }

        deserializer.deserialize_map(TableVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_key_maps_or_bare_hangup() {
        let steps: Steps =
            serde_yaml::from_str("[say: Bye now., {transfer: billing}, hangup]").unwrap();
        assert_eq!(
            steps.0,
            vec![
                Step::Say("Bye now.".into()),
                Step::Transfer("billing".into()),
                Step::Hangup
            ]
        );
    }

    #[test]
    fn table_keeps_file_order_and_reads_numeric_keys_as_text() {
        let table: Table<u32> = serde_yaml::from_str("b: 1\na: 2\n1: 3\n+44: 4\n").unwrap();
        let names: Vec<&str> = table.names().collect();
        assert_eq!(names, ["b", "a", "1", "+44"]);
        assert_eq!(table.get("+44"), Some(&4));
        assert_eq!(table.index_of("1"), Some(2));
    }

    #[test]
    fn targets_are_classified_by_spelling() {
        assert_eq!(TargetRef::parse("billing"), TargetRef::Name("billing"));
        assert_eq!(
            TargetRef::parse("+442071234567"),
            TargetRef::Number("+442071234567")
        );
        assert_eq!(
            TargetRef::parse("{extension}"),
            TargetRef::Slot("extension")
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err =
            serde_yaml::from_str::<Group>("members: [a]\nstrategy: failover\nbusy: last\nx: 1")
                .unwrap_err();
        assert!(err.to_string().contains("unknown field `x`"), "{err}");
    }

    #[test]
    fn group_defaults_to_failover_keeping_busy_members_last() {
        let group: Group = serde_yaml::from_str("members: [a, b]").unwrap();
        assert_eq!(group.strategy, Strategy::Failover);
        assert_eq!(group.busy, BusyPolicy::Last);
    }
}
