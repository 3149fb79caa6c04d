//! The exchange itself — exact form fields, tenant precedence (config >
//! `AZURE_TENANT_ID` > the token's `tid`), the ARM-audience fallback after a 401 and
//! the config's `audience` override.

use crate::support::identity::MI_TENANT;
use crate::support::world::TENANT;
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";

#[test]
fn exchange_form_fields_are_exact() {
    let w = World::start(HOST);
    let (entra, acr) = (&w.entra, &w.acr);
    let out = w.get().run();
    out.assert_answer(HOST, &acr.issued()[0]);
    let exchanges = acr.exchanges();
    assert_eq!(exchanges.len(), 1);
    let ex = &exchanges[0];
    assert_eq!(ex.req.method, "POST");
    assert_eq!(ex.req.path, "/oauth2/exchange");
    assert_eq!(ex.req.query, "", "nothing in the query string");
    assert!(
        ex.req
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded")),
        "{:?}",
        ex.req.headers
    );
    let mut keys: Vec<&str> = ex.form.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["access_token", "grant_type", "service", "tenant"],
        "exactly these fields"
    );
    assert_eq!(ex.get("grant_type"), Some("access_token"));
    assert_eq!(ex.get("service"), Some(HOST));
    assert_eq!(ex.get("tenant"), Some(TENANT));
    assert_eq!(ex.get("access_token"), Some(entra.issued()[0].as_str()));
    assert_eq!(ex.audience(), ACR_AUDIENCE);
    assert_eq!(
        ex.req.header("authorization"),
        None,
        "the exchange carries no other credential"
    );
    // The challenge request carries no credentials either.
    let v2: Vec<_> = acr
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v2/")
        .collect();
    assert_eq!(v2.len(), 1);
    assert_eq!(v2[0].method, "GET");
    assert_eq!(v2[0].header("authorization"), None);
}

/// App Service managed identity: its token's `tid` is MI_TENANT, so the exchange's tenant
/// shows which source won.
fn mi_get(env: &TestEnv, msi: &FakeAppService, acr: &FakeAcr) -> env::Helper {
    env.get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
        .env("IDENTITY_ENDPOINT", msi.endpoint())
        .env("IDENTITY_HEADER", &msi.secret)
        .connect_to(&acr.connect_to())
}

#[test]
fn tenant_falls_back_to_the_token_tid() {
    let env = TestEnv::new();
    let msi = FakeAppService::start();
    let acr = FakeAcr::start(HOST);
    let out = mi_get(&env, &msi, &acr).run();
    out.assert_answer(HOST, &acr.issued()[0]);
    assert_eq!(acr.exchanges()[0].get("tenant"), Some(MI_TENANT));
}

#[test]
fn tenant_from_azure_tenant_id_beats_tid() {
    let env = TestEnv::new();
    let msi = FakeAppService::start();
    let acr = FakeAcr::start(HOST);
    let out = mi_get(&env, &msi, &acr)
        .env("AZURE_TENANT_ID", "env-tenant-0002")
        .run();
    out.assert_answer(HOST, &acr.issued()[0]);
    assert_eq!(acr.exchanges()[0].get("tenant"), Some("env-tenant-0002"));
}

#[test]
fn tenant_from_config_beats_azure_tenant_id() {
    let env = TestEnv::new();
    let msi = FakeAppService::start();
    let acr = FakeAcr::start(HOST);
    let config = env.write(
        "config.json",
        serde_json::json!({"registries": {HOST: {"credential": "managed-identity", "tenant_id": "config-tenant-0003"}}})
            .to_string(),
    );
    let out = mi_get(&env, &msi, &acr)
        .env("AZURE_TENANT_ID", "env-tenant-0002")
        .env("ACR_ENTRA_CONFIG", config.display().to_string())
        .run();
    out.assert_answer(HOST, &acr.issued()[0]);
    assert_eq!(acr.exchanges()[0].get("tenant"), Some("config-tenant-0003"));
}

#[test]
fn arm_audience_fallback_after_401() {
    let w = World::start(HOST);
    let (entra, acr) = (&w.entra, &w.acr);
    acr.reject_audience(ACR_AUDIENCE);
    let out = w.get().run();
    let scopes: Vec<String> = entra
        .token_requests()
        .iter()
        .map(|r| r.scope().to_string())
        .collect();
    assert_eq!(
        scopes,
        [ACR_SCOPE, ARM_SCOPE],
        "ACR audience first, then ARM once: {out:?}"
    );
    let exchanges = acr.exchanges();
    assert_eq!(exchanges.len(), 2);
    assert_eq!(exchanges[0].audience(), ACR_AUDIENCE);
    assert_eq!(exchanges[1].audience(), ARM_AUDIENCE);
    assert_eq!(
        exchanges[1].get("access_token"),
        Some(entra.issued()[1].as_str())
    );
    assert_eq!(acr.issued().len(), 1);
    out.assert_answer(HOST, &acr.issued()[0]);
}

#[test]
fn arm_audience_fallback_is_remembered() {
    let w = World::start(HOST);
    let (entra, acr) = (&w.entra, &w.acr);
    acr.reject_audience(ACR_AUDIENCE);
    let run = || {
        w.get()
            // Longer than the refresh token lives: the second get must mint again.
            .env("ACR_ENTRA_MIN_TTL", "86400")
            .run()
    };
    let first = run();
    assert_eq!(first.code, Some(0), "{first:?}");
    let second = run();
    second.assert_answer(HOST, acr.issued().last().unwrap());
    let scopes: Vec<String> = entra
        .token_requests()
        .iter()
        .map(|r| r.scope().to_string())
        .collect();
    assert_eq!(scopes, [ACR_SCOPE, ARM_SCOPE], "the ARM token is shared");
    let audiences: Vec<String> = acr.exchanges().iter().map(|e| e.audience()).collect();
    assert_eq!(
        audiences,
        [ACR_AUDIENCE, ARM_AUDIENCE, ARM_AUDIENCE],
        "the second mint goes straight to the audience that worked"
    );
}

