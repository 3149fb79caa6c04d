//! Talking to the registry: read the `/v2/` challenge to learn the token realm and
//! service, then trade an Entra access token for an ACR refresh token at
//! `/oauth2/exchange`. The realm must be the registry itself or another ACR host, the
//! exchange never follows a redirect (a 3xx would carry the Entra token elsewhere), and
//! server messages are redacted before they reach an error.

use serde::Deserialize;

use crate::error::{Error, Result, redact_text};
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

/// Ask `/v2/` for the challenge. `realm_allowed` says whether the realm's host may
/// receive an Entra token; `scheme` is `https` unless a listed loopback host wants http.
pub fn discover(
    http: &Http,
    host: &RegistryHost,
    scheme: &str,
    realm_allowed: &dyn Fn(&RegistryHost) -> bool,
) -> Result<Challenge> {
    let url = format!("{scheme}://{}/v2/", host.key());
    let response = match http.send(&HttpRequest::get(&url)) {
        Ok(r) => r,
        // The exchange lives on the same host: if /v2/ cannot be reached, neither can it.
        Err(e)
            if matches!(
                e.failure,
                Failure::Connect | Failure::Tls | Failure::Timeout
            ) =>
        {
            return Err(Error::Network(format!(
                "registry `{host}` did not answer: {}",
                e.message
            )));
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
    let has_prefix = |p: &str| {
        realm
            .get(..p.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(p))
    };
    let realm_scheme = if has_prefix("https://") {
        "https"
    } else if scheme == "http" && has_prefix("http://") {
        "http"
    } else {
        return Err(Error::Exchange(format!(
            "registry `{host}` names token realm `{}`, which is not https; refusing to send a token there",
            crate::http::strip_query(&realm)
        )));
    };
    let realm_host = RegistryHost::parse(&realm).map_err(|_| {
        Error::Exchange(format!(
            "registry `{host}` names an unreadable token realm `{}`",
            crate::http::strip_query(&realm)
        ))
    })?;
    if realm_host != *host && !realm_allowed(&realm_host) {
        return Err(Error::Exchange(format!(
            "registry `{host}` names token realm host `{realm_host}`, which is not that registry or an ACR host; refusing to send a token there"
        )));
    }
    let challenge = Challenge {
        base: format!("{realm_scheme}://{}", realm_host.key()),
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
    Unauthorized(String),
    Other(Error),
}

impl From<ExchangeError> for Error {
    fn from(e: ExchangeError) -> Error {
        match e {
            ExchangeError::Unauthorized(m) => Error::Exchange(m),
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
        .send(&HttpRequest::post_form(&url, body))
        .map_err(|e| ExchangeError::Other(e.into()))?;
    read_answer(&url, &response)
}

/// The exchange's answer from `url`: the refresh token of a 200, or why there is none.
/// Separate from the request so the parser of this outside input can be fuzzed.
pub fn read_answer(url: &str, response: &HttpResponse) -> Result<AcrRefreshToken, ExchangeError> {
    match response.status {
        200 => {}
        300..=399 => {
            return Err(ExchangeError::Other(Error::Exchange(format!(
                "ACR exchange at `{url}` answered {} (a redirect); not followed, so the Entra token stays with the registry",
                response.status
            ))));
        }
        401 => {
            return Err(ExchangeError::Unauthorized(format!(
                "ACR exchange at `{url}` refused the Entra token (401: {})",
                server_message(response)
            )));
        }
        403 => {
            return Err(ExchangeError::Other(Error::Exchange(format!(
                "ACR exchange at `{url}` answered 403 ({}): the identity may lack an AcrPull/AcrPush role, or the registry's network rules block this machine",
                server_message(response)
            ))));
        }
        status => {
            return Err(ExchangeError::Other(Error::Exchange(format!(
                "ACR exchange at `{url}` answered {status} ({})",
                server_message(response)
            ))));
        }
    }
    let answer: ExchangeAnswer = serde_json::from_slice(&response.body).map_err(|_| {
        ExchangeError::Other(Error::Exchange(format!(
            "ACR exchange at `{url}` answered 200 without a JSON body"
        )))
    })?;
    let token = answer
        .refresh_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ExchangeError::Other(Error::Exchange(format!(
                "ACR exchange at `{url}` answered 200 without a refresh_token"
            )))
        })?;
    Ok(AcrRefreshToken(Secret::new(token)))
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

/// When the refresh token expires: its `exp`, or an hour from now when unreadable.
pub fn refresh_token_expiry(token: &AcrRefreshToken, now: i64) -> i64 {
    jwt::expiry(token.0.expose()).unwrap_or(now + 3600)
}

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
    fn expiry_fallback() {
        let t = AcrRefreshToken(Secret::new("not-a-jwt"));
        assert_eq!(refresh_token_expiry(&t, 1000), 4600);
    }
}
