//! Failure paths: no redirect following, and every dead, hanging or slow
//! party (Entra, the exchange, `/v2/`, `az`) ends in one loud line on stdout, exit 1,
//! well within a generous bound with `ACR_ENTRA_TIMEOUT=2`. Also the challenge fallback
//! when `/v2/` gives no challenge.

use std::time::Duration;

use crate::support::world::SECRET;
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
/// "Did not hang": far above what two-second timeouts need, far below forever.
const BOUND: Duration = Duration::from_secs(20);

fn secret_get(w: &World) -> env::Helper {
    w.get().env("ACR_ENTRA_TIMEOUT", "2")
}

#[test]
fn exchange_redirect_is_not_followed() {
    let w = World::start(HOST);
    let acr = &w.acr;
    let elsewhere = FakeAcr::start_localhost();
    acr.set_exchange(ExchangeMode::Redirect(format!(
        "https://localhost:{}/oauth2/exchange",
        elsewhere.port()
    )));
    let out = secret_get(&w).run();
    out.assert_loud_error();
    assert_eq!(
        elsewhere.server.connection_count(),
        0,
        "the redirect target was never contacted"
    );
    assert!(acr.exchange_count() >= 1);
    out.assert_within(BOUND);
}

#[test]
fn dead_entra_fails_fast() {
    let w = World::start(HOST);
    let acr = &w.acr;
    let port = http::dead_port();
    let authority = format!("https://localhost:{port}");
    let out = secret_get(&w).env("AZURE_AUTHORITY_HOST", &authority).run();
    // A network failure says so and names the host, and does not blame the secret.
    assert_eq!(
        out.assert_loud_error(),
        format!(
            "credential `client-secret`: Entra ID could not be reached: cannot connect to \
             `https://localhost:{port}/{}/oauth2/v2.0/token`: connection refused: a network failure, \
             not a credential problem; check HTTPS_PROXY/NO_PROXY and that the firewall lets this \
             machine reach `localhost:{port}`",
            crate::support::world::TENANT
        )
    );
    assert_eq!(acr.exchange_count(), 0);
    out.assert_within(BOUND);
}

/// A registry name that does not resolve (a typo, a deleted registry, a custom domain
/// without DNS) fails at the challenge, before any Entra request, and says to check the
/// name.
#[test]
fn registry_that_does_not_resolve_fails_before_entra() {
    let w = World::start(HOST);
    // `.invalid` never resolves (RFC 2606); listed, so it is treated as ACR.
    let config = w
        .env
        .config(&serde_json::json!({"registries": {"notreal.invalid": {}}}));
    let out = w
        .get_with("notreal.invalid")
        .env("ACR_ENTRA_CONFIG", &config)
        .run();
    assert_eq!(
        out.assert_loud_error(),
        "`notreal.invalid` does not resolve: check the registry name (`az acr list --query [].loginServer`)"
    );
    assert_eq!(w.entra.request_count(), 0, "no Entra token for a typo");
    out.assert_within(BOUND);
}

#[test]
fn black_holed_entra_fails_within_bound() {
    let w = World::start(HOST);
    let acr = &w.acr;
    let black_hole = http::Server::hang_after_accept();
    let authority = format!("https://localhost:{}", black_hole.port());
    let out = secret_get(&w).env("AZURE_AUTHORITY_HOST", &authority).run();
    out.assert_loud_error();
    assert!(
        black_hole.connection_count() >= 1,
        "the helper reached the black hole: {out:?}"
    );
    assert_eq!(acr.exchange_count(), 0);
    out.assert_within(BOUND);
}

#[test]
fn hanging_entra_response_fails_within_bound() {
    let w = World::start(HOST);
    w.entra.set_mode(EntraMode::Hang);
    let (entra, acr) = (&w.entra, &w.acr);
    let out = secret_get(&w).run();
    out.assert_loud_error();
    assert!(
        entra.request_count() >= 1,
        "the request reached the fake: {out:?}"
    );
    assert_eq!(acr.exchange_count(), 0);
    out.assert_within(BOUND);
}

