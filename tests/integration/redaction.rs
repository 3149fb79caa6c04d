//! Redaction: flows run with `ACR_ENTRA_LOG=trace` — client secret,
//! workload identity, `az`, store/get, and failures whose server messages echo the
//! secret back — and no secret value (client secret, assertion, Entra token, refresh
//! token, stored password) may appear in stderr, in an error line, or in panic text;
//! stdout holds only the one secret the verb exists to print. And `Debug` of every
//! library type that holds a secret redacts it.

use std::sync::Arc;

use docker_credential_acr_entra as lib;
use serde_json::json;

use crate::support::hostile::{self, assert_no_secret, scripted, scripted_acr};
use crate::support::http::{Req, Resp};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const CLIENT: &str = "cccccccc-8888-6666-3333-444444444444";
const SECRET: &str = "Hardening~Secrets.Client_Secret-0123456789";
const TENANT: &str = "tenant-hardening-secrets";

fn traced(h: env::Helper) -> Output {
    h.env("ACR_ENTRA_LOG", "trace").run()
}

/// Assert the secrets are absent from stderr, and from stdout unless `allowed` there.
fn check(out: &Output, secrets: &[String], allowed_on_stdout: Option<&str>, flow: &str) {
    assert!(!out.stderr.contains("panicked"), "{flow}: {out:?}");
    assert!(!out.stdout.contains("panicked"), "{flow}: {out:?}");
    assert_no_secret(&out.stderr, secrets, &format!("{flow} stderr"));
    let stdout = match allowed_on_stdout {
        Some(s) => out.stdout.replace(s, ""),
        None => out.stdout.clone(),
    };
    assert_no_secret(&stdout, secrets, &format!("{flow} stdout"));
}

#[test]
fn client_secret_flow_traced_leaks_nothing() {
    let w = World::start(HOST).with_client(CLIENT, SECRET, TENANT);
    let (entra, acr) = (&w.entra, &w.acr);
    let out = traced(w.get());
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("trace") || out.stderr.contains("debug"),
        "logging on: {out:?}"
    );
    let refresh = acr.issued()[0].clone();
    let mut secrets = vec![SECRET.to_string(), refresh.clone()];
    secrets.extend(entra.issued());
    check(&out, &secrets, Some(&refresh), "client-secret get");
    // The cache hit, traced.
    let out = traced(w.get());
    check(&out, &secrets, Some(&refresh), "cache hit");
}

/// A PFX certificate credential, traced: neither the file's password (right or wrong)
/// nor the signed assertion may show anywhere.
#[test]
fn pfx_certificate_flow_traced_leaks_nothing() {
    let w = World::start(HOST).with_client(CLIENT, SECRET, TENANT);
    let pfx = w.env.write("app.pfx", tls::pfx_bytes());
    let w = w.certificate(&pfx, None);
    let (entra, acr) = (&w.entra, &w.acr);
    let wrong = "Wrong-Pfx-Password-0123456789";
    let run = |password: &str| traced(w.get().env("AZURE_CLIENT_CERTIFICATE_PASSWORD", password));
    // The wrong password first: afterwards the token is cached and the file not read.
    let failed = run(wrong);
    assert_eq!(failed.code, Some(1), "{failed:?}");
    let out = run(tls::PFX_PASSWORD);
    assert_eq!(out.code, Some(0), "{out:?}");
    let refresh = acr.issued()[0].clone();
    let assertion = entra.token_requests()[0]
        .get("client_assertion")
        .expect("a client assertion")
        .to_string();
    let mut secrets = vec![
        tls::PFX_PASSWORD.to_string(),
        wrong.to_string(),
        assertion,
        refresh.clone(),
    ];
    secrets.extend(entra.issued());
    check(&out, &secrets, Some(&refresh), "pfx get");
    check(&failed, &secrets, None, "pfx with a wrong password");
}

