//! One mint, start to finish: the registry's challenge (remembered per host), an Entra
//! token for the ACR audience, the exchange, and — when the exchange refuses that
//! audience with 401 — one retry with the ARM audience. The audience that worked is
//! remembered so the next mint starts with it. The Entra token comes from the shared
//! Entra token cache when the caller passes one (`entra_cache`); a shared token the
//! exchange refuses is dropped and asked for once more. No other cache or lock logic
//! here. `mint` reports each step with its duration to an observer, for `doctor`.

use std::time::{Duration, Instant};

use crate::cache::Remembered;
use crate::config::{ACR_ENTRA_MIN_TTL, FileConfig, RegistryConfig, Settings};
use crate::entra;
use crate::entra_cache::{EntraCache, EntraKey, Origin};
use crate::error::{Error, Facts, Result};
use crate::exchange::{self, Challenge, ExchangeError, RealmPolicy, Refusal};
use crate::http::Http;
use crate::identity::Identity;
use crate::jwt;
use crate::registry::Audience;
use crate::registry::RegistryHost;
use crate::secret::{AcrRefreshToken, EntraToken};
use crate::throttle::Wait;

#[derive(Debug)]
pub struct Minted {
    pub token: AcrRefreshToken,
    pub expires_on: i64,
    pub audience: Audience,
    pub challenge: Challenge,
}

/// One step of a mint as `doctor` shows it: which, how long, and how it ended. Holds no
/// secret: `detail` carries host names, audiences and non-secret claims only.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    pub elapsed: Duration,
    pub detail: String,
    /// The error when the step failed: its one line and the facts hints match on.
    pub error: Option<Failure>,
}

/// A failed step's error, as `doctor` shows it and matches hints on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub line: String,
    pub facts: Facts,
}

impl Failure {
    fn of(error: &Error) -> Failure {
        Failure {
            line: error.one_line(),
            facts: error.facts(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Challenge,
    EntraToken,
    Exchange,
}

impl StepKind {
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Challenge => "challenge",
            StepKind::EntraToken => "entra token",
            StepKind::Exchange => "exchange",
        }
    }
}

/// The longest one mint can take: the IMDS probe (at most a second) or a CI job's OIDC
/// token (one request's budget), the challenge, and two rounds (ACR, then ARM audience)
/// of waiting for another process's Entra request, an Entra token and the exchange.
/// Waiting for another process's lock must outlast this, or a waiter fails while the
/// minter succeeds.
pub fn worst_case(settings: &Settings) -> Duration {
    let t = settings.timeout;
    let entra = entra_lock_timeout(settings) + entra::deadline(settings);
    t.max(Duration::from_secs(1)) + t + (entra + t) * 2
}

/// How long a mint waits for another process asking Entra for the same token: one
/// Entra request's budget.
pub fn entra_lock_timeout(settings: &Settings) -> Duration {
    entra::deadline(settings) + Duration::from_secs(1)
}

/// How much life a shared Entra token must have left to be sent to an exchange: five
/// minutes, and more than a whole mint can take, so none expires mid-request.
pub fn entra_margin(settings: &Settings) -> Duration {
    Duration::from_secs(5 * 60) + worst_case(settings)
}

/// What a mint starts from besides its target: what the host's files remember,
/// whether a throttled request may wait for the service (not when a still-valid token is
/// at hand to answer with instead), and where identities' Entra tokens are shared (none:
/// every mint asks Entra, as `doctor` wants).
#[derive(Debug, Default)]
pub struct Start<'d> {
    pub remembered: Remembered,
    pub wait: Wait,
    pub entra_cache: Option<EntraCache<'d>>,
}

/// One mint, telling `observe` about each step as it ends (`doctor` prints them; `get`
/// passes a no-op).
pub fn mint(
    settings: &Settings,
    config: &FileConfig,
    host: &RegistryHost,
    registry: Option<&RegistryConfig>,
    identity: &Identity,
    start: &Start,
    observe: &mut dyn FnMut(Step),
) -> Result<Minted> {
    let remembered = &start.remembered;
    let mut run = Run {
        settings,
        host,
        identity,
        http: crate::http::shared(settings).waiting(start.wait),
        policy: RealmPolicy::new(config),
        entra_cache: start.entra_cache,
        observe,
    };
    let challenge = run.challenge(remembered)?;
    let audiences = audiences(host, registry, remembered);
    let mut last_refusal = None;
    for (i, audience) in audiences.iter().enumerate() {
        let (entra_token, origin) = run.entra_token(audience)?;
        let mut exchanged = run.exchange(&challenge, audience, &entra_token);
        if origin == Origin::Shared && matches!(exchanged, Err(ExchangeError::Unauthorized(_))) {
            crate::debug!(
                "`{host}` refused the shared Entra token for the {} audience; asking Entra again",
                audience.name()
            );
            run.forget(audience, &entra_token);
            let (entra_token, _) = run.entra_token(audience)?;
            exchanged = run.exchange(&challenge, audience, &entra_token);
        }
        let failure = match exchanged {
            Ok(token) => return Ok(finish(settings, host, token, audience, challenge)),
            Err(failure) => failure,
        };
        match failure {
            ExchangeError::Unauthorized(refusal) if i + 1 < audiences.len() => {
                crate::debug!(
                    "{refusal}; retrying with the {} audience",
                    audiences[i + 1].name()
                );
                last_refusal = Some(refusal);
            }
            failure => {
                let last = Last {
                    first: last_refusal.as_ref(),
                    audience,
                    host,
                    registry,
                    identity,
                    config,
                };
                return Err(last.error(failure));
            }
        }
    }
    Err(Error::exchange("no audience to try".into()))
}

