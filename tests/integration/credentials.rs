//! Every credential kind, forced with `ACR_ENTRA_CREDENTIAL` and auto-picked,
//! minted end to end through `ACR_ENTRA_CONNECT_TO` (`myacr.azurecr.io` → the loopback
//! fake ACR) and checked at each fake: what Entra or the identity endpoint received,
//! what the exchange received, and the exact `get` answer.

use std::path::Path;
use std::time::Duration;

use crate::support::entra::ASSERTION_TYPE;
use crate::support::identity::{MI_TENANT, SYSTEM_ASSIGNED_CLIENT_ID};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const CLIENT: &str = "aaaaaaaa-1111-2222-3333-444444444444";
const SECRET: &str = "s3cr3t~client~secret~value";
const TENANT: &str = "tenant-credentials-0001";

/// Host header without a default port.
fn host_header(req: &http::Req) -> String {
    req.header("host")
        .unwrap_or_default()
        .trim_end_matches(":443")
        .to_string()
}

/// Checks the one exchange the fake ACR saw and the answer.
fn assert_minted(out: &Output, acr: &FakeAcr, entra_token: &str, tenant: &str) {
    let issued = acr.issued();
    assert_eq!(issued.len(), 1, "one refresh token issued: {out:?}");
    out.assert_answer(HOST, &issued[0]);
    let exchanges = acr.exchanges();
    assert_eq!(exchanges.len(), 1);
    let ex = &exchanges[0];
    assert_eq!(
        host_header(&ex.req),
        HOST,
        "Host header keeps the registry name"
    );
    assert_eq!(ex.get("grant_type"), Some("access_token"));
    assert_eq!(ex.get("service"), Some(HOST));
    assert_eq!(ex.get("tenant"), Some(tenant));
    assert_eq!(ex.get("access_token"), Some(entra_token));
}

/// The world these tests mint in, signing in as this file's client.
fn world() -> World {
    World::start(HOST).with_client(CLIENT, SECRET, TENANT)
}

fn write_cert(env: &TestEnv, client_id: &str) -> (std::path::PathBuf, tls::ClientCert) {
    let cert = tls::client_cert(client_id);
    let path = env.write("client.pem", &cert.pem);
    (path, cert)
}

#[test]
fn client_secret_mints_end_to_end() {
    let w = world();
    let (entra, acr) = (&w.entra, &w.acr);
    let out = w.get_with("myacr.azurecr.io\n").run();
    let reqs = entra.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    assert_eq!(reqs[0].tenant, TENANT);
    assert_eq!(reqs[0].get("grant_type"), Some("client_credentials"));
    assert_eq!(reqs[0].get("client_id"), Some(CLIENT));
    assert_eq!(reqs[0].get("client_secret"), Some(SECRET));
    assert_eq!(reqs[0].scope(), ACR_SCOPE);
    assert_minted(&out, acr, &entra.issued()[0], TENANT);
    assert_eq!(acr.challenge_count(), 1, "one /v2/ challenge");
}

#[test]
fn client_certificate_sends_rs256_assertion() {
    let w = world();
    let (cert_path, cert) = write_cert(&w.env, CLIENT);
    let w = w.certificate(&cert_path, None);
    let (entra, acr) = (&w.entra, &w.acr);
    let out = w.get().run();
    let reqs = entra.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    let req = &reqs[0];
    assert_eq!(req.tenant, TENANT);
    assert_eq!(req.get("grant_type"), Some("client_credentials"));
    assert_eq!(req.get("client_id"), Some(CLIENT));
    assert_eq!(req.get("client_secret"), None);
    assert_eq!(req.get("client_assertion_type"), Some(ASSERTION_TYPE));
    assert_eq!(req.scope(), ACR_SCOPE);
    check_assertion(
        req.get("client_assertion").expect("client_assertion"),
        entra,
        cert.cert_der.as_ref(),
        &cert.public_key_raw,
    );
    assert_minted(&out, acr, &entra.issued()[0], TENANT);
}

