//! The config file — registries listed there (including a loopback
//! `localhost:PORT` test registry) are treated as ACR, per-registry identities and
//! tenants, the XDG default path, and a clear one-line error for a malformed file.

use serde_json::json;

use crate::support::world::TENANT;
use crate::support::*;

#[test]
fn listed_localhost_registry_mints_without_connect_to() {
    let w = World::localhost().auto();
    let (env, acr) = (&w.env, &w.acr);
    let host = acr.host();
    assert_eq!(host, format!("localhost:{}", acr.port()));
    let config = env.config(&json!({"registries": {&host: {"credential": "client-secret"}}}));
    for input in [
        host.clone(),
        format!("https://{host}"),
        format!("https://{host}/v2/\n"),
    ] {
        let out = w
            .get_with(&input)
            .env("ACR_ENTRA_CONFIG", &config)
            .env("ACR_ENTRA_NO_CACHE", "1")
            .run();
        out.assert_answer(
            input.trim(),
            acr.issued().last().map_or("<none>", |s| s.as_str()),
        );
    }
    let exchanges = acr.exchanges();
    assert_eq!(exchanges.len(), 3);
    for ex in &exchanges {
        assert_eq!(ex.get("service"), Some(host.as_str()));
        assert_eq!(ex.get("tenant"), Some(TENANT));
        assert_eq!(ex.req.header("host"), Some(host.as_str()));
    }
}

#[test]
fn unlisted_localhost_is_not_found_without_request() {
    let w = World::localhost().auto();
    let (env, entra, acr) = (&w.env, &w.entra, &w.acr);
    let listed = FakeAcr::start_localhost();
    let config =
        env.config(&json!({"registries": {listed.host(): {"credential": "client-secret"}}}));
    let out = w
        .get_with(&acr.host())
        .env("ACR_ENTRA_CONFIG", &config)
        .run();
    out.assert_not_found();
    assert_eq!(acr.server.connection_count(), 0);
    assert_eq!(entra.server.connection_count(), 0);
}

#[test]
fn config_in_xdg_config_home_is_read_by_default() {
    let w = World::localhost().auto();
    let (env, acr) = (&w.env, &w.acr);
    let dir = env.path("xdg-config").join("acr-entra");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        json!({"registries": {acr.host(): {"credential": "client-secret"}}}).to_string(),
    )
    .unwrap();
    let out = w.get_with(&acr.host()).run();
    out.assert_answer(
        &acr.host(),
        acr.issued().first().map_or("<none>", |s| s.as_str()),
    );
}

#[test]
fn config_credential_beats_environment_auto_pick() {
    let w = World::start("myacr.azurecr.io").auto();
    let (env, entra, acr) = (&w.env, &w.entra, &w.acr);
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let config =
        env.config(&json!({"registries": {"myacr.azurecr.io": {"credential": "azure-cli"}}}));
    let out = w.get().env("ACR_ENTRA_CONFIG", &config).run();
    out.assert_answer(
        "myacr.azurecr.io",
        acr.issued().first().map_or("<none>", |s| s.as_str()),
    );
    assert_eq!(entra.request_count(), 0, "the config chose azure-cli");
    assert_eq!(az.scopes(), [ACR_SCOPE]);
}

#[test]
fn malformed_config_is_one_line_error_naming_the_file() {
    let env = TestEnv::new();
    let acr = FakeAcr::start("myacr.azurecr.io");
    for (name, text) in [
        (
            "broken.json",
            r#"{"registries": {"myacr.azurecr.io": {"credential": "client-secret"}"#.to_string(),
        ),
        (
            "unknown-kind.json",
            json!({"registries": {"myacr.azurecr.io": {"credential": "telepathy"}}}).to_string(),
        ),
        ("not-an-object.json", "[1, 2, 3]".to_string()),
    ] {
        let path = env.write(name, text);
        let out = env
            .get("myacr.azurecr.io")
            .env("ACR_ENTRA_CONFIG", path.display().to_string())
            .connect_to(&acr.connect_to())
            .run();
        let line = out.assert_loud_error();
        assert!(
            line.contains(&path.display().to_string()),
            "{name}: the error names the file: {line}"
        );
        assert_eq!(out.stderr, "", "{out:?}");
    }
    assert_eq!(acr.server.connection_count(), 0);
}