/// The exchange's last failure and what the message about it needs.
struct Last<'a> {
    /// The refusal of an earlier audience, if one was tried.
    first: Option<&'a Refusal>,
    audience: &'a Audience,
    host: &'a RegistryHost,
    registry: Option<&'a RegistryConfig>,
    identity: &'a Identity,
    config: &'a FileConfig,
}

impl Last<'_> {
    fn error(&self, failure: ExchangeError) -> Error {
        let refusal = match failure {
            ExchangeError::Unauthorized(refusal) => refusal,
            ExchangeError::Other(e) => {
                return match self.first {
                    // Both failures in one line; the facts are the last one's.
                    Some(first) => {
                        let facts = e.facts();
                        Error::Exchange {
                            message: format!(
                                "{first}; with the {} audience: {}",
                                self.audience.name(),
                                e.one_line()
                            ),
                            status: facts.status,
                            firewall: facts.firewall,
                        }
                    }
                    None => e,
                };
            }
        };
        // A listed custom domain gets no automatic ARM retry: that token would carry the
        // identity's whole Azure Resource Manager access to a host that is not an ACR
        // login server. Say how to opt in.
        if self.host.acr_cloud().is_none() && self.registry.is_some_and(|r| r.audience.is_none()) {
            return Error::Exchange {
                message: format!(
                    "{refusal}; if this registry accepts only ARM-audience tokens, set \"audience\": \"arm\" in its entry in {}",
                    self.config.shown()
                ),
                status: Some(401),
                firewall: false,
            };
        }
        self.refused_identity(&refusal)
    }

    /// A 401 after every audience means ACR does not accept this identity for this
    /// registry: it has no role there, or another identity serves the registry and the
    /// config file does not name it yet. Say which identity was refused and both ways
    /// out, so a client's error line (a build, a pull) explains itself.
    fn refused_identity(&self, last: &Refusal) -> Error {
        let refusal = match self.first {
            Some(first) if first.reason == last.reason => {
                format!("{first}, with either audience")
            }
            Some(first) => format!(
                "{first}; with the {} audience: 401: {}",
                self.audience.name(),
                last.reason
            ),
            None => last.to_string(),
        };
        let identity = self.identity;
        Error::Exchange {
            message: format!(
                "{refusal}: the registry does not accept the identity {} ({}, {}); give it a role there \
                 (AcrPull/AcrPush; ABAC mode: Container Registry Repository Reader/Writer/Contributor) \
                 or name the identity that serves this registry in its entry in {} (\"credential\", \"client_id\")",
                identity.shown(),
                identity.kind.name(),
                identity.why,
                self.config.shown()
            ),
            status: Some(401),
            firewall: false,
        }
    }
}

/// One mint's parts and its observer.
struct Run<'a, 'o> {
    settings: &'a Settings,
    host: &'a RegistryHost,
    identity: &'a Identity,
    http: Http,
    policy: RealmPolicy<'a>,
    entra_cache: Option<EntraCache<'a>>,
    observe: &'o mut dyn FnMut(Step),
}

impl Run<'_, '_> {
    fn timed(&mut self, kind: StepKind, start: Instant, detail: String, error: Option<Failure>) {
        (self.observe)(Step {
            kind,
            elapsed: start.elapsed(),
            detail,
            error,
        });
    }

    /// The remembered challenge if the realm policy still allows it, else the registry's.
    fn challenge(&mut self, remembered: &Remembered) -> Result<Challenge> {
        let host = self.host;
        if let Some(c) = remembered
            .challenge
            .clone()
            .and_then(|c| self.policy.remembered(host, c))
        {
            return Ok(c);
        }
        let start = Instant::now();
        let found = exchange::discover(&self.http, host, &self.policy);
        let detail = found.as_ref().map_or_else(
            |_| format!("GET {}://{host}/v2/", self.policy.scheme(host)),
            |c| {
                format!(
                    "exchange at `{}`, service `{}`",
                    c.exchange_url(),
                    c.service
                )
            },
        );
        let error = found.as_ref().err().map(Failure::of);
        self.timed(StepKind::Challenge, start, detail, error);
        found
    }