#[test]
fn workload_identity_and_az_flows_traced_leak_nothing() {
    let w = World::start(HOST).with_client(CLIENT, SECRET, TENANT);
    let assertion = jwt::make(
        &json!({"alg": "RS256", "typ": "JWT"}),
        &json!({"sub": "system:serviceaccount:ns:sa", "aud": "api://AzureADTokenExchange", "exp": jwt::now() + 3600}),
    );
    let file = w.env.write("federated-token", &assertion);
    let w = w.federated(&file);
    let (entra, acr) = (&w.entra, &w.acr);
    let out = traced(w.get());
    assert_eq!(out.code, Some(0), "{out:?}");
    let refresh = acr.issued()[0].clone();
    let mut secrets = vec![assertion.clone(), refresh.clone()];
    secrets.extend(entra.issued());
    check(&out, &secrets, Some(&refresh), "workload identity get");

    let env = TestEnv::new();
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let acr = FakeAcr::start(HOST);
    let out = traced(
        env.get(HOST)
            .env("ACR_ENTRA_CREDENTIAL", "azure-cli")
            .connect_to(&acr.connect_to()),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let refresh = acr.issued()[0].clone();
    check(
        &out,
        &[az.acr_token.clone(), az.arm_token.clone(), refresh.clone()],
        Some(&refresh),
        "az get",
    );
}

#[test]
fn stored_password_traced_leaks_nothing() {
    let env = TestEnv::new();
    let password = "Stored-Password-For-Ghcr-0123456789";
    let secrets = [password.to_string()];
    let store = |json: &str| traced(env.helper().arg("store").stdin(json));
    let out = store(&format!(
        r#"{{"ServerURL":"ghcr.io","Username":"octo","Secret":"{password}"}}"#
    ));
    assert_eq!(out.code, Some(0), "{out:?}");
    check(&out, &secrets, None, "store");
    for broken in [
        format!(r#"{{"ServerURL":"ghcr.io","Username":"octo","Secret":"{password}""#),
        format!(r#"{{"ServerURL":"ghcr.io","Username":"octo","Secret":"{password}","x":}}"#),
        format!(r#"{{"ServerURL":"","Username":"octo","Secret":"{password}"}}"#),
        format!(r#"{{"ServerURL":"a\u0000b","Username":"octo","Secret":"{password}"}}"#),
        format!(r#"{{"ServerURL":"user@ghcr.io","Username":"octo","Secret":"{password}"}}"#),
        format!(r#"{{"ServerURL":"ghcr.io","Username":"octo","Secret":{password}}}"#),
    ] {
        let out = store(&broken);
        assert_eq!(out.code, Some(1), "{broken}: {out:?}");
        check(&out, &secrets, None, "store error");
    }
    let out = traced(env.get("ghcr.io"));
    assert_eq!(out.code, Some(0), "{out:?}");
    check(&out, &secrets, Some(password), "get stored");
    for verb in ["list", "erase"] {
        let out = traced(env.helper().arg(verb).stdin("ghcr.io"));
        check(&out, &secrets, None, verb);
    }
}

/// Servers that echo what they were sent: the helper's error line and trace must not
/// pass the echoed secrets on.
#[test]
fn echoing_servers_do_not_leak_through_errors() {
    // Entra echoes the client secret and the whole form in its error description.
    let env = TestEnv::new();
    let entra = scripted(|req: &Req| {
        Resp::json(
            401,
            &json!({"error": "invalid_client", "error_description": format!("AADSTS7000215: Invalid client secret provided: {} (form: {})", req.form_value("client_secret").unwrap_or_default(), req.body_text())}),
        )
    });
    let acr = FakeAcr::start(HOST);
    let out = traced(
        env.get(HOST)
            .env("ACR_ENTRA_CREDENTIAL", "client-secret")
            .client_secret(&hostile::authority(&entra), CLIENT, SECRET, TENANT)
            .connect_to(&acr.connect_to()),
    );
    out.assert_loud_error();
    check(
        &out,
        &[SECRET.to_string()],
        None,
        "Entra echoing the secret",
    );

    // The exchange echoes the Entra token in its 401 and 400 messages.
    for status in [400, 401, 500] {
        let env = TestEnv::new();
        let entra = FakeEntra::start();
        let echo: Arc<dyn Fn(&Req) -> Resp + Send + Sync> = Arc::new(move |req: &Req| {
            let token = req.form_value("access_token").unwrap_or_default();
            Resp::json(
                status,
                &json!({"errors": [{"code": "UNAUTHORIZED", "message": format!("bad token {token}; form {}", req.body_text())}]}),
            )
        });
        let acr = scripted_acr(HOST, None, move |req| echo(req));
        let out = traced(
            env.get(HOST)
                .env("ACR_ENTRA_CREDENTIAL", "client-secret")
                .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
                .connect_to(&format!("{HOST}:443:127.0.0.1:{}", acr.port())),
        );
        out.assert_loud_error();
        let mut secrets = entra.issued();
        secrets.push(SECRET.to_string());
        check(
            &out,
            &secrets,
            None,
            &format!("exchange {status} echoing the token"),
        );
    }
}

#[test]
fn debug_of_secret_holding_types_redacts() {
    use lib::internals::secret::{AcrRefreshToken, EntraToken, Secret};
    let s = "Debug-Redaction-Secret-Value-0123456789";
    let secret = || Secret::new(s);
    let mut shown = vec![
        format!("{:?}", secret()),
        format!("{:?}", EntraToken(secret())),
        format!("{:?}", AcrRefreshToken(secret())),
        format!(
            "{:?}",
            lib::internals::protocol::read_store(
                format!(r#"{{"ServerURL":"ghcr.io","Username":"u","Secret":"{s}"}}"#).as_bytes()
            )
            .unwrap()
        ),
        format!(
            "{:?}",
            lib::internals::store::Stored {
                server_url: "ghcr.io".into(),
                username: "u".into(),
                secret: secret(),
            }
        ),
        format!(
            "{:?}",
            lib::internals::identity::PodIdentity {
                client_id: "c".into(),
                tenant_id: None,
                assertion: lib::internals::identity::FederatedAssertion::new(secret()),
            }
        ),
        format!(
            "{:?}",
            lib::internals::http::HttpRequest::post_form(
                "https://myacr.azurecr.io/oauth2/exchange?x=1",
                format!("access_token={s}")
            )
            .header("x-identity-header", s)
        ),
        format!(
            "{:?}",
            lib::internals::http::HttpResponse {
                status: 200,
                headers: vec![("set-cookie".into(), s.into())],
                body: s.as_bytes().to_vec(),
            }
        ),
        format!(
            "{:?}",
            lib::internals::entra::assertion::FederatedToken::Inline(secret())
        ),
    ];
    let env = lib::internals::config::Env::from_pairs([
        ("HOME", "/nonexistent"),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_CLIENT_SECRET", s),
        ("AZURE_TENANT_ID", "t"),
        ("AZURE_CLIENT_CERTIFICATE_PASSWORD", s),
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
        ("IDENTITY_HEADER", s),
    ]);
    let settings = lib::internals::config::Settings::from_env(&env).unwrap();
    shown.push(format!("{settings:?}"));
    let kubelet = lib::internals::cli::kubelet::read_request(
        format!(
            r#"{{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"myacr.azurecr.io/a:1","serviceAccountToken":"{s}"}}"#
        )
        .as_bytes(),
    )
    .unwrap();
    shown.push(format!("{kubelet:?}"));
    for text in &shown {
        assert!(!text.contains(s), "Debug shows the secret: {text}");
    }
    assert_eq!(shown.len(), 11);
}