/// An RS256 client assertion for CLIENT at TENANT's token endpoint, with the
/// certificate's SHA-1 thumbprint as `x5t`, signed by its key.
fn check_assertion(assertion: &str, entra: &FakeEntra, cert_der: &[u8], public_key_raw: &[u8]) {
    let (header, payload) = jwt::decode(assertion);
    assert_eq!(header["alg"], "RS256", "{header}");
    let thumbprint = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der);
    let x5t = header["x5t"].as_str().expect("x5t in the assertion header");
    assert_eq!(
        jwt::b64url_decode(x5t),
        thumbprint.as_ref(),
        "x5t is the SHA-1 thumbprint"
    );
    assert_eq!(payload["aud"], entra.token_url(TENANT), "{payload}");
    assert_eq!(payload["iss"], CLIENT);
    assert_eq!(payload["sub"], CLIENT);
    let exp = payload["exp"].as_i64().expect("exp");
    assert!(exp > jwt::now(), "{payload}");
    assert!(payload["jti"].is_string(), "{payload}");
    // The signature verifies with the certificate's key.
    let (signed, sig) = assertion.rsplit_once('.').unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key_raw,
    )
    .verify(signed.as_bytes(), &jwt::b64url_decode(sig))
    .expect("assertion signed with the certificate's private key");
}

/// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=true`, for apps that trust a certificate by
/// subject name and issuer: the assertion's header carries `x5c`, the client's
/// certificate first whatever the file's order, then the rest; unset, no `x5c`.
#[test]
fn client_certificate_sends_the_chain_only_when_asked() {
    use base64::Engine;
    let w = world();
    let cert = tls::client_cert(CLIENT);
    let ca_pem = &tls::pki().ca_pem;
    let ca_der = base64::engine::general_purpose::STANDARD
        .decode(
            ca_pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    // The CA's certificate first: the client's is found by its key, not by position.
    let path = w.env.write("chain.pem", format!("{ca_pem}{}", cert.pem));
    let w = w.certificate(&path, None);
    let entra = &w.entra;
    for (send, want) in [("true", true), ("1", true), ("", false), ("false", false)] {
        let before = entra.token_requests().len();
        let out = w
            .get()
            .env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", send)
            .env("ACR_ENTRA_NO_CACHE", "1")
            .run();
        assert_eq!(out.code, Some(0), "{send}: {out:?}");
        let reqs = entra.token_requests();
        assert_eq!(reqs.len(), before + 1, "{send}");
        let assertion = reqs[before].get("client_assertion").unwrap().to_string();
        check_assertion(
            &assertion,
            entra,
            cert.cert_der.as_ref(),
            &cert.public_key_raw,
        );
        let (header, _) = jwt::decode(&assertion);
        if want {
            let engine = base64::engine::general_purpose::STANDARD;
            assert_eq!(
                header["x5c"],
                serde_json::json!([engine.encode(&cert.cert_der), engine.encode(&ca_der)]),
                "{send}"
            );
        } else {
            assert!(header.get("x5c").is_none(), "{send}: {header}");
        }
    }
}

#[test]
fn client_certificate_pfx_with_password() {
    let w = world();
    let pfx = w.env.write("client.pfx", tls::pfx_bytes());
    let w = w.certificate(&pfx, Some(tls::PFX_PASSWORD));
    let (entra, acr) = (&w.entra, &w.acr);
    let cert_der = tls::pfx_cert_der();
    let out = w.get().run();
    let reqs = entra.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    assert_eq!(reqs[0].get("client_assertion_type"), Some(ASSERTION_TYPE));
    let key = tls::client_cert(CLIENT).public_key_raw;
    check_assertion(
        reqs[0].get("client_assertion").unwrap(),
        entra,
        &cert_der,
        &key,
    );
    assert_minted(&out, acr, &entra.issued()[0], TENANT);
}

#[test]
fn client_certificate_pfx_with_a_wrong_password_is_one_line_without_requests() {
    let w = world();
    let pfx = w.env.write("client.pfx", tls::pfx_bytes());
    let wrong = "wrong-pfx-password-4711";
    let w = w.certificate(&pfx, Some(wrong));
    let entra = &w.entra;
    // The registry answers its challenge; the file fails before Entra is contacted.
    let out = w.get().env("ACR_ENTRA_LOG", "trace").run();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout_line().contains(&format!(
            "client certificate `{}`: the password does not open it (integrity check failed); check AZURE_CLIENT_CERTIFICATE_PASSWORD",
            pfx.display()
        )),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains(wrong) && !out.stderr.contains(wrong),
        "{out:?}"
    );
    assert_eq!(entra.server.connection_count(), 0);
}

