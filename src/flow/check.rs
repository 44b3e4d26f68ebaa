//! Semantic checks of a deserialised flow: everything serde cannot see,
//! such as a transfer to a destination that does not exist.
//!
//! Every check runs and every problem is reported; none stops the others.
//! Messages are stable (tests and editors match on them) and each is placed
//! with the [`SourceMap`] built while parsing. The order of the checks
//! follows the file's sections; the loader sorts the result by position.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::caller::is_e164;
use super::diagnostic::{closest, suggestion_hint, Diagnostic};
use super::load::{PathBuf, Position, SourceMap};
use super::model::{
    Callers, Destination, Detector, Flow, Group, IntentDetection, Node, Reprompt, Schedule,
    SlotKind, Step, Steps, TargetRef, Trunk,
};
use super::schedule::{parse_holiday, parse_range, parse_timezone, OpenRange, ScheduleError};

/// Runs every semantic check; `file` names the file in the diagnostics.
pub fn check(flow: &Flow, map: &SourceMap, file: &str) -> Vec<Diagnostic> {
    let mut checker = Checker {
        flow,
        map,
        file,
        out: Vec::new(),
    };
    checker.top_level();
    if let Some(intent) = &flow.intent {
        checker.intent_detection(intent);
    }
    checker.nodes();
    checker.reachability();
    checker.loops();
    checker.destinations();
    checker.groups();
    checker.schedules();
    checker.trunks();
    if let Some(callers) = &flow.callers {
        checker.callers(callers);
    }
    checker.routing();
    checker.out
}

struct Checker<'a> {
    flow: &'a Flow,
    map: &'a SourceMap,
    file: &'a str,
    out: Vec<Diagnostic>,
}

/// Where a list of steps runs, which decides what `collect` may name.
#[derive(Clone, Copy)]
enum StepContext<'a> {
    Node(&'a str, &'a Node),
    /// Flow-wide reprompts run in whichever node the caller is in.
    FlowWide,
}

impl<'a> Checker<'a> {
    fn report(&mut self, at: Position, message: String, hint: Option<String>) {
        self.out.push(Diagnostic {
            file: self.file.to_string(),
            line: at.line,
            column: at.column,
            message,
            hint,
        });
    }

    fn not_empty(&mut self, path: &PathBuf, what: &str, text: &str, hint: &str) {
        if text.trim().is_empty() {
            self.report(
                self.map.value(path),
                format!("{what} is empty"),
                Some(hint.to_string()),
            );
        }
    }

