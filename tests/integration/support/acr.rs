//! Fake Azure Container Registry (HTTPS): `GET /v2/` answers ACR's Bearer challenge and
//! `POST /oauth2/exchange` trades an Entra access token for an ACR-like refresh token.
//! The fake checks the exchange form, can reject one Entra audience with 401, redirect,
//! hang, trickle, and counts calls.

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::http::{Req, Resp, Server};
use super::{jwt, tls};

pub const ACR_AUDIENCE: &str = "https://containerregistry.azure.net";
pub const ARM_AUDIENCE: &str = "https://management.azure.com/";

/// How `/v2/` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum V2Mode {
    Challenge,
    /// 200 with no challenge.
    Ok,
    /// 404 with no challenge.
    NotFound,
    Hang,
}

/// How `/oauth2/exchange` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeMode {
    Normal,
    /// 302 to this URL.
    Redirect(String),
    Hang,
    /// A normal answer written one byte per second.
    Trickle,
}

struct State {
    host: String,
    v2: V2Mode,
    exchange: ExchangeMode,
    reject_audiences: Vec<String>,
    /// Entra tokens answered with 401 (ACR's answer to a revoked or expired token).
    refused_tokens: Vec<String>,
    issued: Vec<String>,
    /// The realm URL in the challenge, when not `https://HOST/oauth2/token`.
    realm: Option<String>,
    /// The `service` in the challenge and expected by the exchange, when not HOST.
    service: Option<String>,
}

pub struct FakeAcr {
    pub server: Server,
    state: Arc<Mutex<State>>,
}

/// One exchange request, parsed.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub req: Req,
    pub form: Vec<(String, String)>,
}

impl Exchange {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `aud` of the Entra token that was sent.
    pub fn audience(&self) -> String {
        let (_, payload) = jwt::decode(self.get("access_token").unwrap_or_default());
        payload["aud"].as_str().unwrap_or_default().to_string()
    }
}

impl FakeAcr {
    /// A fake registry that calls itself `host` (the name in the realm and service).
    pub fn start(host: &str) -> FakeAcr {
        FakeAcr::start_inner(Some(host))
    }

    /// A fake registry that calls itself `localhost:PORT` (its own port).
    pub fn start_localhost() -> FakeAcr {
        FakeAcr::start_inner(None)
    }

    /// A plain-http fake registry that calls itself `127.0.0.1:PORT`, realm `http://…`.
    pub fn start_plain_loopback() -> FakeAcr {
        FakeAcr::start_with(None, false)
    }

    fn start_inner(host: Option<&str>) -> FakeAcr {
        FakeAcr::start_with(host, true)
    }

    fn start_with(host: Option<&str>, tls: bool) -> FakeAcr {
        let state = Arc::new(Mutex::new(State {
            host: host.unwrap_or_default().to_string(),
            v2: V2Mode::Challenge,
            exchange: ExchangeMode::Normal,
            reject_audiences: Vec::new(),
            refused_tokens: Vec::new(),
            issued: Vec::new(),
            realm: None,
            service: None,
        }));
        let s = state.clone();
        let server = Server::start(tls.then(tls::server_config), move |req| handle(req, &s));
        if host.is_none() {
            let mut st = state.lock().unwrap();
            if tls {
                st.host = format!("localhost:{}", server.port());
            } else {
                st.host = format!("127.0.0.1:{}", server.port());
                st.realm = Some(format!("http://{}/oauth2/token", st.host));
            }
        }
        FakeAcr { server, state }
    }

    pub fn host(&self) -> String {
        self.state.lock().unwrap().host.clone()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `host:443:127.0.0.1:PORT` for `ACR_ENTRA_CONNECT_TO`.
    pub fn connect_to(&self) -> String {
        format!("{}:443:127.0.0.1:{}", self.host(), self.port())
    }

    pub fn set_v2(&self, mode: V2Mode) {
        self.state.lock().unwrap().v2 = mode;
    }

    pub fn set_exchange(&self, mode: ExchangeMode) {
        self.state.lock().unwrap().exchange = mode;
    }

    /// Name another realm in the challenge.
    pub fn set_realm(&self, realm: &str) {
        self.state.lock().unwrap().realm = Some(realm.to_string());
    }

    /// Name another service in the challenge (and expect it in the exchange).
    pub fn set_service(&self, service: &str) {
        self.state.lock().unwrap().service = Some(service.to_string());
    }

    /// Answer 401 to exchanges whose Entra token has this `aud`.
    pub fn reject_audience(&self, aud: &str) {
        self.state
            .lock()
            .unwrap()
            .reject_audiences
            .push(aud.to_string());
    }

    /// Answer 401 to exchanges that send this Entra token.
    pub fn refuse_token(&self, entra_token: &str) {
        self.state
            .lock()
            .unwrap()
            .refused_tokens
            .push(entra_token.to_string());
    }

    /// Refresh tokens issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path == "/oauth2/exchange")
            .map(|req| Exchange {
                form: req.form(),
                req,
            })
            .collect()
    }