#[test]
fn workload_identity_sends_token_file_verbatim_and_rereads_it() {
    let w = world();
    let first = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpmaXJzdCJ9.c2lnLW9uZQ";
    let second = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpzZWNvbmQifQ.c2lnLXR3bw";
    let file = w.env.write("federated-token", first);
    let w = w.federated(&file);
    let (entra, acr) = (&w.entra, &w.acr);
    let run = || w.get().env("ACR_ENTRA_NO_CACHE", "1").run();
    let out1 = run();
    out1.assert_answer(HOST, &acr.issued()[0]);
    std::fs::write(&file, second).unwrap();
    let out2 = run();
    assert_eq!(
        acr.issued().len(),
        2,
        "ACR_ENTRA_NO_CACHE=1 mints again: {out2:?}"
    );
    out2.assert_answer(HOST, &acr.issued()[1]);
    let reqs = entra.token_requests();
    assert_eq!(reqs.len(), 2);
    for (req, expected) in reqs.iter().zip([first, second]) {
        assert_eq!(req.tenant, TENANT);
        assert_eq!(req.get("grant_type"), Some("client_credentials"));
        assert_eq!(req.get("client_id"), Some(CLIENT));
        assert_eq!(req.get("client_assertion_type"), Some(ASSERTION_TYPE));
        assert_eq!(
            req.get("client_assertion"),
            Some(expected),
            "the token file, verbatim and re-read"
        );
        assert_eq!(req.get("client_secret"), None);
        assert_eq!(req.scope(), ACR_SCOPE);
    }
    let exchanges = acr.exchanges();
    assert_eq!(
        exchanges[0].get("access_token"),
        Some(entra.issued()[0].as_str())
    );
    assert_eq!(
        exchanges[1].get("access_token"),
        Some(entra.issued()[1].as_str())
    );
    assert_eq!(exchanges[1].get("tenant"), Some(TENANT));
}

#[test]
fn managed_identity_app_service_system_assigned() {
    let env = TestEnv::new();
    let msi = FakeAppService::start();
    let acr = FakeAcr::start(HOST);
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
        .env("IDENTITY_ENDPOINT", msi.endpoint())
        .env("IDENTITY_HEADER", &msi.secret)
        .connect_to(&acr.connect_to())
        .run();
    let reqs = msi.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].header("metadata"), Some("true"));
    assert_eq!(
        reqs[0].query_param("api-version").as_deref(),
        Some("2019-08-01")
    );
    assert_eq!(
        reqs[0].query_param("resource").as_deref(),
        Some(ACR_AUDIENCE)
    );
    for key in [
        "client_id",
        "principal_id",
        "object_id",
        "mi_res_id",
        "msi_res_id",
    ] {
        assert_eq!(
            reqs[0].query_param(key),
            None,
            "system-assigned sends no `{key}`"
        );
    }
    // No AZURE_TENANT_ID: the tenant comes from the token's `tid`.
    assert_minted(&out, &acr, &msi.issued()[0], MI_TENANT);
    let (_, claims) = jwt::decode(&msi.issued()[0]);
    assert_eq!(claims["appid"], SYSTEM_ASSIGNED_CLIENT_ID);
}

/// Azure Arc, end to end against a fake agent: the first request gets `401` with a
/// `Basic realm` naming a key file in the agent's token directory; the helper reads that
/// file and retries with its content. The helper runs in a private mount namespace with a
/// tmpfs over `/var/opt`, so the key file sits exactly where the agent writes it without
/// touching the machine's `/var/opt`.
#[test]
fn managed_identity_azure_arc_proves_access_with_the_agent_key_file() {
    // As root, a mount namespace; otherwise a user namespace too (`-r`), where this
    // process is root and may mount a tmpfs.
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    let unshare: &[&str] = if uid.ok() == Some(0) {
        &["unshare", "-m", "--propagation", "private"]
    } else {
        &["unshare", "-r", "-m", "--propagation", "private"]
    };
    // A sandbox without namespaces cannot stage the agent's directory: say so and stop
    // (this machine and CI have them; the hostile-realm test below runs everywhere).
    let probe = std::process::Command::new(unshare[0])
        .args(&unshare[1..])
        .arg("true")
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipped: no mount namespace here");
        return;
    }
    let env = TestEnv::new();
    let arc = FakeArc::start();
    let acr = FakeAcr::start(HOST);
    let script = format!(
        "mount -t tmpfs -o mode=0755 tmpfs /var/opt && mkdir -p {dir} && \
         (umask 077 && printf %s \"$ARC_TEST_KEY\" > {key}) && exec \"$@\"",
        dir = identity::ARC_KEY_DIR,
        key = arc.key_path
    );
    let out = env
        .get(HOST)
        .wrapped(&[unshare, &["sh", "-c", &script, "sh"]].concat())
        .env("ARC_TEST_KEY", &arc.key)
        .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
        .env("IDENTITY_ENDPOINT", arc.endpoint())
        .env("IMDS_ENDPOINT", "http://127.0.0.1:1")
        .connect_to(&acr.connect_to())
        .run();
    let requests = arc.server.requests();
    assert_eq!(requests.len(), 2, "challenge, then proof: {out:?}");
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(
        requests[1].header("authorization"),
        Some(format!("Basic {}", arc.key).as_str())
    );
    assert_eq!(
        requests[1].query_param("resource").as_deref(),
        Some("https://containerregistry.azure.net")
    );
    assert_minted(&out, &acr, &arc.issued()[0], MI_TENANT);
    assert!(!out.stderr.contains(&arc.key), "{out:?}");
    assert!(
        !Path::new(&arc.key_path).exists(),
        "the key file stayed inside the namespace"
    );
}

