//! The task that keeps our binding at the registrar (RFC 3261 10): it
//! sleeps until [`RegistrationSchedule`] says so, sends REGISTER on
//! rsipstack's transaction layer, answers 401/407 with our digest module
//! ([`super::auth`]), and reports each outcome to the schedule and the
//! application. On shutdown it removes the binding (Expires: 0).
//!
//! All REGISTERs share one Call-ID and From tag, with CSeq growing (RFC
//! 3261 10.2). The Contact is our public address when configured, else the
//! address the registrar saw us at (Via `received`/`rport`, RFC 3581) once
//! it has told us, else the one we are bound to; when the registrar reports
//! a new address, the binding is redone at once with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{
    headers, typed, Header, Method, Param, Request, Response, SipMessage, StatusCodeKind, Uri,
};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::{SipAddr, SipConnection};

use super::auth::Authenticator;
use super::events::{AgentEvent, RegistrationFailure};
use super::log::log_line;
use super::policy::ALLOW;
use super::registration::RegistrationSchedule;
use super::{uri_transport, CancellationToken, Shared};

/// The longest we wait for the unregistering REGISTER at shutdown.
const UNREGISTER_BOUND: Duration = Duration::from_secs(5);

/// The account, with its URIs checked.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    /// Request-URI of REGISTER.
    pub registrar: Uri,
    /// The address of record: To and From.
    pub aor: Uri,
    /// Requested lifetime.
    pub expires: u32,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Why a REGISTER got no usable final response.
#[derive(Debug)]
enum Failure {
    /// It could not be built or sent.
    Stack(rsipstack::Error),
    /// No response (RFC 3261 17.1.2.2 Timer F).
    NoResponse,
}

/// The lifetime the registrar granted our binding (RFC 3261 10.2.4): the
/// `expires` of our Contact among those in the 2xx, else of the only
/// Contact (a registrar may rewrite ours), else the `Expires` header, else
/// what we asked.
pub(crate) fn granted_expires(response: &Response, ours: &Uri, requested: u32) -> u32 {
    let contacts = response.typed_contact_headers().unwrap_or_default();
    let same = |uri: &Uri| {
        uri.host_with_port == ours.host_with_port
            && uri.auth.as_ref().map(|a| &a.user) == ours.auth.as_ref().map(|a| &a.user)
    };
    if let Some(expires) = contacts
        .iter()
        .filter(|c| same(&c.uri))
        .filter_map(|c| c.expires())
        .min()
    {
        return expires;
    }
    if let [only] = contacts.as_slice() {
        if let Some(expires) = only.expires() {
            return expires;
        }
    }
    response
        .expires_header()
        .and_then(|h| h.value().trim().parse().ok())
        .unwrap_or(requested)
}

/// Sends REGISTERs for one binding.
struct RegisterClient {
    shared: Arc<Shared>,
    binding: Binding,
    auth: Option<Authenticator>,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The Contact of the last REGISTER the registrar accepted: the one to
    /// remove at shutdown.
    registered_contact: Option<Uri>,
}

impl RegisterClient {
    /// Sends one REGISTER for `contact` with `expires` and returns its
    /// final response, after answering challenges.
    async fn register(&mut self, contact: &Uri, expires: u32) -> Result<Response, Failure> {
        let registrar = self.binding.registrar.to_string();
        let mut credentials = Vec::new();
        if let Some(auth) = self.auth.as_mut() {
            auth.begin();
            credentials = auth.preemptive("REGISTER", &registrar);
        }
        let mut transaction = self.send(contact, expires, credentials).await?;
        loop {
            let Some(message) = transaction.receive().await else {
                return Err(Failure::NoResponse);
            };
            let SipMessage::Response(response) = message else {
                continue;
            };
            let status = response.status_code.code();
            if status < 200 {
                continue;
            }
            let answer = match (status, self.auth.as_mut()) {
                (401 | 407, Some(auth)) => auth.handle_challenge(&response, "REGISTER", &registrar),
                _ => return Ok(response),
            };
            match answer {
                Ok(header) => transaction = self.send(contact, expires, vec![header]).await?,
                Err(refused) => {
                    log_line(format_args!("REGISTER challenge not answered: {refused}"));
                    return Ok(response);
                }
            }
        }
    }