    /// The identity's Entra token for `audience`: the shared one while it is fresh,
    /// else asked for (and shared).
    fn entra_token(&mut self, audience: &Audience) -> Result<(EntraToken, Origin)> {
        let scope = audience.scope(self.identity.cloud);
        let start = Instant::now();
        let fetch = || entra::token(self.identity, self.settings, &self.http, &scope);
        let got = match self.entra_cache.zip(EntraKey::new(self.identity, &scope)) {
            Some((cache, key)) => cache.token(&key, self.identity.kind.name(), fetch),
            None => fetch().map(|t| (t, Origin::Fetched)),
        };
        let detail = match &got {
            Ok((t, origin)) => format!(
                "audience {} (`{scope}`): {}token for tenant `{}`, object id `{}`",
                audience.name(),
                if *origin == Origin::Shared {
                    "shared "
                } else {
                    ""
                },
                jwt::string_claim(t.0.expose(), "tid").unwrap_or_else(|| "?".into()),
                jwt::string_claim(t.0.expose(), "oid").unwrap_or_else(|| "?".into())
            ),
            Err(_) => format!("audience {} (`{scope}`)", audience.name()),
        };
        if let Ok((_, Origin::Shared)) = &got {
            crate::debug!("the shared Entra token for `{scope}` is fresh");
        }
        let error = got.as_ref().err().map(Failure::of);
        self.timed(StepKind::EntraToken, start, detail, error);
        got
    }

    /// Drop the shared token a registry refused.
    fn forget(&self, audience: &Audience, refused: &EntraToken) {
        let scope = audience.scope(self.identity.cloud);
        if let Some((cache, key)) = self.entra_cache.zip(EntraKey::new(self.identity, &scope)) {
            cache.forget(&key, refused);
        }
    }

    /// The exchange, with the tenant from the identity or else the Entra token's `tid`.
    fn exchange(
        &mut self,
        challenge: &Challenge,
        audience: &Audience,
        entra_token: &EntraToken,
    ) -> Result<AcrRefreshToken, ExchangeError> {
        let tenant = self
            .identity
            .tenant
            .clone()
            .or_else(|| jwt::string_claim(entra_token.0.expose(), "tid"));
        let tenant_shown = tenant.as_deref().unwrap_or("none");
        crate::debug!(
            "exchanging at `{}` (service `{}`, tenant `{tenant_shown}`, audience {})",
            challenge.exchange_url(),
            challenge.service,
            audience.name()
        );
        let start = Instant::now();
        let exchanged = exchange::exchange(&self.http, challenge, tenant.as_deref(), entra_token);
        let detail = format!("audience {}, tenant `{tenant_shown}`", audience.name());
        let error = exchanged.as_ref().err().map(|e| match e {
            ExchangeError::Unauthorized(refusal) => Failure {
                line: refusal.to_string(),
                facts: Facts {
                    status: Some(401),
                    ..Facts::default()
                },
            },
            ExchangeError::Other(e) => Failure::of(e),
        });
        self.timed(StepKind::Exchange, start, detail, error);
        exchanged
    }
}

/// How far the registry's clock may be from this machine's before a mint says so.
const SKEW_WARNING: i64 = 5 * 60;

/// The minted token with its local expiry (see `exchange::Lifetime`). A freshly minted
/// token is always answered: the registry just issued it, so a clock that reads it as
/// expired is this machine's problem or the registry's, said in a warning, not a reason
/// to fail the pull. One that lives less than `ACR_ENTRA_MIN_TTL` is answered and cached
/// no longer than it lives.
fn finish(
    settings: &Settings,
    host: &RegistryHost,
    token: AcrRefreshToken,
    audience: &Audience,
    challenge: Challenge,
) -> Minted {
    let now = crate::now();
    let life = exchange::refresh_token_lifetime(&token, now);
    if let Some(skew) = life.skew.filter(|s| s.abs() > SKEW_WARNING) {
        crate::warn!(
            "`{host}`'s clock is {}s {} this machine's; the token's own lifetime ({}s) is used",
            skew.abs(),
            if skew > 0 { "ahead of" } else { "behind" },
            life.seconds
        );
    }
    if life.seconds < settings.min_ttl.as_secs() as i64 {
        crate::warn!(
            "`{host}` issued a refresh token that lives {}s, less than {ACR_ENTRA_MIN_TTL} ({}s): answered, and cached no longer than it lives",
            life.seconds,
            settings.min_ttl.as_secs()
        );
    }
    crate::debug!(
        "minted an ACR refresh token for `{host}`, lives {}s",
        life.seconds
    );
    Minted {
        token,
        expires_on: life.expires_on,
        audience: audience.clone(),
        challenge,
    }
}

/// The audiences to try, in order: the config's, else for an ACR login-server name the
/// ACR audience then (on a 401) the ARM one, starting with the one that worked last
/// time; any other host (a listed custom domain) gets the ACR audience alone.
fn audiences(
    host: &RegistryHost,
    registry: Option<&RegistryConfig>,
    hints: &Remembered,
) -> Vec<Audience> {
    match (registry.and_then(|r| r.audience.clone()), &hints.audience) {
        (Some(forced), _) => vec![forced],
        (None, _) if host.acr_cloud().is_none() => vec![Audience::Acr],
        (None, Some(Audience::Arm)) => vec![Audience::Arm, Audience::Acr],
        (None, _) => vec![Audience::Acr, Audience::Arm],
    }
}
