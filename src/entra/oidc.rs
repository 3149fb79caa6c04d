//! CI jobs' OIDC tokens, fetched from the CI's own token service at each mint and sent to
//! Entra as the client assertion of a federated credential: GitHub Actions
//! (`GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=…` with the job's request token, answer
//! `{"value": JWT}`) and Azure Pipelines (`POST
//! $SYSTEM_OIDCREQUESTURI?api-version=7.1&serviceConnectionId=…` with the job's access
//! token, answer `{"oidcToken": JWT}`). The token is never written anywhere: it lives
//! minutes. Only whom it names is remembered, under a digest of the request, so the
//! job's next `get` finds its cache entry without asking the CI again (`subject_key`).
//!
//! Azure Pipelines is not served by `azure_identity::AzurePipelinesCredential`, though
//! the request here is the one it sends, header for header: that credential keeps the
//! assertion to itself, so the cache could not be keyed by whom it names and two
//! pipelines with one client id would share tokens; it reads `SYSTEM_OIDCREQUESTURI`
//! from the process environment behind `config`'s back; and its request goes through
//! `azure_core`'s retry policy instead of the throttling budget every other call keeps.

use crate::cache::SubjectKey;
use crate::config::{ACTIONS_ID_TOKEN_REQUEST_URL, SYSTEM_OIDCREQUESTURI, Settings};
use crate::error::{Error, Party, Result, one_line, redact_text};
use crate::exchange::form;
use crate::http::{Failure, Http, HttpRequest, strip_query};
use crate::identity::{CredentialKind, FederatedAssertion, Identity};
use crate::registry::Cloud;
use crate::secret::Secret;

/// The Azure DevOps REST API version `AzurePipelinesCredential` asks for.
const PIPELINES_API_VERSION: &str = "7.1";

/// The audience a cloud's Entra expects in a federated token, unless
/// `ACR_ENTRA_OIDC_AUDIENCE` says otherwise.
pub fn audience(settings: &Settings, cloud: Cloud) -> String {
    settings
        .ci
        .oidc_audience
        .clone()
        .unwrap_or_else(|| cloud.token_exchange_audience().to_string())
}

/// One OIDC request as the CI expects it: where, with which bearer token, and how the
/// answer names the token.
struct Request {
    kind: CredentialKind,
    variable: &'static str,
    http: HttpRequest,
    /// The URL for messages: no query (it may carry job data).
    shown: String,
    field: &'static str,
}

fn request<'s>(identity: &Identity, settings: &'s Settings) -> Option<(Request, &'s Secret)> {
    let ci = &settings.ci;
    match identity.kind {
        CredentialKind::GitHubActions => {
            let (url, token) = (ci.github_url.as_deref()?, ci.github_token.as_ref()?);
            let audience = audience(settings, identity.cloud);
            let joiner = match url.rfind('?') {
                None => "?",
                Some(i) if i + 1 == url.len() || url.ends_with('&') => "",
                Some(_) => "&",
            };
            let full = format!("{url}{joiner}{}", form(&[("audience", &audience)]));
            let http = HttpRequest::get(full)
                .header("authorization", &format!("Bearer {}", token.expose()))
                .header("accept", "application/json; api-version=2.0");
            Some((
                Request {
                    kind: identity.kind,
                    variable: ACTIONS_ID_TOKEN_REQUEST_URL,
                    shown: strip_query(url).to_string(),
                    http,
                    field: "value",
                },
                token,
            ))
        }
        CredentialKind::AzurePipelines => {
            let url = ci.pipelines_url.as_deref()?;
            let token = ci.pipelines_token.as_ref()?;
            let connection = ci.service_connection_id.as_deref()?;
            let joiner = if url.contains('?') { "&" } else { "?" };
            let full = format!(
                "{url}{joiner}{}",
                form(&[
                    ("api-version", PIPELINES_API_VERSION),
                    ("serviceConnectionId", connection)
                ])
            );
            let http = HttpRequest {
                method: "POST",
                url: full,
                headers: Vec::new(),
                body: Some(Vec::new()),
            }
            .header("authorization", &format!("Bearer {}", token.expose()))
            .header("x-tfs-fedauthredirect", "Suppress")
            .header("content-length", "0");
            Some((
                Request {
                    kind: identity.kind,
                    variable: SYSTEM_OIDCREQUESTURI,
                    shown: strip_query(url).to_string(),
                    http,
                    field: "oidcToken",
                },
                token,
            ))
        }
        _ => None,
    }
}

/// What identifies this job's OIDC request, to remember whom its token names: `None`
/// for the kinds that fetch nothing.
pub fn subject_key(identity: &Identity, settings: &Settings) -> Option<SubjectKey> {
    let (request, bearer) = request(identity, settings)?;
    Some(SubjectKey::new(&[
        request.kind.name(),
        &request.http.url,
        bearer.expose(),
        identity.client_id.as_deref().unwrap_or_default(),
        identity.tenant.as_deref().unwrap_or_default(),
        &identity.authority,
    ]))
}

