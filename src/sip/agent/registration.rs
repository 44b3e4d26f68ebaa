//! When to send the next REGISTER (RFC 3261 10), without I/O.
//!
//! Contract: [`RegistrationSchedule`] takes `now` with every input and
//! answers with the next deadline; the driver ([`super::register_task`])
//! sleeps until [`RegistrationSchedule::poll_timeout`], sends REGISTER with
//! [`RegistrationSchedule::requested_expires`], and reports the outcome
//! with one of the `handle_*` methods.
//!
//! - A binding granted for `expires` seconds is refreshed at half its
//!   lifetime, so one lost refresh still leaves time for a retry before the
//!   registrar drops us (RFC 3261 10.2.4 leaves the margin to the UA).
//! - A failure is retried after 1 s, doubling up to 60 s; a success resets
//!   the backoff.
//! - 423 Interval Too Brief is retried at once with the registrar's
//!   `Min-Expires` (RFC 3261 10.2.8).
//! - When the registrar saw us at another address than our Contact (RFC
//!   3581 `received`/`rport`), the binding is redone at once.

use std::time::{Duration, Instant};

/// First retry delay after a failed REGISTER.
const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Shortest refresh interval, whatever the registrar grants.
const REFRESH_MIN: Duration = Duration::from_secs(1);

/// The refresh and retry schedule of one registration.
#[derive(Debug, Clone)]
pub struct RegistrationSchedule {
    /// The lifetime we ask for; raised by a 423.
    requested_expires: u32,
    /// When to send the next REGISTER.
    next: Instant,
    /// Failed attempts since the last success: the backoff exponent.
    failures: u32,
    /// Until when the registrar holds our binding, as far as we know.
    registered_until: Option<Instant>,
}

impl RegistrationSchedule {
    /// A schedule that registers at once, asking for `requested_expires`
    /// seconds.
    pub fn new(now: Instant, requested_expires: u32) -> RegistrationSchedule {
        RegistrationSchedule {
            requested_expires,
            next: now,
            failures: 0,
            registered_until: None,
        }
    }

    /// When to send the next REGISTER.
    pub fn poll_timeout(&self) -> Instant {
        self.next
    }

    /// The `Expires` to put in the next REGISTER.
    pub fn requested_expires(&self) -> u32 {
        self.requested_expires
    }

    /// Whether the registrar holds our binding at `now`.
    pub fn is_registered(&self, now: Instant) -> bool {
        self.registered_until.is_some_and(|until| now < until)
    }

    /// A 2xx granted our binding for `granted` seconds. Returns the refresh
    /// deadline. A grant of 0 means no binding and counts as a failure.
    pub fn handle_registered(&mut self, now: Instant, granted: u32) -> Instant {
        if granted == 0 {
            return self.handle_failure(now);
        }
        let lifetime = Duration::from_secs(u64::from(granted));
        self.failures = 0;
        self.registered_until = Some(now + lifetime);
        self.next = now + (lifetime / 2).max(REFRESH_MIN);
        self.next
    }

    /// The REGISTER failed (a failure status, no response, or a transport
    /// error). Returns the retry deadline.
    pub fn handle_failure(&mut self, now: Instant) -> Instant {
        let delay = BACKOFF_START
            .checked_mul(1u32 << self.failures.min(6))
            .unwrap_or(BACKOFF_MAX)
            .min(BACKOFF_MAX);
        self.failures = self.failures.saturating_add(1);
        if self.registered_until.is_some_and(|until| now >= until) {
            self.registered_until = None;
        }
        self.next = now + delay;
        self.next
    }

    /// The registrar saw us at another address than our Contact names (RFC
    /// 3581): register again at once with the right one. The binding we
    /// have stays valid meanwhile.
    pub fn handle_address_changed(&mut self, now: Instant) -> Instant {
        self.next = now;
        self.next
    }

    /// 423 Interval Too Brief with the registrar's `Min-Expires` (RFC 3261
    /// 10.2.8): retry at once with that lifetime. Without a usable
    /// `Min-Expires` higher than what we asked, it is an ordinary failure.
    pub fn handle_interval_too_brief(&mut self, now: Instant, min_expires: Option<u32>) -> Instant {
        match min_expires {
            Some(min) if min > self.requested_expires => {
                self.requested_expires = min;
                self.next = now;
                self.next
            }
            _ => self.handle_failure(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn registers_at_once_then_refreshes_at_half_the_granted_lifetime() {
        let start = Instant::now();
        let mut schedule = RegistrationSchedule::new(start, 3600);
        assert_eq!(schedule.poll_timeout(), start);
        assert!(!schedule.is_registered(start));
        // The registrar grants less than we asked.
        let refresh = schedule.handle_registered(start, 600);
        assert_eq!(refresh, start + secs(300));
        assert!(schedule.is_registered(start + secs(599)));
        assert!(!schedule.is_registered(start + secs(600)));
        // The refresh asks for the configured lifetime again.
        assert_eq!(schedule.requested_expires(), 3600);
    }

    #[test]
    fn short_lifetimes_refresh_no_faster_than_each_second() {
        let start = Instant::now();
        let mut schedule = RegistrationSchedule::new(start, 60);
        assert_eq!(schedule.handle_registered(start, 1), start + secs(1));
    }

    #[test]
    fn failures_back_off_from_one_second_doubling_to_a_minute() {
        let mut now = Instant::now();
        let mut schedule = RegistrationSchedule::new(now, 3600);
        let mut delays = Vec::new();
        for _ in 0..9 {
            let next = schedule.handle_failure(now);
            delays.push((next - now).as_secs());
            now = next;
        }
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // Success resets the backoff.
        schedule.handle_registered(now, 3600);
        assert_eq!(schedule.handle_failure(now) - now, secs(1));
    }

    #[test]
    fn a_failed_refresh_keeps_the_binding_until_it_lapses() {
        let start = Instant::now();
        let mut schedule = RegistrationSchedule::new(start, 120);
        let refresh = schedule.handle_registered(start, 120);
        schedule.handle_failure(refresh);
        assert!(schedule.is_registered(refresh));
        schedule.handle_failure(start + secs(121));
        assert!(!schedule.is_registered(start + secs(121)));
    }

    #[test]
    fn interval_too_brief_retries_at_once_with_min_expires() {
        let start = Instant::now();
        let mut schedule = RegistrationSchedule::new(start, 30);
        let later = start + secs(2);
        assert_eq!(schedule.handle_interval_too_brief(later, Some(60)), later);
        assert_eq!(schedule.requested_expires(), 60);
        // The same answer again is a failure, not a loop.
        assert_eq!(
            schedule.handle_interval_too_brief(later, Some(60)),
            later + secs(1)
        );
        assert_eq!(
            schedule.handle_interval_too_brief(later, None),
            later + secs(2)
        );
    }

    #[test]
    fn a_new_address_reregisters_at_once_and_keeps_the_binding() {
        let start = Instant::now();
        let mut schedule = RegistrationSchedule::new(start, 600);
        schedule.handle_registered(start, 600);
        let later = start + secs(1);
        assert_eq!(schedule.handle_address_changed(later), later);
        assert!(schedule.is_registered(later));
    }

    #[test]
    fn a_zero_grant_is_a_failure() {
        let start = Instant::now();
        let mut schedule = RegistrationSchedule::new(start, 60);
        assert_eq!(schedule.handle_registered(start, 0), start + secs(1));
        assert!(!schedule.is_registered(start));
    }
}