#[test]
fn entra_rejecting_the_secret_is_a_loud_error_with_entras_reason() {
    let w = World::start(HOST);
    w.entra.set_mode(EntraMode::Fail(401));
    let acr = &w.acr;
    let out = secret_get(&w).run();
    let line = out.assert_loud_error();
    assert!(
        line.contains("AADSTS7000215") || line.contains("invalid_client"),
        "the user needs Entra's reason: {line}"
    );
    assert!(!line.contains(SECRET));
    assert_eq!(acr.exchange_count(), 0);
    out.assert_within(BOUND);
}

#[test]
fn entra_400_and_500_are_loud_errors() {
    for status in [400, 500] {
        let w = World::start(HOST);
        w.entra.set_mode(EntraMode::Fail(status));
        let acr = &w.acr;
        let out = secret_get(&w).run();
        out.assert_loud_error();
        assert_eq!(acr.exchange_count(), 0, "{status}");
        out.assert_within(BOUND);
    }
}

#[test]
fn hanging_exchange_fails_within_bound() {
    let w = World::start(HOST);
    let acr = &w.acr;
    acr.set_exchange(ExchangeMode::Hang);
    let out = secret_get(&w).run();
    out.assert_loud_error();
    assert!(acr.exchange_count() >= 1, "{out:?}");
    out.assert_within(BOUND);
}

#[test]
fn trickling_exchange_fails_within_bound() {
    let w = World::start(HOST);
    let acr = &w.acr;
    acr.set_exchange(ExchangeMode::Trickle);
    let out = secret_get(&w).run();
    out.assert_loud_error();
    assert!(
        acr.exchange_count() >= 1,
        "the exchange was reached: {out:?}"
    );
    out.assert_within(BOUND);
}

#[test]
fn black_holed_registry_fails_within_bound() {
    let w = World::start(HOST);
    let black_hole = http::Server::hang_after_accept();
    // The only rule for HOST: the black hole stands where the registry would.
    let out = secret_get(&w)
        .env(
            "ACR_ENTRA_CONNECT_TO",
            format!("{HOST}:443:127.0.0.1:{}", black_hole.port()),
        )
        .run();
    out.assert_loud_error();
    assert!(black_hole.connection_count() >= 1, "{out:?}");
    out.assert_within(BOUND);
}

#[test]
fn hanging_v2_fails_within_bound() {
    let w = World::start(HOST);
    let acr = &w.acr;
    acr.set_v2(V2Mode::Hang);
    let out = secret_get(&w).run();
    out.assert_loud_error();
    out.assert_within(BOUND);
}

/// `/v2/` answers, but without a challenge: the helper assumes
/// `https://HOST/oauth2/exchange` and `service=HOST`.
fn assert_fallback_exchange(v2: V2Mode) {
    let w = World::start(HOST);
    let acr = &w.acr;
    acr.set_v2(v2.clone());
    let out = secret_get(&w).run();
    out.assert_answer(
        HOST,
        acr.issued().first().map_or("<none issued>", |s| s.as_str()),
    );
    let exchanges = acr.exchanges();
    assert_eq!(exchanges.len(), 1, "{v2:?}");
    assert_eq!(
        exchanges[0].get("service"),
        Some(HOST),
        "service falls back to the host"
    );
    assert_eq!(
        exchanges[0]
            .req
            .header("host")
            .map(|h| h.trim_end_matches(":443")),
        Some(HOST)
    );
}

#[test]
fn v2_200_without_challenge_falls_back_to_host_exchange() {
    assert_fallback_exchange(V2Mode::Ok);
}

#[test]
fn v2_404_without_challenge_falls_back_to_host_exchange() {
    assert_fallback_exchange(V2Mode::NotFound);
}

fn cli_get(env: &TestEnv, kind: &str, acr: &FakeAcr) -> env::Helper {
    env.get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", kind)
        .env("ACR_ENTRA_TIMEOUT", "2")
        .connect_to(&acr.connect_to())
}

#[test]
fn hanging_az_fails_within_bound() {
    let env = TestEnv::new();
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Hang);
    let acr = FakeAcr::start(HOST);
    let out = cli_get(&env, "azure-cli", &acr).run();
    out.assert_loud_error();
    assert!(!az.invocations().is_empty(), "az was run: {out:?}");
    assert_eq!(acr.exchange_count(), 0);
    assert_eq!(out.stderr, "");
    out.assert_within(BOUND);
}