    fn language_code(&mut self, path: &PathBuf, code: &str) {
        // ISO 639-1/-3 primary tags, optionally with a region: en, yue, es-MX.
        let (primary, region) = match code.split_once('-') {
            Some((p, r)) => (p, Some(r)),
            None => (code, None),
        };
        let primary_ok =
            (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
        let region_ok =
            region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()));
        if !primary_ok || !region_ok {
            self.report(
                self.map.value(path),
                format!("invalid language code \"{code}\""),
                Some("use an ISO 639 code such as en, es or pt-BR".into()),
            );
        }
    }

    fn top_level(&mut self) {
        let flow = self.flow;
        self.not_empty(
            &PathBuf::of(&["name"]),
            "name",
            &flow.name,
            "name the flow, e.g. acme-support",
        );
        self.not_empty(
            &PathBuf::of(&["greeting"]),
            "greeting",
            &flow.greeting,
            "write what every caller hears first, e.g. \"Thanks for calling Acme, how can I help?\"",
        );
        if let Some(persona) = &flow.persona {
            self.not_empty(
                &PathBuf::of(&["persona"]),
                "persona",
                persona,
                "describe who the agent is, or leave persona out",
            );
        }
        if let Some(instructions) = &flow.instructions {
            self.not_empty(
                &PathBuf::of(&["instructions"]),
                "instructions",
                instructions,
                "write rules for the agent, or leave instructions out",
            );
        }
        if let Some(language) = &flow.language {
            self.language_code(&PathBuf::of(&["language"]), language);
        }
        if let Some(confirm) = &flow.confirm {
            let path = PathBuf::of(&["confirm"]);
            self.not_empty(
                &path,
                "confirm",
                confirm,
                "write the sentence said before a transfer, or leave confirm out",
            );
            for placeholder in placeholders(confirm) {
                if placeholder != "destination" {
                    self.report(
                        self.map.value(&path),
                        format!("unknown placeholder \"{{{placeholder}}}\" in confirm"),
                        Some("confirm can use {destination}".into()),
                    );
                }
            }
        }
        if flow.nodes.is_empty() {
            self.report(
                self.map.value(&PathBuf::of(&["nodes"])),
                "no nodes".into(),
                Some("add at least the start node".into()),
            );
        } else if !flow.nodes.contains(&flow.start) {
            self.unknown_node(&PathBuf::of(&["start"]), &flow.start);
        }
        for key in ["no_input", "no_match"] {
            let reprompt = if key == "no_input" {
                &flow.no_input
            } else {
                &flow.no_match
            };
            if let Some(reprompt) = reprompt {
                self.reprompt(&PathBuf::of(&[key]), reprompt, StepContext::FlowWide);
            }
        }
    }

    /// The `intent` section: an LLM detector needs an LLM, and the LLM's
    /// settings must be usable (the server itself is only met on a call).
    fn intent_detection(&mut self, intent: &IntentDetection) {
        let path = PathBuf::of(&["intent"]);
        if let (Some(detector @ (Detector::Llm | Detector::Hybrid)), None) =
            (intent.detector, &intent.llm)
        {
            self.report(
                self.map.value(&path.key("detector")),
                format!("detector {} needs an llm section", detector.as_str()),
                Some("add llm: {base_url: ..., model: ...}, or use detector: embedded".into()),
            );
        }
        let Some(llm) = &intent.llm else { return };
        let llm_path = path.key("llm");
        let url = llm.base_url.trim();
        let host = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        if !host.is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace)) {
            self.report(
                self.map.value(&llm_path.key("base_url")),
                format!("invalid LLM URL \"{}\"", llm.base_url),
                Some(
                    "write the API's base URL up to its version, e.g. http://127.0.0.1:8080/v1"
                        .into(),
                ),
            );
        }
        self.not_empty(
            &llm_path.key("model"),
            "model",
            &llm.model,
            "name the model as the server knows it, e.g. gpt-4o-mini",
        );
        if let Some(variable) = &llm.api_key_env {
            let valid = variable
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && variable
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.report(
                    self.map.value(&llm_path.key("api_key_env")),
                    format!("invalid environment variable name \"{variable}\""),
                    Some("name the variable that holds the key, e.g. OPENAI_API_KEY; never write the key itself in a flow".into()),
                );
            }
        }
        if !(1..=60_000).contains(&llm.timeout_ms) {
            self.report(
                self.map.value(&llm_path.key("timeout_ms")),
                "LLM timeout must be between 1 and 60000 ms".into(),
                Some("the caller waits in silence while it runs; 1000-5000 ms is typical".into()),
            );
        }
        if llm.max_tokens < MIN_LLM_TOKENS {
            self.report(
                self.map.value(&llm_path.key("max_tokens")),
                format!("max_tokens must be at least {MIN_LLM_TOKENS}"),
                Some("the JSON answer alone takes up to 64 tokens; 160 leaves room for a short reply".into()),
            );
        }
    }

    fn unknown_node(&mut self, path: &PathBuf, name: &str) {
        let hint = suggestion_hint(name, "nodes", self.flow.nodes.names());
        self.report(
            self.map.value(path),
            format!("unknown node \"{name}\""),
            Some(hint),
        );
    }

    fn nodes(&mut self) {
        for (name, node) in self.flow.nodes.iter() {
            let path = PathBuf::of(&["nodes", name]);
            if let Some(say) = &node.say {
                self.not_empty(
                    &path.key("say"),
                    "say",
                    say,
                    "write the prompt, or leave say out",
                );
            }
            self.intents(name, node, &path);
            for (key, steps) in node.keys.iter() {
                let key_path = path.key("keys").key(key);
                if !is_dtmf_key(key) {
                    self.report(
                        self.map.key(&key_path),
                        format!("invalid DTMF key \"{key}\""),
                        Some("a key is one of 0-9, * or # (quote * and #)".into()),
                    );
                }
                self.steps(&key_path, steps, StepContext::Node(name, node));
            }
            self.slots(name, node, &path);
            let listens = !node.intents.is_empty() || !node.keys.is_empty();
            match &node.then {
                Some(steps) if listens => {
                    self.report(
                        self.map.key(&path.key("then")),
                        format!("node \"{name}\" has both then and intents or keys"),
                        Some("a node that listens waits for the caller; move these steps into an intent, a key or a node of their own".into()),
                    );
                    self.steps(&path.key("then"), steps, StepContext::Node(name, node));
                }
                Some(steps) => self.steps(&path.key("then"), steps, StepContext::Node(name, node)),
                None if !listens => self.report(
                    self.map.key(&path),
                    format!("node \"{name}\" has no intents, keys or then"),
                    Some(
                        "the call would stall here; listen for intents or keys, or add then: [...]"
                            .into(),
                    ),
                ),
                None => {}
            }
            if let Some(reprompt) = &node.no_input {
                self.reprompt(
                    &path.key("no_input"),
                    reprompt,
                    StepContext::Node(name, node),
                );
            }
            if let Some(reprompt) = &node.no_match {
                self.reprompt(
                    &path.key("no_match"),
                    reprompt,
                    StepContext::Node(name, node),
                );
            }
        }
    }

    fn intents(&mut self, node_name: &'a str, node: &'a Node, path: &PathBuf) {
        let mut first_seen: HashMap<&str, Position> = HashMap::new();
        // Normalised example -> (intent, index) where it first appears.
        let mut examples_seen: HashMap<String, &str> = HashMap::new();
        for (i, intent) in node.intents.iter().enumerate() {
            let intent_path = path.key("intents").index(i);
            let name_path = intent_path.key("name");
            if intent.name.trim().is_empty() {
                self.report(
                    self.map.value(&name_path),
                    "intent name is empty".into(),
                    Some("name the intent, e.g. billing".into()),
                );
            } else if let Some(first) = first_seen.get(intent.name.as_str()) {
                self.report(
                    self.map.value(&name_path),
                    format!(
                        "duplicate intent \"{}\" in node \"{node_name}\"",
                        intent.name
                    ),
                    Some(format!("first defined at line {}", first.line)),
                );
            } else {
                first_seen.insert(&intent.name, self.map.value(&name_path));
            }
            if intent.description.trim().is_empty() {
                self.report(
                    self.map.value(&intent_path.key("description")),
                    format!("intent \"{}\" has an empty description", intent.name),
                    Some(
                        "describe what callers with this intent want; the classifier reads it"
                            .into(),
                    ),
                );
            }
            if intent.examples.is_empty() {
                self.report(
                    self.map.key(&intent_path.key("examples")),
                    format!("intent \"{}\" has no examples", intent.name),
                    Some(
                        "add several phrases a caller would say; the classifier learns from them"
                            .into(),
                    ),
                );
            }
            let mut own: BTreeSet<String> = BTreeSet::new();
            for (j, example) in intent.examples.iter().enumerate() {
                let example_path = intent_path.key("examples").index(j);
                let normalised = normalise_example(example);
                if normalised.is_empty() {
                    self.report(
                        self.map.value(&example_path),
                        format!("empty example in intent \"{}\"", intent.name),
                        Some("remove it or write a phrase".into()),
                    );
                    continue;
                }
                if !own.insert(normalised.clone()) {
                    self.report(
                        self.map.value(&example_path),
                        format!(
                            "example \"{example}\" is listed twice in intent \"{}\"",
                            intent.name
                        ),
                        Some("remove one of them".into()),
                    );
                    continue;
                }
                match examples_seen.get(&normalised) {
                    Some(other) if *other != intent.name => self.report(
                        self.map.value(&example_path),
                        format!("example \"{example}\" is in intents \"{other}\" and \"{}\"", intent.name),
                        Some("an example must belong to one intent, or the classifier cannot tell them apart".into()),
                    ),
                    _ => {
                        examples_seen.insert(normalised, &intent.name);
                    }
                }
            }
            self.steps(
                &intent_path.key("then"),
                &intent.then,
                StepContext::Node(node_name, node),
            );
        }
    }

    fn slots(&mut self, node_name: &str, node: &Node, path: &PathBuf) {
        let mut first_seen: HashMap<&str, Position> = HashMap::new();
        for (i, slot) in node.slots.iter().enumerate() {
            let slot_path = path.key("slots").index(i);
            let name_at = self.map.value(&slot_path.key("name"));
            if let Some(first) = first_seen.get(slot.name.as_str()) {
                self.report(
                    name_at,
                    format!("duplicate slot \"{}\" in node \"{node_name}\"", slot.name),
                    Some(format!("first defined at line {}", first.line)),
                );
            } else {
                first_seen.insert(&slot.name, name_at);
            }
            if let Some(prompt) = &slot.prompt {
                self.not_empty(
                    &slot_path.key("prompt"),
                    "prompt",
                    prompt,
                    "write the question, or leave prompt out",
                );
            }
            let counts_digits = matches!(slot.kind, SlotKind::Digits | SlotKind::AccountNumber);
            for (key, value) in [
                ("min_digits", slot.min_digits),
                ("max_digits", slot.max_digits),
            ] {
                if value.is_some() && !counts_digits {
                    self.report(
                        self.map.key(&slot_path.key(key)),
                        format!("{key} does not apply to {} slots", slot.kind.as_str()),
                        Some("only digits and account_number slots count digits".into()),
                    );
                }
            }
            if let (Some(min), Some(max)) = (slot.min_digits, slot.max_digits) {
                if min > max {
                    self.report(
                        self.map.value(&slot_path.key("min_digits")),
                        format!("min_digits {min} is more than max_digits {max}"),
                        None,
                    );
                }
            }
            if slot.max_digits == Some(0) {
                self.report(
                    self.map.value(&slot_path.key("max_digits")),
                    "max_digits must be at least 1".into(),
                    None,
                );
            }
        }
    }

    fn reprompt(&mut self, path: &PathBuf, reprompt: &Reprompt, context: StepContext<'a>) {
        if reprompt.limit == 0 {
            self.report(
                self.map.value(&path.key("limit")),
                "reprompt limit must be at least 1".into(),
                Some("limit counts reprompts before the escalation in then; 1 escalates after one retry".into()),
            );
        }
        for (i, say) in reprompt.say.iter().enumerate() {
            self.not_empty(
                &path.key("say").index(i),
                "reprompt",
                say,
                "write the reprompt or remove the entry",
            );
        }
        self.steps(&path.key("then"), &reprompt.then, context);
    }

    fn steps(&mut self, path: &PathBuf, steps: &Steps, context: StepContext<'a>) {
        if steps.0.is_empty() {
            self.report(
                self.map.value(path),
                "no steps".into(),
                Some("add a step such as transfer: operator or hangup".into()),
            );
            return;
        }
        let mut ended_by: Option<&str> = None;
        for (j, step) in steps.iter().enumerate() {
            let step_path = path.index(j);
            if let Some(keyword) = ended_by {
                self.report(
                    self.map.value(&step_path),
                    format!("step after {keyword} never runs"),
                    Some(format!(
                        "{keyword} ends the list; move this step before it or remove it"
                    )),
                );
                break;
            }
            match step {
                Step::Say(text) => self.not_empty(
                    &step_path.key("say"),
                    "say",
                    text,
                    "write the sentence or remove the step",
                ),
                Step::Transfer(target) => self.target(&step_path.key("transfer"), target),
                Step::Goto(node) => {
                    if !self.flow.nodes.contains(node) {
                        self.unknown_node(&step_path.key("goto"), node);
                    }
                }
                Step::Collect(slot) => self.collect(&step_path.key("collect"), slot, context),
                Step::Hangup => {}
            }
            if step.ends_list() {
                ended_by = Some(step.keyword());
            }
        }
    }

    fn collect(&mut self, path: &PathBuf, slot: &str, context: StepContext<'a>) {
        let at = self.map.value(path);
        match context {
            StepContext::FlowWide => self.report(
                at,
                format!("flow-wide steps cannot collect \"{slot}\""),
                Some(
                    "collect asks for a slot of the current node; move this reprompt into the node"
                        .into(),
                ),
            ),
            StepContext::Node(name, node) => {
                if node.slots.iter().any(|s| s.name == slot) {
                    return;
                }
                let hint = if node.slots.is_empty() {
                    format!("node \"{name}\" declares no slots; add it under slots:")
                } else {
                    suggestion_hint(
                        slot,
                        &format!("slots of node \"{name}\""),
                        node.slots.iter().map(|s| s.name.as_str()),
                    )
                };
                self.report(at, format!("unknown slot \"{slot}\""), Some(hint));
            }
        }
    }

    /// A transfer target or a routing rule's target.
    fn target(&mut self, path: &PathBuf, target: &str) {
        let at = self.map.value(path);
        match TargetRef::parse(target) {
            TargetRef::Name(name) => {
                let flow = self.flow;
                if flow.destinations.contains(name) || flow.groups.contains(name) {
                    return;
                }
                let mut hint = suggestion_hint(name, "destinations", flow.destinations.names());
                if !flow.groups.is_empty() {
                    let groups: Vec<&str> = flow.groups.names().collect();
                    if !hint.starts_with("did you mean") {
                        if let Some(near) = closest(name, groups.iter().copied()) {
                            hint = format!("did you mean \"{near}\"? {hint}");
                        }
                    }
                    hint = format!("{hint}; groups: {}", groups.join(", "));
                }
                self.report(at, format!("unknown destination \"{name}\""), Some(hint));
            }
            TargetRef::Number(number) => self.external_number(at, number),
            TargetRef::Slot(slot) => {
                let declared = self
                    .flow
                    .nodes
                    .iter()
                    .any(|(_, n)| n.slots.iter().any(|s| s.name == slot));
                if !declared {
                    let all: Vec<&str> = self
                        .flow
                        .nodes
                        .iter()
                        .flat_map(|(_, n)| n.slots.iter().map(|s| s.name.as_str()))
                        .collect();
                    let hint = suggestion_hint(slot, "slots", all.iter().copied());
                    self.report(at, format!("unknown slot \"{slot}\""), Some(hint));
                }
            }
        }
    }

    fn external_number(&mut self, at: Position, number: &str) {
        if !is_e164(number) {
            self.report(
                at,
                format!("invalid phone number \"{number}\""),
                Some("write it in E.164 form: + and the country code, e.g. +14155550123".into()),
            );
        } else if !self
            .flow
            .trunks
            .iter()
            .any(|(_, t)| t.rates.names().any(|prefix| number.starts_with(prefix)))
        {
            self.report(
                at,
                format!("no trunk can reach \"{number}\""),
                Some("add a rate for its prefix to a trunk under trunks:".into()),
            );
        }
    }

    /// Every node must be reachable by `goto` from the start node.
    fn reachability(&mut self) {
        let flow = self.flow;
        if !flow.nodes.contains(&flow.start) {
            return; // Already reported; everything would look unreachable.
        }
        let flow_wide: Vec<&Steps> = [&flow.no_input, &flow.no_match]
            .into_iter()
            .flatten()
            .map(|r| &r.then)
            .collect();
        let mut reached: BTreeSet<&str> = BTreeSet::new();
        let mut queue: VecDeque<&str> = VecDeque::from([flow.start.as_str()]);
        while let Some(name) = queue.pop_front() {
            if !reached.insert(name) {
                continue;
            }
            let Some(node) = flow.nodes.get(name) else {
                continue;
            };
            for steps in node_step_lists(node).chain(flow_wide.iter().copied()) {
                for step in steps.iter() {
                    let Step::Goto(next) = step else { continue };
                    // A misspelt goto is reported already; follow the node
                    // it was probably meant for, so that node is not also
                    // reported unreachable.
                    let next = if flow.nodes.contains(next) {
                        Some(next.as_str())
                    } else {
                        closest(next, flow.nodes.names())
                    };
                    if let Some(next) = next.filter(|n| !reached.contains(n)) {
                        queue.push_back(next);
                    }
                }
            }
        }
        for name in flow.nodes.names() {
            if !reached.contains(name) {
                self.report(
                    self.map.key(&PathBuf::of(&["nodes", name])),
                    format!("node \"{name}\" is unreachable"),
                    Some(format!(
                        "no goto leads here from the start node \"{}\"",
                        flow.start
                    )),
                );
            }
        }
    }

    /// Nodes that only run `then` and `goto` one another would pass the
    /// call round forever without waiting for the caller. Each such cycle
    /// is reported once, at the goto of its first node in file order.
    fn loops(&mut self) {
        let flow = self.flow;
        // The node a node moves on to without waiting, if any.
        let next_of = |name: &str| -> Option<&str> {
            let node = flow.nodes.get(name)?;
            if !node.intents.is_empty() || !node.keys.is_empty() {
                return None;
            }
            let steps = node.then.as_ref()?;
            if steps.iter().any(|s| matches!(s, Step::Collect(_))) {
                return None; // Waits for the caller.
            }
            steps.iter().find_map(|s| match s {
                Step::Goto(next) if flow.nodes.contains(next) => Some(next.as_str()),
                _ => None,
            })
        };
        for (index, start) in flow.nodes.names().enumerate() {
            let mut cycle = vec![start];
            let mut current = start;
            while let Some(next) = next_of(current) {
                if next == start {
                    let first_in_file = cycle
                        .iter()
                        .all(|n| flow.nodes.index_of(n).is_some_and(|i| i >= index));
                    if first_in_file {
                        cycle.push(start);
                        let goto = flow.nodes.get(start).and_then(|n| n.then.as_ref()).map_or(
                            0,
                            |steps| {
                                steps
                                    .iter()
                                    .position(|s| matches!(s, Step::Goto(_)))
                                    .unwrap_or(0)
                            },
                        );
                        self.report(
                            self.map.value(&PathBuf::of(&["nodes", start, "then"]).index(goto)),
                            format!("nodes {} loop without waiting for the caller", cycle.join(" → ")),
                            Some("listen for intents or keys, or collect a slot, in one of them; or end with transfer or hangup".into()),
                        );
                    }
                    break;
                }
                if cycle.contains(&next) {
                    break; // A cycle that does not pass through `start`.
                }
                cycle.push(next);
                current = next;
            }
        }
    }

    fn destinations(&mut self) {
        for (name, destination) in self.flow.destinations.iter() {
            self.destination(name, destination);
        }
    }

    fn destination(&mut self, name: &str, d: &Destination) {
        let path = PathBuf::of(&["destinations", name]);
        let addresses = [d.extension.is_some(), d.sip.is_some(), d.number.is_some()]
            .into_iter()
            .filter(|set| *set)
            .count();
        if addresses == 0 {
            self.report(
                self.map.key(&path),
                format!("destination \"{name}\" has no extension, sip or number"),
                Some("give exactly one: extension: \"201\", sip: sip:desk@pbx.example.com or number: \"+14155550123\"".into()),
            );
        } else if addresses > 1 {
            self.report(
                self.map.key(&path),
                format!("destination \"{name}\" has more than one of extension, sip and number"),
                Some("give exactly one; use a group to try several".into()),
            );
        }
        if let Some(extension) = &d.extension {
            let valid = !extension.is_empty()
                && extension
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
            if !valid {
                self.report(
                    self.map.value(&path.key("extension")),
                    format!("invalid extension \"{extension}\""),
                    Some("an extension is digits (and * or #), e.g. \"201\"".into()),
                );
            }
        }
        if let Some(sip) = &d.sip {
            self.sip_uri(&path.key("sip"), sip);
        }
        if let Some(number) = &d.number {
            self.external_number(self.map.value(&path.key("number")), number);
        }
        if let Some(label) = &d.label {
            self.not_empty(
                &path.key("label"),
                "label",
                label,
                "write how the agent names it, or leave label out",
            );
        }
        if let Some(hours) = &d.hours {
            self.schedule_ref(&path.key("hours"), hours);
        }
        if d.capacity == Some(0) {
            self.report(
                self.map.value(&path.key("capacity")),
                "capacity must be at least 1".into(),
                Some("leave capacity out for no limit".into()),
            );
        }
        for (i, language) in d.skills.languages.iter().enumerate() {
            self.language_code(&path.key("skills").key("languages").index(i), language);
        }
        for (i, tier) in d.skills.tiers.iter().enumerate() {
            self.not_empty(
                &path.key("skills").key("tiers").index(i),
                "tier",
                tier,
                "name the tier, e.g. premium",
            );
        }
    }

    fn sip_uri(&mut self, path: &PathBuf, uri: &str) {
        let rest = uri
            .strip_prefix("sips:")
            .or_else(|| uri.strip_prefix("sip:"));
        let valid = rest.is_some_and(|r| {
            !r.is_empty() && !r.starts_with('@') && !r.chars().any(char::is_whitespace)
        });
        if !valid {
            self.report(
                self.map.value(path),
                format!("invalid SIP URI \"{uri}\""),
                Some("write sip:user@host or sips:user@host".into()),
            );
        }
    }

    fn schedule_ref(&mut self, path: &PathBuf, name: &str) {
        if !self.flow.schedules.contains(name) {
            let hint = suggestion_hint(name, "schedules", self.flow.schedules.names());
            self.report(
                self.map.value(path),
                format!("unknown schedule \"{name}\""),
                Some(hint),
            );
        }
    }

    fn groups(&mut self) {
        for (name, group) in self.flow.groups.iter() {
            self.group(name, group);
        }
    }

    fn group(&mut self, name: &str, group: &Group) {
        let flow = self.flow;
        let path = PathBuf::of(&["groups", name]);
        if flow.destinations.contains(name) {
            self.report(
                self.map.key(&path),
                format!("\"{name}\" is both a destination and a group"),
                Some("rename one; a transfer could not tell them apart".into()),
            );
        }
        if group.members.is_empty() {
            self.report(
                self.map.value(&path.key("members")),
                format!("group \"{name}\" has no members"),
                Some("list the destinations to try".into()),
            );
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for (i, member) in group.members.iter().enumerate() {
            let at = self.map.value(&path.key("members").index(i));
            if flow.groups.contains(member) && !flow.destinations.contains(member) {
                self.report(
                    at,
                    format!("group \"{name}\" member \"{member}\" is a group"),
                    Some("groups cannot contain groups; list its destinations instead".into()),
                );
            } else if !flow.destinations.contains(member) {
                let hint = suggestion_hint(member, "destinations", flow.destinations.names());
                self.report(
                    at,
                    format!("group \"{name}\" member \"{member}\" is not a destination"),
                    Some(hint),
                );
            } else if !seen.insert(member) {
                self.report(
                    at,
                    format!("group \"{name}\" lists \"{member}\" twice"),
                    Some("remove one".into()),
                );
            }
        }
    }

    fn schedules(&mut self) {
        for (name, schedule) in self.flow.schedules.iter() {
            self.schedule(name, schedule);
        }
    }

    fn schedule(&mut self, name: &str, schedule: &Schedule) {
        let path = PathBuf::of(&["schedules", name]);
        if parse_timezone(&schedule.timezone).is_err() {
            let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
            let hint = match closest(&schedule.timezone, names) {
                Some(near) => format!("did you mean \"{near}\"?"),
                None => "use an IANA name such as America/New_York or Europe/Madrid".into(),
            };
            self.report(
                self.map.value(&path.key("timezone")),
                ScheduleError::UnknownTimezone(schedule.timezone.clone()).to_string(),
                Some(hint),
            );
        }
        for (day, ranges) in schedule.weekly.days() {
            let day_path = path.key("weekly").key(day);
            let mut parsed: Vec<(&str, OpenRange)> = Vec::new();
            for (i, text) in ranges.iter().enumerate() {
                let at = self.map.value(&day_path.index(i));
                match parse_range(text) {
                    Ok(range) => {
                        if let Some((other, _)) = parsed.iter().find(|(_, r)| r.overlaps(&range)) {
                            self.report(
                                at,
                                format!("time ranges \"{other}\" and \"{text}\" overlap on {day}"),
                                Some("merge them into one range".into()),
                            );
                        }
                        parsed.push((text, range));
                    }
                    Err(error) => {
                        let hint = match error {
                            ScheduleError::EndsBeforeStart(_) => {
                                "a range cannot cross midnight: split it, e.g. 22:00-24:00 on one day and 00:00-06:00 on the next"
                            }
                            _ => "write HH:MM-HH:MM with two-digit hours, e.g. 08:00-20:00",
                        };
                        self.report(at, error.to_string(), Some(hint.into()));
                    }
                }
            }
        }
        for (i, holiday) in schedule.holidays.iter().enumerate() {
            if let Err(error) = parse_holiday(holiday) {
                self.report(
                    self.map.value(&path.key("holidays").index(i)),
                    error.to_string(),
                    Some("write YYYY-MM-DD, e.g. 2025-12-25".into()),
                );
            }
        }
    }

    fn trunks(&mut self) {
        for (name, trunk) in self.flow.trunks.iter() {
            self.trunk(name, trunk);
        }
    }

    fn trunk(&mut self, name: &str, trunk: &Trunk) {
        let path = PathBuf::of(&["trunks", name]);
        self.sip_uri(&path.key("gateway"), &trunk.gateway);
        if trunk.rates.is_empty() {
            self.report(
                self.map.value(&path.key("rates")),
                format!("trunk \"{name}\" has no rates"),
                Some(
                    "give a price per minute for each prefix it can reach, e.g. \"+1\": 0.01"
                        .into(),
                ),
            );
        }
        for (prefix, rate) in trunk.rates.iter() {
            let rate_path = path.key("rates").key(prefix);
            if !is_prefix(prefix) {
                self.report(
                    self.map.key(&rate_path),
                    format!("invalid prefix \"{prefix}\""),
                    Some("write + and digits, e.g. \"+44\"".into()),
                );
            }
            if !rate.is_finite() || *rate < 0.0 {
                self.report(
                    self.map.value(&rate_path),
                    format!("invalid rate for \"{prefix}\""),
                    Some("a rate is a price per minute, zero or more".into()),
                );
            }
        }
    }

    fn callers(&mut self, callers: &Callers) {
        let mut seen: HashMap<&str, Position> = HashMap::new();
        for (i, region) in callers.regions.iter().enumerate() {
            let path = PathBuf::of(&["callers", "regions"]).index(i);
            let at = self.map.value(&path.key("prefix"));
            if !is_prefix(&region.prefix) {
                self.report(
                    at,
                    format!("invalid prefix \"{}\"", region.prefix),
                    Some("write + and digits, e.g. \"+1212\"".into()),
                );
            } else if let Some(first) = seen.get(region.prefix.as_str()) {
                self.report(
                    at,
                    format!("prefix \"{}\" is listed twice", region.prefix),
                    Some(format!("first listed at line {}", first.line)),
                );
            } else {
                seen.insert(&region.prefix, at);
            }
            self.not_empty(
                &path.key("region"),
                "region",
                &region.region,
                "name the region, e.g. new-york",
            );
            if let Some(language) = &region.language {
                self.language_code(&path.key("language"), language);
            }
        }
        if let Some(source) = &callers.customers {
            let path = PathBuf::of(&["callers", "customers"]);
            match (&source.csv, &source.webhook) {
                (None, None) => self.report(
                    self.map.key(&path),
                    "customers needs csv or webhook".into(),
                    Some("e.g. csv: customers.csv".into()),
                ),
                (Some(_), Some(_)) => self.report(
                    self.map.key(&path),
                    "customers has both csv and webhook".into(),
                    Some("use one source".into()),
                ),
                (Some(csv), None) => {
                    self.not_empty(
                        &path.key("csv"),
                        "csv",
                        csv,
                        "give the CSV's path, relative to the flow file",
                    );
                }
                (None, Some(webhook)) => {
                    let hook = path.key("webhook");
                    if !(webhook.url.starts_with("https://") || webhook.url.starts_with("http://"))
                    {
                        self.report(
                            self.map.value(&hook.key("url")),
                            format!("invalid webhook URL \"{}\"", webhook.url),
                            Some("write an http:// or https:// URL".into()),
                        );
                    }
                    if !(1..=10_000).contains(&webhook.timeout_ms) {
                        self.report(
                            self.map.value(&hook.key("timeout_ms")),
                            "webhook timeout must be between 1 and 10000 ms".into(),
                            Some("the caller waits while it runs; 500-2000 ms is typical".into()),
                        );
                    }
                }
            }
        }
    }

    fn routing(&mut self) {
        let routing = &self.flow.routing;
        let path = PathBuf::of(&["routing"]);
        for (language, target) in routing.languages.iter() {
            let rule = path.key("languages").key(language);
            self.language_key(&rule, language);
            self.target(&rule, target);
        }
        for (tier, target) in routing.tiers.iter() {
            self.target(&path.key("tiers").key(tier), target);
        }
        if let Some(hours) = &routing.hours {
            self.schedule_ref(&path.key("hours"), hours);
            if routing.after_hours.is_none() {
                self.report(
                    self.map.key(&path.key("hours")),
                    "routing.hours needs after_hours".into(),
                    Some("say where calls go while closed, e.g. after_hours: voicemail".into()),
                );
            }
        }
        if let Some(after) = &routing.after_hours {
            self.target(&path.key("after_hours"), after);
        }
        if let Some(fallback) = &routing.fallback {
            self.target(&path.key("fallback"), fallback);
        }
    }

    /// A language used as a key is reported at the key, not the value.
    fn language_key(&mut self, path: &PathBuf, code: &str) {
        let before = self.out.len();
        self.language_code(path, code);
        if self.out.len() > before {
            let at = self.map.key(path);
            if let Some(d) = self.out.last_mut() {
                d.line = at.line;
                d.column = at.column;
            }
        }
    }
}