/// A hostile or confused endpoint that names a file outside the agent's token directory
/// (or one without the `.key` suffix) gets no second request: nothing is read or sent.
#[test]
fn managed_identity_azure_arc_refuses_key_files_outside_the_agent_directory() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    for realm in [
        "/etc/hostname",
        "/var/opt/azcmagent/tokens/../../../../etc/hostname.key",
        "/var/opt/azcmagent/tokens/x.txt",
    ] {
        let arc = FakeArc::start_naming(realm);
        let out = env
            .get(HOST)
            .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
            .env("IDENTITY_ENDPOINT", arc.endpoint())
            .env("IMDS_ENDPOINT", "http://127.0.0.1:1")
            .connect_to(&acr.connect_to())
            .run();
        let line = out.assert_loud_error();
        assert!(line.contains("refused"), "{realm}: {line}");
        assert_eq!(arc.server.requests().len(), 1, "{realm}: no proof sent");
    }
    assert_eq!(acr.exchange_count(), 0);
}

#[test]
fn managed_identity_app_service_user_assigned_by_client_id() {
    let env = TestEnv::new();
    let msi = FakeAppService::start();
    let acr = FakeAcr::start(HOST);
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
        .env("IDENTITY_ENDPOINT", msi.endpoint())
        .env("IDENTITY_HEADER", &msi.secret)
        .env("AZURE_CLIENT_ID", "uami-client-id-0001")
        .connect_to(&acr.connect_to())
        .run();
    let reqs = msi.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    assert_eq!(
        reqs[0].query_param("client_id").as_deref(),
        Some("uami-client-id-0001")
    );
    assert_eq!(
        reqs[0].query_param("resource").as_deref(),
        Some(ACR_AUDIENCE)
    );
    assert_minted(&out, &acr, &msi.issued()[0], MI_TENANT);
}

#[test]
fn managed_identity_imds_through_pod_identity_authority_host() {
    let env = TestEnv::new();
    let imds = FakeImds::start();
    let acr = FakeAcr::start(HOST);
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.authority())
        .connect_to(&acr.connect_to())
        .run();
    let reqs = imds.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/metadata/identity/oauth2/token");
    // IMDS serves identity tokens at 2018-02-01 and 2019-08-01; azure_identity uses the
    // latter for VMs, so either is correct against the real service.
    let version = reqs[0].query_param("api-version");
    assert!(
        matches!(version.as_deref(), Some("2018-02-01" | "2019-08-01")),
        "IMDS api-version: {version:?}"
    );
    assert_eq!(
        reqs[0].query_param("resource").as_deref(),
        Some(ACR_AUDIENCE)
    );
    assert_eq!(reqs[0].query_param("client_id"), None);
    assert_minted(&out, &acr, &imds.issued()[0], MI_TENANT);
}

#[test]
fn managed_identity_imds_user_assigned_by_client_id() {
    let env = TestEnv::new();
    let imds = FakeImds::start();
    let acr = FakeAcr::start(HOST);
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.authority())
        .env("AZURE_CLIENT_ID", "uami-imds-0002")
        .connect_to(&acr.connect_to())
        .run();
    let reqs = imds.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    assert_eq!(
        reqs[0].query_param("client_id").as_deref(),
        Some("uami-imds-0002")
    );
    assert_minted(&out, &acr, &imds.issued()[0], MI_TENANT);
}

