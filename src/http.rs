//! The one HTTP stack: a `ureq` agent with rustls, the system trust roots (honouring
//! `SSL_CERT_FILE`/`SSL_CERT_DIR`), no redirects, bounded connect and total timeouts,
//! and `ACR_ENTRA_CONNECT_TO` overrides. The same agent serves the registry challenge,
//! ACR's exchange and, through `AzureTransport`, every `azure_identity` credential, so
//! the binary carries one TLS stack and no tokio. Built only when a mint needs it: the
//! cache-hit and not-found paths never initialise TLS.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::config::{ConnectTo, Settings};
use crate::error::{Error, Party, Result};
use crate::throttle::{Patience, Throttled, Wait, is_throttled};

/// Most bytes read from any answer: tokens and error bodies are a few KiB.
pub const MAX_BODY: u64 = 1024 * 1024;

/// The longest a connection attempt may take, whatever the total timeout.
const MAX_CONNECT: Duration = Duration::from_secs(5);

/// `Debug` shows the method, the URL without its query, header names and the body's
/// length: bodies carry client secrets, assertions and Entra tokens, and headers the
/// managed-identity header secret.
#[derive(Clone)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    pub fn get(url: impl Into<String>) -> HttpRequest {
        HttpRequest {
            method: "GET",
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn post_form(url: impl Into<String>, body: String) -> HttpRequest {
        HttpRequest {
            method: "POST",
            url: url.into(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: Some(body.into_bytes()),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> HttpRequest {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// `Debug` shows the status, header names and the body's length: bodies carry tokens.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &strip_query(&self.url))
            .field("headers", &header_names(&self.headers))
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &header_names(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

fn header_names(headers: &[(String, String)]) -> Vec<&str> {
    headers.iter().map(|(k, _)| k.as_str()).collect()
}

impl HttpResponse {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing listening, connect timeout: the request was not sent.
    Connect,
    /// The host name does not resolve (DNS): a typo'd or deleted name, or no DNS.
    NotResolved,
    Timeout,
    /// The certificate or handshake failed: retrying will not help.
    Tls,
    /// The service answered 429 or 503 and the wait did not fit (`send_patiently`).
    Throttled(Throttled),
    Other,
}

#[derive(Debug)]
pub struct HttpError {
    pub failure: Failure,
    pub message: String,
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Error {
        Error::network(e.message, e.failure == Failure::Tls)
    }
}

/// Agents for remote hosts (proxies from the environment) and for what never goes
/// through a proxy: loopback, the link-local metadata service, any plain-http URL (a
/// managed-identity endpoint's header secret and token must not cross a proxy in clear
/// text), and hosts that `ACR_ENTRA_CONNECT_TO` maps (a proxy would resolve the name
/// itself and silently reach the public endpoint instead of the private one).
#[derive(Clone)]
pub struct Http {
    remote: ureq::Agent,
    local: ureq::Agent,
    connect_to: Arc<Vec<ConnectTo>>,
    timeout: Duration,
    wait: Wait,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Http {
    pub fn new(settings: &Settings) -> Http {
        Http::with_timeout(settings, settings.timeout)
    }

    pub fn with_timeout(settings: &Settings, timeout: Duration) -> Http {
        let build = |proxy: bool| {
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build();
            let mut config = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(timeout))
                .timeout_connect(Some(timeout.min(MAX_CONNECT)))
                .user_agent(concat!("acr-entra/", env!("CARGO_PKG_VERSION")))
                .tls_config(tls);
            if !proxy {
                config = config.proxy(None);
            }
            ureq::Agent::with_parts(
                config.build(),
                DefaultConnector::default(),
                ConnectToResolver {
                    overrides: Arc::new(settings.connect_to.clone()),
                    inner: DefaultResolver::default(),
                },
            )
        };
        Http {
            remote: build(true),
            local: build(false),
            connect_to: Arc::new(settings.connect_to.clone()),
            timeout,
            wait: Wait::Patient,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same agent (and connections) with another `Wait`.
    pub fn waiting(&self, wait: Wait) -> Http {
        Http {
            wait,
            ..self.clone()
        }
    }

    /// `send`, waiting out 429 and 503 answers while the waits fit in the budget
    /// (`throttle`). A request that is still throttled fails with `Failure::Throttled`.
    pub fn send_patiently(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut patience = Patience::new(self.timeout, self.wait);
        loop {
            let left = patience.attempt();
            let response = self.send_within(request, left)?;
            if !is_throttled(response.status) {
                return Ok(response);
            }
            let wait = patience
                .after(response.status, response.header("retry-after"))
                .map_err(|facts| throttled(request, response.status, facts))?;
            crate::debug!(
                "`{}` answered {}; retrying in {} ms",
                strip_query(&request.url),
                response.status,
                wait.as_millis()
            );
            std::thread::sleep(wait);
        }
    }

    /// Send one request and read the whole answer (at most `MAX_BODY` bytes).
    pub fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        self.send_within(request, self.timeout)
    }

    /// `send`, with at most `limit` (when shorter than the agent's timeout) for the whole
    /// request: a retry gets only what is left of its budget.
    pub fn send_within(
        &self,
        request: &HttpRequest,
        limit: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let uri: ureq::http::Uri = request.url.parse().map_err(|_| HttpError {
            failure: Failure::Other,
            message: format!("`{}` is not a valid URL", strip_query(&request.url)),
        })?;
        let direct = uri.scheme_str() != Some("https")
            || uri.host().is_some_and(bypasses_proxy)
            || find_rule(&self.connect_to, &uri).is_some();
        let agent = if direct { &self.local } else { &self.remote };
        let mut builder = ureq::http::Request::builder()
            .method(request.method)
            .uri(uri);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let limit = (limit < self.timeout).then(|| limit.max(Duration::from_millis(1)));
        let result = match &request.body {
            Some(body) => builder
                .body(body.clone())
                .map_err(|e| other(&request.url, &e))
                .and_then(|r| run(agent, r, limit).map_err(|e| map_error(&request.url, &e))),
            None => builder
                .body(())
                .map_err(|e| other(&request.url, &e))
                .and_then(|r| run(agent, r, limit).map_err(|e| map_error(&request.url, &e))),
        };
        let mut response = result?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| map_error(&request.url, &e))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// Run `request` on `agent`, within `limit` when one is given.
fn run<S: ureq::AsSendBody>(
    agent: &ureq::Agent,
    request: ureq::http::Request<S>,
    limit: Option<Duration>,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    match limit {
        None => agent.run(request),
        Some(limit) => agent.run(
            agent
                .configure_request(request)
                .timeout_global(Some(limit))
                .build(),
        ),
    }
}

fn throttled(request: &HttpRequest, status: u16, facts: Throttled) -> HttpError {
    let meaning = if status == 429 {
        "too many requests"
    } else {
        "service unavailable"
    };
    HttpError {
        failure: Failure::Throttled(facts),
        message: format!(
            "`{}` answered {status} ({meaning})",
            strip_query(&request.url)
        ),
    }
}

impl HttpError {
    /// The error as `party`'s: a throttled answer keeps its facts.
    pub fn into_error(self, party: Party) -> Error {
        match self.failure {
            Failure::Throttled(facts) => Error::Throttled {
                party,
                message: self.message,
                facts,
            },
            failure => Error::network(self.message, failure == Failure::Tls),
        }
    }
}

/// Loopback and the instance metadata address never go through a proxy.
fn bypasses_proxy(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host == "169.254.169.254"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A URL for messages: scheme, host and path, never the query (it may carry secrets).
pub fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

fn other(url: &str, e: &dyn std::fmt::Display) -> HttpError {
    HttpError {
        failure: Failure::Other,
        message: format!("request to `{}` failed: {e}", strip_query(url)),
    }
}

fn map_error(url: &str, e: &ureq::Error) -> HttpError {
    let url = strip_query(url);
    let (failure, message) = match e {
        ureq::Error::Timeout(_) => (Failure::Timeout, format!("`{url}` did not answer in time")),
        ureq::Error::HostNotFound => (
            Failure::NotResolved,
            format!(
                "`{}` does not resolve",
                url.parse::<ureq::http::Uri>()
                    .ok()
                    .and_then(|u| u.host().map(str::to_string))
                    .unwrap_or_else(|| url.to_string())
            ),
        ),
        ureq::Error::ConnectionFailed => (Failure::Connect, format!("cannot connect to `{url}`")),
        ureq::Error::Io(io) if matches!(io.kind(), std::io::ErrorKind::ConnectionRefused) => (
            Failure::Connect,
            format!("cannot connect to `{url}`: connection refused"),
        ),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => (
            Failure::Tls,
            format!("TLS with `{url}` failed: {io} (is the CA trusted? set SSL_CERT_FILE)"),
        ),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            (Failure::Timeout, format!("`{url}` did not answer in time"))
        }
        ureq::Error::Rustls(tls) => (
            Failure::Tls,
            format!("TLS with `{url}` failed: {tls} (is the CA trusted? set SSL_CERT_FILE)"),
        ),
        ureq::Error::BodyExceedsLimit(_) => (
            Failure::Other,
            format!("the answer from `{url}` is larger than {MAX_BODY} bytes"),
        ),
        other => (
            Failure::Other,
            format!("request to `{url}` failed: {other}"),
        ),
    };
    HttpError { failure, message }
}

/// Resolves `ACR_ENTRA_CONNECT_TO` overrides, everything else as usual.
#[derive(Debug)]
struct ConnectToResolver {
    overrides: Arc<Vec<ConnectTo>>,
    inner: DefaultResolver,
}

impl Resolver for ConnectToResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(rule) = find_rule(&self.overrides, uri) {
            let mut out = self.empty();
            let addrs: Vec<SocketAddr> = rule
                .target
                .to_socket_addrs()
                .map_err(|_| ureq::Error::HostNotFound)?
                .collect();
            for addr in addrs.into_iter().take(16) {
                out.push(addr);
            }
            if out.is_empty() {
                return Err(ureq::Error::HostNotFound);
            }
            return Ok(out);
        }
        if uri.host().is_some_and(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_err()
        }) {
            static_build_can_resolve()?;
        }
        // The system resolver's failures (`failed to lookup address information`) come
        // back as plain I/O errors; they mean the name does not resolve.
        self.inner
            .resolve(uri, config, timeout)
            .map_err(|e| match e {
                ureq::Error::Io(io) if io.kind() != std::io::ErrorKind::TimedOut => {
                    ureq::Error::HostNotFound
                }
                other => other,
            })
    }
}

/// Whether the running binary links glibc statically. Only the binary crate is built with
/// `+crt-static` (see `.cargo/config.toml`), so `main` says so through
/// `set_statically_linked`; the library cannot see it in its own `cfg`.
static STATICALLY_LINKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_statically_linked(yes: bool) {
    STATICALLY_LINKED.store(yes, std::sync::atomic::Ordering::Relaxed);
}

/// What `main` said, for `version`.
pub fn statically_linked() -> bool {
    STATICALLY_LINKED.load(std::sync::atomic::Ordering::Relaxed)
}

/// A statically linked glibc still loads, at run time, the NSS modules that
/// `/etc/nsswitch.conf` names for `hosts:` (`mdns4_minimal`, `resolve`, `myhostname`…);
/// built for the shared libc, they crash a static process. Only `files` and `dns` are
/// part of glibc itself (2.34 and later), so the static build resolves names only when
/// those are all the line names, and otherwise says so in one line instead of crashing.
/// The default (dynamically linked) build has no such limit.
fn static_build_can_resolve() -> Result<(), ureq::Error> {
    if !STATICALLY_LINKED.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let text = crate::files::read_user_file(std::path::Path::new("/etc/nsswitch.conf"), 64 * 1024)
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let modules = text
        .lines()
        .filter_map(|l| l.split('#').next()?.trim().strip_prefix("hosts:"))
        .flat_map(str::split_whitespace)
        .filter(|w| !w.starts_with('['));
    match modules.into_iter().find(|m| !matches!(*m, "files" | "dns")) {
        None => Ok(()),
        Some(module) => Err(ureq::Error::Io(std::io::Error::other(format!(
            "this statically linked build cannot resolve host names through the NSS module `{}` that /etc/nsswitch.conf lists for hosts (glibc would load it and crash); install the default build (./install.sh without --static)",
            crate::error::one_line(module)
        )))),
    }
}

/// The `ACR_ENTRA_CONNECT_TO` rule for `uri`'s host and port, if any.
fn find_rule<'a>(rules: &'a [ConnectTo], uri: &ureq::http::Uri) -> Option<&'a ConnectTo> {
    let host = uri.host().unwrap_or_default().to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("http") => 80,
        _ => 443,
    });
    rules.iter().find(|r| r.host == host && r.port == port)
}

/// Run a blocking request (throttled answers waited out, `send_patiently`) on its own
/// short-lived thread and await it, so a deadline around the future can always fire
/// (`azure_core` drives its policies as futures).
pub async fn send_async(http: Http, request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(http.send_patiently(&request));
    });
    rx.await.unwrap_or_else(|_| {
        Err(HttpError {
            failure: Failure::Other,
            message: "the request thread stopped without an answer".into(),
        })
    })
}

/// The one agent of the process (the IMDS probe alone has its own, with a 1 s timeout):
/// every mint, challenge and token request shares its TLS roots and connections.
pub fn shared(settings: &Settings) -> Http {
    static HTTP: OnceLock<Http> = OnceLock::new();
    HTTP.get_or_init(|| Http::new(settings)).clone()
}
