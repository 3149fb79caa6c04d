//! Throttled and briefly unavailable services: a 429 or 503 with a `Retry-After` that fits
//! in the budget is waited out once and retried; one that does not fit fails at once with
//! the service's own verdict; without the header a few backoff retries, then the same.
//! Each for ACR's exchange, Entra ID and a managed identity endpoint. A still-valid cached
//! token is answered instead of waiting, and processes that queue behind a throttled mint
//! wait on its lock rather than asking themselves.

use std::thread;
use std::time::Duration;

use crate::support::env::Helper;
use crate::support::http::{Resp, Server};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";

/// The default `ACR_ENTRA_TIMEOUT`, the budget every wait must fit in.
const BUDGET: Duration = Duration::from_secs(10);

/// The party under test: where its token requests go, and how it throttles.
#[derive(Clone, Copy, Debug)]
enum Party {
    Exchange,
    Entra,
    ManagedIdentity,
}

const PARTIES: [Party; 3] = [Party::Exchange, Party::Entra, Party::ManagedIdentity];

/// A minting world for `party`, whose token requests can be refused.
struct Throttled {
    world: World,
    msi: FakeAppService,
    party: Party,
}

impl Throttled {
    fn start(party: Party) -> Throttled {
        Throttled {
            world: World::start(HOST),
            msi: FakeAppService::start(),
            party,
        }
    }

    fn server(&self) -> &Server {
        match self.party {
            Party::Exchange => &self.world.acr.server,
            Party::Entra => &self.world.entra.server,
            Party::ManagedIdentity => &self.msi.server,
        }
    }

    fn path(&self) -> String {
        match self.party {
            Party::Exchange => "/oauth2/exchange".into(),
            Party::Entra => format!("/{}/oauth2/v2.0/token", world::TENANT),
            Party::ManagedIdentity => "/msi/token".into(),
        }
    }

    /// The answer each party gives when it throttles, as the real services word it.
    fn refusal(&self, status: u16) -> Resp {
        match self.party {
            Party::Exchange => Resp::json(
                status,
                &serde_json::json!({"errors": [{"code": "TOOMANYREQUESTS", "message": "too many requests"}]}),
            ),
            Party::Entra => Resp::json(
                status,
                &serde_json::json!({
                    "error": "temporarily_unavailable",
                    "error_description": "AADSTS90055: The request is throttled temporarily.",
                    "error_codes": [90055],
                }),
            ),
            Party::ManagedIdentity => Resp::json(
                status,
                &serde_json::json!({"statusCode": status, "message": "too many requests, retry later"}),
            ),
        }
    }

    fn refuse(&self, status: u16, retry_after: Option<&str>, times: usize) {
        let mut resp = self.refusal(status);
        if let Some(value) = retry_after {
            resp = resp.header("Retry-After", value);
        }
        self.server().refuse(&self.path(), resp, times);
    }

    /// Requests that reached the party's token path, refused ones included.
    fn attempts(&self) -> usize {
        let path = self.path();
        self.server()
            .requests()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    fn get(&self) -> Helper {
        match self.party {
            Party::Exchange | Party::Entra => self.world.get(),
            Party::ManagedIdentity => self
                .world
                .env
                .get(HOST)
                .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
                .env("IDENTITY_ENDPOINT", self.msi.endpoint())
                .env("IDENTITY_HEADER", &self.msi.secret)
                .connect_to(&self.world.acr.connect_to()),
        }
    }

    /// What the error line names the party as.
    fn named(&self) -> &'static str {
        match self.party {
            Party::Exchange => "ACR exchange",
            Party::Entra => "credential `client-secret`: Entra ID",
            Party::ManagedIdentity => {
                "credential `managed-identity`: the managed identity endpoint"
            }
        }
    }
}