    pub fn exchange_count(&self) -> usize {
        self.exchanges().len()
    }

    pub fn challenge_count(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path == "/v2/" || r.path == "/v2")
            .count()
    }
}

fn acr_error(status: u16, code: &str, message: &str) -> Resp {
    Resp::json(
        status,
        &json!({"errors": [{"code": code, "message": message}]}),
    )
}

fn handle(req: &Req, state: &Mutex<State>) -> Resp {
    let (host, v2, exchange, rejected, realm, service) = {
        let s = state.lock().unwrap();
        (
            s.host.clone(),
            s.v2.clone(),
            s.exchange.clone(),
            s.reject_audiences.clone(),
            s.realm
                .clone()
                .unwrap_or_else(|| format!("https://{}/oauth2/token", s.host)),
            s.service.clone().unwrap_or_else(|| s.host.clone()),
        )
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v2/" | "/v2") => match v2 {
            V2Mode::Challenge => acr_error(401, "UNAUTHORIZED", "authentication required, visit https://aka.ms/acr/authorization for more information.")
                .header(
                    "www-authenticate",
                    &format!(r#"Bearer realm="{realm}",service="{service}""#),
                )
                .header("docker-distribution-api-version", "registry/2.0"),
            V2Mode::Ok => Resp::json(200, &json!({})),
            V2Mode::NotFound => Resp::text(404, "404 page not found"),
            V2Mode::Hang => Resp::hang(),
        },
        ("POST", "/oauth2/exchange") => {
            match exchange {
                ExchangeMode::Hang => return Resp::hang(),
                ExchangeMode::Redirect(to) => {
                    return Resp::new(302).header("location", &to).body("");
                }
                ExchangeMode::Normal | ExchangeMode::Trickle => {}
            }
            let resp = exchange_answer(req, &host, &service, &rejected, state);
            if exchange == ExchangeMode::Trickle {
                resp.trickle()
            } else {
                resp
            }
        }
        _ => acr_error(404, "NOT_FOUND", "not found"),
    }
}

fn exchange_answer(
    req: &Req,
    host: &str,
    service: &str,
    rejected: &[String],
    state: &Mutex<State>,
) -> Resp {
    if !req
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    {
        return acr_error(
            400,
            "BAD_REQUEST",
            "content-type must be application/x-www-form-urlencoded",
        );
    }
    let get = |name: &str| req.form_value(name).filter(|v| !v.is_empty());
    if get("grant_type").as_deref() != Some("access_token") {
        return acr_error(
            400,
            "UNSUPPORTED_GRANT_TYPE",
            "grant_type must be access_token",
        );
    }
    if get("service").as_deref() != Some(service) {
        return acr_error(400, "BAD_REQUEST", &format!("service must be {service}"));
    }
    let Some(tenant) = get("tenant") else {
        return acr_error(400, "BAD_REQUEST", "tenant is required");
    };
    let Some(access_token) = get("access_token") else {
        return acr_error(400, "BAD_REQUEST", "access_token is required");
    };
    let parts: Vec<&str> = access_token.split('.').collect();
    if parts.len() != 3 {
        return acr_error(401, "UNAUTHORIZED", "malformed access token");
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&base64_or_empty(parts[1]))
    else {
        return acr_error(401, "UNAUTHORIZED", "malformed access token");
    };
    if state.lock().unwrap().refused_tokens.contains(&access_token) {
        return acr_error(
            401,
            "UNAUTHORIZED",
            "the access token is invalid or expired",
        );
    }
    let aud = payload["aud"].as_str().unwrap_or_default();
    if rejected.iter().any(|r| r == aud) {
        return acr_error(
            401,
            "UNAUTHORIZED",
            &format!("audience {aud} is not allowed for this registry"),
        );
    }
    let appid = payload["appid"].as_str().unwrap_or("unknown-app");
    let refresh = jwt::acr_refresh_token(host, &tenant, appid);
    state.lock().unwrap().issued.push(refresh.clone());
    Resp::json(200, &json!({"refresh_token": refresh}))
}

fn base64_or_empty(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap_or_default()
}
