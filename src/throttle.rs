//! Throttling and brief unavailability, waited out within one request's budget. When many
//! machines ask at once, ACR's exchange and Entra ID (managed identity endpoints and IMDS
//! included) answer 429 or 503, usually with `Retry-After` in seconds or as an HTTP date.
//! A request is retried when the wait it asks for ends within the budget
//! (`ACR_ENTRA_TIMEOUT`, counted from the first attempt), and the retry gets only what is
//! left of it. The asked-for wait is the least one: each further refusal adds a random
//! part that grows (up to eight times the asked-for wait), so a fleet refused together
//! spreads its retries instead of coming back in the same second and being refused
//! again. Without the header, a few retries with exponential backoff and full jitter
//! in the same budget. A wait that does not fit fails at once, saying when the service
//! asks to come back, so no process queues behind a wait it cannot finish. Callers that
//! hold a still-valid token do not wait at all (`Wait::Never`): answering it is better.
//!
//! This module is the policy, pure and below `http` and `error`; `Http::send_patiently`
//! runs it. Only 429 and 503 are handled here. `azure_core`'s own retry policy would also
//! wait out a `Retry-After`, but of any length (it checks its time limit before sleeping,
//! not after), so Entra's throttled answers are settled here, below it, and never reach it.

use std::time::{Duration, Instant};

/// Whether a throttled request may wait for the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wait {
    /// Wait when the wait fits in the budget.
    #[default]
    Patient,
    /// Fail at the first throttled answer: a still-valid token is at hand.
    Never,
}

/// What a service said when it throttled the last attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub status: u16,
    /// The wait it asked for, in whole seconds (rounded up), when it said.
    pub retry_after: Option<u64>,
    /// When that wait ends, as Unix seconds on this machine's clock.
    pub until: Option<i64>,
    /// Attempts made, the last one included.
    pub attempts: u32,
    /// Why no further attempt was made.
    pub gave_up: GaveUp,
    /// The budget the waits had to fit in, in seconds.
    pub budget: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUp {
    /// The asked-for (or backoff) wait would end beyond the budget.
    Budget,
    /// A still-valid cached token made waiting pointless.
    NotWaiting,
    /// The backoff retries without `Retry-After` are used up.
    Retries,
}

/// Retries at most this many times without a `Retry-After`.
const BACKOFF_RETRIES: u32 = 3;

/// The first backoff step; each retry doubles it, and the wait is drawn from 0 to it.
const BACKOFF_BASE: Duration = Duration::from_millis(400);

/// Attempts at most this many times in all, however short the asked-for waits: with the
/// spread above, a budget sized for a large fleet's queue (minutes) takes a dozen or two.
const MAX_ATTEMPTS: u32 = 32;

/// The most the spread after an asked-for wait grows to, in multiples of that wait.
const SPREAD_MAX: u32 = 8;

/// Time kept back at the end of the budget for the request after a wait.
const LAST_REQUEST: Duration = Duration::from_millis(500);

/// One request's patience: after each 429 or 503 answer, how long to wait before the
/// next attempt, or why not to try again. `Http::send_patiently` drives it.
#[derive(Debug)]
pub struct Patience {
    budget: Duration,
    start: Instant,
    wait: Wait,
    attempts: u32,
    backoffs: u32,
    /// Throttled answers that said how long to wait.
    asked: u32,
}

impl Patience {
    pub fn new(budget: Duration, wait: Wait) -> Patience {
        Patience {
            budget,
            start: Instant::now(),
            wait,
            attempts: 0,
            backoffs: 0,
            asked: 0,
        }
    }

    /// What is left of the budget for the next attempt (counted as made).
    pub fn attempt(&mut self) -> Duration {
        self.attempts += 1;
        self.budget.saturating_sub(self.start.elapsed())
    }

    /// The wait before retrying after a throttled answer with this status and
    /// `Retry-After` value, or the facts of giving up.
    pub fn after(
        &mut self,
        status: u16,
        retry_after_value: Option<&str>,
    ) -> Result<Duration, Throttled> {
        let asked = retry_after_value.and_then(|v| retry_after(v, crate::now()));
        let (wait, gave_up) = match asked {
            Some(wait) => {
                self.asked += 1;
                (wait, None)
            }
            None if self.backoffs < BACKOFF_RETRIES => {
                self.backoffs += 1;
                (full_jitter(self.backoffs, crate::random_u32()), None)
            }
            None => (Duration::ZERO, Some(GaveUp::Retries)),
        };
        let fits = self.start.elapsed() + wait < self.budget && self.attempts < MAX_ATTEMPTS;
        let gave_up = gave_up.or(match (self.wait, fits) {
            (Wait::Never, _) => Some(GaveUp::NotWaiting),
            (Wait::Patient, false) => Some(GaveUp::Budget),
            (Wait::Patient, true) => None,
        });
        match gave_up {
            Some(gave_up) => Err(facts(status, asked, self.attempts, gave_up, self.budget)),
            None if asked.is_some() => {
                let room = self
                    .budget
                    .saturating_sub(self.start.elapsed() + LAST_REQUEST)
                    .max(wait);
                Ok(spread(wait, self.asked, crate::random_u32()).min(room))
            }
            None => Ok(wait),
        }
    }
}