#[test]
fn two_registries_two_service_principals_in_two_tenants() {
    let w = World::start("myacr.azurecr.io")
        .auto()
        .with_registry("other.azurecr.io");
    let (env, entra) = (&w.env, &w.entra);
    let (one, two) = (&w.acr, w.registry("other.azurecr.io"));
    let config = env.config(&json!({"registries": {
            "myacr.azurecr.io": {"credential": "client-secret", "tenant_id": "tenant-a", "client_id": "app-a"},
            "other.azurecr.io": {"credential": "client-secret", "tenant_id": "tenant-b", "client_id": "app-b"},
        }}),
    );
    let run = |host: &str| w.get_with(host).env("ACR_ENTRA_CONFIG", &config).run();
    let out_one = run("myacr.azurecr.io");
    out_one.assert_answer(
        "myacr.azurecr.io",
        one.issued().first().map_or("<none>", |s| s.as_str()),
    );
    let out_two = run("other.azurecr.io");
    out_two.assert_answer(
        "other.azurecr.io",
        two.issued().first().map_or("<none>", |s| s.as_str()),
    );
    let reqs = entra.token_requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        (reqs[0].tenant.as_str(), reqs[0].get("client_id")),
        ("tenant-a", Some("app-a"))
    );
    assert_eq!(
        (reqs[1].tenant.as_str(), reqs[1].get("client_id")),
        ("tenant-b", Some("app-b"))
    );
    assert_eq!(one.exchanges()[0].get("tenant"), Some("tenant-a"));
    assert_eq!(two.exchanges()[0].get("tenant"), Some("tenant-b"));
    assert_eq!(one.exchanges()[0].get("service"), Some("myacr.azurecr.io"));
    assert_eq!(two.exchanges()[0].get("service"), Some("other.azurecr.io"));
    assert_eq!(jwt::decode(&one.issued()[0]).1["appid"], "app-a");
    assert_eq!(jwt::decode(&two.issued()[0]).1["appid"], "app-b");
    // Each registry keeps its own cache entry: going back to the first is a hit.
    run("myacr.azurecr.io").assert_answer("myacr.azurecr.io", &one.issued()[0]);
    assert_eq!(entra.request_count(), 2);
}

#[test]
fn two_registries_two_managed_identities() {
    let env = TestEnv::new();
    let imds = FakeImds::start();
    let one = FakeAcr::start("myacr.azurecr.io");
    let two = FakeAcr::start("other.azurecr.io");
    let config = env.config(&json!({"registries": {
            "myacr.azurecr.io": {"credential": "managed-identity", "client_id": "uami-a", "tenant_id": "tenant-a"},
            "other.azurecr.io": {"credential": "managed-identity", "client_id": "uami-b", "tenant_id": "tenant-b"},
        }}),
    );
    for (host, acr) in [("myacr.azurecr.io", &one), ("other.azurecr.io", &two)] {
        let out = env
            .get(host)
            .env("ACR_ENTRA_CONFIG", &config)
            .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.authority())
            .connect_to(&one.connect_to())
            .connect_to(&two.connect_to())
            .run();
        out.assert_answer(host, acr.issued().first().map_or("<none>", |s| s.as_str()));
    }
    let ids: Vec<Option<String>> = imds
        .token_requests()
        .iter()
        .map(|r| r.query_param("client_id"))
        .collect();
    assert_eq!(
        ids,
        [Some("uami-a".to_string()), Some("uami-b".to_string())]
    );
    assert_eq!(one.exchanges()[0].get("tenant"), Some("tenant-a"));
    assert_eq!(two.exchanges()[0].get("tenant"), Some("tenant-b"));
}

#[test]
fn listed_loopback_registry_may_use_plain_http() {
    let w = World::plain_loopback().auto();
    let (env, acr) = (&w.env, &w.acr);
    let host = acr.host();
    let config = env.config(&json!({"registries": {&host: {"credential": "client-secret"}}}));
    let input = format!("http://{host}");
    let out = w.get_with(&input).env("ACR_ENTRA_CONFIG", &config).run();
    out.assert_answer(
        &input,
        acr.issued().first().map_or("<none>", |s| s.as_str()),
    );
    assert_eq!(acr.exchanges()[0].get("service"), Some(host.as_str()));
}

