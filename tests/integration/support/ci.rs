//! Fake CI OIDC token services (HTTPS, reached under their real host names through
//! `ACR_ENTRA_CONNECT_TO`): GitHub Actions' `GET …/idtoken?api-version=2.0&audience=…`
//! with the job's request token as bearer, answering `{"count":…,"value":JWT}`; and Azure
//! DevOps' `POST …/oidctoken?api-version=7.1&serviceConnectionId=…` with the job's access
//! token as bearer and `X-TFS-FedAuthRedirect: Suppress`, answering `{"oidcToken":JWT}`.
//! Each checks what the real one checks (bearer, method, version, the service connection)
//! and counts requests; each job's tokens name the subject the test gave it.

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::http::{Req, Resp, Server};
use super::{jwt, tls};

pub const GITHUB_HOST: &str = "pipelines.actions.githubusercontent.com";
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const DEVOPS_HOST: &str = "dev.azure.com";
pub const DEVOPS_ORG_ID: &str = "5f3c2a1e-0000-4000-8000-00000000d0e5";
pub const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// What a fake OIDC service answers.
#[derive(Clone, Debug)]
pub enum OidcMode {
    Normal,
    /// Tokens that expired a minute before they were issued to the job.
    Expired,
    /// This status with a short JSON error body.
    Fail(u16),
    /// 429 with this `Retry-After`, `times` times, then normal.
    Throttle {
        retry_after: u64,
        times: usize,
    },
}

/// One CI job as its OIDC service knows it: its bearer token and its subject.
#[derive(Clone, Debug)]
pub struct Job {
    pub bearer: String,
    pub subject: String,
    /// Azure Pipelines: the service connection's id the job may use.
    pub connection: String,
}

struct State {
    mode: OidcMode,
    jobs: Vec<Job>,
    issued: Vec<String>,
}

pub struct FakeOidc {
    pub server: Server,
    state: Arc<Mutex<State>>,
    host: &'static str,
}

impl FakeOidc {
    /// GitHub Actions' token service.
    pub fn github() -> FakeOidc {
        FakeOidc::start(GITHUB_HOST, github)
    }

    /// Azure DevOps' token service for the organisation `octo-org`, whose service
    /// connections are the jobs' subjects' last part (`sc://octo-org/web/CONNECTION`).
    pub fn pipelines() -> FakeOidc {
        FakeOidc::start(DEVOPS_HOST, pipelines)
    }

    fn start(host: &'static str, handler: fn(&Req, &Mutex<State>) -> Resp) -> FakeOidc {
        let state = Arc::new(Mutex::new(State {
            mode: OidcMode::Normal,
            jobs: Vec::new(),
            issued: Vec::new(),
        }));
        let s = state.clone();
        let server = Server::start(Some(tls::server_config()), move |req| handler(req, &s));
        FakeOidc {
            server,
            state,
            host,
        }
    }

    /// A GitHub job with this bearer token whose tokens name `subject`.
    pub fn job(&self, bearer: &str, subject: &str) -> Job {
        self.add(Job {
            bearer: bearer.to_string(),
            subject: subject.to_string(),
            connection: String::new(),
        })
    }

    /// An Azure Pipelines job with this access token that may use the service connection
    /// `id`, named `name` (its tokens' subject is `sc://octo-org/web/NAME`).
    pub fn pipelines_job(&self, bearer: &str, id: &str, name: &str) -> Job {
        self.add(Job {
            bearer: bearer.to_string(),
            subject: format!("sc://octo-org/web/{name}"),
            connection: id.to_string(),
        })
    }

    fn add(&self, job: Job) -> Job {
        self.state.lock().unwrap().jobs.push(job.clone());
        job
    }

    pub fn set_mode(&self, mode: OidcMode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// `HOST:443:127.0.0.1:PORT` for `ACR_ENTRA_CONNECT_TO`.
    pub fn connect_to(&self) -> String {
        format!("{}:443:127.0.0.1:{}", self.host, self.server.port())
    }

    /// GitHub's `ACTIONS_ID_TOKEN_REQUEST_URL` for a job (its query already holds
    /// `api-version`, as GitHub's does).
    pub fn github_url(&self, job: &str) -> String {
        format!(
            "https://{GITHUB_HOST}/00000000000000000000000000000000000000000000000000/00000000-0000-0000-0000-000000000000/_apis/distributedtask/hubs/Actions/plans/plan-{job}/jobs/{job}/idtoken?api-version=2.0"
        )
    }

    /// Azure Pipelines' `SYSTEM_OIDCREQUESTURI` for a job.
    pub fn pipelines_url(&self, job: &str) -> String {
        format!(
            "https://{DEVOPS_HOST}/octo-org/0000aaaa-0000-4000-8000-00000000beef/_apis/distributedtask/hubs/build/plans/plan-{job}/jobs/{job}/oidctoken"
        )
    }

    /// Tokens issued so far, in order.
    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }

    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }

    pub fn requests(&self) -> Vec<Req> {
        self.server.requests()
    }
}

