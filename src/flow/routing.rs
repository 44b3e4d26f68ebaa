//! Where a call goes: a pure function of what the caller asked for, who
//! they are, the time, and the state of the destinations.
//!
//! [`route`] applies, in this order, recording each rule it applies in the
//! decision's reason:
//!
//! 1. **Request**: the transfer target of the intent or DTMF key the caller
//!    chose in a node, or a target given directly (an escalation or a
//!    node's own steps). `{slot}` targets take the slot's value, which must
//!    name a destination, a group or a destination's extension; callers
//!    never dial arbitrary external numbers (toll fraud).
//! 2. **Language**: `routing.languages` maps the caller's language (exact,
//!    else its primary subtag: `es-MX` matches `es`) to a target.
//! 3. **Tier**: otherwise `routing.tiers` maps the customer tier.
//! 4. **Hours**: while `routing.hours` is closed, `routing.after_hours`
//!    replaces whatever was chosen.
//! 5. **Expansion**: a group's members are ordered by its strategy
//!    (`failover`: as listed; `round_robin`: starting after the member that
//!    took the previous call; `least_recent`: idle longest first), members
//!    speaking the caller's language first. Members that are unreachable,
//!    outside their own hours, or serve other tiers are left out; busy ones
//!    (active calls at capacity) go last or are left out, per the group's
//!    `busy`. A single destination gets the same checks, except that a busy
//!    one is kept (the PBX can queue).
//! 6. **Least cost**: an external number becomes one target per trunk that
//!    has a rate for it (longest prefix), cheapest first, ties in file
//!    order; trunks that are down are left out. The next target is the
//!    failover when a trunk fails.
//! 7. **Fallback**: if a language or tier rule replaced the request and
//!    its target has nothing available, the request's own target (a
//!    premium caller still reaches billing when the priority desk is
//!    down). If nothing is left, `routing.fallback`, expanded the same way.
//!
//! The decision is an ordered list: the driver tries each target in turn
//! and calls [`DestinationState::record_transfer`] for the one that
//! answered, which moves round-robin cursors and least-recent times.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};

use super::caller::CallerAttributes;
use super::model::{
    BusyPolicy, Destination, Flow, Group, Step, Steps, Strategy, Table, TargetRef, Trunk,
};
use super::schedule::{is_open, local_time_label};

/// Collected slot values by slot name.
pub type Slots = BTreeMap<String, String>;

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted<'a> {
    /// An intent detected in a node: its first `transfer` step.
    Intent { node: &'a str, intent: &'a str },
    /// A DTMF key pressed in a node: its first `transfer` step.
    Key { node: &'a str, key: char },
    /// A transfer target as written in the flow (an escalation's or a
    /// node's `transfer:`).
    Target(&'a str),
}

/// Everything routing depends on.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    pub wanted: Wanted<'a>,
    pub slots: &'a Slots,
    pub caller: &'a CallerAttributes,
    /// The instant routed at; schedules are evaluated here.
    pub at: DateTime<Utc>,
    pub state: &'a DestinationState,
}

/// The targets to try, in order, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDecision {
    pub targets: Vec<Target>,
    /// Every rule applied, `; `-separated, for logs and call records.
    pub reason: String,
}

/// One thing to dial.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The destination's name (for an external number written directly in
    /// the flow, the number).
    pub destination: String,
    /// The group it was chosen through, which
    /// [`DestinationState::record_transfer`] needs for round robin.
    pub group: Option<String>,
    pub dial: Dial,
}

/// How to reach a target.
#[derive(Debug, Clone, PartialEq)]
pub enum Dial {
    /// A PBX extension.
    Extension(String),
    /// A SIP URI.
    Sip(String),
    /// An external number over a trunk.
    Trunk {
        trunk: String,
        /// The trunk's gateway URI; the number goes in its user part.
        gateway: String,
        number: String,
        /// The matched prefix and its price per minute.
        prefix: String,
        rate: RatePerMinute,
    },
}

/// A trunk's price per minute, in the flow's currency.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct RatePerMinute(pub f64);