#[test]
fn plain_http_input_for_a_public_acr_host_never_sends_a_token_over_http() {
    let w = World::start("myacr.azurecr.io");
    let tls_acr = &w.acr;
    let plain = FakeAcr::start_plain_loopback();
    let out = w
        .get_with("http://myacr.azurecr.io")
        .connect_to(&format!("myacr.azurecr.io:80:127.0.0.1:{}", plain.port()))
        .run();
    assert_eq!(
        plain.server.connection_count(),
        0,
        "nothing over plain http: {out:?}"
    );
    // Either answered over https or refused; never a token on port 80.
    if out.code == Some(0) {
        out.assert_answer("http://myacr.azurecr.io", &tls_acr.issued()[0]);
    } else {
        out.assert_loud_error();
    }
}

/// With the helper as docker's `credsStore`, every Docker Hub pull asks it: a config file
/// that cannot be used (it only concerns ACR registries) must not break those. A host
/// that is not an ACR login server gets what it would get without the file (stored
/// credentials, else not-found) and one warning naming the file and the problem; an ACR
/// host still fails loudly on it.
#[test]
fn unusable_config_file_leaves_other_registries_working() {
    let env = TestEnv::new();
    let acr = FakeAcr::start("myacr.azurecr.io");
    let broken = env.write("broken.json", r#"{"registries": {"#);
    let broken = broken.display().to_string();
    let missing = env.path("missing.json").display().to_string();
    for (config, problem) in [
        (
            &broken,
            format!(
                "acr-entra warn: config file `{broken}` is not valid: EOF while parsing an object at line 1 column 16; answering `docker.io` without the config file\n"
            ),
        ),
        (
            &missing,
            format!(
                "acr-entra warn: ACR_ENTRA_CONFIG names `{missing}`, which does not exist: create it, or unset ACR_ENTRA_CONFIG to use the default location; answering `docker.io` without the config file\n"
            ),
        ),
    ] {
        let out = env.get("docker.io").env("ACR_ENTRA_CONFIG", config).run();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (
                Some(1),
                "credentials not found in native keychain\n",
                problem.as_str()
            )
        );
        let out = env
            .get("myacr.azurecr.io")
            .env("ACR_ENTRA_CONFIG", config)
            .connect_to(&acr.connect_to())
            .run();
        let line = out.assert_loud_error();
        assert!(line.contains(config.as_str()), "{line}");
        assert_eq!(out.stderr, "", "{out:?}");
    }
    // A Docker Hub login stored earlier is still answered.
    let stored =
        json!({"ServerURL": "https://index.docker.io/v1/", "Username": "me", "Secret": "hub-pat"});
    let out = env.helper().arg("store").stdin(stored.to_string()).run();
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = env
        .get("https://index.docker.io/v1/")
        .env("ACR_ENTRA_CONFIG", &broken)
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "{\"ServerURL\":\"https://index.docker.io/v1/\",\"Username\":\"me\",\"Secret\":\"hub-pat\"}\n"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    // `docker login`, `docker logout` and a classic build's `list` keep working for
    // Docker Hub: each says the problem once and does its work without the file.
    let warned = |doing: &str| {
        format!(
            "acr-entra warn: config file `{broken}` is not valid: EOF while parsing an object at line 1 column 16; {doing} without the config file\n"
        )
    };
    let hub = json!({"ServerURL": "docker.io", "Username": "me", "Secret": "hub-pat-2"});
    let out = env
        .helper()
        .arg("store")
        .env("ACR_ENTRA_CONFIG", &broken)
        .stdin(hub.to_string())
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr),
        (Some(0), "", warned("storing `docker.io`"))
    );
    let out = env
        .helper()
        .arg("list")
        .env("ACR_ENTRA_CONFIG", &broken)
        .run();
    assert_eq!(
        (out.code, out.stderr),
        (Some(0), warned("listing what is stored"))
    );
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        listed,
        json!({"https://index.docker.io/v1/": "me", "docker.io": "me"})
    );
    let out = env
        .helper()
        .arg("erase")
        .env("ACR_ENTRA_CONFIG", &broken)
        .stdin("docker.io")
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr),
        (Some(0), "", warned("erasing `docker.io`"))
    );
    assert_eq!(env.get("docker.io").run().code, Some(1), "erased");
    // The same verbs about an ACR host fail on the file, on stdout, where docker shows it.
    let acr_login = json!({"ServerURL": "myacr.azurecr.io", "Username": "admin", "Secret": "pw"});
    for (verb, input) in [
        ("store", acr_login.to_string()),
        ("erase", "myacr.azurecr.io".to_string()),
    ] {
        let out = env
            .helper()
            .arg(verb)
            .env("ACR_ENTRA_CONFIG", &broken)
            .stdin(input)
            .run();
        let line = out.assert_loud_error();
        assert!(line.contains(broken.as_str()), "{verb}: {line}");
        assert_eq!(out.stderr, "", "{verb}: {out:?}");
    }
    assert_eq!(acr.server.connection_count(), 0);
}

