//! The docker credential-helper wire protocol — exact `get` answers for every
//! input form, not-found for non-ACR hosts without any network request, and one-line
//! errors on stdout for everything else.

use crate::support::*;

#[test]
fn get_answers_every_input_form_exactly() {
    let w = World::start("myacr.azurecr.io");
    let acr = &w.acr;
    let forms = [
        "myacr.azurecr.io",
        "https://myacr.azurecr.io",
        "https://myacr.azurecr.io/v2/",
        "https://myacr.azurecr.io/",
        "  myacr.azurecr.io\n",
        "\thttps://myacr.azurecr.io/v2/ \r\n",
    ];
    for form in forms {
        let out = w.get_with(form).run();
        let issued = acr.issued();
        let secret = issued.last().expect("the fake ACR issued a refresh token");
        out.assert_answer(form.trim(), secret);
    }
}

#[test]
fn get_accepts_mixed_case_regional_and_dnl_login_servers() {
    let w = World::start("myacr.azurecr.io")
        .with_registry("myacr.eastus.geo.azurecr.io")
        .with_registry("myacr-abh2c0fkbyfpgqd5.azurecr.io");
    for (input, host) in [
        ("MyAcr.AzureCR.io", "myacr.azurecr.io"),
        ("myacr.eastus.geo.azurecr.io", "myacr.eastus.geo.azurecr.io"),
        (
            "https://myacr-abh2c0fkbyfpgqd5.azurecr.io/v2/",
            "myacr-abh2c0fkbyfpgqd5.azurecr.io",
        ),
    ] {
        let acr = w.registry(host);
        let out = w.get_with(&format!("{input}\n")).run();
        out.assert_answer(input, acr.issued().first().map_or("<none>", |s| s.as_str()));
        assert_eq!(acr.exchanges()[0].get("service"), Some(host));
    }
}

#[test]
fn get_rejects_control_characters_without_requests() {
    let w = World::start("myacr.azurecr.io").auto();
    let (entra, acr) = (&w.entra, &w.acr);
    for input in [
        "myacr.azurecr.io\u{0}.evil.example",
        "myacr.azurecr.io\r.evil.example",
    ] {
        let out = w.get_with(input).run();
        assert_eq!(out.code, Some(1), "{input:?}: {out:?}");
        out.stdout_line();
        assert!(!out.stdout.contains("Secret"), "{out:?}");
    }
    assert_eq!(acr.server.connection_count(), 0);
    assert_eq!(entra.server.connection_count(), 0);
}

#[test]
fn get_non_acr_host_is_not_found_without_any_request() {
    let w = World::start("myacr.azurecr.io").auto();
    let (entra, acr) = (&w.entra, &w.acr);
    let imds = FakeImds::start();
    // Hostile names are routed to a fake ACR too, so a leaked token would be seen.
    let hosts = [
        "docker.io",
        "https://index.docker.io/v1/",
        "ghcr.io",
        "mcr.microsoft.com",
        "localhost:5000",
        "myacr.azurecr.io.evil.example",
        "evil-azurecr.io",
        "azurecr.io",
    ];
    let connect_to = [
        "docker.io",
        "index.docker.io",
        "ghcr.io",
        "mcr.microsoft.com",
        "myacr.azurecr.io.evil.example",
        "evil-azurecr.io",
        "azurecr.io",
    ]
    .iter()
    .map(|h| format!("{h}:443:127.0.0.1:{}", acr.port()))
    .collect::<Vec<_>>()
    .join(",");
    for host in hosts {
        let out = w
            .get_with(&format!("{host}\n"))
            .env("ACR_ENTRA_CONNECT_TO", &connect_to)
            .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.authority())
            .run();
        out.assert_not_found();
    }
    assert_eq!(entra.server.connection_count(), 0, "no request to Entra");
    assert_eq!(
        imds.server.connection_count(),
        0,
        "no managed identity probe"
    );
    assert_eq!(
        acr.server.connection_count(),
        0,
        "no request to any registry"
    );
}

#[test]
fn get_userinfo_host_is_never_sent_a_token() {
    let w = World::start("myacr.azurecr.io").auto();
    let (entra, acr) = (&w.entra, &w.acr);
    for input in [
        "myacr.azurecr.io@evil.example",
        "https://user@myacr.azurecr.io",
        "https://myacr.azurecr.io@evil.example/v2/",
    ] {
        let out = w
            .get_with(input)
            .connect_to(&format!("evil.example:443:127.0.0.1:{}", acr.port()))
            .run();
        assert_eq!(out.code, Some(1), "{input}: {out:?}");
        out.stdout_line();
        assert!(!out.stdout.contains("Secret"), "{input}: {out:?}");
    }
    assert_eq!(entra.server.connection_count(), 0);
    assert_eq!(acr.server.connection_count(), 0);
}