impl fmt::Display for RatePerMinute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/min", self.0)
    }
}

/// Why a request cannot be routed at all. These are misuse by the caller
/// of [`route`] (a node or intent the flow does not have) or a slot value
/// that names nothing; unavailable destinations are not errors but an
/// empty or shorter target list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("unknown node \"{0}\"")]
    UnknownNode(String),
    #[error("node \"{node}\" has no intent \"{intent}\"")]
    UnknownIntent { node: String, intent: String },
    #[error("node \"{node}\" has no key {key}")]
    UnknownKey { node: String, key: char },
    #[error("{0} does not transfer")]
    NoTransfer(String),
    #[error("unknown destination \"{0}\"")]
    UnknownTarget(String),
    #[error("slot \"{0}\" has no value")]
    MissingSlot(String),
    #[error("slot \"{slot}\" = \"{value}\" names no destination")]
    SlotNamesNothing { slot: String, value: String },
}

/// Live state of destinations and trunks, kept by the driver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DestinationState {
    destinations: BTreeMap<String, DestinationStatus>,
    /// Group name -> the member that took its last call.
    last_member: BTreeMap<String, String>,
    trunks_down: BTreeSet<String>,
}

/// One destination's state. The default is reachable, idle, never used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestinationStatus {
    /// False after the PBX reported it unregistered or it failed to answer.
    pub reachable: bool,
    /// Calls in progress, compared with the destination's capacity.
    pub active_calls: u32,
    /// When it last took a call, for `least_recent`.
    pub last_used: Option<DateTime<Utc>>,
}

impl Default for DestinationStatus {
    fn default() -> Self {
        DestinationStatus {
            reachable: true,
            active_calls: 0,
            last_used: None,
        }
    }
}

impl DestinationState {
    /// The state of `destination`.
    pub fn status(&self, destination: &str) -> DestinationStatus {
        self.destinations
            .get(destination)
            .copied()
            .unwrap_or_default()
    }

    /// Replaces the state of `destination`.
    pub fn set_status(&mut self, destination: &str, status: DestinationStatus) {
        self.destinations.insert(destination.to_string(), status);
    }

    /// Marks `destination` reachable or not.
    pub fn set_reachable(&mut self, destination: &str, reachable: bool) {
        self.entry(destination).reachable = reachable;
    }

    /// Sets the number of calls `destination` is handling.
    pub fn set_active_calls(&mut self, destination: &str, calls: u32) {
        self.entry(destination).active_calls = calls;
    }

    /// Marks a trunk up or down.
    pub fn set_trunk_reachable(&mut self, trunk: &str, reachable: bool) {
        if reachable {
            self.trunks_down.remove(trunk);
        } else {
            self.trunks_down.insert(trunk.to_string());
        }
    }

    /// Whether a trunk is up.
    pub fn trunk_reachable(&self, trunk: &str) -> bool {
        !self.trunks_down.contains(trunk)
    }

    /// The member of `group` that took its last call.
    pub fn last_member(&self, group: &str) -> Option<&str> {
        self.last_member.get(group).map(String::as_str)
    }

    /// Records that `target` took a call at `at`: its last-used time, and
    /// the round-robin position of the group it came through.
    pub fn record_transfer(&mut self, target: &Target, at: DateTime<Utc>) {
        self.entry(&target.destination).last_used = Some(at);
        if let Some(group) = &target.group {
            self.last_member
                .insert(group.clone(), target.destination.clone());
        }
    }

    fn entry(&mut self, destination: &str) -> &mut DestinationStatus {
        self.destinations
            .entry(destination.to_string())
            .or_default()
    }
}