/// Fetch this job's OIDC token from the CI. Errors say which service refused or could
/// not be reached and what the job's configuration must give; they carry neither the
/// bearer token nor the JWT.
pub fn fetch(identity: &Identity, settings: &Settings, http: &Http) -> Result<FederatedAssertion> {
    let Some((request, bearer)) = request(identity, settings) else {
        return Err(Error::Config(format!(
            "credential `{}` has no OIDC request to make",
            identity.kind.name()
        )));
    };
    let kind = request.kind;
    if !request
        .http
        .url
        .to_ascii_lowercase()
        .starts_with("https://")
    {
        return Err(Error::Config(format!(
            "{} `{}` is not an https:// URL: the job's token is not sent in clear text",
            request.variable, request.shown
        )));
    }
    let scrub = |text: &str| {
        let text = text.replace(bearer.expose(), "REDACTED");
        one_line(&redact_text(&text))
            .chars()
            .take(200)
            .collect::<String>()
    };
    crate::debug!(
        "asking `{}` for the job's OIDC token (credential {})",
        request.shown,
        kind.name()
    );
    let answer = http
        .send_patiently(&request.http)
        .map_err(|e| unreachable(&request, &e))?;
    if answer.status != 200 {
        return Err(refused(
            &request,
            answer.status,
            &scrub(&String::from_utf8_lossy(&answer.body)),
        ));
    }
    let token = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| v.get(request.field)?.as_str().map(str::to_string))
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            Error::entra(format!(
                "{} `{}` answered 200 without a token in `{}`",
                Party::OidcService(kind),
                request.shown,
                request.field
            ))
        })?;
    let assertion = FederatedAssertion::new(Secret::new(token.trim()));
    crate::debug!("the job's OIDC token names {}", assertion.subject());
    Ok(assertion)
}

/// The CI's OIDC service did not answer (or kept throttling past the budget). The
/// transport's message names the URL without its query and never a header, so it is
/// kept as it is.
fn unreachable(request: &Request, e: &crate::http::HttpError) -> Error {
    let party = Party::OidcService(request.kind);
    match e.failure {
        Failure::Throttled(facts) => Error::Throttled {
            party,
            message: e.message.clone(),
            facts,
        },
        failure => Error::network(
            format!("{party} could not be reached: {}", e.message),
            failure == Failure::Tls,
        ),
    }
}

/// The CI's OIDC service answered, but not with a token.
fn refused(request: &Request, status: u16, body: &str) -> Error {
    Error::entra(format!(
        "{} `{}` answered {status}{}: {}",
        Party::OidcService(request.kind),
        request.shown,
        if body.is_empty() {
            String::new()
        } else {
            format!(" ({body})")
        },
        refusal_hint(request.kind, status)
    ))
}

/// What a refusal by the CI's OIDC service usually means.
fn refusal_hint(kind: CredentialKind, status: u16) -> &'static str {
    match (kind, status) {
        (CredentialKind::GitHubActions, 401 | 403) => {
            "the job's request token was refused; ACTIONS_ID_TOKEN_REQUEST_TOKEN is valid only inside the job that received it"
        }
        (CredentialKind::GitHubActions, _) => {
            "GitHub's OIDC token service failed; retry the job, or check ACTIONS_ID_TOKEN_REQUEST_URL"
        }
        (CredentialKind::AzurePipelines, 401 | 403) => {
            "the job's access token was refused: map it into the step (`env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`) and allow the pipeline to use the service connection"
        }
        (CredentialKind::AzurePipelines, 400 | 404) => {
            "check AZURESUBSCRIPTION_SERVICE_CONNECTION_ID: it must be the id of an Azure Resource Manager service connection that uses workload identity federation"
        }
        _ => "the CI's OIDC token service failed; retry the job",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ACR_ENTRA_OIDC_AUDIENCE, Env, Settings};

    fn github(url: &str) -> String {
        let settings = Settings::from_env(&Env::from_pairs([
            ("ACTIONS_ID_TOKEN_REQUEST_URL", url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token"),
        ]))
        .unwrap();
        let identity = Identity::for_test(CredentialKind::GitHubActions);
        request(&identity, &settings).unwrap().0.http.url
    }

    #[test]
    fn the_audience_is_appended_with_the_right_separator() {
        let aud = "audience=api%3A%2F%2FAzureADTokenExchange";
        assert_eq!(
            github("https://t.example/idtoken?api-version=2.0"),
            format!("https://t.example/idtoken?api-version=2.0&{aud}")
        );
        assert_eq!(
            github("https://t.example/idtoken"),
            format!("https://t.example/idtoken?{aud}")
        );
        assert_eq!(
            github("https://t.example/idtoken?"),
            format!("https://t.example/idtoken?{aud}")
        );
        assert_eq!(
            github("https://t.example/idtoken?a=1&"),
            format!("https://t.example/idtoken?a=1&{aud}")
        );
    }

    #[test]
    fn sovereign_clouds_ask_for_their_own_audience() {
        let settings = Settings::from_env(&Env::default()).unwrap();
        assert_eq!(
            audience(&settings, Cloud::Public),
            "api://AzureADTokenExchange"
        );
        assert_eq!(
            audience(&settings, Cloud::China),
            "api://AzureADTokenExchangeChina"
        );
        assert_eq!(
            audience(&settings, Cloud::UsGov),
            "api://AzureADTokenExchangeUSGov"
        );
        let forced = Settings::from_env(&Env::from_pairs([(
            ACR_ENTRA_OIDC_AUDIENCE,
            "api://custom",
        )]))
        .unwrap();
        assert_eq!(audience(&forced, Cloud::China), "api://custom");
    }

    #[test]
    fn the_request_key_holds_no_secret_and_differs_per_job() {
        let key = |token: &str| {
            let settings = Settings::from_env(&Env::from_pairs([
                ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://t.example/x?a=1"),
                ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", token),
            ]))
            .unwrap();
            subject_key(
                &Identity::for_test(CredentialKind::GitHubActions),
                &settings,
            )
            .unwrap()
        };
        assert_eq!(key("job-one"), key("job-one"));
        assert_ne!(key("job-one"), key("job-two"));
        assert!(!format!("{:?}", key("job-one")).contains("job-one"));
    }
}
