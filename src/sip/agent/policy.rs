//! What the agent does with each request the stack hands it, decided
//! without I/O: hand it to its dialog, start a call, answer OPTIONS, or
//! reject it with a status and a one-line reason for the log.

use std::net::IpAddr;

use rsipstack::sip::Method;

/// The methods we accept, for `Allow` (RFC 3261 20.5). REFER is not among
/// them: callers cannot transfer the agent; we send REFER, we do not take it.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, INFO, UPDATE";

/// [`ALLOW`] for an agent that lets the other side transfer it
/// (`AgentConfig::accept_refer`).
const ALLOW_WITH_REFER: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, INFO, UPDATE, REFER";

/// Our `Allow` value on calls: with REFER when we accept it.
pub(crate) fn allow_header(accept_refer: bool) -> &'static str {
    if accept_refer {
        ALLOW_WITH_REFER
    } else {
        ALLOW
    }
}

/// The body types we accept, for `Accept` (RFC 3261 20.1).
pub(crate) const ACCEPT: &str = "application/sdp";

/// The inbound rules from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct InboundPolicy {
    /// Sources allowed to send requests; `None` allows all.
    pub allowed_sources: Option<Vec<IpAddr>>,
    /// Incoming calls handled at once.
    pub max_calls: usize,
}

/// What the dispatcher knows about a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFacts {
    /// The method.
    pub method: Method,
    /// The address it came from, when the transport knows it.
    pub source: Option<IpAddr>,
    /// Whether the To header has a tag: a request inside a dialog (RFC
    /// 3261 12.2.2).
    pub to_tag: bool,
    /// Whether a dialog of ours matches it.
    pub dialog_found: bool,
}

/// The agent's state that the decision depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AgentLoad {
    /// Incoming calls in progress.
    pub active_calls: usize,
    /// False once shutdown has begun.
    pub accepting_calls: bool,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Hand it to the dialog it belongs to.
    Dialog,
    /// A new incoming call.
    NewCall,
    /// Answer 200 with Allow and Accept (RFC 3261 11.2).
    Options,
    /// Nothing to send (an ACK the stack did not absorb).
    Ignore {
        /// For the log.
        reason: String,
    },
    /// Answer with a failure status.
    Reject {
        /// The status.
        status: u16,
        /// Whether to add `Allow` (405, RFC 3261 21.4.6).
        allow: bool,
        /// One line for the log saying why.
        reason: String,
    },
}

fn reject(status: u16, reason: impl Into<String>) -> Disposition {
    Disposition::Reject {
        status,
        allow: false,
        reason: reason.into(),
    }
}