#[test]
fn hanging_azd_fails_within_bound() {
    let env = TestEnv::new();
    let _azd = FakeCli::install(&env.bin, Tool::Azd, CliMode::Hang);
    let acr = FakeAcr::start(HOST);
    let out = cli_get(&env, "azd", &acr).run();
    out.assert_loud_error();
    assert_eq!(acr.exchange_count(), 0);
    out.assert_within(BOUND);
}

#[test]
fn az_not_logged_in_is_one_line_and_prints_nothing_of_az() {
    let env = TestEnv::new();
    let _az = FakeCli::install(&env.bin, Tool::Az, CliMode::Fail);
    let acr = FakeAcr::start(HOST);
    let out = cli_get(&env, "azure-cli", &acr).run();
    let line = out.assert_loud_error();
    assert!(line.contains("az login"), "the fix is `az login`: {line}");
    assert_eq!(out.stderr, "", "az's stderr is not passed through");
    assert_eq!(acr.exchange_count(), 0);
}

#[test]
fn azd_not_logged_in_is_one_line() {
    let env = TestEnv::new();
    let _azd = FakeCli::install(&env.bin, Tool::Azd, CliMode::Fail);
    let acr = FakeAcr::start(HOST);
    let out = cli_get(&env, "azd", &acr).run();
    let line = out.assert_loud_error();
    assert!(
        line.contains("azd auth login"),
        "the fix is `azd auth login`: {line}"
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn az_garbage_output_is_one_line_and_not_echoed() {
    let env = TestEnv::new();
    let _az = FakeCli::install(&env.bin, Tool::Az, CliMode::Garbage);
    let acr = FakeAcr::start(HOST);
    let out = cli_get(&env, "azure-cli", &acr).run();
    out.assert_loud_error();
    assert_eq!(out.stderr, "");
    assert_eq!(acr.exchange_count(), 0);
}

#[test]
fn missing_az_when_forced_is_one_line() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    let out = cli_get(&env, "azure-cli", &acr).run();
    out.assert_loud_error();
    assert_eq!(out.stderr, "");
    out.assert_within(BOUND);
}

#[test]
fn forced_client_secret_without_variables_names_them() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "client-secret")
        .connect_to(&acr.connect_to())
        .run();
    let line = out.assert_loud_error();
    assert!(
        line.contains("AZURE_CLIENT_SECRET") || line.contains("AZURE_CLIENT_ID"),
        "{line}"
    );
    assert_eq!(acr.exchange_count(), 0);
}

#[test]
fn unknown_credential_kind_is_one_line_error_naming_it() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "telepathy")
        .connect_to(&acr.connect_to())
        .run();
    let line = out.assert_loud_error();
    assert!(line.contains("telepathy"), "{line}");
    assert_eq!(acr.server.connection_count(), 0);
}

#[test]
fn plain_http_authority_host_is_refused_without_sending_the_secret() {
    let w = World::start(HOST);
    let plain = http::Server::start(None, |_| http::Resp::text(500, "no"));
    let authority = format!("http://localhost:{}", plain.port());
    let out = secret_get(&w).env("AZURE_AUTHORITY_HOST", &authority).run();
    let line = out.assert_loud_error();
    assert!(
        line.contains("AZURE_AUTHORITY_HOST") || line.contains("https"),
        "{line}"
    );
    assert_eq!(
        plain.request_count(),
        0,
        "the client secret never goes over plain http"
    );
}

#[test]
fn empty_variables_count_as_unset() {
    let w = World::start(HOST).auto();
    let (entra, acr) = (&w.entra, &w.acr);
    let out = w
        .get()
        .env("ACR_ENTRA_CREDENTIAL", "")
        .env("ACR_ENTRA_CONFIG", "")
        .env("ACR_ENTRA_LOG", "")
        .env("ACR_ENTRA_MIN_TTL", "")
        .env("ACR_ENTRA_TIMEOUT", "")
        .env("ACR_ENTRA_NO_CACHE", "")
        .env("AZURE_CLIENT_CERTIFICATE_PATH", "")
        .env("AZURE_FEDERATED_TOKEN_FILE", "")
        .run();
    out.assert_answer(HOST, acr.issued().first().map_or("<none>", |s| s.as_str()));
    assert_eq!(entra.token_requests()[0].get("client_secret"), Some(SECRET));
}

