//! `kubelet`: the kubelet image credential provider, exact JSON both ways.
//! Non-ACR images get an empty `auth` without network; ACR images get the null GUID and
//! a refresh token with `cacheDuration` = remaining lifetime minus ACR_ENTRA_MIN_TTL;
//! a service-account token plus the acr-client-id annotation mints through
//! workload-identity federation for that pod, cached per client id and service account,
//! and answered with `cacheDuration` "0s" so kubelet never shares it between pods.

use crate::support::entra::ASSERTION_TYPE;
use crate::support::subcommands::{KUBELET_EMPTY, go_duration, kubelet_request, kubelet_response};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const CLIENT: &str = "eeeeeeee-1111-2222-3333-444444444444";
const SECRET: &str = "kubelet-node-secret";
const TENANT: &str = "tenant-kubelet-0001";
const CLIENT_ID_ANNOTATION: &str = "kubernetes.azure.com/acr-client-id";
const TENANT_ID_ANNOTATION: &str = "kubernetes.azure.com/acr-tenant-id";

/// The node's world: kubelet runs the helper as the node's own client.
fn world() -> World {
    World::start(HOST).with_client(CLIENT, SECRET, TENANT)
}

fn kubelet(w: &World, request: &str) -> env::Helper {
    w.helper()
        .arg("kubelet")
        .stdin(request)
        .env("ACR_ENTRA_MIN_TTL", "20m")
}

/// The exact response, allowing the seconds that passed since `before` (at least 3), as
/// measured here: a slow or emulated machine takes longer, never more than that.
fn assert_response(out: &Output, registry: &str, token: &str, before: i64) {
    let waited = (jwt::now() - before + 1).max(3);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
    let (_, claims) = jwt::decode(token);
    let remaining = claims["exp"].as_i64().unwrap() - before - 20 * 60;
    let candidates: Vec<String> = (0..=waited)
        .map(|late| kubelet_response(registry, token, &go_duration(remaining - late)))
        .collect();
    assert!(
        candidates.iter().any(|c| out.stdout == format!("{c}\n")),
        "stdout {:?} is none of {candidates:?}",
        out.stdout
    );
}

/// A pod identity's exact response: `cacheDuration` "0s", so kubelet keeps no copy it
/// could hand to another pod.
fn assert_pod_response(out: &Output, registry: &str, token: &str) {
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
    assert_eq!(
        out.stdout,
        format!("{}\n", kubelet_response(registry, token, "0s")),
        "{out:?}"
    );
}

#[test]
fn kubelet_non_acr_images_get_an_empty_answer_without_network() {
    let w = world();
    let (entra, acr) = (&w.entra, &w.acr);
    for image in [
        "alpine",
        "alpine:3.20",
        "docker.io/library/x",
        "ghcr.io/org/img:1",
        "myacr.azurecr.io.evil.example/img",
        "localhost:5000/img",
    ] {
        let out = kubelet(&w, &kubelet_request(image, None, &[])).run();
        assert_eq!(out.code, Some(0), "{image}: {out:?}");
        assert_eq!(out.stdout, format!("{KUBELET_EMPTY}\n"), "{image}");
        assert_eq!(out.stderr, "");
    }
    assert_eq!(entra.server.connection_count(), 0);
    assert_eq!(acr.server.connection_count(), 0);
}

#[test]
fn kubelet_acr_image_gets_the_refresh_token() {
    let w = world();
    let acr = &w.acr;
    let before = jwt::now();
    let out = kubelet(
        &w,
        &kubelet_request("myacr.azurecr.io/ns/img:tag", None, &[]),
    )
    .run();
    assert_response(&out, HOST, &acr.issued()[0], before);
    // A digest reference with an explicit port: the auth key keeps the port kubelet
    // matches on, and the token comes from the cache.
    let out = kubelet(
        &w,
        &kubelet_request(
            "myacr.azurecr.io:443/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            None,
            &[],
        ),
    )
    .run();
    assert_response(&out, "myacr.azurecr.io:443", &acr.issued()[0], before);
    assert_eq!(acr.exchange_count(), 1);
}