/// Decides what to do with a request.
pub(crate) fn classify(
    facts: &RequestFacts,
    policy: &InboundPolicy,
    load: AgentLoad,
) -> Disposition {
    if let Some(allowed) = &policy.allowed_sources {
        match facts.source {
            Some(ip) if allowed.contains(&ip) => {}
            Some(ip) => return reject(403, format!("source {ip} is not in the access list")),
            None => return reject(403, "source address unknown and an access list is set"),
        }
    }
    if facts.dialog_found {
        return Disposition::Dialog;
    }
    if facts.method == Method::Ack {
        return Disposition::Ignore {
            reason: "ACK matches no transaction or dialog (RFC 3261 17.2.3)".into(),
        };
    }
    if facts.to_tag {
        return reject(
            481,
            format!(
                "{} names a dialog we do not have (RFC 3261 12.2.2)",
                facts.method
            ),
        );
    }
    match facts.method {
        Method::Options => Disposition::Options,
        Method::Invite if !load.accepting_calls => reject(503, "shutting down"),
        Method::Invite if load.active_calls >= policy.max_calls => reject(
            486,
            format!(
                "{} calls in progress, the limit is {}",
                load.active_calls, policy.max_calls
            ),
        ),
        Method::Invite => Disposition::NewCall,
        Method::Bye
        | Method::Cancel
        | Method::Notify
        | Method::Info
        | Method::Update
        | Method::PRack
        | Method::Refer => reject(
            481,
            format!("{} outside any dialog (RFC 3261 12.2.2)", facts.method),
        ),
        Method::Register | Method::Subscribe | Method::Publish | Method::Message => {
            Disposition::Reject {
                status: 405,
                allow: true,
                reason: format!("{} is not supported (RFC 3261 8.2.1)", facts.method),
            }
        }
        // Listed for completeness; handled above.
        Method::Ack => Disposition::Ignore {
            reason: "ACK outside a transaction".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(method: Method) -> RequestFacts {
        RequestFacts {
            method,
            source: Some("192.0.2.5".parse().unwrap()),
            to_tag: false,
            dialog_found: false,
        }
    }

    fn open() -> InboundPolicy {
        InboundPolicy {
            allowed_sources: None,
            max_calls: 2,
        }
    }

    fn idle() -> AgentLoad {
        AgentLoad {
            active_calls: 0,
            accepting_calls: true,
        }
    }

    fn status(d: &Disposition) -> Option<u16> {
        match d {
            Disposition::Reject { status, .. } => Some(*status),
            _ => None,
        }
    }

    #[test]
    fn refer_is_allowed_only_when_accepted() {
        assert!(!allow_header(false).contains("REFER"));
        assert!(allow_header(true).ends_with(", REFER"));
        assert!(allow_header(true).starts_with(ALLOW));
    }

    #[test]
    fn invite_starts_a_call_until_the_limit() {
        assert_eq!(
            classify(&facts(Method::Invite), &open(), idle()),
            Disposition::NewCall
        );
        let full = AgentLoad {
            active_calls: 2,
            accepting_calls: true,
        };
        assert_eq!(
            status(&classify(&facts(Method::Invite), &open(), full)),
            Some(486)
        );
        let stopping = AgentLoad {
            active_calls: 0,
            accepting_calls: false,
        };
        assert_eq!(
            status(&classify(&facts(Method::Invite), &open(), stopping)),
            Some(503)
        );
    }

    #[test]
    fn the_access_list_comes_first() {
        let policy = InboundPolicy {
            allowed_sources: Some(vec!["192.0.2.1".parse().unwrap()]),
            max_calls: 2,
        };
        let mut request = facts(Method::Options);
        let decision = classify(&request, &policy, idle());
        assert_eq!(status(&decision), Some(403));
        let Disposition::Reject { reason, .. } = decision else {
            unreachable!()
        };
        assert!(reason.contains("192.0.2.5"), "{reason}");
        // Even requests inside a dialog.
        request.dialog_found = true;
        assert_eq!(status(&classify(&request, &policy, idle())), Some(403));
        request.source = Some("192.0.2.1".parse().unwrap());
        assert_eq!(classify(&request, &policy, idle()), Disposition::Dialog);
    }

    #[test]
    fn options_and_unsupported_methods() {
        assert_eq!(
            classify(&facts(Method::Options), &open(), idle()),
            Disposition::Options
        );
        let register = classify(&facts(Method::Register), &open(), idle());
        assert!(matches!(
            register,
            Disposition::Reject {
                status: 405,
                allow: true,
                ..
            }
        ));
    }

    #[test]
    fn requests_outside_their_dialog_get_481() {
        for method in [Method::Bye, Method::Notify, Method::Refer, Method::Cancel] {
            assert_eq!(
                status(&classify(&facts(method), &open(), idle())),
                Some(481),
                "{method}"
            );
        }
        let mut reinvite = facts(Method::Invite);
        reinvite.to_tag = true;
        assert_eq!(status(&classify(&reinvite, &open(), idle())), Some(481));
        assert!(matches!(
            classify(&facts(Method::Ack), &open(), idle()),
            Disposition::Ignore { .. }
        ));
    }
}