/// Routes a request; see the module documentation for the rules.
pub fn route(flow: &Flow, request: &RouteRequest) -> Result<RouteDecision, RouteError> {
    let mut reason = Vec::new();
    let asked = requested(flow, request, &mut reason)?;
    let asked = resolve(flow, asked, request.slots, &mut reason)?;
    let mut chosen = asked.clone();

    let caller = request.caller;
    if let Some((language, target)) = caller
        .language
        .as_deref()
        .and_then(|l| rule_for(&flow.routing.languages, l).map(|t| (l, t)))
    {
        if target != chosen.as_str() {
            reason.push(format!("language {language} → {target}"));
            chosen = resolve(flow, target, request.slots, &mut reason)?;
        }
    } else if let Some((tier, target)) = caller
        .tier
        .as_deref()
        .and_then(|t| flow.routing.tiers.get(t).map(|target| (t, target.as_str())))
    {
        if target != chosen.as_str() {
            reason.push(format!("tier {tier} → {target}"));
            chosen = resolve(flow, target, request.slots, &mut reason)?;
        }
    }

    let mut closed = false;
    if let Some(hours_name) = &flow.routing.hours {
        if let Some(schedule) = flow.schedules.get(hours_name) {
            let when = local_time_label(schedule, request.at);
            if is_open(schedule, request.at) {
                reason.push(format!("open by schedule {hours_name} ({when})"));
            } else if let Some(after) = &flow.routing.after_hours {
                reason.push(format!(
                    "closed by schedule {hours_name} ({when}) → {after}"
                ));
                chosen = resolve(flow, after, request.slots, &mut reason)?;
                closed = true;
            } else {
                reason.push(format!(
                    "closed by schedule {hours_name} ({when}), no after_hours"
                ));
                return Ok(RouteDecision {
                    targets: Vec::new(),
                    reason: reason.join("; "),
                });
            }
        }
    }

    let mut targets = expand(flow, &chosen, request, &mut reason);
    if targets.is_empty() && !closed && chosen != asked {
        // A language or tier rule's target is unavailable: the caller
        // still gets what they asked for rather than the fallback.
        reason.push(format!(
            "{} unavailable → back to {}",
            chosen.as_str(),
            asked.as_str()
        ));
        chosen = asked;
        targets = expand(flow, &chosen, request, &mut reason);
    }
    if targets.is_empty() {
        if let Some(fallback) = &flow.routing.fallback {
            if *fallback != chosen.as_str() {
                reason.push(format!("nothing available → fallback {fallback}"));
                let fallback = resolve(flow, fallback, request.slots, &mut reason)?;
                targets = expand(flow, &fallback, request, &mut reason);
            }
        }
    }
    if targets.is_empty() {
        reason.push("no target available".into());
    }
    Ok(RouteDecision {
        targets,
        reason: reason.join("; "),
    })
}

/// The sentence said before transferring to `destination`, from the flow's
/// `confirm` template; None if the flow has none.
pub fn confirmation(flow: &Flow, destination: &str) -> Option<String> {
    let template = flow.confirm.as_deref()?;
    let label = flow
        .destinations
        .get(destination)
        .and_then(|d| d.label.as_deref())
        .unwrap_or(destination);
    Some(template.replace("{destination}", label))
}

/// A resolved target: a destination or group name, or an external number.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chosen {
    Name(String),
    Number(String),
}

impl Chosen {
    fn as_str(&self) -> &str {
        match self {
            Chosen::Name(s) | Chosen::Number(s) => s,
        }
    }
}

/// The target text the request points at.
fn requested<'r>(
    flow: &'r Flow,
    request: &RouteRequest<'r>,
    reason: &mut Vec<String>,
) -> Result<&'r str, RouteError> {
    let first_transfer = |steps: &'r Steps| {
        steps.iter().find_map(|s| match s {
            Step::Transfer(t) => Some(t.as_str()),
            _ => None,
        })
    };
    let node_named = |node: &str| {
        flow.nodes
            .get(node)
            .ok_or_else(|| RouteError::UnknownNode(node.into()))
    };
    match request.wanted {
        Wanted::Intent { node, intent } => {
            let found = node_named(node)?
                .intents
                .iter()
                .find(|i| i.name == intent)
                .ok_or_else(|| RouteError::UnknownIntent {
                    node: node.into(),
                    intent: intent.into(),
                })?;
            let target = first_transfer(&found.then)
                .ok_or_else(|| RouteError::NoTransfer(format!("intent \"{intent}\"")))?;
            reason.push(format!("intent {intent} in node {node} → {target}"));
            Ok(target)
        }
        Wanted::Key { node, key } => {
            let steps = node_named(node)?
                .keys
                .get(key.encode_utf8(&mut [0; 4]))
                .ok_or_else(|| RouteError::UnknownKey {
                    node: node.into(),
                    key,
                })?;
            let target = first_transfer(steps)
                .ok_or_else(|| RouteError::NoTransfer(format!("key {key}")))?;
            reason.push(format!("key {key} in node {node} → {target}"));
            Ok(target)
        }
        Wanted::Target(target) => {
            reason.push(format!("requested {target}"));
            Ok(target)
        }
    }
}

