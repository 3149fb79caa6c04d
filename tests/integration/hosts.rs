//! Hostile hosts: a corpus of server URLs (look-alike suffixes, userinfo, ports,
//! IP literals, IDN and punycode, case, trailing dots, control characters, whitespace,
//! paths, queries, fragments, long names, empty input) run through the built helper's
//! `get`. Every outbound request goes through a catch-all proxy (`HTTPS_PROXY`) and Entra
//! is a loopback fake, so "no request" is observed, not assumed: a non-ACR name must
//! cause zero connections anywhere, and an ACR name may only ever be contacted as itself.
//! Also: no 3xx from the challenge, the exchange or Entra is followed with a token.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::support::env::NOT_FOUND;
use crate::support::hostile::{self, CatchAllProxy, target_host};
use crate::support::*;

const CLIENT: &str = "cccccccc-8888-2222-3333-444444444444";
const SECRET: &str = "hardening-hosts-client-secret";
const TENANT: &str = "tenant-hardening-hosts";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    /// An ACR login server: the helper may contact exactly this host (normalised).
    Acr(String),
    /// Not ACR: `credentials not found in native keychain`, no request at all.
    NotAcr,
    /// Malformed input (empty, control characters, not UTF-8): a one-line usage error,
    /// no request at all.
    Rejected,
}