fn bearer_job(req: &Req, state: &Mutex<State>) -> Option<Job> {
    let bearer = req.header("authorization")?.strip_prefix("Bearer ")?;
    state
        .lock()
        .unwrap()
        .jobs
        .iter()
        .find(|j| j.bearer == bearer)
        .cloned()
}

/// The mode for this request: a throttle counts itself down.
fn mode(state: &Mutex<State>) -> OidcMode {
    let mut s = state.lock().unwrap();
    let mode = s.mode.clone();
    if let OidcMode::Throttle { retry_after, times } = mode {
        s.mode = if times > 1 {
            OidcMode::Throttle {
                retry_after,
                times: times - 1,
            }
        } else {
            OidcMode::Normal
        };
    }
    mode
}

fn failed(mode: &OidcMode) -> Option<Resp> {
    match mode {
        OidcMode::Fail(status) => Some(Resp::json(
            *status,
            &json!({"message": "The service is temporarily unavailable.", "typeKey": "ServiceUnavailable"}),
        )),
        OidcMode::Throttle { retry_after, .. } => Some(
            Resp::json(429, &json!({"message": "Too many requests."}))
                .header("retry-after", &retry_after.to_string()),
        ),
        OidcMode::Normal | OidcMode::Expired => None,
    }
}

fn token(state: &Mutex<State>, mode: &OidcMode, claims: serde_json::Value) -> String {
    let now = jwt::now();
    let (iat, exp) = match mode {
        OidcMode::Expired => (now - 660, now - 60),
        _ => (now, now + 300),
    };
    let mut claims = claims;
    claims["iat"] = json!(iat);
    claims["nbf"] = json!(iat);
    claims["exp"] = json!(exp);
    claims["jti"] = json!(format!("jti-{}", jwt::unique()));
    let token = jwt::make(
        &json!({"alg": "RS256", "typ": "JWT", "kid": "fake-ci-key"}),
        &claims,
    );
    state.lock().unwrap().issued.push(token.clone());
    token
}

fn github(req: &Req, state: &Mutex<State>) -> Resp {
    if req.method != "GET" || !req.path.ends_with("/idtoken") {
        return Resp::json(404, &json!({"message": "Not found"}));
    }
    let Some(job) = bearer_job(req, state) else {
        return Resp::json(401, &json!({"message": "Bad credentials"}));
    };
    if req.query_param("api-version").as_deref() != Some("2.0") {
        return Resp::json(400, &json!({"message": "api-version 2.0 is required"}));
    }
    let mode = mode(state);
    if let Some(resp) = failed(&mode) {
        return resp;
    }
    // Without `audience` GitHub names the repository owner's URL.
    let audience = req
        .query_param("audience")
        .unwrap_or_else(|| "https://github.com/octo-org".into());
    let repository = job
        .subject
        .strip_prefix("repo:")
        .and_then(|s| s.split(':').next())
        .unwrap_or("octo-org/app")
        .to_string();
    let value = token(
        state,
        &mode,
        json!({
            "iss": GITHUB_ISSUER,
            "sub": job.subject,
            "aud": audience,
            "repository": repository,
            "repository_owner": "octo-org",
            "ref": "refs/heads/main",
            "runner_environment": "self-hosted",
        }),
    );
    Resp::json(200, &json!({"count": 1, "value": value}))
}

fn pipelines(req: &Req, state: &Mutex<State>) -> Resp {
    if req.method != "POST" || !req.path.ends_with("/oidctoken") {
        return Resp::json(404, &json!({"message": "Not found"}));
    }
    // Without this header Azure DevOps answers a sign-in redirect instead of a 401.
    if req.header("x-tfs-fedauthredirect") != Some("Suppress") {
        return Resp::new(302).header(
            "location",
            "https://spsprodweus5.vssps.visualstudio.com/_signin",
        );
    }
    let Some(job) = bearer_job(req, state) else {
        return Resp::json(
            401,
            &json!({"message": "TF400813: The user is not authorized to access this resource."}),
        );
    };
    if req.query_param("api-version").as_deref() != Some("7.1") {
        return Resp::json(
            400,
            &json!({"message": "The requested REST API version is not supported."}),
        );
    }
    let connection = req.query_param("serviceConnectionId").unwrap_or_default();
    if connection != job.connection || connection.is_empty() {
        return Resp::json(
            404,
            &json!({"message": format!("Service connection {connection} not found or the pipeline is not authorized to use it.")}),
        );
    }
    let mode = mode(state);
    if let Some(resp) = failed(&mode) {
        return resp;
    }
    let value = token(
        state,
        &mode,
        json!({
            "iss": format!("https://vstoken.dev.azure.com/{DEVOPS_ORG_ID}"),
            "sub": job.subject,
            "aud": EXCHANGE_AUDIENCE,
        }),
    );
    Resp::json(200, &json!({"oidcToken": value}))
}