fn mi_get(env: &TestEnv, acr: &FakeAcr) -> env::Helper {
    env.get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
        .env("ACR_ENTRA_TIMEOUT", "2")
        .connect_to(&acr.connect_to())
}

#[test]
fn forced_managed_identity_with_dead_imds_fails_within_bound() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    let out = mi_get(&env, &acr)
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{}", http::dead_port()),
        )
        .run();
    out.assert_loud_error();
    out.assert_within(BOUND);
}

#[test]
fn forced_managed_identity_with_black_holed_imds_fails_within_bound() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    let black_hole = http::Server::hang_after_accept();
    let out = mi_get(&env, &acr)
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{}", black_hole.port()),
        )
        .run();
    out.assert_loud_error();
    assert!(black_hole.connection_count() >= 1);
    out.assert_within(BOUND);
}

#[test]
fn forced_managed_identity_with_failing_imds_fails_within_bound() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    // Answers every request (so a probe passes) with a server error, which the SDK's
    // IMDS policy would retry for over a minute.
    let imds = http::Server::start(None, |_| {
        http::Resp::json(
            500,
            &serde_json::json!({"error": "unknown", "error_description": "IMDS is having a bad day"}),
        )
    });
    let out = mi_get(&env, &acr)
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{}", imds.port()),
        )
        .run();
    out.assert_loud_error();
    assert!(imds.request_count() >= 1);
    out.assert_within(BOUND);
}

#[test]
fn forced_managed_identity_with_hanging_app_service_endpoint_fails_within_bound() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    let endpoint = http::Server::start(None, |_| http::Resp::hang());
    let out = mi_get(&env, &acr)
        .env(
            "IDENTITY_ENDPOINT",
            format!("http://127.0.0.1:{}/msi/token", endpoint.port()),
        )
        .env("IDENTITY_HEADER", "header-secret")
        .run();
    out.assert_loud_error();
    assert!(!out.stdout.contains("header-secret"));
    out.assert_within(BOUND);
}

/// Files the user names can be anything: a FIFO would block an open forever, `/dev/zero`
/// would fill memory, a huge file would be read whole. Each is one line, at once, naming
/// the file — and nothing is sent to Entra.
#[test]
fn special_or_huge_files_named_by_the_user_are_refused_at_once() {
    let w = World::start(HOST);
    let (env, entra) = (&w.env, &w.entra);
    let fifo = env.path("a-fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let fifo = fifo.display().to_string();
    let huge = env.write("huge", vec![b' '; 2 << 20]).display().to_string();
    for (var, value, kind, want) in [
        (
            "ACR_ENTRA_CONFIG",
            fifo.as_str(),
            "client-secret",
            "not a regular file",
        ),
        (
            "ACR_ENTRA_CONFIG",
            "/dev/zero",
            "client-secret",
            "not a regular file",
        ),
        (
            "ACR_ENTRA_CONFIG",
            huge.as_str(),
            "client-secret",
            "larger than 1024 KiB",
        ),
        (
            "AZURE_CLIENT_CERTIFICATE_PATH",
            fifo.as_str(),
            "client-certificate",
            "not a regular file",
        ),
        (
            "AZURE_CLIENT_CERTIFICATE_PATH",
            huge.as_str(),
            "client-certificate",
            "larger than 1024 KiB",
        ),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            "/dev/zero",
            "workload-identity",
            "not a regular file",
        ),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            fifo.as_str(),
            "workload-identity",
            "not a regular file",
        ),
    ] {
        let out = secret_get(&w)
            .env("ACR_ENTRA_CREDENTIAL", kind)
            .env(var, value)
            .run();
        assert!(out.elapsed < BOUND, "{var}={value}: {out:?}");
        assert_eq!(out.code, Some(1), "{var}={value}: {out:?}");
        let line = out.stdout_line();
        assert!(
            line.contains(value) && line.contains(want),
            "{var}={value}: {line}"
        );
    }
    assert_eq!(entra.token_requests().len(), 0);
}