fn corpus() -> Vec<(Vec<u8>, Verdict)> {
    use Verdict::*;
    let mut out: Vec<(Vec<u8>, Verdict)> = Vec::new();
    let mut add = |input: &str, v: Verdict| out.push((input.as_bytes().to_vec(), v));
    let acr = |h: &str| Acr(h.to_string());

    // ACR login servers in every form a client sends.
    for (input, host) in [
        ("myacr.azurecr.io", "myacr.azurecr.io"),
        ("MYACR.AZURECR.IO", "myacr.azurecr.io"),
        ("MyAcr.AzureCr.Io", "myacr.azurecr.io"),
        ("myacr.azurecr.io.", "myacr.azurecr.io"),
        ("https://myacr.azurecr.io", "myacr.azurecr.io"),
        ("HTTPS://myacr.azurecr.io/", "myacr.azurecr.io"),
        ("https://myacr.azurecr.io/v2/", "myacr.azurecr.io"),
        (
            "https://myacr.azurecr.io/v2/library/alpine/manifests/3",
            "myacr.azurecr.io",
        ),
        ("http://myacr.azurecr.io", "myacr.azurecr.io"),
        ("myacr.azurecr.io:443", "myacr.azurecr.io"),
        ("https://myacr.azurecr.io:443/v2/", "myacr.azurecr.io"),
        ("myacr.azurecr.io:5000", "myacr.azurecr.io"),
        ("myacr.azurecr.io/library/alpine:3.19", "myacr.azurecr.io"),
        ("myacr.azurecr.io?x=1", "myacr.azurecr.io"),
        ("myacr.azurecr.io#frag", "myacr.azurecr.io"),
        ("myacr.azurecr.io/@evil.example", "myacr.azurecr.io"),
        ("myacr.azurecr.io/..%2f@evil.example", "myacr.azurecr.io"),
        ("myacr.azurecr.io?@evil.example", "myacr.azurecr.io"),
        ("myacr.azurecr.io#@evil.example", "myacr.azurecr.io"),
        // A look-alike slash after the host is part of the path, not of the host.
        ("myacr.azurecr.io/\u{2215}evil.example", "myacr.azurecr.io"),
        ("  myacr.azurecr.io  ", "myacr.azurecr.io"),
        ("myacr.azurecr.io\n", "myacr.azurecr.io"),
        ("myacr.azurecr.io\r\n", "myacr.azurecr.io"),
        ("\tmyacr.azurecr.io\t", "myacr.azurecr.io"),
        ("myacr-abc123.azurecr.io", "myacr-abc123.azurecr.io"),
        (
            "myacr.westeurope.geo.azurecr.io",
            "myacr.westeurope.geo.azurecr.io",
        ),
        ("fabrikam.azurecr.cn", "fabrikam.azurecr.cn"),
        ("contoso.azurecr.us", "contoso.azurecr.us"),
        (
            "contoso-abc123.eastus.geo.azurecr.io",
            "contoso-abc123.eastus.geo.azurecr.io",
        ),
        (
            "fabrikam-abc123.chinanorth3.geo.azurecr.cn",
            "fabrikam-abc123.chinanorth3.geo.azurecr.cn",
        ),
        (
            "contoso.usgovvirginia.geo.azurecr.us",
            "contoso.usgovvirginia.geo.azurecr.us",
        ),
        ("12345.azurecr.io", "12345.azurecr.io"),
    ] {
        add(input, acr(host));
    }
    let fifty = "a".repeat(50);
    add(
        &format!("{fifty}.azurecr.io"),
        acr(&format!("{fifty}.azurecr.io")),
    );

    // Look-alike suffixes and prefixes.
    for input in [
        "myacr.azurecr.io.evil.example",
        "myacr.azurecr.io.evil.example.",
        "https://myacr.azurecr.io.evil.example/v2/",
        "myacr.azurecr.io%2eevil.example",
        "myacr.azurecr.io%2Eevil.example",
        "myacr%2eazurecr.io",
        "myacr.azurecr%2eio",
        "myacr.azurecr.io%00.evil.example",
        "myacr.azurecr.io%0d%0a.evil.example",
        "myacr-azurecr.io",
        "myacrazurecr.io",
        "evil-azurecr.io",
        "azurecr.io",
        "AZURECR.IO",
        ".azurecr.io",
        "..azurecr.io",
        "azurecr.io.",
        "https://azurecr.io/v2/",
        "myacr.azurecr.iox",
        "myacr.azurecr.io-evil.example",
        "myacr.azurecr.io_evil.example",
        "myacr.azurecr.com",
        "myacr.azurecr.net",
        "myacr.azurecr.io.cn",
        "myacr.azurecr.io.us",
        "myacr.azurecr.cn.evil.example",
        "myacr.azurecr.us.evil.example",
        "myacr.azurecr.i0",
        "myacr.azurecr.lo",
        "myacr.azurecrio",
        "myacr.azure-cr.io",
        "myacr.azurecr..io",
        "myacr..azurecr.io",
        "myacr.azurecr.io..",
        "evil.myacr.azurecr.io",
        "a.b.myacr.azurecr.io",
        "x.myacr.westeurope.geo.azurecr.io",
        "myacr.westeurope.data.azurecr.io",
        "myacr-abc123.westeurope.data.azurecr.io",
        "fabrikam.chinanorth3.data.azurecr.cn",
        "contoso.usgovvirginia.data.azurecr.us",
        "myacr.westeurope.data.azurecr.io.evil.example",
        "myacr.geo.azurecr.io",
        "myacr-abc123.geo.azurecr.io",
        "myacr.west-europe.geo.azurecr.io",
        "myacr.westeurope.geo.azurecr.io.evil.example",
        "my_acr.azurecr.io",
        "my-acr-x.azurecr.io",
        "-myacr.azurecr.io",
        "myacr-.azurecr.io",
        "myacr--abc.azurecr.io",
        "myacr-0123456789abcdefg.azurecr.io",
        "a.azurecr.io",
        "abcd.azurecr.io",
        "mcr.microsoft.com",
        "docker.io",
        "index.docker.io",
        "https://index.docker.io/v1/",
        "registry-1.docker.io",
        "ghcr.io",
        "quay.io",
        "gcr.io",
        "public.ecr.aws",
        "123456789012.dkr.ecr.us-west-2.amazonaws.com",
        "registry.example.com",
        "localhost",
        "localhost:5000",
        "evil.example",
        "myacr.azurecr.io.localhost",
        "azurecr.io.evil.example",
        "evilazurecr.io",
        "myacr.evil.example/azurecr.io",
        "https://evil.example/myacr.azurecr.io",
        "https://evil.example/?myacr.azurecr.io",
        "https://evil.example#myacr.azurecr.io",
        "evil.example?.azurecr.io",
        "evil.example#.azurecr.io",
    ] {
        add(input, NotAcr);
    }
    add(&format!("{}.azurecr.io", "a".repeat(51)), NotAcr);
    add(&format!("{}.azurecr.io", "a".repeat(64)), NotAcr);
    add(&format!("myacr.{}.geo.azurecr.io", "r".repeat(41)), NotAcr);

    // Userinfo, in every place it can hide.
    for input in [
        "myacr.azurecr.io@evil.example",
        "evil.example@myacr.azurecr.io",
        "user:pass@myacr.azurecr.io",
        "user@myacr.azurecr.io",
        "@myacr.azurecr.io",
        "myacr.azurecr.io@",
        "https://myacr.azurecr.io@evil.example/",
        "https://evil.example@myacr.azurecr.io/",
        "https://user:pw@myacr.azurecr.io/v2/",
        "myacr.azurecr.io:443@evil.example",
        "myacr.azurecr.io%40evil.example",
        "myacr.azurecr.io\\@evil.example",
        "myacr.azurecr.io\\.evil.example",
        "https://myacr.azurecr.io\\@evil.example/",
        "evil.example\\myacr.azurecr.io",
        "https:\\\\myacr.azurecr.io",
        "myacr.azurecr.io%5c@evil.example",
    ] {
        add(input, NotAcr);
    }

    // Schemes other than http(s), and broken URLs.
    for input in [
        "ftp://myacr.azurecr.io",
        "oci://myacr.azurecr.io",
        "docker://myacr.azurecr.io",
        "file:///etc/passwd",
        "javascript://myacr.azurecr.io",
        "https:/myacr.azurecr.io",
        "https:myacr.azurecr.io",
        "//myacr.azurecr.io",
        "https:////myacr.azurecr.io",
        "https://",
        "https:///v2/",
        "http://",
        "https://?",
        "https://#",
        "https://:443",
        ":443",
        "/v2/",
        "?",
        "#",
        "https://https://myacr.azurecr.io",
        "https://evil.example://myacr.azurecr.io",
    ] {
        add(input, NotAcr);
    }

    // Ports.
    for input in [
        "myacr.azurecr.io:notaport",
        "myacr.azurecr.io:99999",
        "myacr.azurecr.io:65536",
        "myacr.azurecr.io:0",
        "myacr.azurecr.io:-1",
        "myacr.azurecr.io:+443",
        "myacr.azurecr.io: 443",
        "myacr.azurecr.io:443:443",
        "myacr.azurecr.io:",
        "myacr.azurecr.io:0x1bb",
        "myacr.azurecr.io:000443",
        "myacr.azurecr.io:443.evil.example",
        "evil.example:443",
        "evil.example:443/myacr.azurecr.io",
    ] {
        add(input, NotAcr);
    }

    // IP literals, IPv6, metadata addresses.
    for input in [
        "127.0.0.1",
        "127.0.0.1:5000",
        "http://127.0.0.1:5000",
        "0.0.0.0",
        "10.0.0.1",
        "169.254.169.254",
        "http://169.254.169.254/metadata/identity/oauth2/token",
        "169.254.169.254.azurecr.io",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "[::1]",
        "[::1]:5000",
        "http://[::1]:5000/",
        "[::ffff:127.0.0.1]",
        "[fe80::1%25eth0]",
        "[::1",
        "::1]",
        "::1",
        "[]",
        "[myacr.azurecr.io]",
        "[::1]myacr.azurecr.io",
        "[::1]:443@myacr.azurecr.io",
        "[2001:db8::1]:443",
        "fd00::1",
    ] {
        add(input, NotAcr);
    }

    // IDN, punycode and Unicode look-alikes.
    for input in [
        "xn--myacr-xyz.azurecr.io",
        "xn--myacr-xyz.azurecr.io.evil",
        "xn--80ak6aa92e.azurecr.io",
        "myacr.xn--azurecr-6ya.io",
        "myacr.azurecr.xn--io-ufa",
        "myаcr.azurecr.io",      // Cyrillic a
        "myacr.аzurecr.io",      // Cyrillic a in the suffix
        "myacr．azurecr.io",     // full-width dot
        "myacr。azurecr.io",     // ideographic full stop
        "myacr.azurecr.ｉｏ",    // full-width letters
        "ｍｙａｃｒ.azurecr.io", // full-width name
        "myacr.azurecr.io\u{200b}",
        "myacr\u{200b}.azurecr.io",
        "myacr.azurecr.io\u{00a0}evil.example",
        "myacr.azurecr.io\u{2024}evil.example",
        "myacr.azurecr.io\u{ff0e}evil.example",
        "myacr.azurecr.io\u{fe52}evil.example",
        "myacr\u{0307}.azurecr.io",
        "mуacr.azurecr.io", // Cyrillic u
    ] {
        add(input, NotAcr);
    }

    // Whitespace inside, and characters that are not in host names.
    for input in [
        "myacr.azurecr.io evil.example",
        "evil.example myacr.azurecr.io",
        "myacr .azurecr.io",
        "myacr.azurecr.io%20",
        "my%61cr.azurecr.io",
        "myacr.azurecr.io;evil.example",
        "myacr.azurecr.io,evil.example",
        "myacr.azurecr.io|evil.example",
        "myacr.azurecr.io*",
        "*.azurecr.io",
        "myacr.azurecr.io!",
        "myacr.azurecr.io$",
        "myacr.azurecr.io'",
        "myacr.azurecr.io\"",
        "myacr.azurecr.io<script>",
        "{\"ServerURL\":\"myacr.azurecr.io\"}",
        "myacr.azurecr.io=evil.example",
        "myacr.azurecr.io~",
        "`myacr.azurecr.io`",
        "$(echo myacr.azurecr.io)",
    ] {
        add(input, NotAcr);
    }

    // Long names.
    let label63 = "a".repeat(63);
    add(&format!("{label63}.example"), NotAcr);
    add(&format!("{}.example", "a".repeat(64)), NotAcr);
    add(&format!("{}azurecr.io", "a.".repeat(130)), NotAcr);
    add(&format!("myacr.azurecr.io.{}", "a.".repeat(130)), NotAcr);
    add(
        &format!("https://myacr.azurecr.io.{}/v2/", "x".repeat(1000)),
        NotAcr,
    );
    add(&"a".repeat(60_000), NotAcr);
    add(
        &format!("myacr.azurecr.io{}", "/".repeat(30_000)),
        acr("myacr.azurecr.io"),
    );

    // Malformed input: a one-line usage error, never "not found", never a request.
    for input in [
        "",
        " ",
        "\n",
        "\r\n",
        "\t \n",
        "myacr.azurecr.io\0",
        "myacr.azurecr.io\0.evil.example",
        "\0myacr.azurecr.io",
        "myacr.azurecr.io\r\nHost: evil.example",
        "myacr.azurecr.io\nevil.example",
        "myacr.azurecr.io\revil.example",
        "evil.example\nmyacr.azurecr.io",
        "myacr.azurecr.io\x1b[2J",
        "myacr.azurecr.io\x7f",
        "myacr.azurecr.io\u{85}evil.example",
        "myacr\x08.azurecr.io",
    ] {
        add(input, Rejected);
    }
    out.push((b"myacr.azurecr.io\xff".to_vec(), Rejected));
    out.push((b"\xfe\xffmyacr.azurecr.io".to_vec(), Rejected));
    out.push((b"myacr.azurecr.io\xc0\xae".to_vec(), Rejected));
    out.push((vec![b'a'; 70_000], Rejected));
    out
}