/// A custom domain the config file lists is served as an ACR host is: a variable that
/// cannot be used fails its requests, on stdout, instead of a mint on a default value
/// (another credential kind, another time budget); an unlisted host is still answered.
#[test]
fn a_listed_custom_domain_fails_on_a_value_that_cannot_be_used() {
    let w = World::localhost().auto();
    let host = w.acr.host();
    let config = w
        .env
        .config(&json!({"registries": {&host: {"credential": "client-secret"}}}));
    for (name, value, expected) in [
        (
            "ACR_ENTRA_CREDENTIAL",
            "workload-identty",
            "ACR_ENTRA_CREDENTIAL=`workload-identty` is not a credential kind (use one of ",
        ),
        (
            "ACR_ENTRA_TIMEOUT",
            "soon",
            "ACR_ENTRA_TIMEOUT=`soon` is not a duration (use seconds, e.g. 10 or 2.5)",
        ),
        (
            "AZURE_CLIENT_SECRET",
            "secret-value\r",
            "AZURE_CLIENT_SECRET ends with a carriage return (\\r): remove it",
        ),
    ] {
        let out = w
            .get_with(&host)
            .env("ACR_ENTRA_CONFIG", &config)
            .env(name, value)
            .run();
        let line = out.assert_loud_error();
        assert!(line.starts_with(expected), "{name}: {out:?}");
        assert_eq!(out.stderr, "", "{name}: {out:?}");
        let out = w
            .env
            .get("ghcr.io")
            .env("ACR_ENTRA_CONFIG", &config)
            .env(name, value)
            .run();
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(1), "credentials not found in native keychain\n"),
            "{name}: {out:?}"
        );
        assert!(
            out.stderr
                .starts_with(&format!("acr-entra warn: {expected}")),
            "{out:?}"
        );
        assert!(
            out.stderr.ends_with("; answering `ghcr.io` regardless\n"),
            "{out:?}"
        );
    }
    assert_eq!(w.acr.exchanges().len(), 0, "nothing minted");
}

/// A config file named by ACR_ENTRA_CONFIG that is not there is a typo or a missing
/// mount, not "no config": one line naming the variable and the path. The default
/// location may be absent.
#[test]
fn named_config_file_that_does_not_exist_is_an_error() {
    let env = TestEnv::new();
    let missing = env.path("nowhere").join("config.json");
    let out = env
        .get("myacr.azurecr.io")
        .env("ACR_ENTRA_CONFIG", missing.display().to_string())
        .run();
    assert_eq!(
        (out.code, out.stdout, out.stderr),
        (
            Some(1),
            format!(
                "ACR_ENTRA_CONFIG names `{}`, which does not exist: create it, or unset ACR_ENTRA_CONFIG to use the default location\n",
                missing.display()
            ),
            String::new()
        )
    );
    // The default location (XDG_CONFIG_HOME/acr-entra/config.json) is absent here.
    env.get("ghcr.io").run().assert_not_found();
    let out = env.helper().arg("list").run();
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "{}\n"));
}

