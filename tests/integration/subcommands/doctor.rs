//! `doctor HOST`: the report's sections on success (timed steps, redacted
//! claims, never a token), exit 0 only when a token was minted, and one remediation hint
//! for each failure the loopback fakes can stage: ARM audience disabled, missing role
//! (401/403), firewall 403, `az` not logged in, IMDS unreachable, clock skew, not ACR.

use crate::support::subcommands::{FIREWALL_MESSAGE, FakeRegistry, RegistryMode};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const CLIENT: &str = "ffffffff-1111-2222-3333-444444444444";
const SECRET: &str = "doctor-test-secret";
const TENANT: &str = "tenant-doctor-0001";

const HINT_ARM: &str = "hint:        the registry refuses ARM-audience tokens (its `authentication-as-arm` policy is disabled): use the ACR audience";
const HINT_ROLE: &str = "hint:        ACR refused the identity: assign it the AcrPull role (AcrPush to push) on the registry";
const HINT_FIREWALL: &str =
    "hint:        the registry's network rules block this machine (firewall or private endpoint)";
const HINT_AZ: &str =
    "hint:        the Azure CLI is not logged in or its login expired: run `az login`";
const HINT_IMDS: &str =
    "hint:        the instance metadata service (169.254.169.254) is unreachable";
const HINT_CLOCK: &str = "hint:        this machine's clock is off";
const HINT_NOT_ACR: &str = "hint:        `get` answers \"credentials not found\" for this host";

/// The world these tests diagnose: the credential auto-picked, as `doctor` users have
/// it, signing in as this file's client, whose ids the report names.
fn world() -> World {
    World::start(HOST)
        .auto()
        .with_client(CLIENT, SECRET, TENANT)
}

fn doctor(w: &World) -> env::Helper {
    w.helper()
        .arg("doctor")
        .arg(HOST)
        .env("ACR_ENTRA_TIMEOUT", "3")
}