    /// Builds and sends a REGISTER with the next CSeq.
    async fn send(
        &mut self,
        contact: &Uri,
        expires: u32,
        credentials: Vec<Header>,
    ) -> Result<Transaction, Failure> {
        self.cseq += 1;
        let request = self
            .request(contact, expires, credentials)
            .await
            .map_err(Failure::Stack)?;
        let key = TransactionKey::from_request(&request, TransactionRole::Client)
            .map_err(Failure::Stack)?;
        let mut transaction =
            Transaction::new_client(key, request, self.shared.endpoint.clone(), None);
        transaction.send().await.map_err(Failure::Stack)?;
        Ok(transaction)
    }

    async fn request(
        &self,
        contact: &Uri,
        expires: u32,
        credentials: Vec<Header>,
    ) -> rsipstack::Result<Request> {
        let endpoint = &self.shared.endpoint;
        // The Via must name the transport and address the request leaves
        // from (RFC 3261 18.1.1); the lookup also opens a TCP connection.
        let target = SipAddr::try_from(&self.binding.registrar)?;
        let via = match endpoint.transport_layer.lookup(&target, None).await {
            Ok((connection, _)) => endpoint.get_via(Some(connection.get_addr().clone()), None)?,
            Err(_) => endpoint.get_via(None, None)?,
        };
        let from = typed::From {
            display_name: None,
            uri: self.binding.aor.clone(),
            params: vec![Param::Tag(self.from_tag.clone().into())],
        };
        let to = typed::To {
            display_name: None,
            uri: self.binding.aor.clone(),
            params: vec![],
        };
        let mut request = endpoint.make_request(
            Method::Register,
            self.binding.registrar.clone(),
            via,
            from,
            to,
            self.cseq,
            Some(headers::CallId::from(self.call_id.clone())),
        );
        let contact = typed::Contact {
            display_name: None,
            uri: contact.clone(),
            params: vec![],
        };
        request.headers.push(Header::Contact(contact.into()));
        request.headers.push(headers::Expires::from(expires).into());
        request.headers.push(Header::Allow(ALLOW.into()));
        request.headers.extend(credentials);
        request.headers.push(Header::ContentLength(0u32.into()));
        Ok(request)
    }
}

/// The address the registrar saw the REGISTER come from (RFC 3581 4).
fn seen_address(response: &Response) -> Option<SocketAddr> {
    let (_, seen) = SipConnection::parse_target_from_via(response.via_header().ok()?).ok()?;
    SocketAddr::try_from(seen).ok()
}

