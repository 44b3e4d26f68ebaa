//! `switchboard check` through the binary: a good flow passes, a broken one
//! prints `file:line:col: message` and exits non-zero.

mod common;

use common::*;

#[test]
fn check_accepts_the_support_flow() {
    let flow = root().join("flows/support.yaml");
    let out = switchboard(&["check", flow.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("support.yaml: ok"));
}

#[test]
fn check_reports_position_and_hint_and_fails() {
    let flow = root().join("tests/flows/broken/unknown-destination.yaml");
    let out = switchboard(&["check", flow.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("unknown-destination.yaml:12:26: unknown destination \"biling\""),
        "{err}"
    );
    assert!(err.contains("hint: did you mean \"billing\"?"), "{err}");
}