#[test]
fn kubelet_rejects_other_api_versions_and_kinds() {
    let env = TestEnv::new();
    for (request, want) in [
        (
            r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderRequest","image":"alpine"}"#,
            "unsupported apiVersion `credentialprovider.kubelet.k8s.io/v1beta1` (this provider speaks credentialprovider.kubelet.k8s.io/v1; set apiVersion: credentialprovider.kubelet.k8s.io/v1 in the CredentialProviderConfig)",
        ),
        (
            r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"Pod","image":"alpine"}"#,
            "unsupported kind `Pod` (expected CredentialProviderRequest)",
        ),
        (
            r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest"}"#,
            "CredentialProviderRequest has no image",
        ),
        (
            "",
            "stdin is not a JSON CredentialProviderRequest (line 1 column 0)",
        ),
    ] {
        let out = env.helper().arg("kubelet").stdin(request).run();
        assert_eq!(out.subcommand_error(), want);
    }
}

#[test]
fn kubelet_pod_identity_federates_the_service_account_token() {
    let w = world();
    let (entra, acr) = (&w.entra, &w.acr);
    let pod_a = "pod-client-aaaa";
    let pod_b = "pod-client-bbbb";
    let sa_token = jwt::make(
        &serde_json::json!({"alg": "RS256"}),
        &serde_json::json!({"iss": "https://oidc.example/cluster", "sub": "system:serviceaccount:ns:app", "aud": "api://AzureADTokenExchange"}),
    );
    let request = |client: &str| {
        kubelet_request(
            "myacr.azurecr.io/app:1",
            Some(&sa_token),
            &[
                (CLIENT_ID_ANNOTATION, client),
                (TENANT_ID_ANNOTATION, "pod-tenant-0001"),
            ],
        )
    };
    let before = jwt::now();
    let out = kubelet(&w, &request(pod_a)).run();
    assert_pod_response(&out, HOST, &acr.issued()[0]);
    let reqs = entra.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    assert_eq!(reqs[0].tenant, "pod-tenant-0001");
    assert_eq!(reqs[0].get("client_id"), Some(pod_a));
    assert_eq!(reqs[0].get("client_assertion"), Some(sa_token.as_str()));
    assert_eq!(reqs[0].get("client_assertion_type"), Some(ASSERTION_TYPE));
    assert_eq!(reqs[0].get("client_secret"), None, "not the node's secret");
    // Another pod identity: its own mint. The first again: its cached token.
    let out = kubelet(&w, &request(pod_b)).run();
    assert_pod_response(&out, HOST, &acr.issued()[1]);
    assert_eq!(entra.token_requests()[1].get("client_id"), Some(pod_b));
    let out = kubelet(&w, &request(pod_a)).run();
    assert_pod_response(&out, HOST, &acr.issued()[0]);
    assert_eq!(acr.exchange_count(), 2);
    // The node's own identity is a third cache entry.
    let out = kubelet(
        &w,
        &kubelet_request("myacr.azurecr.io/app:1", Some(&sa_token), &[]),
    )
    .run();
    assert_response(&out, HOST, &acr.issued()[2], before);
    assert_eq!(entra.token_requests()[2].get("client_id"), Some(CLIENT));
}

#[test]
fn kubelet_pod_identity_without_a_tenant_is_a_clear_error() {
    let env = TestEnv::new();
    let out = env
        .helper()
        .arg("kubelet")
        .stdin(kubelet_request(
            "myacr.azurecr.io/app:1",
            Some("sa.token.x"),
            &[(CLIENT_ID_ANNOTATION, "pod-client")],
        ))
        .run();
    assert_eq!(
        out.subcommand_error(),
        "pod identity `pod-client` for `myacr.azurecr.io` has no tenant: add the `kubernetes.azure.com/acr-tenant-id` annotation to the service account, tenant_id to the registry's config entry, or set AZURE_TENANT_ID for kubelet"
    );
}

