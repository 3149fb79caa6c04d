//! `ACR_ENTRA_LOG`: trace logging on a full mint shows the steps on stderr and
//! never a secret: no client secret, identity header, federated token, client assertion,
//! Entra access token or ACR refresh token.

use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const CLIENT: &str = "eeeeeeee-1111-2222-3333-444444444444";
const SECRET: &str = "Very~Secret~Client~Value~0123456789";
const TENANT: &str = "tenant-logging-0001";

/// The world these tests mint in, signing in as this file's client: its secret is
/// distinctive enough that any trace of it in the logs is found.
fn world() -> World {
    World::start(HOST).with_client(CLIENT, SECRET, TENANT)
}

/// `secret` (and, for JWTs, its signature segment) must not be in stderr.
fn assert_hidden(out: &Output, what: &str, secret: &str) {
    assert!(!secret.is_empty());
    assert!(
        !out.stderr.contains(secret),
        "stderr shows the {what}:\n{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains(secret) || what.contains("refresh"),
        "stdout shows the {what}"
    );
    if let Some((_, sig)) = secret.rsplit_once('.')
        && sig.len() > 8
    {
        assert!(
            !out.stderr.contains(sig),
            "stderr shows the {what}'s signature:\n{}",
            out.stderr
        );
    }
}

fn assert_steps_logged(out: &Output) {
    assert!(
        !out.stderr.is_empty(),
        "trace shows the steps on stderr: {out:?}"
    );
    assert!(
        out.stderr.lines().count() >= 3,
        "several steps: {}",
        out.stderr
    );
}

#[test]
fn trace_log_of_client_secret_mint_hides_every_secret() {
    let w = world();
    let (entra, acr) = (&w.entra, &w.acr);
    // Also go through the ARM fallback so both Entra tokens pass through the logs.
    acr.reject_audience(ACR_AUDIENCE);
    let out = w.get().env("ACR_ENTRA_LOG", "trace").run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout_line(), answer_json(HOST, &acr.issued()[0]));
    assert_steps_logged(&out);
    assert_hidden(&out, "client secret", SECRET);
    for token in entra.issued() {
        assert_hidden(&out, "Entra token", &token);
    }
    assert_hidden(&out, "refresh token", &acr.issued()[0]);
}

#[test]
fn trace_log_of_certificate_mint_hides_the_assertion() {
    let w = world();
    let cert = tls::client_cert(CLIENT);
    let path = w.env.write("client.pem", &cert.pem);
    let w = w.certificate(&path, None);
    let (entra, acr) = (&w.entra, &w.acr);
    let out = w.get().env("ACR_ENTRA_LOG", "trace").run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_steps_logged(&out);
    let assertion = entra.token_requests()[0]
        .get("client_assertion")
        .unwrap()
        .to_string();
    assert_hidden(&out, "client assertion", &assertion);
    assert_hidden(&out, "Entra token", &entra.issued()[0]);
    assert_hidden(&out, "refresh token", &acr.issued()[0]);
    assert!(!out.stderr.contains("PRIVATE KEY"), "{}", out.stderr);
}

#[test]
fn trace_log_of_workload_identity_mint_hides_the_federated_token() {
    let w = world();
    let federated = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsb2dnaW5nIn0.ZmVkZXJhdGVkLXNpZ25hdHVyZQ";
    let file = w.env.write("federated-token", federated);
    let w = w.federated(&file);
    let (entra, acr) = (&w.entra, &w.acr);
    let out = w.get().env("ACR_ENTRA_LOG", "trace").run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_steps_logged(&out);
    assert_hidden(&out, "federated token", federated);
    assert_hidden(&out, "Entra token", &entra.issued()[0]);
    assert_hidden(&out, "refresh token", &acr.issued()[0]);
}

#[test]
fn trace_log_of_managed_identity_mint_hides_the_identity_header() {
    let env = TestEnv::new();
    let msi = FakeAppService::start();
    let acr = FakeAcr::start(HOST);
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_LOG", "trace")
        .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
        .env("IDENTITY_ENDPOINT", msi.endpoint())
        .env("IDENTITY_HEADER", &msi.secret)
        .connect_to(&acr.connect_to())
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_steps_logged(&out);
    assert_hidden(&out, "identity header", &msi.secret);
    assert_hidden(&out, "Entra token", &msi.issued()[0]);
    assert_hidden(&out, "refresh token", &acr.issued()[0]);
}

#[test]
fn trace_log_of_azure_cli_mint_hides_the_token() {
    let env = TestEnv::new();
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let acr = FakeAcr::start(HOST);
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_LOG", "trace")
        .env("ACR_ENTRA_CREDENTIAL", "azure-cli")
        .connect_to(&acr.connect_to())
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_steps_logged(&out);
    assert_hidden(&out, "az token", &az.acr_token);
    assert!(
        !out.stderr.contains("chatty on stderr"),
        "the helper never prints az's output: {}",
        out.stderr
    );
    assert_hidden(&out, "refresh token", &acr.issued()[0]);
}

#[test]
fn logging_off_by_default_means_empty_stderr() {
    let w = world();
    let acr = &w.acr;
    let out = w.get().run();
    out.assert_answer(HOST, &acr.issued()[0]);
}
