//! Talking to the registry: read the `/v2/` challenge to learn the token realm and
//! service, then trade an Entra access token for an ACR refresh token at
//! `/oauth2/exchange`. The realm must be the registry itself or another ACR host, the
//! exchange never follows a redirect (a 3xx would carry the Entra token elsewhere), and
//! server messages are redacted before they reach an error.

use serde::Deserialize;

use crate::config::FileConfig;
use crate::error::{Error, Party, Result, redact_text};
use crate::http::{Failure, Http, HttpRequest, HttpResponse};
use crate::jwt;
use crate::registry::RegistryHost;
use crate::secret::{AcrRefreshToken, EntraToken, Secret};

/// Where to exchange tokens, learnt from the challenge or assumed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Challenge {
    /// `https://host[:port]` of the token service.
    pub base: String,
    pub service: String,
}

impl Challenge {
    /// ACR's layout, used when the challenge cannot be read.
    pub fn assumed(host: &RegistryHost, scheme: &str) -> Challenge {
        Challenge {
            base: format!("{scheme}://{}", host.key()),
            service: host.key(),
        }
    }

    pub fn exchange_url(&self) -> String {
        format!("{}/oauth2/exchange", self.base)
    }
}

/// The `realm` and `service` parameters of a `Bearer` challenge.
pub fn parse_bearer(header: &str) -> Option<(String, Option<String>)> {
    let header = header.trim();
    let (scheme, params) = header.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let name = name.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        if name.eq_ignore_ascii_case("realm") {
            realm = Some(value);
        } else if name.eq_ignore_ascii_case("service") {
            service = Some(value);
        }
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some((realm?, service.filter(|s| !s.is_empty())))
}

/// Which token realms may receive an Entra token: the one policy for a challenge read
/// from the registry now and for one remembered from an earlier mint (a remembered one
/// could be stale, or planted). A realm is `https://` on the registry itself, on an ACR
/// login server or on a host the config file lists; plain `http://` only when the
/// realm's own host is a listed loopback host.
#[derive(Debug)]
pub struct RealmPolicy<'a> {
    config: &'a FileConfig,
}

impl<'a> RealmPolicy<'a> {
    pub fn new(config: &'a FileConfig) -> RealmPolicy<'a> {
        RealmPolicy { config }
    }

    /// May receive Entra tokens: an ACR login server or a listed host.
    pub fn gets_tokens(&self, host: &RegistryHost) -> bool {
        host.acr_cloud().is_some() || self.config.registry(host).is_some()
    }

    /// May be reached over plain http: a listed loopback host.
    pub fn plain_http(&self, host: &RegistryHost) -> bool {
        host.is_loopback() && self.config.registry(host).is_some()
    }

    /// The scheme to reach `host` itself: http only for a listed loopback host that the
    /// client named with `http://`.
    pub fn scheme(&self, host: &RegistryHost) -> &'static str {
        if host.wants_plain_http() && self.plain_http(host) {
            "http"
        } else {
            "https"
        }
    }

    /// The exchange base `scheme://host[:port]` for the realm URL that `host` named, or
    /// why no token may go there.
    pub fn check(&self, host: &RegistryHost, realm: &str) -> Result<String> {
        let has_prefix = |p: &str| {
            realm
                .get(..p.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(p))
        };
        let shown = || crate::http::strip_query(realm).to_string();
        let realm_host = RegistryHost::parse(realm).map_err(|_| {
            Error::exchange(format!(
                "registry `{host}` names an unreadable token realm `{}`",
                shown()
            ))
        })?;
        let scheme = if has_prefix("https://") {
            "https"
        } else if has_prefix("http://") && self.plain_http(&realm_host) {
            "http"
        } else {
            return Err(Error::exchange(format!(
                "registry `{host}` names token realm `{}`, which is not https (plain http only for a loopback host the config file lists); refusing to send a token there",
                shown()
            )));
        };
        if realm_host != *host && !self.gets_tokens(&realm_host) {
            return Err(Error::exchange(format!(
                "registry `{host}` names token realm host `{realm_host}`, which is not that registry or an ACR host; refusing to send a token there"
            )));
        }
        Ok(format!("{scheme}://{}", realm_host.key()))
    }