fn assert_failed_with(out: &Output, hint: &str) {
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains("\nresult:      FAILED: "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(hint),
        "missing `{hint}` in:\n{}",
        out.stdout
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn doctor_reports_every_section_and_never_a_token() {
    let w = world();
    let (env, entra, acr) = (&w.env, &w.entra, &w.acr);
    let out = doctor(&w).run();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert_eq!(out.stderr, "");
    let text = &out.stdout;
    for want in [
        "acr-entra doctor: `myacr.azurecr.io`",
        "\nhost:        `myacr.azurecr.io` is an ACR login server; public cloud\n",
        "\nconfig:      ",
        "no entry for `myacr.azurecr.io`, defaults apply\n",
        "\ncredential:  client-secret (AZURE_CLIENT_SECRET is set); tenant tenant-doctor-0001, client id ffffffff-1111-2222-3333-444444444444",
        "\naudience:    acr (`https://containerregistry.azure.net/.default`); arm (`https://management.azure.com/.default`) if the exchange answers 401\n",
        "\ncache:       dir `",
        "no entry yet",
        "\n  challenge ",
        "\n  entra token ",
        "\n  exchange ",
        "audience acr, tenant `tenant-doctor-0001`; ok\n",
        "\ntoken:       exp ",
        "aud `myacr.azurecr.io`, tenant `tenant-doctor-0001`, permissions read\n",
        "\n  role mode: not visible in the token (RBAC and ABAC registries issue the same claims); `az acr show -n NAME --query roleAssignmentMode` tells",
        "\nresult:      ok: a token was minted",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("hint:"), "{text}");
    for token in acr.issued().iter().chain(entra.issued().iter()) {
        assert!(!text.contains(token.as_str()), "a token leaked:\n{text}");
        let signature = token.rsplit('.').next().unwrap();
        assert!(!text.contains(signature), "a token part leaked:\n{text}");
    }
    assert!(!text.contains(SECRET));
    // doctor writes nothing: a later get still mints.
    assert!(
        !env.cache.exists()
            || std::fs::read_dir(&env.cache).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("token-"))
    );
    // Once get has cached a token, doctor reports the entry.
    let get = w.get().run();
    assert_eq!(get.code, Some(0), "{get:?}");
    let out = doctor(&w).run();
    assert!(out.stdout.contains("mode 0600: age "), "{}", out.stdout);
    assert!(out.stdout.contains("(fresh: in 3h"), "{}", out.stdout);
}

#[test]
fn doctor_hints_arm_audience_disabled() {
    let w = world();
    let (env, acr) = (&w.env, &w.acr);
    acr.reject_audience(ARM_AUDIENCE);
    let config = env.write(
        "config.json",
        r#"{"registries":{"myacr.azurecr.io":{"audience":"arm"}}}"#,
    );
    let out = doctor(&w)
        .env("ACR_ENTRA_CONFIG", config.display().to_string())
        .run();
    assert_failed_with(&out, HINT_ARM);
    assert!(
        out.stdout
            .contains("entry for `myacr.azurecr.io`: audience arm"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("set by the config entry; no fallback"),
        "{}",
        out.stdout
    );
}

#[test]
fn doctor_hints_a_missing_role_when_both_audiences_are_refused() {
    let w = world();
    let acr = &w.acr;
    acr.reject_audience(ACR_AUDIENCE);
    acr.reject_audience(ARM_AUDIENCE);
    let out = doctor(&w).run();
    assert_failed_with(&out, HINT_ROLE);
    // Registries in ABAC mode ignore AcrPull/AcrPush: the hint names their roles too.
    assert!(
        out.stdout.contains("in a registry in ABAC mode (`az acr show -n NAME --query roleAssignmentMode`), which ignores AcrPull/AcrPush, Container Registry Repository Reader (Writer to push, Contributor to delete; Catalog Lister to list the catalog)"),
        "{}",
        out.stdout
    );
    assert_eq!(acr.exchange_count(), 2, "both audiences tried");
    assert_eq!(
        out.stdout.matches("\n  exchange ").count(),
        2,
        "{}",
        out.stdout
    );
}

#[test]
fn doctor_hints_network_rules_on_a_firewall_403() {
    let w = world();
    let registry = FakeRegistry::start(HOST, RegistryMode::Firewall);
    // The only rule for HOST: the staged registry stands where the fake ACR would.
    let out = doctor(&w)
        .env("ACR_ENTRA_CONNECT_TO", registry.connect_to())
        .run();
    assert_failed_with(&out, HINT_FIREWALL);
    assert!(
        out.stdout.contains(FIREWALL_MESSAGE),
        "the registry's words: {}",
        out.stdout
    );
    assert!(!out.stdout.contains(HINT_ROLE), "{}", out.stdout);
}

/// The advice follows the credential in use and what really failed: a hanging `az` is
/// not told to log in, an unreachable Entra is not told its secret is wrong, and a
/// registry name that does not resolve fails at the challenge with the name to check.
#[test]
fn doctor_hints_follow_the_credential_and_the_failure() {
    let w = world();
    let _az = FakeCli::install(&w.env.bin, Tool::Az, CliMode::Hang);
    let out = doctor(&w)
        .env("ACR_ENTRA_CREDENTIAL", "azure-cli")
        .env("ACR_ENTRA_TIMEOUT", "1")
        .run();
    assert_failed_with(
        &out,
        "hint:        the tool did not answer within ACR_ENTRA_TIMEOUT and was stopped",
    );
    assert!(!out.stdout.contains(HINT_AZ), "{}", out.stdout);

    let dead = format!("https://localhost:{}", http::dead_port());
    let out = doctor(&w).env("AZURE_AUTHORITY_HOST", &dead).run();
    assert_failed_with(
        &out,
        "hint:        Entra ID could not be reached (no answer at all, so the credential was never checked)",
    );
    assert!(!out.stdout.contains("client secret"), "{}", out.stdout);

    let config = w
        .env
        .config(&serde_json::json!({"registries": {"notreal.invalid": {}}}));
    let out = w
        .helper()
        .arg("doctor")
        .arg("notreal.invalid")
        .env("ACR_ENTRA_CONFIG", &config)
        .run();
    assert_failed_with(&out, "hint:        the registry did not answer: check DNS");
    assert!(
        out.stdout.contains("failed: `notreal.invalid` does not resolve: check the registry name (`az acr list --query [].loginServer`)"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("\n  entra token"),
        "no Entra step: {}",
        out.stdout
    );
}

#[test]
fn doctor_hints_az_login() {
    let w = world();
    let (env, acr) = (&w.env, &w.acr);
    let _az = FakeCli::install(&env.bin, Tool::Az, CliMode::Fail);
    let out = doctor(&w).env("ACR_ENTRA_CREDENTIAL", "azure-cli").run();
    assert_failed_with(&out, HINT_AZ);
    assert!(
        out.stdout
            .contains("credential:  azure-cli (set by ACR_ENTRA_CREDENTIAL)"),
        "{}",
        out.stdout
    );
    assert_eq!(acr.exchange_count(), 0);
}

#[test]
fn doctor_hints_imds_unreachable() {
    let w = world();
    let out = doctor(&w)
        .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{}", http::dead_port()),
        )
        .run();
    assert_failed_with(&out, HINT_IMDS);
    assert!(
        out.stdout
            .contains("\n  instance metadata service probe: no answer in "),
        "{}",
        out.stdout
    );
}

#[test]
fn doctor_warns_about_clock_skew_but_succeeds() {
    let w = world();
    let registry = FakeRegistry::start(HOST, RegistryMode::Skewed(-2 * 3600));
    // The only rule for HOST: the staged registry stands where the fake ACR would.
    let out = doctor(&w)
        .env("ACR_ENTRA_CONNECT_TO", registry.connect_to())
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("warning:     the token was issued 2h0m behind this machine's clock"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(HINT_CLOCK), "{}", out.stdout);
}

#[test]
fn doctor_explains_a_non_acr_host_without_network() {
    let env = TestEnv::new();
    let out = env.helper().arg("doctor").arg("ghcr.io").run();
    assert_failed_with(&out, HINT_NOT_ACR);
    assert!(
        out.stdout.contains("`ghcr.io` is not an ACR login server"),
        "{}",
        out.stdout
    );
}

#[test]
fn doctor_reports_a_malformed_config_file() {
    let env = TestEnv::new();
    let config = env.write("config.json", "{ not json");
    let out = env
        .helper()
        .arg("doctor")
        .arg(HOST)
        .env("ACR_ENTRA_CONFIG", config.display().to_string())
        .run();
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "config:      config file `{}` is not valid",
            config.display()
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("result:      FAILED: the config file cannot be used\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn doctor_says_why_each_earlier_kind_was_skipped() {
    let env = TestEnv::new();
    let acr = FakeAcr::start(HOST);
    let _az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let out = env
        .helper()
        .arg("doctor")
        .arg(HOST)
        .connect_to(&acr.connect_to())
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{}", http::dead_port()),
        )
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    for want in [
        "\ncredential:  azure-cli (`az` is on PATH); authority https://login.microsoftonline.com\n",
        "\n  skipped client-secret: AZURE_CLIENT_SECRET not set\n",
        "\n  skipped client-certificate: AZURE_CLIENT_CERTIFICATE_PATH not set\n",
        "\n  skipped workload-identity: AZURE_FEDERATED_TOKEN_FILE not set\n",
        "\n  skipped managed-identity: instance metadata service: no answer within 1s",
        "\n  instance metadata service probe: no answer in ",
        "\nresult:      ok: a token was minted",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?} in:\n{}",
            out.stdout
        );
    }
}