#[test]
fn azure_cli_mints_with_the_acr_scope() {
    let env = TestEnv::new();
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let acr = FakeAcr::start(HOST);
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "azure-cli")
        .connect_to(&acr.connect_to())
        .run();
    let runs = az.invocations();
    assert_eq!(runs.len(), 1, "{out:?}");
    assert_eq!(&runs[0][..2], ["account", "get-access-token"], "{runs:?}");
    assert_eq!(az.scopes(), [ACR_SCOPE]);
    assert_minted(&out, &acr, &az.acr_token, cli::CLI_TENANT);
}

#[test]
fn azd_mints_with_the_acr_scope() {
    let env = TestEnv::new();
    let azd = FakeCli::install(&env.bin, Tool::Azd, CliMode::Ok);
    let acr = FakeAcr::start(HOST);
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "azd")
        .connect_to(&acr.connect_to())
        .run();
    let runs = azd.invocations();
    assert_eq!(runs.len(), 1, "{out:?}");
    assert_eq!(&runs[0][..2], ["auth", "token"], "{runs:?}");
    assert_eq!(azd.scopes(), [ACR_SCOPE]);
    assert_minted(&out, &acr, &azd.acr_token, cli::CLI_TENANT);
}

/// `az login` as someone else (or `az account set` to another tenant) rewrites
/// `azureProfile.json`; the cached token of the previous account must not be served.
#[test]
fn az_and_azd_signing_in_as_someone_else_mints_anew() {
    for (tool, kind, default_file, dir_var, file) in [
        (
            Tool::Az,
            "azure-cli",
            ".azure/azureProfile.json",
            "AZURE_CONFIG_DIR",
            "azureProfile.json",
        ),
        (
            Tool::Azd,
            "azd",
            ".azd/config.json",
            "AZD_CONFIG_DIR",
            "config.json",
        ),
    ] {
        let env = TestEnv::new();
        let cli = FakeCli::install(&env.bin, tool, CliMode::Ok);
        let acr = FakeAcr::start(HOST);
        let account_file = env.home.join(default_file);
        std::fs::create_dir_all(account_file.parent().unwrap()).unwrap();
        let sign_in = |who: &str| {
            std::fs::write(&account_file, format!(r#"{{"user":{{"name":"{who}"}}}}"#)).unwrap()
        };
        let get = || {
            env.get(HOST)
                .env("ACR_ENTRA_CREDENTIAL", kind)
                .connect_to(&acr.connect_to())
                .run()
        };
        sign_in("alice@contoso.example");
        get().assert_answer(HOST, &acr.issued()[0]);
        get().assert_answer(HOST, &acr.issued()[0]);
        assert_eq!(acr.exchange_count(), 1, "{kind}: same account, cache hit");
        sign_in("bob@contoso.example");
        let out = get();
        assert_eq!(
            acr.exchange_count(),
            2,
            "{kind}: another account mints: {out:?}"
        );
        out.assert_answer(HOST, &acr.issued()[1]);
        sign_in("alice@contoso.example");
        get().assert_answer(HOST, &acr.issued()[0]);
        assert_eq!(
            acr.exchange_count(),
            2,
            "{kind}: alice's token is still cached"
        );
        assert_eq!(cli.invocations().len(), 2, "{kind}");
        // The tool's own config-dir variable moves the file, as it moves the tool's state.
        let moved = env.path("moved-config");
        std::fs::create_dir_all(&moved).unwrap();
        std::fs::write(
            moved.join(file),
            r#"{"user":{"name":"carol@contoso.example"}}"#,
        )
        .unwrap();
        let out = env
            .get(HOST)
            .env("ACR_ENTRA_CREDENTIAL", kind)
            .env(dir_var, moved.display().to_string())
            .connect_to(&acr.connect_to())
            .run();
        assert_eq!(
            acr.exchange_count(),
            3,
            "{kind}: {dir_var} is honoured: {out:?}"
        );
    }
}

// ---- auto-pick (no ACR_ENTRA_CREDENTIAL) ----

/// Everything an environment could offer at once, each piece optional.
struct Offer<'a> {
    entra: &'a FakeEntra,
    secret: bool,
    cert: Option<&'a std::path::Path>,
    federated: Option<&'a std::path::Path>,
    app_service: Option<&'a FakeAppService>,
    imds_authority: String,
}

fn auto_env(env: &TestEnv, acr: &FakeAcr, offer: &Offer) -> env::Helper {
    let mut h = env
        .get(HOST)
        .env("AZURE_AUTHORITY_HOST", offer.entra.authority())
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", &offer.imds_authority)
        .connect_to(&acr.connect_to());
    if offer.secret {
        h = h.env("AZURE_CLIENT_SECRET", SECRET);
    }
    if let Some(cert) = offer.cert {
        h = h.env("AZURE_CLIENT_CERTIFICATE_PATH", cert.display().to_string());
    }
    if let Some(file) = offer.federated {
        h = h.env("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string());
    }
    if let Some(msi) = offer.app_service {
        h = h
            .env("IDENTITY_ENDPOINT", msi.endpoint())
            .env("IDENTITY_HEADER", &msi.secret);
    }
    h
}

fn dead_imds() -> String {
    format!("http://127.0.0.1:{}", http::dead_port())
}

#[test]
fn auto_pick_prefers_client_secret() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let msi = FakeAppService::start();
    let acr = FakeAcr::start(HOST);
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let (cert, _) = write_cert(&env, CLIENT);
    let fed = env.write("federated-token", "federated.token.value");
    let offer = Offer {
        entra: &entra,
        secret: true,
        cert: Some(&cert),
        federated: Some(&fed),
        app_service: Some(&msi),
        imds_authority: dead_imds(),
    };
    let out = auto_env(&env, &acr, &offer).run();
    let reqs = entra.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    assert_eq!(reqs[0].get("client_secret"), Some(SECRET));
    assert_eq!(reqs[0].get("client_assertion"), None);
    assert_eq!(msi.server.request_count(), 0);
    assert!(az.invocations().is_empty());
    assert_minted(&out, &acr, &entra.issued()[0], TENANT);
}

#[test]
fn auto_pick_certificate_before_workload_identity() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let msi = FakeAppService::start();
    let acr = FakeAcr::start(HOST);
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let (cert, _) = write_cert(&env, CLIENT);
    let fed = env.write("federated-token", "federated.token.value");
    let offer = Offer {
        entra: &entra,
        secret: false,
        cert: Some(&cert),
        federated: Some(&fed),
        app_service: Some(&msi),
        imds_authority: dead_imds(),
    };
    let out = auto_env(&env, &acr, &offer).run();
    let reqs = entra.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    let assertion = reqs[0].get("client_assertion").expect("an assertion");
    assert_ne!(
        assertion, "federated.token.value",
        "the certificate wins over the token file"
    );
    assert_eq!(jwt::decode(assertion).0["alg"], "RS256");
    assert_eq!(msi.server.request_count(), 0);
    assert!(az.invocations().is_empty());
    assert_minted(&out, &acr, &entra.issued()[0], TENANT);
}