/// Keeps the binding until `shutdown`, then removes it.
pub(crate) async fn run(shared: Arc<Shared>, binding: Binding, shutdown: CancellationToken) {
    let transport = uri_transport(&binding.registrar);
    let auth = shared
        .config
        .account
        .as_ref()
        .map(|a| Authenticator::new(&a.username, &a.password));
    let mut client = RegisterClient {
        shared: shared.clone(),
        binding: binding.clone(),
        auth,
        call_id: rsipstack::transaction::random_text(24),
        from_tag: rsipstack::transaction::random_text(10),
        cseq: 0,
        registered_contact: None,
    };
    let mut schedule = RegistrationSchedule::new(now(), binding.expires);
    loop {
        let wake_at = tokio::time::Instant::from_std(schedule.poll_timeout());
        tokio::select! {
            _ = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(wake_at) => {}
        }
        let contact = shared.contact_uri(transport);
        let requested = schedule.requested_expires();
        let result = tokio::select! {
            _ = shutdown.cancelled() => break,
            result = client.register(&contact, requested) => result,
        };
        let at = now();
        let failure = match result {
            Ok(response) => {
                let status = response.status_code.code();
                match status {
                    200..=299 => {
                        let granted = granted_expires(&response, &contact, requested);
                        schedule.handle_registered(at, granted);
                        if granted == 0 {
                            Some(RegistrationFailure::NoLifetime)
                        } else {
                            client.registered_contact = Some(contact.clone());
                            shared.report(AgentEvent::Registered { expires: granted });
                            if let Some(seen) = seen_address(&response) {
                                if shared.set_discovered_address(seen)
                                    && shared.contact_uri(transport) != contact
                                {
                                    // RFC 3581: we are reachable elsewhere
                                    // than our Contact says; say so now.
                                    schedule.handle_address_changed(at);
                                }
                            }
                            None
                        }
                    }
                    423 => {
                        let min = response
                            .min_expires_header()
                            .and_then(|h| h.value().trim().parse().ok());
                        schedule.handle_interval_too_brief(at, min);
                        Some(RegistrationFailure::Rejected { status })
                    }
                    401 | 407 => {
                        schedule.handle_failure(at);
                        Some(RegistrationFailure::AuthenticationFailed { status })
                    }
                    _ => {
                        schedule.handle_failure(at);
                        Some(RegistrationFailure::Rejected { status })
                    }
                }
            }
            Err(failure) => {
                schedule.handle_failure(at);
                let detail = match failure {
                    Failure::Stack(error) => error.to_string(),
                    Failure::NoResponse => "no response".to_string(),
                };
                Some(RegistrationFailure::Unreachable { detail })
            }
        };
        if let Some(reason) = failure {
            log_line(format_args!(
                "REGISTER to {} failed: {reason}; retrying in {:?}",
                binding.registrar,
                schedule.poll_timeout().saturating_duration_since(at)
            ));
            shared.report(AgentEvent::RegistrationFailed { reason });
        }
    }
    let Some(contact) = client.registered_contact.clone() else {
        return;
    };
    if !schedule.is_registered(now()) {
        return;
    }
    // RFC 3261 10.2.2: the same Contact with Expires: 0.
    match tokio::time::timeout(UNREGISTER_BOUND, client.register(&contact, 0)).await {
        Ok(Ok(response)) if response.status_code.kind() == StatusCodeKind::Successful => {
            shared.report(AgentEvent::Unregistered);
        }
        Ok(Ok(response)) => log_line(format_args!(
            "unREGISTER to {} answered {}",
            binding.registrar,
            response.status_code.code()
        )),
        Ok(Err(failure)) => log_line(format_args!(
            "unREGISTER to {} failed: {failure:?}",
            binding.registrar
        )),
        Err(_) => log_line(format_args!(
            "unREGISTER to {} got no answer within {UNREGISTER_BOUND:?}",
            binding.registrar
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(extra: &str) -> Response {
        format!(
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-1;received=198.51.100.7;rport=40000\r\n\
             From: <sip:200@pbx>;tag=a\r\n\
             To: <sip:200@pbx>;tag=b\r\n\
             Call-ID: c\r\n\
             CSeq: 2 REGISTER\r\n\
             {extra}\
             Content-Length: 0\r\n\r\n"
        )
        .as_str()
        .try_into()
        .expect("a valid response")
    }

    fn ours() -> Uri {
        Uri::try_from("sip:200@192.0.2.10:5070").unwrap()
    }

    #[test]
    fn our_binding_among_other_devices_decides() {
        let response = ok("Contact: <sip:200@203.0.113.9:5060>;expires=30, \
             <sip:200@192.0.2.10:5070>;expires=120\r\nExpires: 3600\r\n");
        assert_eq!(granted_expires(&response, &ours(), 600), 120);
    }

    #[test]
    fn a_rewritten_lone_contact_then_the_header_then_what_we_asked() {
        let response = ok("Contact: <sip:200@10.0.0.9:5062>;expires=90\r\n");
        assert_eq!(granted_expires(&response, &ours(), 600), 90);
        let response = ok("Expires: 300\r\n");
        assert_eq!(granted_expires(&response, &ours(), 600), 300);
        assert_eq!(granted_expires(&ok(""), &ours(), 600), 600);
    }

    #[test]
    fn the_address_the_registrar_saw_comes_from_received_and_rport() {
        assert_eq!(
            seen_address(&ok("")),
            Some("198.51.100.7:40000".parse().unwrap())
        );
    }
}
