//! Call flows: the YAML format describing what the agent says, what it
//! listens for and where calls go; its loader and checker; and routing.
//!
//! Everything here is pure except [`load_flow`] (which reads the flow file
//! and the customer CSV it names): no clock, no network. Routing takes the
//! instant and the destinations' live state as arguments, so the same
//! inputs always give the same decision, and tests run in virtual time.
//!
//! Call order for a driver:
//!
//! 1. [`load_flow`] at start-up (and `switchboard check` in CI): a
//!    [`Flow`] or every problem as a [`Diagnostic`].
//! 2. Per call: look the caller up (a [`caller::CustomerDirectory`], or the
//!    webhook via [`caller::webhook_request`]), then
//!    [`CallerAttributes::identify`].
//! 3. Run the conversation with an [`Interpreter`]: feed it the call's
//!    start, utterances (with the intent the detector chosen by
//!    [`detector_config`] gave), keys and no-input timeouts; carry out its
//!    [`Action`]s. At a transfer it has already called [`route`] and said
//!    [`routing::confirmation`]: try the targets in order, and
//!    [`DestinationState::record_transfer`] the one that took the call.
//!
//! [`simulator`] is such a driver without telephony (text, keys, silence),
//! used by `switchboard chat`, `test` (the flow tests of [`conversation`])
//! and `replay`.
//!
//! The file format is documented in `docs/flows.md`; `flows/schema.json`
//! lets YAML editors complete and check it.

pub mod caller;
pub mod check;
pub mod conversation;
pub mod detector;
pub mod diagnostic;
pub mod interpreter;
pub mod load;
pub mod model;
pub mod routing;
pub mod schedule;
pub mod simulator;

use std::path::Path;

pub use caller::{CallerAttributes, CsvDirectory, Customer, CustomerDirectory};
pub use detector::detector_config;
pub use diagnostic::Diagnostic;
pub use interpreter::{Action, Event, Interpreter, InterpreterConfig, TurnId, Utterance};
pub use load::{load_flow, load_str};
pub use model::Flow;
pub use routing::{
    route, DestinationState, DestinationStatus, Dial, RouteDecision, RouteError, RouteRequest,
    Slots, Target, Wanted,
};
pub use schedule::is_open;

/// Checks flow files for `switchboard check`: every problem of every file,
/// in file order. Empty means all files are valid; the command exits
/// non-zero otherwise.
pub fn check_files<P: AsRef<Path>>(paths: &[P]) -> Vec<Diagnostic> {
    paths
        .iter()
        .flat_map(|path| load_flow(path.as_ref()).err().unwrap_or_default())
        .collect()
}