/// One line: `docker-credential-acr-entra VERSION` (scripts compare those two words),
/// then the commit, build date, linkage and target in parentheses.
#[test]
fn version_prints_one_line_name_and_version_first_then_the_build() {
    let env = TestEnv::new();
    let out = env.helper().arg("version").run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    let line = out
        .stdout
        .strip_suffix('\n')
        .expect("one line, ending in a newline");
    let details = line
        .strip_prefix(concat!(
            "docker-credential-acr-entra ",
            env!("CARGO_PKG_VERSION"),
            " ("
        ))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{out:?}"));
    let parts: Vec<&str> = details.split(", ").collect();
    assert_eq!(parts.len(), 4, "{out:?}");
    let commit = parts[0].strip_prefix("commit ").unwrap();
    assert!(
        commit == "unknown"
            || commit.len() >= 40 && commit[..40].bytes().all(|b| b.is_ascii_hexdigit()),
        "{out:?}"
    );
    let built = parts[1].strip_prefix("built ").unwrap();
    assert!(
        built == "unknown" || (built.len() == 23 && built.ends_with(" UTC")),
        "{out:?}"
    );
    assert!(["static", "dynamic"].contains(&parts[2]), "{out:?}");
    // The binary under test is this architecture's unless another build is named
    // (ACR_ENTRA_TEST_BIN: the arm64 helper under the native harness).
    let triple = parts[3];
    assert!(triple.split('-').count() >= 3, "{out:?}");
    if std::env::var_os("ACR_ENTRA_TEST_BIN").is_none() {
        assert!(
            triple.starts_with(&format!("{}-", std::env::consts::ARCH)),
            "{out:?}"
        );
    }
}

#[test]
fn help_exits_zero() {
    let env = TestEnv::new();
    for flag in ["--help", "-h"] {
        let out = env.helper().arg(flag).run();
        assert_eq!(out.code, Some(0), "{flag}: {out:?}");
        assert!(
            !out.stdout.trim().is_empty(),
            "{flag}: usage expected: {out:?}"
        );
        for verb in ["get", "store", "erase", "list", "version"] {
            assert!(
                out.stdout.contains(verb),
                "{flag}: usage should name `{verb}`: {out:?}"
            );
        }
    }
}

#[test]
fn unknown_verb_is_one_line_error() {
    let env = TestEnv::new();
    let out = env
        .helper()
        .arg("frobnicate")
        .stdin("myacr.azurecr.io\n")
        .run();
    let line = out.assert_loud_error();
    assert!(line.contains("frobnicate"), "{out:?}");
    assert_eq!(out.stderr, "");
}

#[test]
fn get_empty_stdin_is_one_line_error() {
    let env = TestEnv::new();
    for stdin in ["", "\n", "   \n"] {
        let out = env.get(stdin).run();
        out.assert_loud_error();
        assert_eq!(out.stderr, "", "{out:?}");
    }
}

#[test]
fn get_binary_garbage_is_one_line_error() {
    let env = TestEnv::new();
    let garbage: Vec<u8> = (0u8..=255)
        .chain([0, 0xff, 0xfe, b'\n', 0x1b, b'[', b'2', b'J'])
        .collect();
    let out = env.helper().arg("get").stdin(&garbage).run();
    out.assert_loud_error();
    assert_eq!(out.stderr, "", "{out:?}");
    let out = env.get("myacr.azurecr.io\nsecond.azurecr.io\n").run();
    assert_eq!(
        out.code,
        Some(1),
        "two lines on stdin are not one server URL: {out:?}"
    );
    out.stdout_line();
}

#[test]
fn stdout_carries_only_the_answer_even_with_logging() {
    let w = World::start("myacr.azurecr.io").auto();
    let acr = &w.acr;
    let out = w
        .get_with("myacr.azurecr.io\n")
        .env("ACR_ENTRA_LOG", "trace")
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout_line(),
        answer_json("myacr.azurecr.io", &acr.issued()[0])
    );
    assert!(
        !out.stderr.is_empty(),
        "trace logging goes to stderr: {out:?}"
    );
}

/// `list > /dev/full`: the answer could not be written, so the exit code says so.
#[test]
fn an_answer_that_cannot_be_written_is_exit_1() {
    let env = TestEnv::new();
    let out = env
        .helper()
        .wrapped(&["/bin/sh", "-c", "exec \"$0\" \"$@\" > /dev/full"])
        .arg("list")
        .run();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .starts_with("cannot write the answer to stdout: No space left on device"),
        "{out:?}"
    );
}