#[test]
fn doctor_rejected_secret_hints_a_new_one() {
    let w = world();
    let acr = &w.acr;
    w.entra.set_mode(EntraMode::Fail(401));
    let out = doctor(&w).run();
    assert_failed_with(
        &out,
        "hint:        Entra refused the client secret (wrong, or expired): create a new one",
    );
    assert_eq!(acr.exchange_count(), 0);
}

/// The thumbprint Entra lists for the app's certificate, so a mismatch is visible.
#[test]
fn doctor_shows_the_certificate_thumbprint_of_a_pfx() {
    let w = World::start(HOST).with_client(CLIENT, SECRET, TENANT);
    let pfx = w.env.write("app.pfx", tls::pfx_bytes());
    let w = w.certificate(&pfx, Some(tls::PFX_PASSWORD));
    let cert_der = tls::pfx_cert_der();
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert_der);
    let thumbprint: String = sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    let run = |password: &str| {
        w.helper()
            .arg("doctor")
            .arg(HOST)
            .env("AZURE_CLIENT_CERTIFICATE_PASSWORD", password)
            .run()
    };
    let out = run(tls::PFX_PASSWORD);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    let want = format!(
        "\ncertificate: `{}`: thumbprint {thumbprint}\n",
        pfx.display()
    );
    assert!(
        out.stdout.contains(&want),
        "missing {want:?} in:\n{}",
        out.stdout
    );
    let out = w
        .helper()
        .arg("doctor")
        .arg(HOST)
        .env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true")
        .run();
    let want = format!(
        "\ncertificate: `{}`: thumbprint {thumbprint}; chain of 1 sent as x5c (AZURE_CLIENT_SEND_CERTIFICATE_CHAIN)\n",
        pfx.display()
    );
    assert!(
        out.stdout.contains(&want),
        "missing {want:?} in:\n{}",
        out.stdout
    );
    let out = run("not-the-password");
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains("the password does not open it"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("not-the-password"), "{}", out.stdout);
}

