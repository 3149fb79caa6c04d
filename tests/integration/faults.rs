//! Injected faults: every way Entra, the exchange, the registry, IMDS and the
//! `az`/`azd` tools can fail, run through the built helper with `ACR_ENTRA_TIMEOUT=2`.
//! Each case must end in one loud line on stdout and exit 1 (or, where the contract says
//! so, the stale-token fallback or a deliberate success), never a hang, a panic or a
//! secret in the output. The table prints each case's outcome and time; failures.rs
//! covers the single cases it already had (hangs, trickled exchange, 400/401/500, az).

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::json;

use crate::support::hostile::{self, assert_no_secret, scripted, scripted_acr};
use crate::support::http::{Req, Resp, dead_port};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const CLIENT: &str = "cccccccc-8888-3333-3333-444444444444";
const SECRET: &str = "hardening-faults-client-secret";
const TENANT: &str = "tenant-hardening-faults";
const TIMEOUT_SECS: u64 = 2;
/// Per case: challenge, Entra and up to two exchanges may each use the whole timeout,
/// plus process start and TLS; far below "hung".
const BOUND: Duration = Duration::from_secs(4 * TIMEOUT_SECS + 4);
const BIG: usize = 11 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Exit 1, one line, not the not-found text.
    Loud,
    /// Exit 0 with a token.
    Answer,
}

type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

fn entra_error(status: u16) -> Handler {
    Arc::new(move |_| {
        let resp = Resp::json(
            status,
            &json!({"error": "temporarily_unavailable", "error_description": format!("AADSTS50196: injected {status}")}),
        );
        if status == 429 || status == 503 {
            resp.header("retry-after", "1")
        } else {
            resp
        }
    })
}

fn body(status: u16, bytes: Vec<u8>) -> Handler {
    Arc::new(move |_| {
        Resp::new(status)
            .header("content-type", "application/json")
            .body(bytes.clone())
    })
}

fn trickled(inner: fn(&Req) -> Resp) -> Handler {
    Arc::new(move |req| inner(req).trickle())
}

fn exchange_ok(req: &Req) -> Resp {
    let _ = req;
    Resp::json(
        200,
        &json!({"refresh_token": jwt::acr_refresh_token(HOST, TENANT, CLIENT)}),
    )
}

fn acr_token_with(payload: serde_json::Value) -> Handler {
    Arc::new(move |_| {
        let token = jwt::make(&json!({"alg": "RS256", "typ": "JWT"}), &payload);
        Resp::json(200, &json!({"refresh_token": token}))
    })
}

fn acr_error(status: u16) -> Handler {
    Arc::new(move |_| {
        let resp = Resp::json(
            status,
            &json!({"errors": [{"code": "INJECTED", "message": format!("injected {status}")}]}),
        );
        if status == 429 {
            resp.header("retry-after", "1")
        } else {
            resp
        }
    })
}

/// One fault: who misbehaves and how, and what the helper must do.
struct Case {
    name: &'static str,
    entra: Option<Handler>,
    exchange: Option<Handler>,
    expect: Expect,
}

fn case(
    name: &'static str,
    entra: Option<Handler>,
    exchange: Option<Handler>,
    expect: Expect,
) -> Case {
    Case {
        name,
        entra,
        exchange,
        expect,
    }
}

struct Outcome {
    name: String,
    ok: Result<(), String>,
    elapsed: Duration,
    line: String,
}

impl Outcome {
    /// Print the case's row of the fault table (the README's figures come from these)
    /// and collect its failure, if any.
    #[allow(clippy::print_stderr)]
    fn report(&self, failures: &mut Vec<String>) {
        eprintln!(
            "fault | {:<40} | {:>6.2}s | {} | {}",
            self.name,
            self.elapsed.as_secs_f64(),
            if self.ok.is_ok() { "ok" } else { "FAIL" },
            self.line
        );
        if let Err(e) = &self.ok {
            failures.push(format!("{}: {e}", self.name));
        }
    }
}