#[test]
// The figures go to the README's Security section: print them (`--nocapture`).
#[allow(clippy::print_stderr)]
fn hostile_host_corpus() {
    let corpus = corpus();
    let mut seen = std::collections::HashSet::new();
    for (input, _) in &corpus {
        assert!(
            seen.insert(input.clone()),
            "duplicate corpus entry {:?}",
            String::from_utf8_lossy(input)
        );
    }
    assert!(corpus.len() >= 200, "corpus has {} entries", corpus.len());

    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let proxy = CatchAllProxy::start();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (input, verdict) in &corpus {
        let show = String::from_utf8_lossy(&input[..input.len().min(80)]).into_owned();
        let before_proxy = proxy.targets().len();
        let before_proxy_conn = proxy.connections();
        let before_entra = entra.server.connection_count();
        let out = env
            .helper()
            .arg("get")
            .stdin(input)
            .env("ACR_ENTRA_CREDENTIAL", "client-secret")
            .env("ACR_ENTRA_TIMEOUT", "3")
            .env("HTTPS_PROXY", proxy.url())
            .env("HTTP_PROXY", proxy.url())
            .env("ALL_PROXY", proxy.url())
            .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
            .run();
        let new_targets: Vec<String> = proxy.targets()[before_proxy..].to_vec();
        let new_conns = proxy.connections() - before_proxy_conn;
        let entra_conns = entra.server.connection_count() - before_entra;
        let mut fail = |why: String| failures.push(format!("{show:?}: {why}; {out:?}"));
        if out.stdout.contains(SECRET) || out.stderr.contains(SECRET) {
            fail("client secret printed".into());
        }
        if out.elapsed > env::scaled(Duration::from_secs(15)) {
            fail(format!("took {:?}", out.elapsed));
        }
        match verdict {
            Verdict::Acr(host) => {
                *counts.entry("acr").or_default() += 1;
                if out.code != Some(1) || out.stdout.trim() == NOT_FOUND {
                    fail(
                        "an ACR host must be tried (and fail loudly at the refusing proxy)".into(),
                    );
                }
                if new_targets.is_empty() {
                    fail("no request reached the proxy".into());
                }
                for t in &new_targets {
                    if target_host(t) != *host {
                        fail(format!("request to `{t}`, expected only `{host}`"));
                    }
                }
            }
            Verdict::NotAcr | Verdict::Rejected => {
                let name = if *verdict == Verdict::NotAcr {
                    "not-acr"
                } else {
                    "rejected"
                };
                *counts.entry(name).or_default() += 1;
                if new_conns != 0 || entra_conns != 0 {
                    fail(format!(
                        "{new_conns} proxy and {entra_conns} Entra connections for a non-ACR name ({new_targets:?})"
                    ));
                }
                // stderr stays empty, but for the one line that names the login
                // server a near miss (`azurecr.com`) probably meant.
                let hint_only = out.stderr.is_empty()
                    || (out.stderr.starts_with("acr-entra warn: `")
                        && out
                            .stderr
                            .contains("` is not an ACR login server; did you mean `")
                        && out.stderr.ends_with(".azurecr.io`?\n")
                        && out.stderr.lines().count() == 1);
                if out.code != Some(1) || !hint_only {
                    fail("expected exit 1 and empty stderr (or the near-miss hint)".into());
                }
                let line = out.stdout.strip_suffix('\n').unwrap_or(&out.stdout);
                if line.contains('\n') || line.contains('\r') {
                    fail("stdout is more than one line".into());
                }
                if *verdict == Verdict::NotAcr && line != NOT_FOUND {
                    fail(format!("expected `{NOT_FOUND}`"));
                }
                if *verdict == Verdict::Rejected && (line == NOT_FOUND || line.is_empty()) {
                    fail("malformed input must be a usage error".into());
                }
            }
        }
    }
    eprintln!(
        "hostile host corpus: {} inputs, verdicts {counts:?}; proxy saw {} requests in all, Entra {} connections",
        corpus.len(),
        proxy.targets().len(),
        entra.server.connection_count()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const HOST: &str = "myacr.azurecr.io";

/// Runs `get` for HOST against the scripted registry `acr`, with Entra `entra`.
fn get_via(env: &TestEnv, entra: &str, acr: &http::Server) -> Output {
    env.get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "client-secret")
        .env("ACR_ENTRA_TIMEOUT", "3")
        .client_secret(entra, CLIENT, SECRET, TENANT)
        .connect_to(&format!("{HOST}:443:127.0.0.1:{}", acr.port()))
        .run()
}

const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

#[test]
fn exchange_redirects_are_never_followed() {
    for status in REDIRECTS {
        let env = TestEnv::new();
        let entra = FakeEntra::start();
        let evil = hostile::scripted(|_| http::Resp::text(200, "{}"));
        let to = format!("https://localhost:{}/oauth2/exchange", evil.port());
        let acr = hostile::scripted_acr(HOST, None, move |_| hostile::redirect(status, &to));
        let out = get_via(&env, &entra.authority(), &acr);
        let line = out.assert_loud_error();
        assert!(line.contains(&status.to_string()), "{status}: {line}");
        assert_eq!(
            evil.connection_count(),
            0,
            "{status}: redirect target contacted"
        );
        assert!(
            acr.requests().iter().any(|r| r.path == "/oauth2/exchange"),
            "{status}: exchange reached"
        );
    }
}

#[test]
fn challenge_redirects_are_never_followed() {
    for status in REDIRECTS {
        let env = TestEnv::new();
        let entra = FakeEntra::start();
        let evil = hostile::scripted(|_| http::Resp::text(200, "{}"));
        let to = format!("https://localhost:{}/v2/", evil.port());
        let v2: Arc<dyn Fn(&http::Req) -> http::Resp + Send + Sync> =
            Arc::new(move |_| hostile::redirect(status, &to));
        let acr = hostile::scripted_acr(HOST, Some(v2), |_| {
            http::Resp::json(
                200,
                &serde_json::json!({"refresh_token": jwt::acr_refresh_token(HOST, TENANT, CLIENT)}),
            )
        });
        let out = get_via(&env, &entra.authority(), &acr);
        // A 3xx is no challenge: the helper falls back to HOST's own exchange.
        assert_eq!(out.code, Some(0), "{status}: {out:?}");
        assert_eq!(
            evil.connection_count(),
            0,
            "{status}: redirect target contacted"
        );
        let exchanges: Vec<_> = acr
            .requests()
            .into_iter()
            .filter(|r| r.path == "/oauth2/exchange")
            .collect();
        assert_eq!(exchanges.len(), 1, "{status}");
    }
}

#[test]
fn entra_redirects_are_never_followed() {
    for status in REDIRECTS {
        let env = TestEnv::new();
        let evil = hostile::scripted(hostile::entra_ok);
        let evil_port = evil.port();
        let entra = hostile::scripted(move |req| {
            hostile::redirect(
                status,
                &format!("https://localhost:{evil_port}{}", req.path),
            )
        });
        let acr = FakeAcr::start(HOST);
        let out = env
            .get(HOST)
            .env("ACR_ENTRA_CREDENTIAL", "client-secret")
            .env("ACR_ENTRA_TIMEOUT", "3")
            .client_secret(&hostile::authority(&entra), CLIENT, SECRET, TENANT)
            .connect_to(&acr.connect_to())
            .run();
        out.assert_loud_error();
        assert!(!out.stdout.contains(SECRET));
        assert_eq!(
            evil.connection_count(),
            0,
            "{status}: redirect target got the client secret"
        );
        assert_eq!(acr.exchange_count(), 0, "{status}");
        out.assert_within(Duration::from_secs(20));
    }
}

/// A typo'd login server is still "not found" (the client goes anonymous, no request is
/// made), with one stderr line naming the login server it probably meant; other hosts
/// stay silent.
#[test]
fn a_near_miss_acr_name_is_not_found_with_a_suggestion() {
    let env = TestEnv::new();
    let out = env.get("myacr.azureccr.io").run();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout_line(), env::NOT_FOUND);
    assert_eq!(
        out.stderr,
        "acr-entra warn: `myacr.azureccr.io` is not an ACR login server; did you mean `myacr.azurecr.io`?\n"
    );
    env.get("docker.io").run().assert_not_found();
    env.get("myacr.azurecr.io.evil.example")
        .run()
        .assert_not_found();
}