/// doctor says whether the clients will reach the helper: the binary on PATH, and what
/// docker's and podman's files send the host to (another helper, a stored login, none).
#[test]
fn doctor_checks_path_and_what_the_clients_files_route_to() {
    let w = world();
    let docker = w.env.home.join(".docker/config.json");
    std::fs::create_dir_all(docker.parent().unwrap()).unwrap();
    std::fs::write(&docker, r#"{"credsStore":"desktop"}"#).unwrap();
    let podman = w.env.path("xdg-runtime/containers/auth.json");
    std::fs::create_dir_all(podman.parent().unwrap()).unwrap();
    std::fs::write(
        &podman,
        r#"{"auths":{"myacr.azurecr.io":{"auth":"c2VjcmV0"}}}"#,
    )
    .unwrap();
    let out = doctor(&w).run();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    for line in [
        "\nclients:     problem: `docker-credential-acr-entra` is in no PATH directory, so the clients cannot run it".to_string(),
        format!(
            "\n  docker: `{}` sends `myacr.azurecr.io` to the helper `desktop`, not acr-entra: run `configure docker myacr.azurecr.io`\n",
            docker.display()
        ),
        format!(
            "\n  podman: `{}` has a stored login for `myacr.azurecr.io` that it uses instead of acr-entra: `podman logout myacr.azurecr.io` removes it\n",
            podman.display()
        ),
    ] {
        assert!(out.stdout.contains(&line), "missing {line:?} in:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("c2VjcmV0"));

    let on_path = w.env.bin.join("docker-credential-acr-entra");
    std::os::unix::fs::symlink(env::bin(), &on_path).unwrap();
    std::fs::write(
        &docker,
        r#"{"credHelpers":{"myacr.azurecr.io":"acr-entra"},"credsStore":"desktop"}"#,
    )
    .unwrap();
    std::fs::remove_file(&podman).unwrap();
    let out = doctor(&w).run();
    for line in [
        format!("\nclients:     `{}` is on PATH\n", on_path.display()),
        format!(
            "\n  docker: `{}` sends `myacr.azurecr.io` to acr-entra (credHelpers)\n",
            docker.display()
        ),
        format!(
            "\n  podman: `{}` sends `myacr.azurecr.io` to acr-entra (credHelpers)\n",
            docker.display()
        ),
    ] {
        assert!(
            out.stdout.contains(&line),
            "missing {line:?} in:\n{}",
            out.stdout
        );
    }
}
