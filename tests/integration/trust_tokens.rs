//! Where tokens may go, tried as a hostile pod, registry or proxy would: two pods that
//! name the same client id, a custom domain that refuses the ACR audience, a plain-http
//! realm, an `exp` that overflows, a mint slower than the lock wait, a dry-run diff of a
//! config full of secrets, no arguments at all, and proxies in front of a managed-identity
//! endpoint or a `ACR_ENTRA_CONNECT_TO` mapping. Each test fails on a build without the
//! fix it names.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::json;

use crate::support::hostile::{CatchAllProxy, authority, entra_ok, scripted, scripted_acr};
use crate::support::http::{Req, Resp, Server};
use crate::support::subcommands::{go_duration, kubelet_request, kubelet_response};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const CLIENT: &str = "eeeeeeee-2222-4444-8888-333333333333";
const SECRET: &str = "trust-tokens-client-secret";
const TENANT: &str = "tenant-trust-tokens";
const CLIENT_ID_ANNOTATION: &str = "kubernetes.azure.com/acr-client-id";
const TENANT_ID_ANNOTATION: &str = "kubernetes.azure.com/acr-tenant-id";

/// A service-account token as kubelet passes it.
fn sa_token(namespace: &str, name: &str) -> String {
    jwt::make(
        &json!({"alg": "RS256", "kid": "cluster-key"}),
        &json!({
            "iss": "https://oidc.example/cluster",
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
            "aud": "api://AzureADTokenExchange",
            "exp": jwt::now() + 3600,
        }),
    )
}