    /// A remembered challenge, if it still passes `check`; else `None` (and a warning:
    /// the file was edited, or the config changed since).
    pub fn remembered(&self, host: &RegistryHost, challenge: Challenge) -> Option<Challenge> {
        match self.check(host, &challenge.base) {
            Ok(base) if base == challenge.base => Some(challenge),
            Ok(_) | Err(_) => {
                crate::warn!(
                    "`{host}`: ignoring the remembered token realm `{}`, which the realm policy refuses; asking the registry again",
                    crate::error::one_line(crate::http::strip_query(&challenge.base))
                );
                None
            }
        }
    }
}

/// Ask `/v2/` for the challenge; its realm must pass `policy`.
pub fn discover(http: &Http, host: &RegistryHost, policy: &RealmPolicy) -> Result<Challenge> {
    let scheme = policy.scheme(host);
    let url = format!("{scheme}://{}/v2/", host.key());
    let response = match http.send(&HttpRequest::get(&url)) {
        Ok(r) => r,
        // The exchange lives on the same host: if /v2/ cannot be reached, neither can it.
        Err(e) if e.failure == Failure::NotResolved => {
            return Err(Error::network(
                format!(
                    "`{}` does not resolve: check the registry name (`az acr list --query [].loginServer`)",
                    host.key()
                ),
                false,
            ));
        }
        Err(e)
            if matches!(
                e.failure,
                Failure::Connect | Failure::Tls | Failure::Timeout
            ) =>
        {
            return Err(Error::network(
                format!("registry `{host}` did not answer: {}", e.message),
                e.failure == Failure::Tls,
            ));
        }
        Err(e) => {
            crate::debug!(
                "challenge from `{url}` unreadable ({}); assuming ACR's layout",
                e.message
            );
            return Ok(Challenge::assumed(host, scheme));
        }
    };
    let Some((realm, service)) = response
        .header("www-authenticate")
        .and_then(parse_bearer)
        .filter(|_| response.status == 401)
    else {
        crate::debug!(
            "`{url}` answered {} without a Bearer challenge; assuming ACR's layout",
            response.status
        );
        return Ok(Challenge::assumed(host, scheme));
    };
    let challenge = Challenge {
        base: policy.check(host, &realm)?,
        service: service.unwrap_or_else(|| host.key()),
    };
    crate::debug!(
        "challenge from `{host}`: exchange at `{}`, service `{}`",
        challenge.exchange_url(),
        challenge.service
    );
    Ok(challenge)
}

/// Why the exchange failed: `Unauthorized` may succeed with the other audience.
#[derive(Debug)]
pub enum ExchangeError {
    Unauthorized(Refusal),
    Other(Error),
}

/// A 401 from the exchange: where, and the reason ACR gave (already one printable line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub url: String,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ACR exchange at `{}` refused the Entra token (401: {})",
            self.url, self.reason
        )
    }
}

impl From<ExchangeError> for Error {
    fn from(e: ExchangeError) -> Error {
        match e {
            ExchangeError::Unauthorized(refusal) => Error::Exchange {
                message: refusal.to_string(),
                status: Some(401),
                firewall: false,
            },
            ExchangeError::Other(e) => e,
        }
    }
}

#[derive(Deserialize)]
struct ExchangeAnswer {
    refresh_token: Option<String>,
}

/// `POST /oauth2/exchange` with `grant_type=access_token`.
pub fn exchange(
    http: &Http,
    challenge: &Challenge,
    tenant: Option<&str>,
    token: &EntraToken,
) -> Result<AcrRefreshToken, ExchangeError> {
    let url = challenge.exchange_url();
    let mut body = form(&[
        ("grant_type", "access_token"),
        ("service", &challenge.service),
    ]);
    if let Some(tenant) = tenant {
        body.push('&');
        body.push_str(&form(&[("tenant", tenant)]));
    }
    body.push('&');
    body.push_str(&form(&[("access_token", token.0.expose())]));
    let response = http
        .send_patiently(&HttpRequest::post_form(&url, body))
        .map_err(|e| ExchangeError::Other(e.into_error(Party::Exchange)))?;
    read_answer(&url, &response)
}