/// Turns a target as written into a destination/group name or a number.
fn resolve(
    flow: &Flow,
    text: &str,
    slots: &Slots,
    reason: &mut Vec<String>,
) -> Result<Chosen, RouteError> {
    match TargetRef::parse(text) {
        TargetRef::Name(name) => {
            if flow.destinations.contains(name) || flow.groups.contains(name) {
                Ok(Chosen::Name(name.to_string()))
            } else {
                Err(RouteError::UnknownTarget(name.to_string()))
            }
        }
        TargetRef::Number(number) => Ok(Chosen::Number(number.to_string())),
        TargetRef::Slot(slot) => {
            let value = slots
                .get(slot)
                .ok_or_else(|| RouteError::MissingSlot(slot.to_string()))?;
            let value = value.trim();
            let by_name = flow
                .destinations
                .names()
                .chain(flow.groups.names())
                .find(|n| n.eq_ignore_ascii_case(value));
            let by_extension = || {
                flow.destinations
                    .iter()
                    .find(|(_, d)| d.extension.as_deref() == Some(value))
                    .map(|(n, _)| n)
            };
            match by_name.or_else(by_extension) {
                Some(name) => {
                    reason.push(format!("slot {slot} = {value} → {name}"));
                    Ok(Chosen::Name(name.to_string()))
                }
                None => Err(RouteError::SlotNamesNothing {
                    slot: slot.to_string(),
                    value: value.to_string(),
                }),
            }
        }
    }
}

/// The routing rule for a language: exact tag first, then primary subtag.
fn rule_for<'f>(rules: &'f Table<String>, language: &str) -> Option<&'f str> {
    rules
        .get(language)
        .or_else(|| {
            let primary = language.split('-').next().unwrap_or(language);
            rules.get(primary)
        })
        .map(String::as_str)
}

fn same_language(a: &str, b: &str) -> bool {
    let primary = |s: &str| s.split('-').next().unwrap_or(s).to_ascii_lowercase();
    a.eq_ignore_ascii_case(b) || primary(a) == primary(b)
}

fn expand(
    flow: &Flow,
    chosen: &Chosen,
    request: &RouteRequest,
    reason: &mut Vec<String>,
) -> Vec<Target> {
    match chosen {
        Chosen::Number(number) => {
            least_cost(&flow.trunks, number, number, None, request.state, reason)
        }
        Chosen::Name(name) => {
            if let Some(group) = flow.groups.get(name) {
                expand_group(flow, name, group, request, reason)
            } else if let Some(destination) = flow.destinations.get(name) {
                match availability(flow, name, destination, request) {
                    Availability::Skip(why) => {
                        reason.push(format!("{name} {why}, skipped"));
                        Vec::new()
                    }
                    Availability::Busy(why) => {
                        reason.push(format!("{name} {why}, kept"));
                        dial(flow, name, destination, None, request.state, reason)
                    }
                    Availability::Free => {
                        dial(flow, name, destination, None, request.state, reason)
                    }
                }
            } else {
                Vec::new()
            }
        }
    }
}