/// The wait after the `nth` refusal that asked for `asked`: that, plus a part drawn
/// evenly from 0 to `asked × 2^(nth-1)` (at most `SPREAD_MAX` times `asked`; a zero wait
/// spreads over `BACKOFF_BASE`).
pub fn spread(asked: Duration, nth: u32, draw: u32) -> Duration {
    let unit = asked.max(BACKOFF_BASE).as_millis() as u64;
    let factor = (1u64 << nth.saturating_sub(1).min(10)).min(u64::from(SPREAD_MAX));
    asked + Duration::from_millis(u64::from(draw) % (unit * factor + 1))
}

/// Whether an answer is one this module waits out.
pub fn is_throttled(status: u16) -> bool {
    matches!(status, 429 | 503)
}

fn facts(
    status: u16,
    asked: Option<Duration>,
    attempts: u32,
    gave_up: GaveUp,
    budget: Duration,
) -> Throttled {
    let retry_after = asked.map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
    Throttled {
        status,
        retry_after,
        until: retry_after.map(|s| crate::now().saturating_add_unsigned(s)),
        attempts,
        gave_up,
        budget: budget.as_secs(),
    }
}

/// The wait a 429 or 503 asks for: `Retry-After` as seconds or as an HTTP date (a date
/// already past asks for no wait). Absurd values are treated as a very long wait.
pub fn retry_after(value: &str, now: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = azure_core::time::parse_rfc7231(value)
        .ok()?
        .unix_timestamp();
    Some(Duration::from_secs(
        u64::try_from(at.saturating_sub(now)).unwrap_or(0),
    ))
}

/// Exponential backoff with full jitter: a wait drawn evenly from 0 to
/// `BACKOFF_BASE × 2^(retry-1)`, so machines that were refused together come back apart.
pub fn full_jitter(retry: u32, draw: u32) -> Duration {
    let ceiling = BACKOFF_BASE.as_millis() as u64 * (1u64 << retry.saturating_sub(1).min(10));
    Duration::from_millis(u64::from(draw) % (ceiling + 1))
}

/// `Throttled` as the end of an error line: what the service asked for and why it was
/// not waited for.
pub fn describe(t: &Throttled) -> String {
    let when = match (t.retry_after, t.until) {
        (Some(seconds), Some(until)) => format!(
            "asks to come back in {seconds} s (at {})",
            azure_core::time::to_rfc7231(
                &azure_core::time::OffsetDateTime::from_unix_timestamp(until)
                    .unwrap_or(azure_core::time::OffsetDateTime::UNIX_EPOCH)
            )
        ),
        _ => "said not when to come back".to_string(),
    };
    let why = match t.gave_up {
        GaveUp::Budget => format!(
            "longer than ACR_ENTRA_TIMEOUT ({} s) allows; try again then, or raise ACR_ENTRA_TIMEOUT",
            t.budget
        ),
        GaveUp::NotWaiting => "not waited for: a cached token is still valid".to_string(),
        GaveUp::Retries => format!(
            "still refusing after {} attempts; try again in a minute",
            t.attempts
        ),
    };
    format!("it {when}, {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(retry_after: &str) -> &str {
        retry_after
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after(answer("7"), now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(answer("Sun, 06 Nov 1994 08:50:07 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(answer("Sun, 06 Nov 1994 08:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(answer("soon"), now), None);
        assert_eq!(retry_after(answer("-3"), now), None);
        assert_eq!(retry_after(answer(""), now), None);
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        for retry in 1..=BACKOFF_RETRIES {
            let ceiling = BACKOFF_BASE * (1 << (retry - 1));
            assert!(full_jitter(retry, u32::MAX) <= ceiling);
            assert_eq!(full_jitter(retry, 0), Duration::ZERO);
        }
        assert!(full_jitter(u32::MAX, u32::MAX) <= BACKOFF_BASE * 1024);
    }

    #[test]
    fn asked_for_waits_are_the_least_and_spread_grows_to_a_bound() {
        let s = Duration::from_secs;
        assert_eq!(spread(s(2), 1, 0), s(2));
        assert!(spread(s(2), 1, u32::MAX) <= s(4));
        assert_eq!(spread(s(2), 1, 2_000), s(4));
        assert!(spread(s(2), 2, u32::MAX) <= s(2) + s(4));
        assert!(spread(s(2), 30, u32::MAX) <= s(2) + s(2) * SPREAD_MAX);
        assert!(spread(Duration::ZERO, 1, u32::MAX) <= BACKOFF_BASE);
        // Draws differ, so a fleet refused together comes back apart.
        assert_ne!(spread(s(1), 3, 1_000), spread(s(1), 3, 3_000));
    }

    #[test]
    fn a_spread_wait_never_outlasts_the_budget() {
        let mut p = Patience::new(Duration::from_secs(3), Wait::Patient);
        for _ in 0..5 {
            p.attempt();
            if let Ok(wait) = p.after(429, Some("1")) {
                assert!(wait >= Duration::from_secs(1));
                assert!(
                    p.start.elapsed() + wait <= Duration::from_secs(3),
                    "{wait:?}"
                );
            }
        }
    }

    #[test]
    fn describes_the_verdict() {
        let t = Throttled {
            status: 429,
            retry_after: Some(3600),
            until: Some(784_111_777),
            attempts: 1,
            gave_up: GaveUp::Budget,
            budget: 10,
        };
        assert_eq!(
            describe(&t),
            "it asks to come back in 3600 s (at Sun, 06 Nov 1994 08:49:37 GMT), longer than ACR_ENTRA_TIMEOUT (10 s) allows; try again then, or raise ACR_ENTRA_TIMEOUT"
        );
    }
}