/// Two pods whose service accounts carry the same client-id annotation: Entra trusts
/// only pod A's service account (a federated credential for its subject). Pod B must
/// mint with its own assertion and get Entra's refusal, never A's cached token; and
/// kubelet is told not to cache either answer.
#[test]
fn pods_naming_the_same_client_id_never_share_a_token() {
    let env = TestEnv::new();
    let federated_subject = "system:serviceaccount:team-a:puller";
    let entra = scripted(move |req: &Req| {
        let assertion = req.form_value("client_assertion").unwrap_or_default();
        let (_, claims) = jwt::decode(&assertion);
        if claims["sub"] == federated_subject {
            entra_ok(req)
        } else {
            Resp::json(
                400,
                &json!({"error": "invalid_client", "error_codes": [70021],
                    "error_description": "AADSTS70021: No matching federated identity record found for presented assertion."}),
            )
        }
    });
    let acr = FakeAcr::start(HOST);
    let pod = |token: &str| {
        env.helper()
            .arg("kubelet")
            .stdin(kubelet_request(
                "myacr.azurecr.io/app:1",
                Some(token),
                &[
                    (CLIENT_ID_ANNOTATION, "shared-client-id"),
                    (TENANT_ID_ANNOTATION, TENANT),
                ],
            ))
            .env("AZURE_AUTHORITY_HOST", authority(&entra))
            .connect_to(&acr.connect_to())
            .run()
    };
    let out = pod(&sa_token("team-a", "puller"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("{}\n", kubelet_response(HOST, &acr.issued()[0], "0s"))
    );
    let out = pod(&sa_token("team-b", "intruder"));
    let line = out.subcommand_error();
    assert!(line.contains("AADSTS70021"), "{line}");
    assert!(
        !out.stdout.contains(&acr.issued()[0]),
        "pod B got pod A's token"
    );
    let assertions: Vec<String> = entra
        .requests()
        .iter()
        .filter_map(|r| r.form_value("client_assertion"))
        .collect();
    assert_eq!(assertions.len(), 2, "pod B minted with its own assertion");
    assert_eq!(
        jwt::decode(&assertions[1]).1["sub"],
        "system:serviceaccount:team-b:intruder"
    );
    // Pod A again: its own cached token, no new request.
    let out = pod(&sa_token("team-a", "puller"));
    assert_eq!(
        out.stdout,
        format!("{}\n", kubelet_response(HOST, &acr.issued()[0], "0s"))
    );
    assert_eq!(acr.exchange_count(), 1);
}

/// A listed custom domain that refuses the ACR audience gets no automatic retry with an
/// ARM token (the identity's whole management-plane access); the error says how to opt
/// in, and `"audience": "arm"` in its entry does.
#[test]
fn custom_domain_gets_no_arm_token_unless_its_entry_says_so() {
    // A listed host that is not an ACR login-server name (the test CA covers
    // `localhost`; a custom domain behaves the same).
    let w = World::localhost();
    let (env, acr) = (&w.env, &w.acr);
    let custom = acr.host();
    let custom = custom.as_str();
    acr.reject_audience(ACR_AUDIENCE);
    let get =
        |config: &serde_json::Value| w.get().env("ACR_ENTRA_CONFIG", env.config(config)).run();
    let out = get(&json!({"registries": {custom: {}}}));
    let line = out.assert_loud_error();
    assert!(line.contains(r#""audience": "arm""#), "{line}");
    let audiences: Vec<String> = acr.exchanges().iter().map(|e| e.audience()).collect();
    assert_eq!(
        audiences,
        vec![ACR_AUDIENCE.to_string()],
        "no ARM token was sent"
    );

    let out = get(&json!({"registries": {custom: {"audience": "arm"}}}));
    out.assert_answer(custom, &acr.issued()[0]);
    assert_eq!(acr.exchanges().last().unwrap().audience(), ARM_AUDIENCE);
}

/// A listed plain-http loopback registry whose challenge names an `http://` realm on
/// another host (an ACR name, even): no token goes there in plain text.
#[test]
fn plain_http_realm_only_on_a_listed_loopback_host() {
    let w = World::plain_loopback().auto();
    let (env, acr) = (&w.env, &w.acr);
    let evil = Server::start(None, |_| Resp::json(200, &json!({"refresh_token": "x"})));
    acr.set_realm("http://attacker.azurecr.io/oauth2/token");
    let host = acr.host();
    let input = format!("http://{host}");
    let out = w
        .get_with(&input)
        .env(
            "ACR_ENTRA_CONFIG",
            env.config(&json!({"registries": {&host: {"credential": "client-secret"}}})),
        )
        .connect_to(&format!("attacker.azurecr.io:80:127.0.0.1:{}", evil.port()))
        .run();
    let line = out.assert_loud_error();
    assert!(line.contains("not https"), "{line}");
    assert_eq!(evil.connection_count(), 0, "a token went over plain http");
}

/// An exchange answer whose `exp` overflows or claims eternity is cached for the
/// documented hour at most, and kubelet is told no more than that.
#[test]
fn absurd_exp_claims_are_an_hour_at_most() {
    for exp in [
        json!(i64::MIN),
        json!(i64::MAX),
        json!(1e300),
        json!(-1e300),
    ] {
        let env = TestEnv::new();
        let entra = FakeEntra::start();
        let claim = exp.clone();
        let acr = scripted_acr(HOST, None, move |_| {
            let token = jwt::make(
                &json!({"alg": "RS256"}),
                &json!({"exp": claim, "aud": HOST}),
            );
            Resp::json(200, &json!({"refresh_token": token}))
        });
        let before = jwt::now();
        let out = env
            .helper()
            .arg("kubelet")
            .stdin(kubelet_request("myacr.azurecr.io/app:1", None, &[]))
            .env("ACR_ENTRA_CREDENTIAL", "client-secret")
            .env("ACR_ENTRA_MIN_TTL", "20m")
            .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
            .connect_to(&format!("{HOST}:443:127.0.0.1:{}", acr.port()))
            .run();
        assert_eq!(out.code, Some(0), "exp {exp}: {out:?}");
        let response: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let duration = response["cacheDuration"].as_str().unwrap().to_string();
        let allowed: Vec<String> = (0..=3).map(|late| go_duration(2400 - late)).collect();
        assert!(
            allowed.contains(&duration),
            "exp {exp}: cacheDuration {duration}"
        );
        for entry in std::fs::read_dir(&env.cache).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("token-") {
                let file: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
                let expires_on = file["expires_on"].as_i64().unwrap();
                assert!(
                    expires_on <= jwt::now() + 3600 && expires_on >= before + 3600,
                    "exp {exp}: cached until {expires_on}"
                );
            }
        }
    }
}

/// With ACR_ENTRA_TIMEOUT=3 and every step taking 2.6 s, one mint (challenge, ACR
/// audience refused, ARM audience accepted) takes about 13 s. A second `get` that waits
/// for the first one's lock must outlast it and answer the same token.
#[test]
fn a_waiter_outlasts_the_slowest_legitimate_mint() {
    let env = TestEnv::new();
    let step = Duration::from_millis(2600);
    let entra = scripted(move |req| {
        thread::sleep(step);
        entra_ok(req)
    });
    let v2: Arc<dyn Fn(&Req) -> Resp + Send + Sync> = Arc::new(move |_| {
        thread::sleep(step);
        Resp::json(401, &json!({"errors": []})).header(
            "www-authenticate",
            &format!(r#"Bearer realm="https://{HOST}/oauth2/token",service="{HOST}""#),
        )
    });
    let acr = scripted_acr(HOST, Some(v2), move |req| {
        thread::sleep(step);
        let (_, claims) = jwt::decode(&req.form_value("access_token").unwrap_or_default());
        if claims["aud"] == ACR_AUDIENCE {
            return Resp::json(401, &json!({"errors": [{"code": "UNAUTHORIZED"}]}));
        }
        let token = jwt::acr_refresh_token(HOST, TENANT, CLIENT);
        Resp::json(200, &json!({"refresh_token": token}))
    });
    let run = || {
        env.get(HOST)
            .env("ACR_ENTRA_CREDENTIAL", "client-secret")
            .env("ACR_ENTRA_TIMEOUT", "3")
            .client_secret(&authority(&entra), CLIENT, SECRET, TENANT)
            .connect_to(&format!("{HOST}:443:127.0.0.1:{}", acr.port()))
    };
    let (first, second) = (run(), run());
    let a = thread::spawn(move || first.run());
    thread::sleep(Duration::from_millis(500));
    let b = thread::spawn(move || second.run());
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(a.code, Some(0), "{a:?}");
    assert_eq!(
        b.code,
        Some(0),
        "the waiter gave up before the minter finished: {b:?}"
    );
    assert_eq!(a.stdout, b.stdout);
    let exchanges = acr
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth2/exchange")
        .count();
    assert_eq!(exchanges, 2, "one mint: the ACR audience, then the ARM one");
}

/// `configure --dry-run` shows the diff with every secret-bearing value masked, in
/// changed and unchanged lines alike, and writes nothing.
#[test]
fn dry_run_diff_masks_secrets() {
    let env = TestEnv::new();
    let docker = env.path("docker");
    std::fs::create_dir(&docker).unwrap();
    let auth = "b2N0bzpnaHBfc3VwZXJzZWNyZXRwYXNzd29yZA==";
    let identity_token = "identity-token-that-must-not-print";
    let original = json!({
        "auths": {
            "ghcr.io": {"auth": auth},
            "contoso.azurecr.io": {"auth": "", "identitytoken": identity_token},
        },
        "psFormat": "table",
    })
    .to_string();
    std::fs::write(docker.join("config.json"), &original).unwrap();
    let out = env
        .helper()
        .args(&["configure", "docker", HOST, "--dry-run"])
        .env("DOCKER_CONFIG", docker.display().to_string())
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        !out.stdout.contains(auth) && !out.stdout.contains(identity_token),
        "{out:?}"
    );
    assert!(out.stdout.contains("REDACTED"), "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("+\t\t\"{HOST}\": \"acr-entra\"")),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(docker.join("config.json")).unwrap(),
        original
    );
}