#[test]
fn auto_pick_workload_identity_before_managed_identity() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let msi = FakeAppService::start();
    let acr = FakeAcr::start(HOST);
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let fed = env.write("federated-token", "federated.token.value");
    let offer = Offer {
        entra: &entra,
        secret: false,
        cert: None,
        federated: Some(&fed),
        app_service: Some(&msi),
        imds_authority: dead_imds(),
    };
    let out = auto_env(&env, &acr, &offer).run();
    let reqs = entra.token_requests();
    assert_eq!(reqs.len(), 1, "{out:?}");
    assert_eq!(
        reqs[0].get("client_assertion"),
        Some("federated.token.value")
    );
    assert_eq!(msi.server.request_count(), 0);
    assert!(az.invocations().is_empty());
    assert_minted(&out, &acr, &entra.issued()[0], TENANT);
}

#[test]
fn auto_pick_managed_identity_before_azure_cli() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let msi = FakeAppService::start();
    let acr = FakeAcr::start(HOST);
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let offer = Offer {
        entra: &entra,
        secret: false,
        cert: None,
        federated: None,
        app_service: Some(&msi),
        imds_authority: dead_imds(),
    };
    let out = auto_env(&env, &acr, &offer).run();
    assert_eq!(entra.request_count(), 0, "{out:?}");
    assert_eq!(msi.token_requests().len(), 1, "{out:?}");
    assert!(az.invocations().is_empty());
    // AZURE_CLIENT_ID selects the user-assigned identity; AZURE_TENANT_ID the tenant.
    assert_eq!(
        msi.token_requests()[0].query_param("client_id").as_deref(),
        Some(CLIENT)
    );
    assert_minted(&out, &acr, &msi.issued()[0], TENANT);
}

