//! SPEC §8 verbs beyond the docker protocol, run against the same fakes: `token HOST
//! [--json]` for `--password-stdin` logins, and the kubelet image credential provider
//! (`credentialprovider.kubelet.k8s.io/v1`), including per-pod workload identity from a
//! service-account token and annotations.

use serde_json::{Value, json};

use crate::support::entra::ASSERTION_TYPE;
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const CLIENT: &str = "99999999-1111-2222-3333-444444444444";
const SECRET: &str = "verbs-test-secret";
const TENANT: &str = "tenant-verbs-0001";
const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";
const KUBELET_API: &str = "credentialprovider.kubelet.k8s.io/v1";

fn with_secret(h: env::Helper, entra: &FakeEntra, acr: &FakeAcr) -> env::Helper {
    h.env("ACR_ENTRA_CREDENTIAL", "client-secret")
        .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
        .connect_to(&acr.connect_to())
}

#[test]
fn token_prints_the_refresh_token_alone() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    let out = with_secret(env.helper().arg("token").arg(HOST), &entra, &acr).run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout_line(),
        acr.issued().first().map_or("<none>", |s| s.as_str())
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn token_json_matches_az_acr_login_expose_token() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    let out = with_secret(
        env.helper().arg("token").arg(HOST).arg("--json"),
        &entra,
        &acr,
    )
    .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    let value: Value = serde_json::from_str(out.stdout.trim_end())
        .unwrap_or_else(|e| panic!("--json prints JSON: {e}: {out:?}"));
    assert_eq!(
        value,
        json!({"loginServer": HOST, "accessToken": acr.issued().first().map_or("<none>", |s| s.as_str())})
    );
}

#[test]
fn token_for_a_non_acr_host_fails_without_requests() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    let out = with_secret(env.helper().arg("token").arg("ghcr.io"), &entra, &acr).run();
    assert_eq!(out.code, Some(1), "{out:?}");
    out.stdout_line();
    assert_eq!(entra.server.connection_count(), 0);
    assert_eq!(acr.server.connection_count(), 0);
}

/// Seconds in a Go duration string such as `2h44m59s` or `9859s`.
fn go_duration_secs(text: &str) -> f64 {
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = number
            .parse()
            .unwrap_or_else(|_| panic!("bad duration `{text}`"));
        number.clear();
        total += match c {
            'h' => value * 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                value / 1000.0
            }
            'm' => value * 60.0,
            's' => value,
            _ => panic!("bad duration unit in `{text}`"),
        };
    }
    assert!(number.is_empty(), "duration `{text}` lacks a unit");
    total
}

fn kubelet_request(image: &str, extra: Value) -> String {
    let mut request =
        json!({"apiVersion": KUBELET_API, "kind": "CredentialProviderRequest", "image": image});
    if let (Some(obj), Some(more)) = (request.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            obj.insert(k.clone(), v.clone());
        }
    }
    request.to_string()
}

#[test]
fn kubelet_answers_a_registry_keyed_response() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    let out = with_secret(
        env.helper().arg("kubelet").stdin(kubelet_request(
            "myacr.azurecr.io/team/app:1.2.3",
            json!({}),
        )),
        &entra,
        &acr,
    )
    .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    let response: Value = serde_json::from_str(out.stdout.trim_end())
        .unwrap_or_else(|e| panic!("a CredentialProviderResponse: {e}: {out:?}"));
    let refresh = acr.issued().first().cloned().unwrap_or_default();
    assert_eq!(response["apiVersion"], KUBELET_API);
    assert_eq!(response["kind"], "CredentialProviderResponse");
    assert_eq!(response["cacheKeyType"], "Registry");
    assert_eq!(
        response["auth"],
        json!({HOST: {"username": NULL_GUID, "password": refresh}})
    );
    let duration = go_duration_secs(response["cacheDuration"].as_str().expect("cacheDuration"));
    let exp = jwt::decode(&refresh).1["exp"].as_i64().unwrap();
    assert!(
        duration > 0.0 && duration <= (exp - jwt::now() + 5) as f64,
        "cacheDuration {duration}s must end before the token does"
    );
}

#[test]
fn kubelet_non_acr_image_gets_empty_auth_without_requests() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    let out = with_secret(
        env.helper()
            .arg("kubelet")
            .stdin(kubelet_request("docker.io/library/nginx:latest", json!({}))),
        &entra,
        &acr,
    )
    .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    let response: Value = serde_json::from_str(out.stdout.trim_end()).unwrap();
    assert_eq!(response["kind"], "CredentialProviderResponse");
    assert_eq!(response["auth"], json!({}));
    assert_eq!(entra.server.connection_count(), 0);
    assert_eq!(acr.server.connection_count(), 0);
}

#[test]
fn kubelet_service_account_token_selects_workload_identity() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    let sa_token =
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXBwOnB1bGxlciJ9.cG9kLXNpZw";
    let request = kubelet_request(
        "myacr.azurecr.io/app:1",
        json!({
            "serviceAccountToken": sa_token,
            "serviceAccountAnnotations": {
                "kubernetes.azure.com/acr-client-id": "pod-client-id",
                "kubernetes.azure.com/acr-tenant-id": "pod-tenant-id",
            },
        }),
    );
    // The node's own identity is a different service principal: the pod's must win.
    let out = with_secret(env.helper().arg("kubelet").stdin(request), &entra, &acr)
        .env_remove("ACR_ENTRA_CREDENTIAL")
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    let reqs = entra.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    assert_eq!(reqs[0].tenant, "pod-tenant-id");
    assert_eq!(reqs[0].get("client_id"), Some("pod-client-id"));
    assert_eq!(reqs[0].get("client_assertion"), Some(sa_token));
    assert_eq!(reqs[0].get("client_assertion_type"), Some(ASSERTION_TYPE));
    assert_eq!(reqs[0].get("client_secret"), None);
    assert_eq!(acr.exchanges()[0].get("tenant"), Some("pod-tenant-id"));
    let response: Value = serde_json::from_str(out.stdout.trim_end()).unwrap();
    assert_eq!(
        response["auth"][HOST]["password"],
        acr.issued().first().cloned().unwrap_or_default()
    );
}
