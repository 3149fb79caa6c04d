//! One mint, start to finish: the registry's challenge (remembered per host), an Entra
//! token for the ACR audience, the exchange, and — when the exchange refuses that
//! audience with 401 — one retry with the ARM audience. The audience that worked is
//! remembered so the next mint starts with it. No cache or lock logic here.
//! `mint` reports each step with its duration to an observer, for `doctor`.

use std::time::{Duration, Instant};

use crate::config::{Audience, FileConfig, RegistryConfig, Settings};
use crate::entra::{self, Identity};
use crate::error::{Error, Result};
use crate::exchange::{self, Challenge, ExchangeError};
use crate::http::Http;
use crate::jwt;
use crate::registry::RegistryHost;
use crate::secret::AcrRefreshToken;

#[derive(Debug)]
pub struct Minted {
    pub token: AcrRefreshToken,
    pub expires_on: i64,
    pub audience: Audience,
    pub challenge: Challenge,
}

/// What a previous mint taught us about this host.
#[derive(Debug, Default, Clone)]
pub struct Hints {
    pub challenge: Option<Challenge>,
    pub audience: Option<Audience>,
}

/// One step of a mint as `doctor` shows it: which, how long, and how it ended. Holds no
/// secret: `detail` carries host names, audiences and non-secret claims only.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    pub elapsed: Duration,
    pub detail: String,
    /// The error's one line when the step failed.
    pub error: Option<String>,
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

/// The scheme to reach a registry: https, or http for a listed loopback host that the
/// client named with `http://`.
pub fn scheme(host: &RegistryHost, config: &FileConfig) -> &'static str {
    if host.wants_plain_http() && host.is_loopback() && config.registry(host).is_some() {
        "http"
    } else {
        "https"
    }
}

/// One mint, telling `observe` about each step as it ends (`doctor` prints them; `get`
/// passes a no-op).
pub fn mint(
    settings: &Settings,
    config: &FileConfig,
    host: &RegistryHost,
    registry: Option<&RegistryConfig>,
    identity: &Identity,
    hints: &Hints,
    observe: &mut dyn FnMut(Step),
) -> Result<Minted> {
    let mut timed = |kind, start: Instant, detail: String, error: Option<String>| {
        observe(Step {
            kind,
            elapsed: start.elapsed(),
            detail,
            error,
        });
    };
    let http = Http::new(settings);
    let challenge = match &hints.challenge {
        Some(c) => c.clone(),
        None => {
            let allowed =
                |h: &RegistryHost| h.acr_cloud().is_some() || config.registry(h).is_some();
            let start = Instant::now();
            let found = exchange::discover(&http, host, scheme(host, config), &allowed);
            let detail = found.as_ref().map_or_else(
                |_| format!("GET {}://{host}/v2/", scheme(host, config)),
                |c| {
                    format!(
                        "exchange at `{}`, service `{}`",
                        c.exchange_url(),
                        c.service
                    )
                },
            );
            let error = found.as_ref().err().map(Error::one_line);
            timed(StepKind::Challenge, start, detail, error);
            found?
        }
    };
    let audiences: Vec<Audience> =
        match (registry.and_then(|r| r.audience.clone()), &hints.audience) {
            (Some(forced), _) => vec![forced],
            (None, Some(Audience::Arm)) => vec![Audience::Arm, Audience::Acr],
            (None, _) => vec![Audience::Acr, Audience::Arm],
        };
    let mut last_refusal = None;
    for (i, audience) in audiences.iter().enumerate() {
        let scope = audience.scope(identity.cloud);
        let start = Instant::now();
        let got = entra::token(identity, settings, &http, &scope);
        let detail = match &got {
            Ok(t) => format!(
                "audience {} (`{scope}`): token for tenant `{}`, object id `{}`",
                audience.name(),
                jwt::string_claim(t.0.expose(), "tid").unwrap_or_else(|| "?".into()),
                jwt::string_claim(t.0.expose(), "oid").unwrap_or_else(|| "?".into())
            ),
            Err(_) => format!("audience {} (`{scope}`)", audience.name()),
        };
        timed(
            StepKind::EntraToken,
            start,
            detail,
            got.as_ref().err().map(Error::one_line),
        );
        let entra_token = got?;
        let tenant = identity
            .tenant
            .clone()
            .or_else(|| jwt::string_claim(entra_token.0.expose(), "tid"));
        crate::debug!(
            "exchanging at `{}` (service `{}`, tenant `{}`, audience {})",
            challenge.exchange_url(),
            challenge.service,
            tenant.as_deref().unwrap_or("none"),
            audience.name()
        );
        let start = Instant::now();
        let exchanged = exchange::exchange(&http, &challenge, tenant.as_deref(), &entra_token);
        let detail = format!(
            "audience {}, tenant `{}`",
            audience.name(),
            tenant.as_deref().unwrap_or("none")
        );
        let error = exchanged.as_ref().err().map(|e| match e {
            ExchangeError::Unauthorized(message) => message.clone(),
            ExchangeError::Other(e) => e.one_line(),
        });
        timed(StepKind::Exchange, start, detail, error);
        match exchanged {
            Ok(token) => {
                let now = crate::now();
                let expires_on = exchange::refresh_token_expiry(&token, now);
                // A token that is already dead would only turn into the client's 401 at
                // pull time, far from the cause (issue 8: found by the fault tests).
                if expires_on - now <= 60 {
                    return Err(Error::Exchange(format!(
                        "ACR exchange at `{}` returned a refresh token that expires at {expires_on} ({}s from now); check this machine's clock",
                        challenge.exchange_url(),
                        expires_on - now
                    )));
                }
                crate::debug!(
                    "minted an ACR refresh token for `{host}`, expires in {}s",
                    expires_on - now
                );
                return Ok(Minted {
                    token,
                    expires_on,
                    audience: audience.clone(),
                    challenge,
                });
            }
            Err(ExchangeError::Unauthorized(message)) if i + 1 < audiences.len() => {
                crate::debug!(
                    "{message}; retrying with the {} audience",
                    audiences[i + 1].name()
                );
                last_refusal = Some(message);
            }
            Err(e) => {
                let e: Error = e.into();
                return Err(match last_refusal {
                    Some(first) => Error::Exchange(format!(
                        "{first}; with the {} audience: {}",
                        audience.name(),
                        e.one_line()
                    )),
                    None => e,
                });
            }
        }
    }
    Err(Error::Exchange(
        last_refusal.unwrap_or_else(|| "no audience to try".into()),
    ))
}
