//! Fake managed-identity endpoints on plain http loopback: the App Service/Functions
//! endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`, api-version 2019-08-01) and the VM
//! instance metadata service (IMDS, api-version 2018-02-01, reached through
//! `AZURE_POD_IDENTITY_AUTHORITY_HOST`).

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::http::{Req, Resp, Server};
use super::jwt;

/// The tenant the fake identities live in (their tokens' `tid`).
pub const MI_TENANT: &str = "mi-tenant-0000";
/// The client id of the system-assigned identity.
pub const SYSTEM_ASSIGNED_CLIENT_ID: &str = "system-assigned-client-id";

#[derive(Default)]
struct State {
    issued: Vec<String>,
}

/// Which identity a request asked for, from its query.
fn identity_of(req: &Req) -> String {
    for key in [
        "client_id",
        "principal_id",
        "object_id",
        "msi_res_id",
        "mi_res_id",
    ] {
        if let Some(v) = req.query_param(key) {
            return v;
        }
    }
    SYSTEM_ASSIGNED_CLIENT_ID.to_string()
}

fn issue(req: &Req, state: &Mutex<State>) -> (String, String, String) {
    let resource = req.query_param("resource").unwrap_or_default();
    let client_id = identity_of(req);
    let aud = jwt::audience_for_scope(&resource);
    let token =
        jwt::entra_access_token(&aud, MI_TENANT, &format!("oid-of-{client_id}"), &client_id);
    state.lock().unwrap().issued.push(token.clone());
    (token, resource, client_id)
}

pub struct FakeAppService {
    pub server: Server,
    pub secret: String,
    state: Arc<Mutex<State>>,
}

impl FakeAppService {
    pub fn start() -> FakeAppService {
        let secret = format!("identity-header-secret-{}", jwt::unique());
        let state = Arc::new(Mutex::new(State::default()));
        let (s, expected) = (state.clone(), secret.clone());
        let server = Server::start(None, move |req| {
            if req.method != "GET" || req.path != "/msi/token" {
                return Resp::text(404, "not found");
            }
            if req.header("metadata") != Some("true")
                || req.header("x-identity-header") != Some(expected.as_str())
            {
                return Resp::json(
                    400,
                    &json!({"statusCode": 400, "message": "missing or wrong X-IDENTITY-HEADER", "correlationId": "0"}),
                );
            }
            if req.query_param("api-version").as_deref() != Some("2019-08-01") {
                return Resp::json(
                    400,
                    &json!({"statusCode": 400, "message": "unsupported api-version"}),
                );
            }
            if req.query_param("resource").is_none_or(|r| r.is_empty()) {
                return Resp::json(
                    400,
                    &json!({"statusCode": 400, "message": "resource is required"}),
                );
            }
            let (token, resource, client_id) = issue(req, &s);
            Resp::json(
                200,
                &json!({
                    "access_token": token,
                    "expires_on": (jwt::now() + 86_399).to_string(),
                    "resource": resource,
                    "token_type": "Bearer",
                    "client_id": client_id,
                }),
            )
        });
        FakeAppService {
            server,
            secret,
            state,
        }
    }

    /// `IDENTITY_ENDPOINT` for the helper.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/msi/token", self.server.port())
    }

    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }

    /// Requests that reached the token path with the right secret.
    pub fn token_requests(&self) -> Vec<Req> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| {
                r.path == "/msi/token"
                    && r.header("x-identity-header") == Some(self.secret.as_str())
            })
            .collect()
    }
}

pub struct FakeImds {
    pub server: Server,
    state: Arc<Mutex<State>>,
}

impl FakeImds {
    pub fn start() -> FakeImds {
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let server = Server::start(None, move |req| {
            if req.path != "/metadata/identity/oauth2/token" {
                return Resp::text(404, "not found");
            }
            if req.header("metadata") != Some("true") {
                // Real IMDS answers a request without the header like this, which is
                // also what SDK probes look for.
                return Resp::json(
                    400,
                    &json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}),
                );
            }
            if req.query_param("resource").is_none_or(|r| r.is_empty()) {
                return Resp::json(
                    400,
                    &json!({"error": "invalid_request", "error_description": "Required query variable 'resource' is missing"}),
                );
            }
            let (token, resource, client_id) = issue(req, &s);
            let now = jwt::now();
            Resp::json(
                200,
                &json!({
                    "access_token": token,
                    "client_id": client_id,
                    "expires_in": "86399",
                    "expires_on": (now + 86_399).to_string(),
                    "ext_expires_in": "86399",
                    "not_before": now.to_string(),
                    "resource": resource,
                    "token_type": "Bearer",
                }),
            )
        });
        FakeImds { server, state }
    }

    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` for the helper.
    pub fn authority(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }

    /// Requests that carried `metadata: true` and a resource (token requests, not probes).
    pub fn token_requests(&self) -> Vec<Req> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.header("metadata") == Some("true") && r.query_param("resource").is_some())
            .collect()
    }
}

/// Where the Azure Arc agent (himds) writes the key files its challenges name.
pub const ARC_KEY_DIR: &str = "/var/opt/azcmagent/tokens";

/// The Azure Arc agent's identity endpoint (api-version 2020-06-01): a request without
/// `Authorization` gets `401` and `WWW-Authenticate: Basic realm=<key file>`; the retry
/// must send `Authorization: Basic <that file's content>`.
pub struct FakeArc {
    pub server: Server,
    /// The key the agent "wrote" to `key_path`; the test puts it there.
    pub key: String,
    pub key_path: String,
    state: Arc<Mutex<State>>,
}

impl FakeArc {
    pub fn start() -> FakeArc {
        FakeArc::start_naming(&format!("{ARC_KEY_DIR}/{}.key", jwt::unique()))
    }

    /// An agent whose challenge names `key_path` (a hostile one may name any file).
    pub fn start_naming(key_path: &str) -> FakeArc {
        let key = format!("arc-challenge-key-{}", jwt::unique());
        let key_path = key_path.to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let (s, expected, realm) = (state.clone(), key.clone(), key_path.clone());
        let server = Server::start(None, move |req| {
            if req.path != "/metadata/identity/oauth2/token" {
                return Resp::text(404, "not found");
            }
            if req.header("metadata") != Some("true")
                || req.query_param("api-version").as_deref() != Some("2020-06-01")
                || req.query_param("resource").is_none_or(|r| r.is_empty())
            {
                return Resp::json(
                    400,
                    &json!({"error": "invalid_request", "error_description": "bad request"}),
                );
            }
            match req.header("authorization") {
                None => Resp::json(401, &json!({"error": "unauthorized"}))
                    .header("WWW-Authenticate", &format!("Basic realm={realm}")),
                Some(auth) if auth == format!("Basic {expected}") => {
                    let (token, resource, _) = issue(req, &s);
                    Resp::json(
                        200,
                        &json!({
                            "access_token": token,
                            "expires_in": "86399",
                            "expires_on": (jwt::now() + 86_399).to_string(),
                            "resource": resource,
                            "token_type": "Bearer",
                        }),
                    )
                }
                Some(_) => Resp::json(401, &json!({"error": "wrong key"})),
            }
        });
        FakeArc {
            server,
            key,
            key_path,
            state,
        }
    }

    /// `IDENTITY_ENDPOINT` for the helper.
    pub fn endpoint(&self) -> String {
        format!(
            "http://127.0.0.1:{}/metadata/identity/oauth2/token",
            self.server.port()
        )
    }

    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }
}
