//! For the subcommand tests: `FakeRegistry`, a TLS fake ACR with what
//! `FakeAcr` does not model — the `/oauth2/token` endpoint (`grant_type=refresh_token`,
//! repeated `scope`) that `token --scope` uses, a 403 with ACR's firewall body, and
//! refresh tokens issued with a skewed clock — plus small helpers for kubelet requests
//! and client config files.

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::http::{Req, Resp, Server};
use super::{jwt, tls};

/// ACR's answer when network rules block the caller.
pub const FIREWALL_MESSAGE: &str = "client with IP '203.0.113.7' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryMode {
    Normal,
    /// The exchange answers 403 with the firewall body.
    Firewall,
    /// Refresh tokens are issued as if the registry's clock were this many seconds ahead.
    Skewed(i64),
}

#[derive(Default)]
struct State {
    refresh: Vec<String>,
    access: Vec<String>,
}

pub struct FakeRegistry {
    pub server: Server,
    pub host: String,
    state: Arc<Mutex<State>>,
}

impl FakeRegistry {
    pub fn start(host: &str, mode: RegistryMode) -> FakeRegistry {
        let state = Arc::new(Mutex::new(State::default()));
        let (s, h) = (state.clone(), host.to_string());
        let server = Server::start(Some(tls::server_config()), move |req| {
            handle(req, &h, &mode, &s)
        });
        FakeRegistry {
            server,
            host: host.to_string(),
            state,
        }
    }

    /// `host:443:127.0.0.1:PORT` for `ACR_ENTRA_CONNECT_TO`.
    pub fn connect_to(&self) -> String {
        format!("{}:443:127.0.0.1:{}", self.host, self.server.port())
    }

    pub fn refresh_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().refresh.clone()
    }

    pub fn access_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().access.clone()
    }

    /// Requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Req> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

fn error(status: u16, code: &str, message: &str) -> Resp {
    Resp::json(
        status,
        &json!({"errors": [{"code": code, "message": message}]}),
    )
}

fn handle(req: &Req, host: &str, mode: &RegistryMode, state: &Mutex<State>) -> Resp {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v2/") => error(401, "UNAUTHORIZED", "authentication required").header(
            "www-authenticate",
            &format!(r#"Bearer realm="https://{host}/oauth2/token",service="{host}""#),
        ),
        ("POST", "/oauth2/exchange") => {
            if *mode == RegistryMode::Firewall {
                return error(403, "DENIED", FIREWALL_MESSAGE);
            }
            if req.form_value("grant_type").as_deref() != Some("access_token")
                || req.form_value("service").as_deref() != Some(host)
            {
                return error(400, "BAD_REQUEST", "bad exchange form");
            }
            let skew = match mode {
                RegistryMode::Skewed(s) => *s,
                _ => 0,
            };
            let now = jwt::now() + skew;
            let token = jwt::make(
                &json!({"alg": "RS256", "typ": "JWT"}),
                &json!({
                    "jti": format!("jti-{}", jwt::unique()),
                    "nbf": now - 5,
                    "iat": now,
                    "exp": now + 3 * 3600 + 15 * 60,
                    "iss": "Azure Container Registry",
                    "aud": host,
                    "grant_type": "refresh_token",
                    "tenant": req.form_value("tenant").unwrap_or_default(),
                    "permissions": {"actions": ["read", "write"], "notActions": null},
                }),
            );
            state.lock().unwrap().refresh.push(token.clone());
            Resp::json(200, &json!({"refresh_token": token}))
        }
        ("POST", "/oauth2/token") => {
            let form = req.form();
            let get = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            let known =
                get("refresh_token").is_some_and(|t| state.lock().unwrap().refresh.contains(&t));
            if get("grant_type").as_deref() != Some("refresh_token")
                || get("service").as_deref() != Some(host)
            {
                return error(400, "BAD_REQUEST", "bad token form");
            }
            if !known {
                return error(401, "UNAUTHORIZED", "unknown refresh token");
            }
            let scopes: Vec<String> = form
                .iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.clone())
                .collect();
            let now = jwt::now();
            let token = jwt::make(
                &json!({"alg": "RS256", "typ": "JWT"}),
                &json!({"iat": now, "exp": now + 4500, "aud": host, "access": scopes.iter().map(|s| json!({"scope": s})).collect::<Vec<_>>()}),
            );
            state.lock().unwrap().access.push(token.clone());
            Resp::json(200, &json!({"access_token": token}))
        }
        _ => error(404, "NOT_FOUND", "not found"),
    }
}

/// A `CredentialProviderRequest` for `image`, with optional service-account token and
/// annotations, as kubelet writes it.
pub fn kubelet_request(
    image: &str,
    sa_token: Option<&str>,
    annotations: &[(&str, &str)],
) -> String {
    let mut request = json!({
        "kind": "CredentialProviderRequest",
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "image": image,
    });
    if let Some(t) = sa_token {
        request["serviceAccountToken"] = json!(t);
    }
    if !annotations.is_empty() {
        let map: serde_json::Map<String, serde_json::Value> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_string(), json!(v)))
            .collect();
        request["serviceAccountAnnotations"] = serde_json::Value::Object(map);
    }
    request.to_string()
}

/// The exact kubelet response for one registry.
pub fn kubelet_response(registry: &str, token: &str, cache_duration: &str) -> String {
    format!(
        r#"{{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"{cache_duration}","auth":{{"{registry}":{{"username":"00000000-0000-0000-0000-000000000000","password":"{token}"}}}}}}"#
    )
}

/// The exact kubelet response for a non-ACR image.
pub const KUBELET_EMPTY: &str = r#"{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"0s","auth":{}}"#;

/// Go's `time.Duration.String()` for whole seconds.
pub fn go_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}