fn expand_group(
    flow: &Flow,
    name: &str,
    group: &Group,
    request: &RouteRequest,
    reason: &mut Vec<String>,
) -> Vec<Target> {
    let state = request.state;
    let mut order: Vec<&str> = group.members.iter().map(String::as_str).collect();
    match group.strategy {
        Strategy::Failover => reason.push(format!("group {name} in failover order")),
        Strategy::RoundRobin => {
            let after = state
                .last_member(name)
                .and_then(|last| order.iter().position(|m| *m == last));
            match after {
                Some(i) => {
                    let len = order.len();
                    order.rotate_left((i + 1) % len);
                    reason.push(format!(
                        "group {name} round robin after {}",
                        order[order.len() - 1]
                    ));
                }
                None => reason.push(format!("group {name} round robin from the start")),
            }
        }
        Strategy::LeastRecent => {
            // Never used sorts first (None < Some); the sort is stable, so
            // ties keep the listed order.
            order.sort_by_key(|m| state.status(m).last_used);
            reason.push(format!("group {name} least recently used first"));
        }
    }

    if let Some(language) = request.caller.language.as_deref() {
        let speaks = |member: &str| {
            flow.destinations.get(member).is_none_or(|d| {
                d.skills.languages.is_empty()
                    || d.skills
                        .languages
                        .iter()
                        .any(|l| same_language(l, language))
            })
        };
        let (mut first, rest): (Vec<&str>, Vec<&str>) = order.iter().partition(|m| speaks(m));
        if !rest.is_empty() {
            reason.push(format!(
                "{} not {language}-speaking, moved last",
                rest.join(", ")
            ));
            first.extend(rest);
            order = first;
        }
    }

    let mut free = Vec::new();
    let mut busy = Vec::new();
    for member in order {
        let Some(destination) = flow.destinations.get(member) else {
            continue; // The checker rejects this; nothing to dial.
        };
        match availability(flow, member, destination, request) {
            Availability::Skip(why) => reason.push(format!("{member} {why}, skipped")),
            Availability::Busy(why) => match group.busy {
                BusyPolicy::Last => {
                    reason.push(format!("{member} {why}, moved last"));
                    busy.push((member, destination));
                }
                BusyPolicy::Skip => reason.push(format!("{member} {why}, skipped")),
            },
            Availability::Free => free.push((member, destination)),
        }
    }
    free.into_iter()
        .chain(busy)
        .flat_map(|(member, destination)| {
            dial(flow, member, destination, Some(name), state, reason)
        })
        .collect()
}

enum Availability {
    Free,
    Busy(String),
    Skip(String),
}

fn availability(flow: &Flow, name: &str, d: &Destination, request: &RouteRequest) -> Availability {
    let status = request.state.status(name);
    if !status.reachable {
        return Availability::Skip("unreachable".into());
    }
    if let Some(schedule_name) = &d.hours {
        if let Some(schedule) = flow.schedules.get(schedule_name) {
            if !is_open(schedule, request.at) {
                return Availability::Skip(format!("closed by schedule {schedule_name}"));
            }
        }
    }
    if !d.skills.tiers.is_empty() {
        let served = request
            .caller
            .tier
            .as_deref()
            .is_some_and(|tier| d.skills.tiers.iter().any(|t| t == tier));
        if !served {
            return Availability::Skip(format!("serves tiers {} only", d.skills.tiers.join(", ")));
        }
    }
    match d.capacity {
        Some(capacity) if status.active_calls >= capacity => {
            Availability::Busy(format!("busy ({}/{capacity})", status.active_calls))
        }
        _ => Availability::Free,
    }
}

fn dial(
    flow: &Flow,
    name: &str,
    d: &Destination,
    group: Option<&str>,
    state: &DestinationState,
    reason: &mut Vec<String>,
) -> Vec<Target> {
    let single = |dial: Dial| {
        vec![Target {
            destination: name.to_string(),
            group: group.map(str::to_string),
            dial,
        }]
    };
    if let Some(extension) = &d.extension {
        single(Dial::Extension(extension.clone()))
    } else if let Some(sip) = &d.sip {
        single(Dial::Sip(sip.clone()))
    } else if let Some(number) = &d.number {
        least_cost(&flow.trunks, name, number, group, state, reason)
    } else {
        Vec::new()
    }
}