/// Registry mirrors: an image on a mirrored upstream (config `mirrors`, or a
/// `--registry-mirror SOURCE:ACR` argument) is answered with the mirror ACR's token, keyed
/// by the upstream name kubelet matches; other images stay empty, and a rule that would
/// send a token anywhere but a token-getting registry is refused before any request.
#[test]
fn kubelet_mirrored_upstream_images_get_the_mirror_token() {
    const IMAGE: &str = "mcr.microsoft.com/dotnet/runtime:8.0";
    let w = world();
    let config = w
        .env
        .config(&serde_json::json!({"mirrors": {"mcr.microsoft.com": HOST}}));
    let before = jwt::now();
    let out = kubelet(&w, &kubelet_request(IMAGE, None, &[]))
        .env("ACR_ENTRA_CONFIG", &config)
        .run();
    assert_response(&out, "mcr.microsoft.com", &w.acr.issued()[0], before);
    assert_eq!(w.acr.exchange_count(), 1, "minted for the mirror");
    // The same as an argument, without a config file; the cached mirror token answers.
    let out = kubelet(&w, &kubelet_request(IMAGE, None, &[]))
        .arg("--registry-mirror")
        .arg(&format!("mcr.microsoft.com:{HOST}"))
        .run();
    assert_response(&out, "mcr.microsoft.com", &w.acr.issued()[0], before);
    assert_eq!(w.acr.exchange_count(), 1);
    // Not mirrored: empty, as before.
    let out = kubelet(&w, &kubelet_request("ghcr.io/org/img:1", None, &[]))
        .env("ACR_ENTRA_CONFIG", &config)
        .run();
    assert_eq!(out.stdout, format!("{KUBELET_EMPTY}\n"), "{out:?}");
}

#[test]
fn kubelet_mirror_rules_that_could_leak_a_token_are_refused() {
    let w = world();
    for (rule, want) in [
        (
            "mcr.microsoft.com:evil.example.com",
            "--registry-mirror: mirror `evil.example.com` for `mcr.microsoft.com` is neither an ACR login server nor a registry listed in the config file",
        ),
        (
            "mcr.microsoft.com:myacr.azurecr.io.evil.example",
            "--registry-mirror: mirror `myacr.azurecr.io.evil.example` for `mcr.microsoft.com` is neither an ACR login server nor a registry listed in the config file",
        ),
        (
            "other.azurecr.io:myacr.azurecr.io",
            "--registry-mirror: mirror source `other.azurecr.io` gets tokens of its own; a mirror rule is for an upstream registry such as mcr.microsoft.com",
        ),
        (
            "mcr.microsoft.com",
            "--registry-mirror `mcr.microsoft.com` is not SOURCE:ACR (e.g. mcr.microsoft.com:myacr.azurecr.io)",
        ),
    ] {
        let out = kubelet(&w, &kubelet_request("mcr.microsoft.com/a:1", None, &[]))
            .arg("--registry-mirror")
            .arg(rule)
            .run();
        assert_eq!(out.subcommand_error(), want, "{rule}");
    }
    let config = w
        .env
        .config(&serde_json::json!({"mirrors": {"mcr.microsoft.com": "evil.example.com"}}));
    let out = kubelet(&w, &kubelet_request("mcr.microsoft.com/a:1", None, &[]))
        .env("ACR_ENTRA_CONFIG", &config)
        .run();
    assert!(
        out.subcommand_error()
            .contains("mirror `evil.example.com` for `mcr.microsoft.com` is neither"),
        "{out:?}"
    );
    assert_eq!(w.entra.server.connection_count(), 0);
    assert_eq!(w.acr.server.connection_count(), 0);
}