#[test]
fn auto_pick_imds_when_its_probe_answers() {
    let env = TestEnv::new();
    let imds = FakeImds::start();
    let acr = FakeAcr::start(HOST);
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let out = env
        .get(HOST)
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.authority())
        .connect_to(&acr.connect_to())
        .run();
    assert_eq!(imds.token_requests().len(), 1, "{out:?}");
    assert!(az.invocations().is_empty(), "{out:?}");
    assert_minted(&out, &acr, &imds.issued()[0], MI_TENANT);
}

#[test]
fn auto_pick_skips_unreachable_imds_for_azure_cli() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let azd = FakeCli::install(&env.bin, Tool::Azd, CliMode::Ok);
    let out = env
        .get(HOST)
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", dead_imds())
        .connect_to(&acr.connect_to())
        .run();
    assert_eq!(az.scopes(), [ACR_SCOPE], "{out:?}");
    assert!(azd.invocations().is_empty());
    assert_minted(&out, &acr, &az.acr_token, cli::CLI_TENANT);
    out.assert_within(Duration::from_secs(20));
}

#[test]
fn auto_pick_black_holed_imds_probe_is_short() {
    let env = TestEnv::new();
    let black_hole = http::Server::hang_after_accept();
    let acr = FakeAcr::start(HOST);
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let out = env
        .get(HOST)
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{}", black_hole.port()),
        )
        .connect_to(&acr.connect_to())
        .run();
    assert_minted(&out, &acr, &az.acr_token, cli::CLI_TENANT);
    // "only when its endpoint answers within a short probe"
    out.assert_within(Duration::from_secs(10));
}

#[test]
fn auto_pick_falls_back_to_azd() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    let azd = FakeCli::install(&env.bin, Tool::Azd, CliMode::Ok);
    let out = env
        .get(HOST)
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", dead_imds())
        .connect_to(&acr.connect_to())
        .run();
    assert_eq!(azd.scopes(), [ACR_SCOPE], "{out:?}");
    assert_minted(&out, &acr, &azd.acr_token, cli::CLI_TENANT);
}

#[test]
fn auto_pick_with_nothing_available_names_every_kind() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    let out = env
        .get(HOST)
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", dead_imds())
        .env("ACR_ENTRA_TIMEOUT", "2")
        .connect_to(&acr.connect_to())
        .run();
    let line = out.assert_loud_error().to_ascii_lowercase();
    for kind in [
        "client-secret",
        "client-certificate",
        "workload-identity",
        "managed-identity",
        "azure-cli",
        "azd",
    ] {
        let spaced = kind.replace('-', " ");
        assert!(
            line.contains(kind) || line.contains(&spaced),
            "the failure should name `{kind}`: {line}"
        );
    }
    // ... and why each was skipped: what each would have needed.
    for need in [
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_FEDERATED_TOKEN_FILE",
    ] {
        assert!(
            line.contains(&need.to_ascii_lowercase()),
            "the failure should say `{need}` is missing: {line}"
        );
    }
    assert_eq!(acr.exchange_count(), 0);
    assert_eq!(out.stderr, "");
    out.assert_within(Duration::from_secs(20));
}

/// A service principal with its client and tenant ids but no secret, certificate or
/// federated token: the one line says that first and stays short, instead of listing why
/// each of eight kinds was skipped.
#[test]
fn half_set_service_principal_says_what_is_missing_first() {
    let env = TestEnv::new();
    let out = env
        .get(HOST)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_TENANT_ID", TENANT)
        .run();
    let line = out.assert_loud_error();
    assert_eq!(
        line,
        "AZURE_CLIENT_ID and AZURE_TENANT_ID are set but no AZURE_CLIENT_SECRET, \
         AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE for the service principal: \
         set one; no other Entra credential found (`doctor HOST` lists each)"
    );
    assert!(line.len() < 250, "{}", line.len());
    // A secret without its tenant names the kind and what it lacks.
    let out = env
        .get(HOST)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .run();
    assert_eq!(
        out.assert_loud_error(),
        "client-secret: AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID is not (set it, or add it \
         to the registry's config entry); no other Entra credential found (`doctor HOST` lists each)"
    );
}