/// One target per trunk able to reach `number`, cheapest first.
fn least_cost(
    trunks: &Table<Trunk>,
    destination: &str,
    number: &str,
    group: Option<&str>,
    state: &DestinationState,
    reason: &mut Vec<String>,
) -> Vec<Target> {
    let mut candidates: Vec<Target> = Vec::new();
    let mut down = Vec::new();
    for (trunk_name, trunk) in trunks.iter() {
        let Some((prefix, rate)) = trunk
            .rates
            .iter()
            .filter(|(prefix, _)| number.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
        else {
            continue;
        };
        if !state.trunk_reachable(trunk_name) {
            down.push(trunk_name);
            continue;
        }
        candidates.push(Target {
            destination: destination.to_string(),
            group: group.map(str::to_string),
            dial: Dial::Trunk {
                trunk: trunk_name.to_string(),
                gateway: trunk.gateway.clone(),
                number: number.to_string(),
                prefix: prefix.to_string(),
                rate: RatePerMinute(*rate),
            },
        });
    }
    // Stable: equal rates keep the file order.
    candidates.sort_by(|a, b| rate_of(a).total_cmp(&rate_of(b)));
    let listed: Vec<String> = candidates
        .iter()
        .filter_map(|t| match &t.dial {
            Dial::Trunk {
                trunk,
                prefix,
                rate,
                ..
            } => Some(format!("{trunk} {rate} ({prefix})")),
            _ => None,
        })
        .collect();
    let mut line = format!("least cost for {number}: ");
    line.push_str(if listed.is_empty() {
        "no reachable trunk"
    } else {
        ""
    });
    line.push_str(&listed.join(", "));
    if !down.is_empty() {
        line.push_str(&format!("; {} down, skipped", down.join(", ")));
    }
    reason.push(line);
    candidates
}

fn rate_of(target: &Target) -> f64 {
    match &target.dial {
        Dial::Trunk { rate, .. } => rate.0,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::load::load_str;
    use chrono::TimeZone;

    const FLOW: &str = r#"
name: unit
greeting: Hello.
start: main
nodes:
  main:
    intents:
      - name: help
        description: Help.
        examples: [help me]
        then: [say: One moment., transfer: team]
      - name: abroad
        description: The Paris office.
        examples: [paris office]
        then: [transfer: "+33140000000"]
    keys:
      "9": [transfer: "{extension}"]
    slots:
      - {name: extension, type: digits}
destinations:
  a: {extension: "101", capacity: 1}
  b: {extension: "102", skills: {languages: [fr]}}
  c: {sip: "sip:c@pbx.example.com"}
groups:
  team: {members: [a, b, c], strategy: round_robin}
trunks:
  cheap: {gateway: "sip:cheap.example.net", rates: {"+33": 0.02, "+3314": 0.005}}
  dear: {gateway: "sip:dear.example.net", rates: {"+33": 0.01}}
"#;

    fn flow() -> Flow {
        load_str("unit.yaml", FLOW).unwrap_or_else(|d| panic!("{d:#?}"))
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 7, 15, 0, 0).unwrap()
    }

    fn names(decision: &RouteDecision) -> Vec<&str> {
        decision
            .targets
            .iter()
            .map(|t| t.destination.as_str())
            .collect()
    }

    #[test]
    fn round_robin_language_and_busy_combine() {
        let flow = flow();
        let mut state = DestinationState::default();
        let caller = CallerAttributes {
            language: Some("en".into()),
            ..Default::default()
        };
        let slots = Slots::new();
        let request = |state: &DestinationState| {
            route(
                &flow,
                &RouteRequest {
                    wanted: Wanted::Intent {
                        node: "main",
                        intent: "help",
                    },
                    slots: &slots,
                    caller: &caller,
                    at: at(),
                    state,
                },
            )
            .unwrap()
        };
        let first = request(&state);
        // b only speaks French: after the others.
        assert_eq!(names(&first), ["a", "c", "b"]);
        state.record_transfer(&first.targets[0], at());
        state.set_active_calls("a", 1);
        let second = request(&state);
        // After a: b, c, a -> b moved last for language, a busy last.
        assert_eq!(names(&second), ["c", "b", "a"]);
        assert!(
            second.reason.contains("a busy (1/1), moved last"),
            "{}",
            second.reason
        );
    }

    #[test]
    fn least_cost_uses_the_longest_prefix_of_each_trunk() {
        let flow = flow();
        let state = DestinationState::default();
        let caller = CallerAttributes::default();
        let slots = Slots::new();
        let decision = route(
            &flow,
            &RouteRequest {
                wanted: Wanted::Intent {
                    node: "main",
                    intent: "abroad",
                },
                slots: &slots,
                caller: &caller,
                at: at(),
                state: &state,
            },
        )
        .unwrap();
        let trunks: Vec<String> = decision
            .targets
            .iter()
            .map(|t| match &t.dial {
                Dial::Trunk { trunk, prefix, .. } => format!("{trunk}{prefix}"),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(trunks, ["cheap+3314", "dear+33"]);
    }

    #[test]
    fn slot_values_name_destinations_by_extension_never_numbers() {
        let flow = flow();
        let state = DestinationState::default();
        let caller = CallerAttributes::default();
        let mut slots = Slots::new();
        slots.insert("extension".into(), "102".into());
        let request = |slots: &Slots| {
            route(
                &flow,
                &RouteRequest {
                    wanted: Wanted::Key {
                        node: "main",
                        key: '9',
                    },
                    slots,
                    caller: &caller,
                    at: at(),
                    state: &state,
                },
            )
        };
        assert_eq!(names(&request(&slots).unwrap()), ["b"]);
        slots.insert("extension".into(), "+33140000000".into());
        assert_eq!(
            request(&slots),
            Err(RouteError::SlotNamesNothing {
                slot: "extension".into(),
                value: "+33140000000".into()
            })
        );
        assert_eq!(
            request(&Slots::new()),
            Err(RouteError::MissingSlot("extension".into()))
        );
    }

    #[test]
    fn misuse_is_a_typed_error() {
        let flow = flow();
        let state = DestinationState::default();
        let caller = CallerAttributes::default();
        let slots = Slots::new();
        let run = |wanted| {
            route(
                &flow,
                &RouteRequest {
                    wanted,
                    slots: &slots,
                    caller: &caller,
                    at: at(),
                    state: &state,
                },
            )
        };
        assert_eq!(
            run(Wanted::Intent {
                node: "nope",
                intent: "help"
            }),
            Err(RouteError::UnknownNode("nope".into()))
        );
        assert_eq!(
            run(Wanted::Intent {
                node: "main",
                intent: "nope"
            }),
            Err(RouteError::UnknownIntent {
                node: "main".into(),
                intent: "nope".into()
            })
        );
        assert_eq!(
            run(Wanted::Key {
                node: "main",
                key: '1'
            }),
            Err(RouteError::UnknownKey {
                node: "main".into(),
                key: '1'
            })
        );
        assert_eq!(
            run(Wanted::Target("nobody")),
            Err(RouteError::UnknownTarget("nobody".into()))
        );
    }

    #[test]
    fn state_defaults_and_records() {
        let mut state = DestinationState::default();
        assert_eq!(state.status("x"), DestinationStatus::default());
        assert!(state.status("x").reachable);
        state.set_trunk_reachable("t", false);
        assert!(!state.trunk_reachable("t"));
        state.set_trunk_reachable("t", true);
        assert!(state.trunk_reachable("t"));
        let target = Target {
            destination: "a".into(),
            group: Some("g".into()),
            dial: Dial::Extension("1".into()),
        };
        state.record_transfer(&target, at());
        assert_eq!(state.last_member("g"), Some("a"));
        assert_eq!(state.status("a").last_used, Some(at()));
    }
}
