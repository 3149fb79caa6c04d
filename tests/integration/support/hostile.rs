//! Hostile and scripted parties for the tests: a catch-all HTTP proxy that records every
//! host the helper tries to reach, scripted Entra and registry fakes whose answers a test
//! writes as closures (redirects, garbage, oversized or trickled bodies), and checks that
//! no secret appears in text the helper printed.

use std::sync::Arc;

use serde_json::json;

use super::http::{Req, Resp, Server};
use super::{jwt, tls};

/// A plain-HTTP proxy for `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`: every request the
/// helper sends to a non-loopback host arrives here first (as `CONNECT host:port` for
/// https), is recorded and refused with 403. A name the helper never contacts never
/// shows up, whatever DNS would have said about it.
pub struct CatchAllProxy {
    pub server: Server,
}

impl CatchAllProxy {
    pub fn start() -> CatchAllProxy {
        CatchAllProxy {
            server: Server::start(None, |_| Resp::text(403, "no")),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// Targets asked for so far: `host:port` of a CONNECT, or the absolute URL.
    pub fn targets(&self) -> Vec<String> {
        self.server
            .requests()
            .into_iter()
            .map(|r| {
                if r.query.is_empty() {
                    r.path
                } else {
                    format!("{}?{}", r.path, r.query)
                }
            })
            .collect()
    }

    pub fn connections(&self) -> usize {
        self.server.connection_count()
    }
}

/// The host of a proxy target (`host:port` or `scheme://host[:port]/…`), lower-cased,
/// without port.
pub fn target_host(target: &str) -> String {
    let rest = target
        .split_once("://")
        .map_or(target, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let host = if rest.starts_with('[') {
        rest.split_inclusive(']').next().unwrap_or(rest)
    } else {
        rest.rsplit_once(':').map_or(rest, |(h, _)| h)
    };
    host.to_ascii_lowercase()
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

/// An HTTPS server (test CA) answering with `handler`: an Entra, registry or redirect
/// target whose every answer the test decides.
pub fn scripted(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Server {
    Server::start(Some(tls::server_config()), handler)
}

/// `https://localhost:PORT`, the authority of a scripted Entra.
pub fn authority(server: &Server) -> String {
    format!("https://localhost:{}", server.port())
}

/// A normal Entra client-credentials answer: an access token for the requested scope.
pub fn entra_ok(req: &Req) -> Resp {
    let scope = req.form_value("scope").unwrap_or_default();
    let aud = jwt::audience_for_scope(scope.split(' ').next().unwrap_or_default());
    let tenant = req
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let client = req.form_value("client_id").unwrap_or_default();
    let token = jwt::entra_access_token(&aud, &tenant, "oid-hardening", &client);
    Resp::json(
        200,
        &json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
    )
}

/// A registry named `host` that answers `/v2/` with ACR's challenge (or `v2` when given)
/// and `/oauth2/exchange` with `exchange`.
pub fn scripted_acr(
    host: &str,
    v2: Option<Arc<Handler>>,
    exchange: impl Fn(&Req) -> Resp + Send + Sync + 'static,
) -> Server {
    let host = host.to_string();
    scripted(move |req| match req.path.as_str() {
        "/v2/" | "/v2" => match &v2 {
            Some(h) => h(req),
            None => Resp::json(401, &json!({"errors": [{"code": "UNAUTHORIZED"}]})).header(
                "www-authenticate",
                &format!(r#"Bearer realm="https://{host}/oauth2/token",service="{host}""#),
            ),
        },
        "/oauth2/exchange" => exchange(req),
        _ => Resp::text(404, "not found"),
    })
}

/// A 3xx with a `Location`.
pub fn redirect(status: u16, to: &str) -> Resp {
    Resp::new(status).header("location", to).body("")
}

/// Panic with `context` if any of `secrets` occurs in `text`.
pub fn assert_no_secret(text: &str, secrets: &[String], context: &str) {
    for s in secrets {
        assert!(
            s.len() < 8 || !text.contains(s.as_str()),
            "secret `{}…` leaked in {context}: {text}",
            &s[..8.min(s.len())]
        );
        // A secret must not leak piecemeal either: its JWT payload part alone is enough
        // to replay claims.
        if let Some(payload) = s.split('.').nth(1).filter(|p| p.len() > 20) {
            assert!(
                !text.contains(payload),
                "a token's payload leaked in {context}: {text}"
            );
        }
    }
}