/// Run one Entra/exchange case against scripted fakes.
fn run_case(c: &Case) -> Outcome {
    let env = TestEnv::new();
    let entra_handler: Handler = c
        .entra
        .clone()
        .unwrap_or_else(|| Arc::new(hostile::entra_ok));
    let entra = scripted(move |req| entra_handler(req));
    let exchange_handler: Handler = c.exchange.clone().unwrap_or_else(|| Arc::new(exchange_ok));
    let acr = scripted_acr(HOST, None, move |req| exchange_handler(req));
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "client-secret")
        .env("ACR_ENTRA_TIMEOUT", TIMEOUT_SECS.to_string())
        .env("ACR_ENTRA_LOG", "trace")
        .client_secret(&hostile::authority(&entra), CLIENT, SECRET, TENANT)
        .connect_to(&format!("{HOST}:443:127.0.0.1:{}", acr.port()))
        .run();
    judge(c.name, c.expect, &out)
}

fn judge(name: &str, expect: Expect, out: &Output) -> Outcome {
    let line = out
        .stdout
        .strip_suffix('\n')
        .unwrap_or(&out.stdout)
        .to_string();
    let mut problems = Vec::new();
    match expect {
        Expect::Loud => {
            if out.code != Some(1) {
                problems.push(format!("exit {:?}, expected 1", out.code));
            }
            if line.is_empty()
                || line.contains('\n')
                || line == NOT_FOUND_TEXT
                || line.starts_with('{')
            {
                problems.push("not one loud line".into());
            }
        }
        Expect::Answer => {
            if out.code != Some(0) || !line.starts_with('{') {
                problems.push(format!("exit {:?}, expected an answer", out.code));
            }
        }
    }
    if out.elapsed > BOUND {
        problems.push(format!("took {:?} > {BOUND:?}", out.elapsed));
    }
    for text in [&out.stdout, &out.stderr] {
        if text.contains("panicked") || text.contains("RUST_BACKTRACE") {
            problems.push("panic text".into());
        }
        if text.contains(SECRET) {
            problems.push("client secret printed".into());
        }
    }
    Outcome {
        name: name.to_string(),
        ok: if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{}; {out:?}", problems.join(", ")))
        },
        elapsed: out.elapsed,
        line: line.chars().take(140).collect(),
    }
}

const NOT_FOUND_TEXT: &str = "credentials not found in native keychain";

