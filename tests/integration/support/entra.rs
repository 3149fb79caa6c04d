//! Fake Microsoft Entra token endpoint (HTTPS): `POST /{tenant}/oauth2/v2.0/token` with
//! `grant_type=client_credentials` and either a client secret or a JWT-bearer client
//! assertion. Issues Entra-like access tokens whose `aud` follows the requested scope,
//! and can be told to fail with Entra's JSON error shape.

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::http::{Req, Resp, Server};
use super::{jwt, tls};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the fake answers.
#[derive(Clone, Debug)]
pub enum EntraMode {
    Normal,
    /// Answer every token request with this status and Entra's JSON error.
    Fail(u16),
    /// Read the request and never answer.
    Hang,
}

#[derive(Default)]
struct State {
    mode: Option<EntraMode>,
    issued: Vec<String>,
    oid: Option<String>,
    /// How long issued tokens live, in seconds (default 3599, as Entra's app tokens).
    lifetime: Option<i64>,
    /// Federated credentials: (client id, issuer, subject, audience). A client that has
    /// any accepts only assertions that match one, as Entra does.
    federated: Vec<[String; 4]>,
}

pub struct FakeEntra {
    pub server: Server,
    state: Arc<Mutex<State>>,
}

/// One token request as the fake understood it.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub tenant: String,
    pub form: Vec<(String, String)>,
}

impl TokenRequest {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn scope(&self) -> &str {
        self.get("scope").unwrap_or_default()
    }
}

impl FakeEntra {
    pub fn start() -> FakeEntra {
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let server = Server::start(Some(tls::server_config()), move |req| handle(req, &s));
        FakeEntra { server, state }
    }

    pub fn set_mode(&self, mode: EntraMode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    /// Give `client` a federated credential for tokens with this issuer, subject and
    /// audience; from then on its assertions are checked as Entra checks them.
    pub fn trust(&self, client: &str, issuer: &str, subject: &str, audience: &str) {
        self.state.lock().unwrap().federated.push([
            client.to_string(),
            issuer.to_string(),
            subject.to_string(),
            audience.to_string(),
        ]);
    }

    /// Issue tokens that live `seconds`.
    pub fn set_lifetime(&self, seconds: i64) {
        self.state.lock().unwrap().lifetime = Some(seconds);
    }

    pub fn set_oid(&self, oid: &str) {
        self.state.lock().unwrap().oid = Some(oid.to_string());
    }

    /// `AZURE_AUTHORITY_HOST` for the helper.
    pub fn authority(&self) -> String {
        format!("https://localhost:{}", self.server.port())
    }

    /// The token endpoint URL for a tenant, as a client assertion's `aud` names it.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.authority())
    }

    /// Access tokens issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }

    /// Token requests received (every request, parsed).
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.server
            .requests()
            .into_iter()
            .map(|r| TokenRequest {
                tenant: r
                    .path
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                form: r.form(),
            })
            .collect()
    }

    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }
}

fn error(status: u16, code: &str, description: &str, number: u32) -> Resp {
    Resp::json(
        status,
        &json!({
            "error": code,
            "error_description": format!("AADSTS{number}: {description} Trace ID: 00000000-0000-0000-0000-000000000000 Correlation ID: 00000000-0000-0000-0000-000000000000 Timestamp: 2026-01-01 00:00:00Z"),
            "error_codes": [number],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
        }),
    )
}