/// The first thing a new user types: the binary with no arguments at all.
#[test]
fn no_arguments_is_a_usage_line_not_a_panic() {
    let env = TestEnv::new();
    let out = env.helper().run();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout_line().starts_with("no verb given"), "{out:?}");
    assert_eq!(out.stderr, "");
}

/// A managed-identity endpoint named by something other than a loopback literal (here
/// `127.1`, which only the resolver knows is loopback) is reached directly: its header
/// secret and token never cross the environment's proxy in plain text.
#[test]
fn plain_http_identity_endpoint_never_goes_through_a_proxy() {
    let env = TestEnv::new();
    let msi = FakeAppService::start();
    let acr = FakeAcr::start(HOST);
    let proxy = CatchAllProxy::start();
    let endpoint = msi.endpoint().replace("127.0.0.1", "127.1");
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
        .env("IDENTITY_ENDPOINT", &endpoint)
        .env("IDENTITY_HEADER", &msi.secret)
        .through(&proxy)
        .connect_to(&acr.connect_to())
        .run();
    assert_nothing_through(&proxy);
    out.assert_answer(HOST, &acr.issued()[0]);
    assert_eq!(msi.token_requests().len(), 1);
}

/// Under `HTTPS_PROXY`, a host that `ACR_ENTRA_CONNECT_TO` maps (a private endpoint) is
/// still reached at the mapped address, not through the proxy (which would resolve the
/// public name itself).
#[test]
fn connect_to_mapping_is_not_bypassed_by_a_proxy() {
    let w = World::start(HOST);
    let acr = &w.acr;
    let proxy = CatchAllProxy::start();
    let out = w.get().through(&proxy).run();
    assert_nothing_through(&proxy);
    out.assert_answer(HOST, &acr.issued()[0]);
}

fn assert_nothing_through(proxy: &CatchAllProxy) {
    assert_eq!(
        proxy.connections(),
        0,
        "through the proxy: {:?}",
        proxy.targets()
    );
}