fn http_cases() -> Vec<Case> {
    use Expect::*;
    let now = jwt::now();
    let mut big_json = b"{\"access_token\":\"".to_vec();
    big_json.extend(std::iter::repeat_n(b'a', BIG));
    big_json.extend_from_slice(b"\"}");
    let mut big_exchange = b"{\"refresh_token\":\"".to_vec();
    big_exchange.extend(std::iter::repeat_n(b'a', BIG));
    big_exchange.extend_from_slice(b"\"}");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut cases = Vec::new();
    for status in [400, 401, 403, 429, 500, 503] {
        cases.push(case(
            Box::leak(format!("entra {status}").into_boxed_str()),
            Some(entra_error(status)),
            None,
            Loud,
        ));
    }
    cases.push(case(
        "entra byte-a-second",
        Some(trickled(hostile::entra_ok)),
        None,
        Loud,
    ));
    cases.push(case(
        "entra 200 garbage",
        Some(body(200, garbage.clone())),
        None,
        Loud,
    ));
    cases.push(case(
        "entra 200 html",
        Some(body(200, b"<html>proxy login</html>".to_vec())),
        None,
        Loud,
    ));
    cases.push(case(
        "entra 200 without access_token",
        Some(body(
            200,
            br#"{"token_type":"Bearer","expires_in":3599}"#.to_vec(),
        )),
        None,
        Loud,
    ));
    cases.push(case(
        "entra 200 oversized (11 MiB)",
        Some(body(200, big_json)),
        None,
        Loud,
    ));
    cases.push(case(
        "entra 500 oversized (11 MiB)",
        Some(body(500, vec![b'x'; BIG])),
        None,
        Loud,
    ));
    for status in [400, 401, 403, 429, 500, 503] {
        cases.push(case(
            Box::leak(format!("exchange {status}").into_boxed_str()),
            None,
            Some(acr_error(status)),
            Loud,
        ));
    }
    cases.push(case(
        "exchange byte-a-second",
        None,
        Some(trickled(exchange_ok)),
        Loud,
    ));
    cases.push(case(
        "exchange 200 garbage",
        None,
        Some(body(200, garbage)),
        Loud,
    ));
    cases.push(case(
        "exchange 200 oversized (11 MiB)",
        None,
        Some(body(200, big_exchange)),
        Loud,
    ));
    cases.push(case(
        "exchange 502 oversized (11 MiB)",
        None,
        Some(body(502, vec![b'<'; BIG])),
        Loud,
    ));
    cases.push(case(
        "exchange 200 without refresh_token",
        None,
        Some(body(200, br#"{"access_token":"x"}"#.to_vec())),
        Loud,
    ));
    cases.push(case(
        "exchange 200 empty refresh_token",
        None,
        Some(body(200, br#"{"refresh_token":""}"#.to_vec())),
        Loud,
    ));
    cases.push(case(
        "exchange 200 empty body",
        None,
        Some(body(200, Vec::new())),
        Loud,
    ));
    // Not a JWT or no `exp`: treated as short-lived (an hour) and answers it.
    cases.push(case(
        "exchange refresh token without exp",
        None,
        Some(acr_token_with(json!({"aud": HOST, "iat": now}))),
        Answer,
    ));
    cases.push(case(
        "exchange refresh token not a JWT",
        None,
        Some(body(200, br#"{"refresh_token":"opaque-token"}"#.to_vec())),
        Answer,
    ));
    // A token this machine's clock reads as expired is still the one the registry just
    // issued: answered (with a warning when logging is on), never a failed pull.
    cases.push(case(
        "exchange refresh token already expired by this clock",
        None,
        Some(acr_token_with(json!({"aud": HOST, "exp": now - 3600}))),
        Answer,
    ));
    cases
}

#[test]
// The table goes to the README's Security section: print it (`--nocapture`).
#[allow(clippy::print_stderr)]
fn injected_faults_end_in_one_line_within_the_timeout() {
    let cases = http_cases();
    let total = cases.len();
    let queue = Arc::new(Mutex::new(cases));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let queue = queue.clone();
            let results = results.clone();
            thread::spawn(move || {
                loop {
                    let Some(c) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let outcome = run_case(&c);
                    results.lock().unwrap().push(outcome);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut results = std::mem::take(&mut *results.lock().unwrap());
    results.sort_by(|a, b| a.name.cmp(&b.name));
    let mut failures = Vec::new();
    for r in &results {
        r.report(&mut failures);
    }
    let slowest = results.iter().map(|r| r.elapsed).max().unwrap_or_default();
    eprintln!(
        "faults: {total} cases, {} failed, slowest {slowest:?} (ACR_ENTRA_TIMEOUT={TIMEOUT_SECS})",
        failures.len()
    );
    assert_eq!(results.len(), total);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exchange_failing_serves_a_still_valid_cached_token() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let fail = Arc::new(Mutex::new(false));
    let f = fail.clone();
    let acr = scripted_acr(HOST, None, move |req| {
        if *f.lock().unwrap() {
            Resp::new(503).body("down")
        } else {
            exchange_ok(req)
        }
    });
    let get = |min_ttl: &str| {
        env.get(HOST)
            .env("ACR_ENTRA_CREDENTIAL", "client-secret")
            .env("ACR_ENTRA_TIMEOUT", TIMEOUT_SECS.to_string())
            .env("ACR_ENTRA_MIN_TTL", min_ttl)
            .env("ACR_ENTRA_LOG", "warn")
            .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
            .connect_to(&format!("{HOST}:443:127.0.0.1:{}", acr.port()))
            .run()
    };
    let first = get("30m");
    assert_eq!(first.code, Some(0), "{first:?}");
    *fail.lock().unwrap() = true;
    // The cached token (about 3 h) is inside a 4 h minimum: re-mint, fail, serve it.
    let second = get("4h");
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(first.stdout, second.stdout);
    assert!(
        second.stderr.contains("serving the cached token"),
        "{second:?}"
    );
    let token: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    assert_no_secret(
        &second.stderr,
        &[
            token["Secret"].as_str().unwrap().to_string(),
            SECRET.to_string(),
        ],
        "the fallback warning",
    );
    second.assert_within(BOUND);
}

fn cli_case(tool: Tool, mode: Option<CliMode>) -> Output {
    let env = TestEnv::new();
    if let Some(mode) = mode {
        FakeCli::install(&env.bin, tool, mode);
    }
    let acr = FakeAcr::start(HOST);
    let kind = match tool {
        Tool::Az => "azure-cli",
        Tool::Azd => "azd",
    };
    env.get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", kind)
        .env("ACR_ENTRA_TIMEOUT", TIMEOUT_SECS.to_string())
        .connect_to(&acr.connect_to())
        .run()
}

#[test]
#[allow(clippy::print_stderr)]
fn az_and_azd_hanging_failing_garbage_or_missing() {
    let mut failures = Vec::new();
    for tool in [Tool::Az, Tool::Azd] {
        for mode in [
            Some(CliMode::Hang),
            Some(CliMode::Fail),
            Some(CliMode::Garbage),
            None,
        ] {
            let name = format!(
                "{tool:?} {}",
                mode.map_or("missing".into(), |m| format!("{m:?}"))
            );
            let out = cli_case(tool, mode);
            if !out.stderr.is_empty() {
                failures.push(format!("{name}: the tool's stderr leaked: {out:?}"));
            }
            judge(&name, Expect::Loud, &out).report(&mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[allow(clippy::print_stderr)]
fn registry_black_holed_silent_or_unreachable_and_imds_unreachable() {
    let mut failures = Vec::new();
    let mut record = |name: &str, expect: Expect, out: &Output| {
        judge(name, expect, out).report(&mut failures);
    };
    let entra = FakeEntra::start();
    let base = |env: &TestEnv| {
        env.get(HOST)
            .env("ACR_ENTRA_CREDENTIAL", "client-secret")
            .env("ACR_ENTRA_TIMEOUT", TIMEOUT_SECS.to_string())
            .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
    };
    // /v2/ black-holed: accepts, never speaks (not even TLS).
    let env = TestEnv::new();
    let hole = http::Server::hang_after_accept();
    let out = base(&env)
        .connect_to(&format!("{HOST}:443:127.0.0.1:{}", hole.port()))
        .run();
    record("registry black-holed", Expect::Loud, &out);
    // Nothing listens at the registry's address.
    let env = TestEnv::new();
    let out = base(&env)
        .connect_to(&format!("{HOST}:443:127.0.0.1:{}", dead_port()))
        .run();
    record("registry connection refused", Expect::Loud, &out);
    // /v2/ answers 200 without a challenge and the assumed exchange is absent (404).
    let env = TestEnv::new();
    let v2: Handler = Arc::new(|_| Resp::json(200, &json!({})));
    let acr = scripted_acr(HOST, Some(v2), |_| Resp::text(404, "404 page not found"));
    let out = base(&env)
        .connect_to(&format!("{HOST}:443:127.0.0.1:{}", acr.port()))
        .run();
    record("v2 without challenge, no exchange", Expect::Loud, &out);
    // A challenge whose realm is not https.
    let env = TestEnv::new();
    let v2: Handler = Arc::new(|_| {
        Resp::new(401).header(
            "www-authenticate",
            r#"Bearer realm="ftp://myacr.azurecr.io/x",service="s""#,
        )
    });
    let acr = scripted_acr(HOST, Some(v2), exchange_ok);
    let out = base(&env)
        .connect_to(&format!("{HOST}:443:127.0.0.1:{}", acr.port()))
        .run();
    record("v2 challenge with a non-https realm", Expect::Loud, &out);
    assert_eq!(
        entra.request_count(),
        1,
        "Entra only for the registry that answered without a challenge"
    );
    // IMDS: nothing listens, and black-holed.
    for (name, target) in [
        (
            "imds unreachable",
            format!("http://127.0.0.1:{}", dead_port()),
        ),
        (
            "imds black-holed",
            format!("http://127.0.0.1:{}", hole.port()),
        ),
    ] {
        let env = TestEnv::new();
        let acr = FakeAcr::start(HOST);
        let out = env
            .get(HOST)
            .env("ACR_ENTRA_CREDENTIAL", "managed-identity")
            .env("ACR_ENTRA_TIMEOUT", TIMEOUT_SECS.to_string())
            .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", target)
            .connect_to(&acr.connect_to())
            .run();
        record(name, Expect::Loud, &out);
        assert_eq!(acr.exchange_count(), 0);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