#[test]
fn retry_after_that_fits_is_waited_once_then_answered() {
    for party in PARTIES {
        let t = Throttled::start(party);
        t.refuse(429, Some("1"), 1);
        let out = t.get().run();
        out.assert_answer(HOST, &t.world.acr.issued()[0]);
        assert_eq!(t.attempts(), 2, "{party:?}: one wait, one retry: {out:?}");
        assert!(
            out.elapsed >= Duration::from_secs(1),
            "{party:?}: the retry came after the asked-for second: {out:?}"
        );
    }
}

/// `party` refusing every request with `status` (and `retry_after`): one loud line that
/// names the party, what it answered and `verdict`, after `attempts` requests, within the
/// budget.
fn fails_saying(
    status: u16,
    retry_after: Option<&str>,
    answered: &str,
    verdict: &[&str],
    attempts: usize,
) {
    for party in PARTIES {
        let t = Throttled::start(party);
        t.refuse(status, retry_after, 10);
        let out = t.get().run();
        let line = out.assert_loud_error();
        assert!(
            line.contains(&format!("{} `", t.named())) && line.contains(answered),
            "{party:?}: {line}"
        );
        for words in verdict {
            assert!(line.contains(words), "{party:?}: `{words}` in {line}");
        }
        assert_eq!(t.attempts(), attempts, "{party:?}: {out:?}");
        out.assert_within(BUDGET);
    }
}

#[test]
fn retry_after_beyond_the_budget_fails_at_once_saying_when() {
    fails_saying(
        429,
        Some("3600"),
        "answered 429 (too many requests)",
        &[
            "asks to come back in 3600 s (at ",
            "longer than ACR_ENTRA_TIMEOUT (10 s) allows",
        ],
        1,
    );
}

#[test]
fn unavailable_without_retry_after_backs_off_a_few_times_within_the_budget() {
    // Three backoff retries, then the verdict.
    fails_saying(
        503,
        None,
        "answered 503 (service unavailable)",
        &["said not when to come back, still refusing after 4 attempts"],
        4,
    );
}

#[test]
fn unavailable_briefly_is_retried_and_answered() {
    for party in PARTIES {
        let t = Throttled::start(party);
        t.refuse(503, None, 1);
        let out = t.get().run();
        out.assert_answer(HOST, &t.world.acr.issued()[0]);
        assert_eq!(t.attempts(), 2, "{party:?}: {out:?}");
    }
}

#[test]
fn a_throttled_re_mint_with_a_valid_cached_token_answers_it_without_waiting() {
    for party in PARTIES {
        let t = Throttled::start(party);
        let first = t.get().run();
        first.assert_answer(HOST, &t.world.acr.issued()[0]);
        let before = t.attempts();
        // The shared Entra token has expired too, so the re-mint asks every party.
        t.world.env.forget_entra_tokens();
        t.refuse(429, Some("5"), 10);
        // A minimum lifetime beyond the token's 3 hours makes it due for a re-mint while
        // it is still valid.
        let out = t
            .get()
            .env("ACR_ENTRA_MIN_TTL", "4h")
            .env("ACR_ENTRA_LOG", "warn")
            .run();
        assert_eq!(out.code, Some(0), "{party:?}: {out:?}");
        assert_eq!(
            out.stdout_line(),
            answer_json(HOST, &t.world.acr.issued()[0]),
            "{party:?}: the cached token"
        );
        assert_eq!(t.attempts(), before + 1, "{party:?}: no wait, no retry");
        assert!(
            out.stderr.contains("serving the cached token")
                && out
                    .stderr
                    .contains("not waited for: a cached token is still valid"),
            "{party:?}: {out:?}"
        );
        out.assert_within(Duration::from_secs(5));
    }
}

#[test]
fn processes_behind_a_throttled_mint_wait_on_its_lock() {
    let t = Throttled::start(Party::Exchange);
    t.refuse(429, Some("2"), 1);
    let outs: Vec<Output> = thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| t.get().run())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        out.assert_answer(HOST, &t.world.acr.issued()[0]);
    }
    assert_eq!(
        t.attempts(),
        2,
        "one refused exchange and one retry for 4 processes: {outs:?}"
    );
    assert_eq!(t.world.acr.issued().len(), 1);
}
