//! Routing decisions on real flow files, one test per branch: time of day,
//! geography, tier, language, failover, load balancing and least cost.
//! Everything runs at fixed instants; nothing reads the clock.

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use switchboard::flow::caller::{CallerAttributes, CsvDirectory, CustomerDirectory};
use switchboard::flow::{
    load_flow, route, DestinationState, DestinationStatus, Dial, Flow, RouteDecision, RouteRequest,
    Slots, Wanted,
};

fn support() -> Flow {
    load_flow(Path::new("flows/support.yaml")).unwrap_or_else(|d| panic!("{d:#?}"))
}

fn fixture() -> Flow {
    load_flow(Path::new("tests/flows/routing.yaml")).unwrap_or_else(|d| panic!("{d:#?}"))
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Tuesday 2025-01-07 10:00 in New York (EST, UTC-5).
fn tuesday_morning() -> DateTime<Utc> {
    utc(2025, 1, 7, 15, 0)
}

/// A caller as the driver would identify them with the support flow's
/// prefix table and customer file.
fn caller(flow: &Flow, number: &str) -> CallerAttributes {
    let directory = CsvDirectory::from_path(Path::new("flows/customers.csv")).unwrap();
    let customer = directory.lookup(number).unwrap();
    CallerAttributes::identify(flow.callers.as_ref(), number, customer.as_ref())
}

fn decide(
    flow: &Flow,
    wanted: Wanted,
    caller: &CallerAttributes,
    at: DateTime<Utc>,
    state: &DestinationState,
) -> RouteDecision {
    let slots = Slots::new();
    route(
        flow,
        &RouteRequest {
            wanted,
            slots: &slots,
            caller,
            at,
            state,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn destinations(decision: &RouteDecision) -> Vec<&str> {
    decision
        .targets
        .iter()
        .map(|t| t.destination.as_str())
        .collect()
}

const BILLING: Wanted = Wanted::Intent {
    node: "main",
    intent: "billing",
};

// New York caller, not a customer: plain intent routing.
const NEW_YORKER: &str = "+12125550199";

#[test]
fn intent_goes_to_its_destination_during_opening_hours() {
    let flow = support();
    let d = decide(
        &flow,
        BILLING,
        &caller(&flow, NEW_YORKER),
        tuesday_morning(),
        &DestinationState::default(),
    );
    assert_eq!(destinations(&d), ["billing"]);
    assert_eq!(d.targets[0].dial, Dial::Extension("201".into()));
    assert_eq!(
        d.reason,
        "intent billing in node main → billing; open by schedule office (Tue 2025-01-07 10:00 EST)"
    );
    for (intent, destination) in [
        ("support", "support"),
        ("sales", "sales"),
        ("cancel", "retention"),
        ("operator", "operator"),
    ] {
        let d = decide(
            &flow,
            Wanted::Intent {
                node: "main",
                intent,
            },
            &caller(&flow, NEW_YORKER),
            tuesday_morning(),
            &DestinationState::default(),
        );
        assert_eq!(destinations(&d), [destination], "{intent}");
    }
}

#[test]
fn after_hours_goes_to_voicemail() {
    let flow = support();
    let who = caller(&flow, NEW_YORKER);
    let state = DestinationState::default();
    // Tuesday 20:00 EST: the range 08:00-20:00 has just ended.
    let evening = decide(&flow, BILLING, &who, utc(2025, 1, 8, 1, 0), &state);
    assert_eq!(destinations(&evening), ["voicemail"]);
    assert!(
        evening
            .reason
            .ends_with("closed by schedule office (Tue 2025-01-07 20:00 EST) → voicemail"),
        "{}",
        evening.reason
    );
    // 19:59 the same evening is still open.
    assert_eq!(
        destinations(&decide(
            &flow,
            BILLING,
            &who,
            utc(2025, 1, 8, 0, 59),
            &state
        )),
        ["billing"]
    );
    // Saturday: open 09:00-13:00 only.
    assert_eq!(
        destinations(&decide(
            &flow,
            BILLING,
            &who,
            utc(2025, 1, 11, 17, 59),
            &state
        )),
        ["billing"]
    );
    assert_eq!(
        destinations(&decide(
            &flow,
            BILLING,
            &who,
            utc(2025, 1, 11, 18, 0),
            &state
        )),
        ["voicemail"]
    );
    // Sunday noon.
    assert_eq!(
        destinations(&decide(
            &flow,
            BILLING,
            &who,
            utc(2025, 1, 12, 17, 0),
            &state
        )),
        ["voicemail"]
    );
}

#[test]
fn holidays_go_to_voicemail() {
    let flow = support();
    let who = caller(&flow, NEW_YORKER);
    let state = DestinationState::default();
    // Christmas Day 2025 is a Thursday; 11:00 EST would otherwise be open.
    let christmas = decide(&flow, BILLING, &who, utc(2025, 12, 25, 16, 0), &state);
    assert_eq!(destinations(&christmas), ["voicemail"]);
    assert!(
        christmas
            .reason
            .contains("closed by schedule office (Thu 2025-12-25 11:00 EST)"),
        "{}",
        christmas.reason
    );
    // The day after is a normal Friday.
    assert_eq!(
        destinations(&decide(
            &flow,
            BILLING,
            &who,
            utc(2025, 12, 26, 16, 0),
            &state
        )),
        ["billing"]
    );
}

#[test]
fn opening_hours_follow_daylight_saving_time() {
    let flow = support();
    let who = caller(&flow, NEW_YORKER);
    let state = DestinationState::default();
    // 12:30 UTC is 07:30 on Friday 2025-03-07 (EST) but 08:30 on Monday
    // 2025-03-10 (EDT, after the 2025-03-09 change).
    assert_eq!(
        destinations(&decide(
            &flow,
            BILLING,
            &who,
            utc(2025, 3, 7, 12, 30),
            &state
        )),
        ["voicemail"]
    );
    let monday = decide(&flow, BILLING, &who, utc(2025, 3, 10, 12, 30), &state);
    assert_eq!(destinations(&monday), ["billing"]);
    assert!(
        monday.reason.contains("(Mon 2025-03-10 08:30 EDT)"),
        "{}",
        monday.reason
    );
    // And back: on Monday 2025-11-03 (EST again) 12:30 UTC is 07:30.
    assert_eq!(
        destinations(&decide(
            &flow,
            BILLING,
            &who,
            utc(2025, 11, 3, 12, 30),
            &state
        )),
        ["voicemail"]
    );
}

#[test]
fn spanish_language_goes_to_spanish() {
    let flow = support();
    // Lucía is in the customer file with language es.
    let lucia = caller(&flow, "+13055550123");
    assert_eq!(lucia.language.as_deref(), Some("es"));
    let d = decide(
        &flow,
        BILLING,
        &lucia,
        tuesday_morning(),
        &DestinationState::default(),
    );
    assert_eq!(destinations(&d), ["spanish"]);
    assert!(d.reason.contains("language es → spanish"), "{}", d.reason);
    // Detected in speech (the driver overwrites the language), regional
    // variant included.
    let mut detected = caller(&flow, NEW_YORKER);
    detected.language = Some("es-MX".into());
    let d = decide(
        &flow,
        BILLING,
        &detected,
        tuesday_morning(),
        &DestinationState::default(),
    );
    assert_eq!(destinations(&d), ["spanish"]);
}

#[test]
fn pressing_two_goes_to_spanish() {
    let flow = support();
    let d = decide(
        &flow,
        Wanted::Key {
            node: "main",
            key: '2',
        },
        &caller(&flow, NEW_YORKER),
        tuesday_morning(),
        &DestinationState::default(),
    );
    assert_eq!(destinations(&d), ["spanish"]);
    assert!(
        d.reason.starts_with("key 2 in node main → spanish"),
        "{}",
        d.reason
    );
}

#[test]
fn geography_sets_region_and_language() {
    let flow = support();
    let san_juan = caller(&flow, "+17875550123");
    assert_eq!(
        san_juan.region.as_deref(),
        Some("puerto-rico"),
        "longest prefix beats +1"
    );
    assert_eq!(san_juan.language.as_deref(), Some("es"));
    let d = decide(
        &flow,
        BILLING,
        &san_juan,
        tuesday_morning(),
        &DestinationState::default(),
    );
    assert_eq!(destinations(&d), ["spanish"]);

    let new_york = caller(&flow, NEW_YORKER);
    assert_eq!(new_york.region.as_deref(), Some("new-york"));
    assert_eq!(
        destinations(&decide(
            &flow,
            BILLING,
            &new_york,
            tuesday_morning(),
            &DestinationState::default()
        )),
        ["billing"]
    );

    let unknown = caller(&flow, "+442071234567");
    assert_eq!((unknown.region, unknown.language), (None, None));
}

#[test]
fn premium_customers_go_to_priority() {
    let flow = support();
    let dana = caller(&flow, "+12125550140");
    assert_eq!(dana.tier.as_deref(), Some("premium"));
    let d = decide(
        &flow,
        BILLING,
        &dana,
        tuesday_morning(),
        &DestinationState::default(),
    );
    assert_eq!(destinations(&d), ["priority"]);
    assert!(d.reason.contains("tier premium → priority"), "{}", d.reason);
    // A standard customer is not.
    let marcus = caller(&flow, "+13125550177");
    assert_eq!(
        destinations(&decide(
            &flow,
            BILLING,
            &marcus,
            tuesday_morning(),
            &DestinationState::default()
        )),
        ["billing"]
    );
    // Closed hours beat the tier.
    let night = decide(
        &flow,
        BILLING,
        &dana,
        utc(2025, 1, 8, 3, 0),
        &DestinationState::default(),
    );
    assert_eq!(destinations(&night), ["voicemail"]);
    // Priority down: the premium caller still reaches billing.
    let mut state = DestinationState::default();
    state.set_reachable("priority", false);
    let d = decide(&flow, BILLING, &dana, tuesday_morning(), &state);
    assert_eq!(destinations(&d), ["billing"]);
    assert!(
        d.reason
            .contains("priority unreachable, skipped; priority unavailable → back to billing"),
        "{}",
        d.reason
    );
}

#[test]
fn priority_desk_refuses_other_tiers() {
    let flow = support();
    // Even when asked for directly, priority serves premium callers only;
    // the caller falls back to voicemail.
    let d = decide(
        &flow,
        Wanted::Target("priority"),
        &caller(&flow, NEW_YORKER),
        tuesday_morning(),
        &DestinationState::default(),
    );
    assert_eq!(destinations(&d), ["voicemail"]);
    assert!(
        d.reason
            .contains("priority serves tiers premium only, skipped"),
        "{}",
        d.reason
    );
}

#[test]
fn escalation_after_two_clarifications_goes_to_operator() {
    let flow = support();
    let main = flow.nodes.get("main").unwrap();
    let escalation = main.no_match.as_ref().unwrap();
    assert_eq!(escalation.limit, 2);
    let target = escalation
        .then
        .iter()
        .find_map(|s| match s {
            switchboard::flow::model::Step::Transfer(t) => Some(t.as_str()),
            _ => None,
        })
        .unwrap();
    let d = decide(
        &flow,
        Wanted::Target(target),
        &caller(&flow, NEW_YORKER),
        tuesday_morning(),
        &DestinationState::default(),
    );
    assert_eq!(destinations(&d), ["operator"]);
    assert_eq!(
        switchboard::flow::routing::confirmation(&flow, "operator").as_deref(),
        Some("Thanks, I'm putting you through to one of our customer care advisors now.")
    );
}

#[test]
fn unreachable_destination_falls_back() {
    let flow = support();
    let mut state = DestinationState::default();
    state.set_reachable("billing", false);
    let d = decide(
        &flow,
        BILLING,
        &caller(&flow, NEW_YORKER),
        tuesday_morning(),
        &state,
    );
    assert_eq!(destinations(&d), ["voicemail"]);
    assert!(
        d.reason
            .contains("billing unreachable, skipped; nothing available → fallback voicemail"),
        "{}",
        d.reason
    );
}

#[test]
fn failover_skips_an_unreachable_first_target() {
    let flow = fixture();
    let who = CallerAttributes::default();
    let mut state = DestinationState::default();
    let key = Wanted::Key {
        node: "main",
        key: '1',
    };
    assert_eq!(
        destinations(&decide(&flow, key, &who, tuesday_morning(), &state)),
        ["first", "second", "third"]
    );
    state.set_reachable("first", false);
    let d = decide(&flow, key, &who, tuesday_morning(), &state);
    assert_eq!(destinations(&d), ["second", "third"]);
    assert_eq!(
        d.targets[1].dial,
        Dial::Sip("sip:third@branch.example.com".into())
    );
    assert!(
        d.reason.contains("first unreachable, skipped"),
        "{}",
        d.reason
    );
}

#[test]
fn round_robin_rotates() {
    let flow = fixture();
    let who = CallerAttributes::default();
    let mut state = DestinationState::default();
    let mut firsts = Vec::new();
    for minute in 0..4 {
        let at = tuesday_morning() + chrono::Duration::minutes(minute);
        let d = decide(
            &flow,
            Wanted::Intent {
                node: "main",
                intent: "team",
            },
            &who,
            at,
            &state,
        );
        assert_eq!(d.targets.len(), 3);
        firsts.push(d.targets[0].destination.clone());
        state.record_transfer(&d.targets[0], at);
    }
    assert_eq!(firsts, ["a1", "a2", "a3", "a1"]);
    // A call answered by the second target moves the cursor past it.
    let d = decide(
        &flow,
        Wanted::Target("ring"),
        &who,
        tuesday_morning(),
        &state,
    );
    assert_eq!(destinations(&d), ["a2", "a3", "a1"]);
    state.record_transfer(&d.targets[1], tuesday_morning());
    assert_eq!(
        destinations(&decide(
            &flow,
            Wanted::Target("ring"),
            &who,
            tuesday_morning(),
            &state
        )),
        ["a1", "a2", "a3"]
    );
}

#[test]
fn least_recently_used_goes_first() {
    let flow = fixture();
    let who = CallerAttributes::default();
    let mut state = DestinationState::default();
    let used = |minute: u32| DestinationStatus {
        reachable: true,
        active_calls: 0,
        last_used: Some(utc(2025, 1, 7, 14, minute)),
    };
    state.set_status("a1", used(30));
    state.set_status("a2", used(10));
    state.set_status("a3", used(20));
    let d = decide(
        &flow,
        Wanted::Target("idle"),
        &who,
        tuesday_morning(),
        &state,
    );
    assert_eq!(destinations(&d), ["a2", "a3", "a1"]);
    // Never used beats everything; recording a transfer sends it last.
    state.set_status("a1", DestinationStatus::default());
    let d = decide(
        &flow,
        Wanted::Target("idle"),
        &who,
        tuesday_morning(),
        &state,
    );
    assert_eq!(destinations(&d), ["a1", "a2", "a3"]);
    state.record_transfer(&d.targets[0], tuesday_morning());
    assert_eq!(
        destinations(&decide(
            &flow,
            Wanted::Target("idle"),
            &who,
            tuesday_morning(),
            &state
        )),
        ["a2", "a3", "a1"]
    );
}

#[test]
fn busy_members_go_last_or_are_skipped() {
    let flow = fixture();
    let who = CallerAttributes::default();
    let mut state = DestinationState::default();
    state.set_active_calls("a1", 2); // capacity 2
    state.set_active_calls("a2", 1);
    let last = decide(
        &flow,
        Wanted::Target("ring"),
        &who,
        tuesday_morning(),
        &state,
    );
    assert_eq!(destinations(&last), ["a2", "a3", "a1"]);
    assert!(
        last.reason.contains("a1 busy (2/2), moved last"),
        "{}",
        last.reason
    );
    let skip = decide(
        &flow,
        Wanted::Target("ring-skip"),
        &who,
        tuesday_morning(),
        &state,
    );
    assert_eq!(destinations(&skip), ["a2", "a3"]);
    assert!(
        skip.reason.contains("a1 busy (2/2), skipped"),
        "{}",
        skip.reason
    );
}

#[test]
fn skills_and_hours_of_destinations_apply() {
    let flow = fixture();
    let mut gold = CallerAttributes::default();
    let state = DestinationState::default();
    // Tier-restricted desk: only gold callers.
    assert!(decide(
        &flow,
        Wanted::Target("gold-desk"),
        &gold,
        tuesday_morning(),
        &state
    )
    .targets
    .is_empty());
    gold.tier = Some("gold".into());
    assert_eq!(
        destinations(&decide(
            &flow,
            Wanted::Target("gold-desk"),
            &gold,
            tuesday_morning(),
            &state
        )),
        ["gold-desk"]
    );
    // The night desk is open Monday 22:00-24:00 London time only.
    let monday_late = utc(2025, 1, 6, 23, 0);
    assert_eq!(
        destinations(&decide(
            &flow,
            Wanted::Target("night-desk"),
            &gold,
            monday_late,
            &state
        )),
        ["night-desk"]
    );
    let d = decide(
        &flow,
        Wanted::Target("night-desk"),
        &gold,
        tuesday_morning(),
        &state,
    );
    assert!(d.targets.is_empty());
    assert!(
        d.reason
            .contains("night-desk closed by schedule nights, skipped; no target available"),
        "{}",
        d.reason
    );
}

fn trunks(decision: &RouteDecision) -> Vec<(String, f64)> {
    decision
        .targets
        .iter()
        .map(|t| match &t.dial {
            Dial::Trunk {
                trunk,
                rate,
                number,
                ..
            } => {
                assert_eq!(number, "+442071234567");
                (trunk.clone(), rate.0)
            }
            other => panic!("not a trunk: {other:?}"),
        })
        .collect()
}

#[test]
fn least_cost_routing_picks_the_cheapest_trunk() {
    let flow = fixture();
    let who = CallerAttributes::default();
    let state = DestinationState::default();
    let d = decide(
        &flow,
        Wanted::Intent {
            node: "main",
            intent: "london",
        },
        &who,
        tuesday_morning(),
        &state,
    );
    // premium-carrier's +4420 (0.008) is its longest match and beats
    // budget's +44 (0.012); backup's +4 (0.05) is last.
    assert_eq!(
        trunks(&d),
        [
            ("premium-carrier".to_string(), 0.008),
            ("budget".to_string(), 0.012),
            ("backup".to_string(), 0.05)
        ]
    );
    assert!(
        d.reason.contains("least cost for +442071234567: premium-carrier 0.008/min (+4420), budget 0.012/min (+44), backup 0.05/min (+4)"),
        "{}",
        d.reason
    );
}

#[test]
fn least_cost_routing_fails_over_when_a_trunk_is_down() {
    let flow = fixture();
    let who = CallerAttributes::default();
    let mut state = DestinationState::default();
    state.set_trunk_reachable("premium-carrier", false);
    let d = decide(
        &flow,
        Wanted::Target("london"),
        &who,
        tuesday_morning(),
        &state,
    );
    assert_eq!(
        trunks(&d),
        [("budget".to_string(), 0.012), ("backup".to_string(), 0.05)]
    );
    assert!(
        d.reason.contains("premium-carrier down, skipped"),
        "{}",
        d.reason
    );
    state.set_trunk_reachable("budget", false);
    state.set_trunk_reachable("backup", false);
    let d = decide(
        &flow,
        Wanted::Target("london"),
        &who,
        tuesday_morning(),
        &state,
    );
    assert!(d.targets.is_empty());
}