/// Values from a `.env` file with Windows line endings end in `\r`; `set X=abc ` in cmd
/// ends in a space. The error names the variable and the character, one line, and never
/// shows the value (some are secrets).
#[test]
fn stray_characters_in_variables_are_named_without_the_value() {
    let w = World::start("myacr.azurecr.io");
    for (name, value, expected) in [
        (
            "AZURE_CLIENT_ID",
            "client-id-value\r",
            "AZURE_CLIENT_ID ends with a carriage return (\\r): remove it (a file saved with Windows line endings leaves one on every line; `dos2unix` or `sed -i 's/\\r$//'` fixes the file)",
        ),
        (
            "AZURE_CLIENT_SECRET",
            "secret-value-7Q~x\r",
            "AZURE_CLIENT_SECRET ends with a carriage return (\\r): remove it (a file saved with Windows line endings leaves one on every line; `dos2unix` or `sed -i 's/\\r$//'` fixes the file)",
        ),
        (
            "AZURE_TENANT_ID",
            "tenant-value ",
            "AZURE_TENANT_ID ends with a space: remove it",
        ),
        (
            "AZURE_CLIENT_SECRET",
            " secret-value-7Q~x",
            "AZURE_CLIENT_SECRET starts with a space: remove it",
        ),
        (
            "ACR_ENTRA_CONFIG",
            "/etc/acr-entra.json\r",
            "ACR_ENTRA_CONFIG ends with a carriage return (\\r): remove it (a file saved with Windows line endings leaves one on every line; `dos2unix` or `sed -i 's/\\r$//'` fixes the file)",
        ),
    ] {
        let out = w.get().env(name, value).run();
        assert_eq!(
            (out.code, out.stdout.clone(), out.stderr.as_str()),
            (Some(1), format!("{expected}\n"), ""),
            "{name}"
        );
        assert!(!out.stdout.contains(value.trim()), "{out:?}");
    }
    // Docker Hub pulls through `credsStore` do not depend on these: answered as always,
    // with the problem said once on stderr.
    let out = w
        .env
        .get("docker.io")
        .env("AZURE_CLIENT_SECRET", "secret-value-7Q~x\r")
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (
            Some(1),
            "credentials not found in native keychain\n",
            "acr-entra warn: AZURE_CLIENT_SECRET ends with a carriage return (\\r): remove it (a file saved with Windows line endings leaves one on every line; `dos2unix` or `sed -i 's/\\r$//'` fixes the file); answering `docker.io` regardless\n"
        )
    );
    // A value that cannot be used (a log level, a duration) is the same: the ACR host
    // fails on it, Docker Hub is answered with the problem said once.
    for (name, value, expected) in [
        (
            "ACR_ENTRA_LOG",
            "loud",
            "ACR_ENTRA_LOG=`loud` is not a level (use error, warn, info, debug or trace)",
        ),
        (
            "ACR_ENTRA_TIMEOUT",
            "soon",
            "ACR_ENTRA_TIMEOUT=`soon` is not a duration (use seconds, e.g. 10 or 2.5)",
        ),
        (
            "ACR_ENTRA_FEDERATED_TOKEN_ENV",
            "MY-TOKEN",
            "ACR_ENTRA_FEDERATED_TOKEN_ENV=`MY-TOKEN` is not an environment variable name (letters, digits and `_`)",
        ),
    ] {
        let out = w.get().env(name, value).run();
        assert_eq!(
            (out.code, out.stdout.clone(), out.stderr.as_str()),
            (Some(1), format!("{expected}\n"), ""),
            "{name}"
        );
        let out = w.env.get("docker.io").env(name, value).run();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr),
            (
                Some(1),
                "credentials not found in native keychain\n",
                format!("acr-entra warn: {expected}; answering `docker.io` regardless\n")
            ),
            "{name}"
        );
    }
    // A certificate password may really end in a space; a carriage return it never has.
    let out = w
        .get()
        .env("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pass word ")
        .run();
    out.assert_answer("myacr.azurecr.io", &w.issued()[0]);
    assert_eq!(w.entra.request_count(), 1, "nothing else reached Entra");
}
