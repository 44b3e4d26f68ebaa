//! Placing a call: INVITE with our offer, digest authentication on 401/407
//! (answered by [`super::auth`], the retry keeping the Call-ID), provisional
//! responses, then either an answered call or a typed failure.

use std::sync::Arc;

use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::Header;

use super::auth::Authenticator;
use super::call::{CallCore, LocalMedia};
use super::call_task::{CallTask, Role};
use super::errors::CallError;
use super::handle::{CallDirection, CallHandle, CallInfo, OutgoingCall};
use super::log::log_line;
use super::policy::allow_header;
use super::{parse_uri, uri_transport, CallSlot, Shared};

/// What a final response to our INVITE means (RFC 3261 21).
pub(crate) fn classify_final(status: u16) -> Result<(), CallError> {
    match status {
        200..=299 => Ok(()),
        486 | 600 => Err(CallError::Busy { status }),
        // A challenge left unanswered: our credentials were refused, or
        // without an account we have none.
        401 | 407 => Err(CallError::AuthenticationFailed { status }),
        _ => Err(CallError::Rejected { status }),
    }
}

/// Calls `target` from `from` with `offer`. See [`super::SipAgent::call`].
pub(crate) async fn place_call(
    shared: &Arc<Shared>,
    target: &str,
    offer: &str,
    from: &str,
    slot: CallSlot,
) -> Result<OutgoingCall, CallError> {
    if shared.shutdown.is_cancelled() {
        return Err(CallError::AgentStopped);
    }
    let callee = parse_uri(target).ok_or_else(|| CallError::InvalidUri {
        value: target.to_string(),
    })?;
    let caller = parse_uri(from).ok_or_else(|| CallError::InvalidUri {
        value: from.to_string(),
    })?;
    let local = LocalMedia::from_sdp(offer)?;
    let contact = shared.contact_uri(uri_transport(&callee));
    let request_uri = callee.to_string();
    let mut auth = shared
        .config
        .account
        .as_ref()
        .map(|a| Authenticator::new(&a.username, &a.password));
    if let Some(auth) = auth.as_mut() {
        auth.begin();
    }
    let no_answer = shared.config.no_answer_timeout;
    let give_up_at = tokio::time::Instant::now() + no_answer;
    // The credentials for the next attempt, and its Call-ID: the retry of
    // a challenged INVITE keeps it (RFC 3261 8.1.3.5, 22.2).
    let mut credentials: Vec<Header> = Vec::new();
    // Our own Call-ID, on our host: the stack's default names a domain
    // that is not ours (RFC 3261 8.1.1.4 only asks for uniqueness, but the
    // host part is what an operator greps for in the PBX's logs).
    let mut call_id = Some(format!(
        "{}@{}",
        rsipstack::transaction::random_text(24),
        shared.contact_address().ip()
    ));
    let (dialog, response, state_rx) = loop {
        let (state_tx, state_rx) = shared.dialog_layer.new_dialog_state_channel();
        let mut headers = vec![Header::Allow(
            allow_header(shared.config.accept_refer).into(),
        )];
        headers.extend(credentials.iter().cloned());
        let option = InviteOption {
            caller: caller.clone(),
            callee: callee.clone(),
            contact: contact.clone(),
            content_type: Some("application/sdp".to_string()),
            offer: Some(offer.as_bytes().to_vec()),
            // Challenges are ours to answer (see `auth`).
            credential: None,
            headers: Some(headers),
            call_id: call_id.clone(),
            ..Default::default()
        };
        // Dropping the INVITE future (timeout, shutdown) makes rsipstack
        // CANCEL it and BYE a 2xx that crosses the CANCEL (RFC 3261 9.1).
        let invite =
            tokio::time::timeout_at(give_up_at, shared.dialog_layer.do_invite(option, state_tx));
        let outcome = tokio::select! {
            _ = shared.shutdown.cancelled() => return Err(CallError::AgentStopped),
            outcome = invite => outcome,
        };
        let (dialog, response) = match outcome {
            Err(_elapsed) => return Err(CallError::NoAnswer { after: no_answer }),
            Ok(Err(error)) => {
                return Err(CallError::Unreachable {
                    detail: error.to_string(),
                })
            }
            Ok(Ok(answered)) => answered,
        };
        let response = response.ok_or(CallError::NoResponse)?;
        let status = response.status_code.code();
        if let (401 | 407, Some(auth)) = (status, auth.as_mut()) {
            match auth.handle_challenge(&response, "INVITE", &request_uri) {
                Ok(header) => {
                    let kind = std::mem::discriminant(&header);
                    credentials.retain(|h| std::mem::discriminant(h) != kind);
                    credentials.push(header);
                    call_id = Some(dialog.id().call_id);
                    continue;
                }
                Err(refused) => log_line(format_args!(
                    "INVITE to {request_uri}: challenge not answered: {refused}"
                )),
            }
        }
        break (dialog, response, state_rx);
    };
    classify_final(response.status_code.code())?;
    if dialog.state().is_terminated() {
        return Err(CallError::CallEnded);
    }

    let info = CallInfo {
        call_id: dialog.id().call_id,
        caller: caller.to_string(),
        callee: callee.to_string(),
        direction: CallDirection::Outgoing,
    };
    let (control, event_rx) = CallTask::spawn(
        CallCore::outgoing(offer.to_string(), local, &shared.config),
        Role::Caller,
        dialog,
        shared,
        state_rx,
        slot,
    );
    Ok(OutgoingCall {
        handle: CallHandle::new(info, control, event_rx),
        remote_sdp: String::from_utf8_lossy(&response.body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_responses_map_to_typed_failures() {
        assert_eq!(classify_final(200), Ok(()));
        assert_eq!(classify_final(486), Err(CallError::Busy { status: 486 }));
        assert_eq!(classify_final(600), Err(CallError::Busy { status: 600 }));
        assert_eq!(
            classify_final(407),
            Err(CallError::AuthenticationFailed { status: 407 })
        );
        assert_eq!(
            classify_final(404),
            Err(CallError::Rejected { status: 404 })
        );
        assert_eq!(
            classify_final(503),
            Err(CallError::Rejected { status: 503 })
        );
    }
}