#[test]
fn both_audiences_rejected_is_a_loud_error() {
    let w = World::start(HOST);
    let (entra, acr) = (&w.entra, &w.acr);
    acr.reject_audience(ACR_AUDIENCE);
    acr.reject_audience(ARM_AUDIENCE);
    let out = w.get().run();
    let line = out.assert_loud_error();
    // The line a client shows must say whom the registry refused and both ways out: a
    // role for that identity, or naming the identity that serves the registry.
    for part in [
        "does not accept the identity client:",
        "(client-secret, ",
        "AcrPull/AcrPush",
        "Container Registry Repository Reader",
        "(\"credential\", \"client_id\")",
    ] {
        assert!(line.contains(part), "missing `{part}`: {line}");
    }
    assert_eq!(acr.exchange_count(), 2, "one retry, no more");
    assert_eq!(entra.request_count(), 2);
}

#[test]
fn config_audience_arm_forces_arm_first() {
    let w = World::start(HOST).auto();
    let (env, entra, acr) = (&w.env, &w.entra, &w.acr);
    let config = env.write(
        "config.json",
        serde_json::json!({"registries": {HOST: {"credential": "client-secret", "audience": "arm"}}}).to_string(),
    );
    let out = w
        .get()
        .env("ACR_ENTRA_CONFIG", config.display().to_string())
        .run();
    out.assert_answer(HOST, &acr.issued()[0]);
    let scopes: Vec<String> = entra
        .token_requests()
        .iter()
        .map(|r| r.scope().to_string())
        .collect();
    assert_eq!(scopes, [ARM_SCOPE]);
    assert_eq!(acr.exchanges()[0].audience(), ARM_AUDIENCE);
}

#[test]
fn config_audience_arm_with_azure_cli_asks_az_for_arm() {
    let env = TestEnv::new();
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let acr = FakeAcr::start(HOST);
    let config = env.write(
        "config.json",
        serde_json::json!({"registries": {HOST: {"credential": "azure-cli", "audience": "arm"}}})
            .to_string(),
    );
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CONFIG", config.display().to_string())
        .connect_to(&acr.connect_to())
        .run();
    out.assert_answer(HOST, &acr.issued()[0]);
    assert_eq!(az.scopes(), [ARM_SCOPE]);
    assert_eq!(
        acr.exchanges()[0].get("access_token"),
        Some(az.arm_token.as_str())
    );
}

#[test]
fn sovereign_hosts_fall_back_to_their_clouds_arm_scope() {
    for (host, arm_scope) in [
        (
            "fabrikam.azurecr.cn",
            "https://management.chinacloudapi.cn/.default",
        ),
        (
            "contoso.azurecr.us",
            "https://management.usgovcloudapi.net/.default",
        ),
    ] {
        let w = World::start(host);
        let (entra, acr) = (&w.entra, &w.acr);
        acr.reject_audience(ACR_AUDIENCE);
        let out = w.get().run();
        out.assert_answer(host, acr.issued().first().map_or("<none>", |s| s.as_str()));
        let scopes: Vec<String> = entra
            .token_requests()
            .iter()
            .map(|r| r.scope().to_string())
            .collect();
        assert_eq!(scopes, [ACR_SCOPE, arm_scope], "{host}");
        assert_eq!(acr.exchanges()[1].get("service"), Some(host));
    }
}

#[test]
fn realm_on_a_non_acr_host_is_refused() {
    let w = World::start(HOST).with_registry("evil.example");
    let (acr, evil) = (&w.acr, w.registry("evil.example"));
    acr.set_realm("https://evil.example/oauth2/token");
    let out = w.get().run();
    out.assert_loud_error();
    assert_eq!(
        evil.server.connection_count(),
        0,
        "no token goes to the foreign realm"
    );
    assert_eq!(acr.exchange_count(), 0);
}

#[test]
fn realm_over_plain_http_is_refused() {
    let w = World::start(HOST);
    let acr = &w.acr;
    let plain = http::Server::start(None, |_| {
        http::Resp::json(200, &serde_json::json!({"refresh_token": "x.y.z"}))
    });
    acr.set_realm("http://myacr.azurecr.io/oauth2/token");
    let out = w
        .get()
        .connect_to(&format!("{HOST}:80:127.0.0.1:{}", plain.port()))
        .run();
    out.assert_loud_error();
    assert_eq!(plain.connection_count(), 0, "no token over plain http");
    assert_eq!(acr.exchange_count(), 0);
}

#[test]
fn realm_on_another_acr_host_and_challenge_service_are_used() {
    let w = World::start(HOST).with_registry("other.azurecr.io");
    let (acr, token_service) = (&w.acr, w.registry("other.azurecr.io"));
    acr.set_realm("https://other.azurecr.io/oauth2/token");
    acr.set_service("myacr-service.example");
    token_service.set_service("myacr-service.example");
    let out = w.get().run();
    out.assert_answer(
        HOST,
        token_service
            .issued()
            .first()
            .map_or("<none>", |s| s.as_str()),
    );
    assert_eq!(acr.exchange_count(), 0);
    let ex = &token_service.exchanges()[0];
    assert_eq!(ex.get("service"), Some("myacr-service.example"));
    assert_eq!(ex.get("tenant"), Some(TENANT));
}