/// Fewest tokens an LLM answer fits in: the JSON around the reply takes
/// up to 64 (see `intent::llm`).
const MIN_LLM_TOKENS: u32 = 64;

/// Every step list of a node: intents, keys, then, and its reprompts.
fn node_step_lists(node: &Node) -> impl Iterator<Item = &Steps> {
    node.intents
        .iter()
        .map(|i| &i.then)
        .chain(node.keys.iter().map(|(_, steps)| steps))
        .chain(node.then.iter())
        .chain(node.no_input.iter().map(|r| &r.then))
        .chain(node.no_match.iter().map(|r| &r.then))
}

fn is_dtmf_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#')
}

/// `+` and 1 to 15 digits.
fn is_prefix(prefix: &str) -> bool {
    prefix
        .strip_prefix('+')
        .is_some_and(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Lower case, inner whitespace collapsed, trailing punctuation dropped, so
/// "Cancel my plan." and "cancel my  plan" count as the same example.
fn normalise_example(example: &str) -> String {
    example
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .trim_end_matches(['.', '!', '?', ','])
        .to_string()
}

/// The names inside `{...}` in a template.
fn placeholders(template: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                found.push(&after[..close]);
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::load::load_str;

    const BASE: &str = "\
name: t
greeting: Hello.
start: main
nodes:
  main:
    intents:
      - name: billing
        description: Bills.
        examples: [my bill is wrong]
        then: [transfer: billing]
destinations:
  billing: {extension: \"201\"}
";

    fn problems(extra: &str) -> Vec<String> {
        let text = format!("{BASE}{extra}");
        match load_str("t.yaml", &text) {
            Ok(_) => Vec::new(),
            Err(diagnostics) => diagnostics.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn base_flow_is_clean() {
        assert_eq!(problems(""), Vec::<String>::new());
    }

    #[test]
    fn helpers() {
        assert!(is_dtmf_key("0") && is_dtmf_key("#") && is_dtmf_key("*"));
        assert!(!is_dtmf_key("10") && !is_dtmf_key("a") && !is_dtmf_key(""));
        assert!(is_prefix("+1") && !is_prefix("1") && !is_prefix("+") && !is_prefix("+1a"));
        assert_eq!(normalise_example("  Cancel my   Plan. "), "cancel my plan");
        assert_eq!(
            placeholders("To {destination} and {x}. {"),
            ["destination", "x"]
        );
    }

    #[test]
    fn all_problems_are_reported_together() {
        let found = problems(
            "groups:\n  team: {members: [billing, bob]}\nschedules:\n  office:\n    timezone: Europe/Lodnon\n    weekly: {mon: [\"09:00-12:00\", \"11:00-13:00\"]}\n",
        );
        assert_eq!(
            found,
            [
                "t.yaml:14:29: group \"team\" member \"bob\" is not a destination\n  hint: destinations: billing",
                "t.yaml:17:15: unknown timezone \"Europe/Lodnon\"\n  hint: did you mean \"Europe/London\"?",
                "t.yaml:18:35: time ranges \"09:00-12:00\" and \"11:00-13:00\" overlap on mon\n  hint: merge them into one range",
            ]
        );
    }

    #[test]
    fn steps_after_an_ending_step_are_reported_once() {
        let text = BASE.replace(
            "then: [transfer: billing]",
            "then: [transfer: billing, say: x, hangup]",
        );
        let found: Vec<String> = load_str("t.yaml", &text)
            .unwrap_err()
            .iter()
            .map(|d| d.message.clone())
            .collect();
        assert_eq!(found, ["step after transfer never runs"]);
    }

    #[test]
    fn routing_rules_are_checked() {
        let found = problems("routing:\n  languages: {Spanish: spansh}\n  hours: office\n");
        assert_eq!(
            found,
            [
                "t.yaml:14:15: invalid language code \"Spanish\"\n  hint: use an ISO 639 code such as en, es or pt-BR",
                "t.yaml:14:24: unknown destination \"spansh\"\n  hint: destinations: billing",
                "t.yaml:15:3: routing.hours needs after_hours\n  hint: say where calls go while closed, e.g. after_hours: voicemail",
                "t.yaml:15:10: unknown schedule \"office\"\n  hint: no schedules are defined",
            ]
        );
    }

    #[test]
    fn external_numbers_need_a_trunk() {
        let found = problems(
            "  abroad: {number: \"+33140000000\"}\n  bad: {number: \"0140000000\"}\ntrunks:\n  carrier: {gateway: \"sip:carrier.example.net\", rates: {\"+44\": 0.02}}\n",
        );
        assert_eq!(
            found,
            [
                "t.yaml:13:20: no trunk can reach \"+33140000000\"\n  hint: add a rate for its prefix to a trunk under trunks:",
                "t.yaml:14:17: invalid phone number \"0140000000\"\n  hint: write it in E.164 form: + and the country code, e.g. +14155550123",
            ]
        );
    }
}