/// The exchange's answer from `url`: the refresh token of a 200, or why there is none.
/// Separate from the request so the parser of this outside input can be fuzzed.
pub fn read_answer(url: &str, response: &HttpResponse) -> Result<AcrRefreshToken, ExchangeError> {
    match response.status {
        200 => {}
        300..=399 => {
            return Err(ExchangeError::Other(Error::exchange(format!(
                "ACR exchange at `{url}` answered {} (a redirect); not followed, so the Entra token stays with the registry",
                response.status
            ))));
        }
        401 => {
            return Err(ExchangeError::Unauthorized(Refusal {
                url: url.to_string(),
                reason: server_message(response),
            }));
        }
        403 => {
            let message = server_message(response);
            return Err(ExchangeError::Other(Error::Exchange {
                firewall: is_firewall(&message),
                message: format!(
                    "ACR exchange at `{url}` answered 403 ({message}): the identity may lack a role on the registry (AcrPull/AcrPush; in ABAC mode Container Registry Repository Reader/Writer/Contributor), or the registry's network rules block this machine"
                ),
                status: Some(403),
            }));
        }
        status => {
            return Err(ExchangeError::Other(Error::Exchange {
                message: format!(
                    "ACR exchange at `{url}` answered {status} ({})",
                    server_message(response)
                ),
                status: Some(status),
                firewall: false,
            }));
        }
    }
    let answer: ExchangeAnswer = serde_json::from_slice(&response.body).map_err(|_| {
        ExchangeError::Other(Error::exchange(format!(
            "ACR exchange at `{url}` answered 200 without a JSON body"
        )))
    })?;
    let token = answer
        .refresh_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ExchangeError::Other(Error::exchange(format!(
                "ACR exchange at `{url}` answered 200 without a refresh_token"
            )))
        })?;
    Ok(AcrRefreshToken(Secret::new(token)))
}

/// Whether ACR's message says its network rules (firewall, private endpoint) refused
/// this machine, as ACR words it ("client with IP '…' is not allowed access. Refer
/// https://aka.ms/acr/firewall …").
fn is_firewall(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "firewall",
        "not allowed access",
        "network rule",
        "client ip",
        "private endpoint",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

/// A short, redacted description of an error answer.
pub fn server_message(response: &HttpResponse) -> String {
    #[derive(Deserialize)]
    struct AcrErrors {
        errors: Option<Vec<AcrError>>,
        error: Option<String>,
        error_description: Option<String>,
        message: Option<String>,
    }
    #[derive(Deserialize)]
    struct AcrError {
        code: Option<String>,
        message: Option<String>,
    }
    let text = match serde_json::from_slice::<AcrErrors>(&response.body) {
        Ok(e) => {
            let from_list = e.errors.and_then(|list| {
                list.into_iter().next().map(|x| {
                    format!(
                        "{} {}",
                        x.code.unwrap_or_default(),
                        x.message.unwrap_or_default()
                    )
                })
            });
            from_list
                .or(e.error_description)
                .or(e.message)
                .or(e.error)
                .unwrap_or_default()
        }
        Err(_) => {
            String::from_utf8_lossy(&response.body[..response.body.len().min(300)]).into_owned()
        }
    };
    let text = crate::error::one_line(&redact_text(text.trim()));
    if text.is_empty() {
        "no message".into()
    } else {
        text.chars().take(300).collect()
    }
}

/// `application/x-www-form-urlencoded` pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(&mut out, k);
        out.push('=');
        encode_into(&mut out, v);
    }
    out
}