fn handle(req: &Req, state: &Mutex<State>) -> Resp {
    let mode = state
        .lock()
        .unwrap()
        .mode
        .clone()
        .unwrap_or(EntraMode::Normal);
    match mode {
        EntraMode::Hang => return Resp::hang(),
        EntraMode::Fail(400) => {
            return error(
                400,
                "invalid_request",
                "The request body must contain the following parameter: 'scope'.",
                900144,
            );
        }
        EntraMode::Fail(500) => {
            return error(
                500,
                "temporarily_unavailable",
                "The service is temporarily unavailable.",
                50196,
            );
        }
        EntraMode::Fail(status) => {
            return error(
                status,
                "invalid_client",
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                7000215,
            );
        }
        EntraMode::Normal => {}
    }
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    if req.method != "POST" || segments.len() != 4 || segments[1..] != ["oauth2", "v2.0", "token"] {
        return error(404, "invalid_request", "Unknown endpoint.", 900561);
    }
    let tenant = segments[0];
    if !req
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    {
        return error(
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded.",
            900144,
        );
    }
    let get = |name: &str| req.form_value(name);
    if get("grant_type").as_deref() != Some("client_credentials") {
        return error(
            400,
            "unsupported_grant_type",
            "The grant type is not supported.",
            70003,
        );
    }
    let Some(client_id) = get("client_id") else {
        return error(
            400,
            "invalid_request",
            "The request body must contain the following parameter: 'client_id'.",
            900144,
        );
    };
    let Some(scope) = get("scope") else {
        return error(
            400,
            "invalid_request",
            "The request body must contain the following parameter: 'scope'.",
            900144,
        );
    };
    let has_secret = get("client_secret").is_some_and(|s| !s.is_empty());
    let has_assertion = get("client_assertion").is_some_and(|s| !s.is_empty())
        && get("client_assertion_type").as_deref() == Some(ASSERTION_TYPE);
    if has_secret == has_assertion {
        return error(
            401,
            "invalid_client",
            "The request body must contain exactly one of 'client_secret' or 'client_assertion'.",
            7000216,
        );
    }
    if has_assertion {
        let assertion = get("client_assertion").unwrap_or_default();
        if let Some(refusal) = federation_refusal(state, &client_id, &assertion) {
            return refusal;
        }
    }
    let aud = jwt::audience_for_scope(scope.split(' ').next().unwrap_or_default());
    let (oid, lifetime) = {
        let s = state.lock().unwrap();
        (
            s.oid
                .clone()
                .unwrap_or_else(|| format!("oid-of-{client_id}")),
            s.lifetime.unwrap_or(3599),
        )
    };
    let token = jwt::entra_access_token_living(&aud, tenant, &oid, &client_id, lifetime);
    state.lock().unwrap().issued.push(token.clone());
    Resp::json(
        200,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }),
    )
}

/// Entra's verdict on a federated assertion for a client with federated credentials:
/// `None` to accept. Expiry first (AADSTS700024), then issuer (700211), audience
/// (700212) and subject (700213), as Entra reports them.
fn federation_refusal(state: &Mutex<State>, client: &str, assertion: &str) -> Option<Resp> {
    let rules: Vec<[String; 4]> = state
        .lock()
        .unwrap()
        .federated
        .iter()
        .filter(|r| r[0] == client)
        .cloned()
        .collect();
    if rules.is_empty() {
        return None;
    }
    let claims = jwt::try_decode(assertion).map(|(_, c)| c);
    let Some(claims) = claims else {
        return Some(error(
            400,
            "invalid_client",
            "Client assertion failed signature validation.",
            7_000_274,
        ));
    };
    let text = |name: &str| claims[name].as_str().unwrap_or_default().to_string();
    let now = jwt::now();
    if claims["exp"].as_i64().is_none_or(|exp| exp <= now) {
        return Some(error(
            400,
            "invalid_client",
            &format!(
                "Client assertion is not within its valid time range. Current time: {now}, expiry time of assertion {}.",
                claims["exp"]
            ),
            700_024,
        ));
    }
    let (iss, aud, sub) = (text("iss"), text("aud"), text("sub"));
    if !rules.iter().any(|r| r[1] == iss) {
        return Some(error(
            400,
            "invalid_client",
            &format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'."
            ),
            700_211,
        ));
    }
    if !rules.iter().any(|r| r[1] == iss && r[3] == aud) {
        return Some(error(
            400,
            "invalid_client",
            &format!(
                "No matching federated identity record found for presented assertion audience '{aud}'."
            ),
            700_212,
        ));
    }
    if !rules
        .iter()
        .any(|r| r[1] == iss && r[3] == aud && r[2] == sub)
    {
        return Some(error(
            400,
            "invalid_client",
            &format!(
                "No matching federated identity record found for presented assertion subject '{sub}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            ),
            700_213,
        ));
    }
    None
}