fn encode_into(out: &mut String, text: &str) {
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => {
                use std::fmt::Write;
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// How long a refresh token lives, judged by what its issuer says rather than by this
/// machine's clock: `exp - iat`, anchored at `now` (the time it was received), so a
/// registry whose clock is hours off still gives a full-length cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Local expiry: `now` plus the lifetime, in this machine's Unix seconds.
    pub expires_on: i64,
    /// Seconds it lives from `now` (zero or less for a token its own claims call dead).
    pub seconds: i64,
    /// How far the issuer's clock is ahead of this machine's (`iat - now`), when `iat`
    /// could be read.
    pub skew: Option<i64>,
}

/// The refresh token's `Lifetime`. Without a usable `iat`, its `exp` as this machine
/// reads it; without a usable `exp` either, or when a claim overflows or says more than
/// `MAX_LIFETIME` (an `exp` near `i64::MAX` or `1e300` must not become an eternal cache
/// entry), an hour. Checked arithmetic throughout.
pub fn refresh_token_lifetime(token: &AcrRefreshToken, now: i64) -> Lifetime {
    let claims = jwt::claims(token.0.expose()).unwrap_or_default();
    let exp = jwt::seconds_claim(&claims, "exp");
    let iat = jwt::seconds_claim(&claims, "iat");
    let at = |seconds: i64, skew| Lifetime {
        expires_on: now.saturating_add(seconds),
        seconds,
        skew,
    };
    if let (Some(exp), Some(iat)) = (exp, iat)
        && let Some(life) = exp
            .checked_sub(iat)
            .filter(|l| (1..=MAX_LIFETIME).contains(l))
    {
        return at(life, iat.checked_sub(now));
    }
    match exp.and_then(|exp| exp.checked_sub(now)) {
        Some(left) if left <= MAX_LIFETIME => at(left, None),
        _ => {
            crate::debug!("the refresh token's lifetime cannot be read; assuming an hour");
            at(UNKNOWN_LIFETIME, None)
        }
    }
}

/// The longest a refresh token is believed to live: ACR's last about three hours, so a
/// claim of more (or an `exp` that overflows) is a broken or hostile answer.
pub const MAX_LIFETIME: i64 = 24 * 3600;

/// The lifetime assumed for a refresh token whose `exp` cannot be used.
pub const UNKNOWN_LIFETIME: i64 = 3600;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges() {
        type Case<'a> = (&'a str, Option<(&'a str, Option<&'a str>)>);
        let cases: [Case; 8] = [
            (
                r#"Bearer realm="https://myacr.azurecr.io/oauth2/token",service="myacr.azurecr.io""#,
                Some((
                    "https://myacr.azurecr.io/oauth2/token",
                    Some("myacr.azurecr.io"),
                )),
            ),
            (
                r#"bearer realm=https://r.example/token, service=svc, scope="repository:a:pull""#,
                Some(("https://r.example/token", Some("svc"))),
            ),
            (
                r#"Bearer service="s",realm="https://x/t",error="invalid_token""#,
                Some(("https://x/t", Some("s"))),
            ),
            (r#"Bearer realm="https://x/t""#, Some(("https://x/t", None))),
            (
                r#"Bearer realm="https://x/t",service="""#,
                Some(("https://x/t", None)),
            ),
            (r#"Basic realm="x""#, None),
            (r#"Bearer service="s""#, None),
            (r#"Bearer realm="unterminated"#, None),
        ];
        for (header, want) in cases {
            let got = parse_bearer(header);
            let got = got.as_ref().map(|(r, s)| (r.as_str(), s.as_deref()));
            assert_eq!(got, want, "{header}");
        }
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form(&[("grant_type", "access_token"), ("service", "a b&c=d/é")]),
            "grant_type=access_token&service=a+b%26c%3Dd%2F%C3%A9"
        );
    }

    #[test]
    fn server_messages_are_redacted() {
        let r = HttpResponse {
            status: 401,
            headers: vec![],
            body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad token eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"}]}"#.to_vec(),
        };
        assert_eq!(server_message(&r), "UNAUTHORIZED bad token REDACTED");
    }

    #[test]
    fn refusals_carry_status_and_firewall() {
        let answer = |status: u16, body: &str| {
            let response = HttpResponse {
                status,
                headers: vec![],
                body: body.as_bytes().to_vec(),
            };
            match read_answer("https://r/oauth2/exchange", &response) {
                Err(ExchangeError::Other(e)) => e.facts(),
                Err(ExchangeError::Unauthorized(_)) => {
                    Error::from(read_answer("https://r/oauth2/exchange", &response).unwrap_err())
                        .facts()
                }
                Ok(_) => panic!("answered"),
            }
        };
        let firewall = answer(
            403,
            r#"{"errors":[{"code":"DENIED","message":"client with IP '203.0.113.7' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."}]}"#,
        );
        assert_eq!((firewall.status, firewall.firewall), (Some(403), true));
        let role = answer(
            403,
            r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
        );
        assert_eq!((role.status, role.firewall), (Some(403), false));
        assert_eq!(answer(401, "{}").status, Some(401));
        assert_eq!(answer(503, "busy").status, Some(503));
    }

    #[test]
    fn lifetime_follows_the_issuer_not_this_clock() {
        let token =
            |claims: serde_json::Value| AcrRefreshToken(Secret::new(jwt::make_unsigned(&claims)));
        let life = 3 * 3600 + 15 * 60;
        // The registry's clock 3 h 10 min behind, 2 h 40 min behind, 1 h ahead: always a
        // full local entry, and the skew is known.
        for skew in [-(3 * 3600 + 600), -(2 * 3600 + 2400), 3600] {
            let iat = 1_000_000 + skew;
            let l = refresh_token_lifetime(
                &token(serde_json::json!({"iat": iat, "exp": iat + life})),
                1_000_000,
            );
            assert_eq!(
                l,
                Lifetime {
                    expires_on: 1_000_000 + life,
                    seconds: life,
                    skew: Some(skew)
                }
            );
        }
        // No iat: exp as this machine reads it, even when already past.
        let l = refresh_token_lifetime(
            &token(serde_json::json!({"exp": 1_000_000 - 3600})),
            1_000_000,
        );
        assert_eq!((l.seconds, l.skew), (-3600, None));
        // An absurd iat falls back to exp.
        let l = refresh_token_lifetime(
            &token(serde_json::json!({"iat": i64::MIN, "exp": 1_000_600})),
            1_000_000,
        );
        assert_eq!(l.seconds, 600);
    }

    #[test]
    fn expiry_fallback() {
        let refresh_token_expiry =
            |t: &AcrRefreshToken, now| refresh_token_lifetime(t, now).expires_on;
        let t = AcrRefreshToken(Secret::new("not-a-jwt"));
        assert_eq!(refresh_token_expiry(&t, 1000), 4600);
        let jwt = |exp: serde_json::Value| {
            AcrRefreshToken(Secret::new(jwt::make_unsigned(
                &serde_json::json!({ "exp": exp }),
            )))
        };
        assert_eq!(
            refresh_token_expiry(&jwt(serde_json::json!(12_000)), 1000),
            12_000
        );
        for absurd in [
            serde_json::json!(i64::MIN),
            serde_json::json!(i64::MAX),
            serde_json::json!(1e300),
            serde_json::json!(1000 + 24 * 3600 + 1),
        ] {
            assert_eq!(
                refresh_token_expiry(&jwt(absurd.clone()), 1000),
                4600,
                "{absurd}"
            );
        }
    }

    #[test]
    fn realm_policy() {
        let config = FileConfig::parse(
            std::path::Path::new("c.json"),
            r#"{"registries":{"127.0.0.1:5000":{},"registry.contoso.com":{}}}"#,
        )
        .unwrap();
        let policy = RealmPolicy::new(&config);
        let host = |h: &str| RegistryHost::parse(h).unwrap();
        let acr = host("myacr.azurecr.io");
        for (realm, want) in [
            (
                "https://myacr.azurecr.io/oauth2/token",
                Some("https://myacr.azurecr.io"),
            ),
            (
                "https://other.azurecr.io/oauth2/token",
                Some("https://other.azurecr.io"),
            ),
            (
                "https://registry.contoso.com/token",
                Some("https://registry.contoso.com"),
            ),
            (
                "http://127.0.0.1:5000/oauth2/token",
                Some("http://127.0.0.1:5000"),
            ),
            ("http://attacker.azurecr.io/oauth2/token", None),
            ("http://127.0.0.1:6000/oauth2/token", None),
            ("https://evil.example/oauth2/token", None),
            ("https://myacr.azurecr.io.evil.example/t", None),
            ("ftp://myacr.azurecr.io/t", None),
        ] {
            assert_eq!(policy.check(&acr, realm).ok().as_deref(), want, "{realm}");
        }
        let planted = Challenge {
            base: "https://evil.example".into(),
            service: "x".into(),
        };
        assert!(policy.remembered(&acr, planted).is_none());
        let good = Challenge::assumed(&acr, "https");
        assert_eq!(policy.remembered(&acr, good.clone()), Some(good));
    }
}
