//! The cache policy under load and damage: 64 concurrent cold processes for two
//! registries make one Entra call and one exchange per registry; a token inside `ACR_ENTRA_MIN_TTL` is
//! re-minted; a dead Entra with a still-valid cached token serves it with a warning, and
//! with nothing valid is a loud error; corrupt, foreign, misplaced and unwritable cache
//! files never fail a `get`.

use std::os::unix::fs::PermissionsExt;
use std::thread;

use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const HOST2: &str = "other.azurecr.io";

fn cache_files(env: &TestEnv, prefix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(&env.cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".json")
        })
        .collect()
}

#[test]
fn sixty_four_cold_processes_mint_once_per_registry() {
    let w = World::start(HOST).with_registry(HOST2);
    let (entra, acr, acr2) = (&w.entra, &w.acr, w.registry(HOST2));
    let outs: Vec<(String, Output)> = thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let host = if i % 2 == 0 { HOST } else { HOST2 };
                let w = &w;
                s.spawn(move || (host.to_string(), w.get_with(host).run()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(acr.exchange_count(), 1, "one exchange for {HOST}");
    assert_eq!(acr2.exchange_count(), 1, "one exchange for {HOST2}");
    assert_eq!(
        entra.request_count(),
        1,
        "one Entra call for the identity, shared by both registries"
    );
    for (host, out) in &outs {
        let issued = if host == HOST {
            acr.issued()
        } else {
            acr2.issued()
        };
        out.assert_answer(host, &issued[0]);
    }
}

#[test]
fn token_inside_min_ttl_is_reminted() {
    let w = World::start(HOST);
    let acr = &w.acr;
    w.get().run().assert_answer(HOST, &acr.issued()[0]);
    // The fake's tokens live about 3 h: a 4 h minimum makes the cached one too old.
    let out = w.get().env("ACR_ENTRA_MIN_TTL", "4h").run();
    assert_eq!(acr.exchange_count(), 2);
    out.assert_answer(HOST, &acr.issued()[1]);
    // And a 1 h minimum serves the new one from the cache.
    w.get()
        .env("ACR_ENTRA_MIN_TTL", "1h")
        .run()
        .assert_answer(HOST, &acr.issued()[1]);
    assert_eq!(acr.exchange_count(), 2);
}

#[test]
fn entra_down_serves_a_still_valid_cached_token_with_a_warning() {
    let w = World::start(HOST);
    let (entra, acr) = (&w.entra, &w.acr);
    w.get().run().assert_answer(HOST, &acr.issued()[0]);
    // The identity's shared Entra token has expired too: the re-mint must ask Entra.
    w.env.forget_entra_tokens();
    entra.set_mode(EntraMode::Fail(503));
    let out = w
        .get()
        .env("ACR_ENTRA_MIN_TTL", "4h")
        .env("ACR_ENTRA_LOG", "warn")
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("{}\n", answer_json(HOST, &acr.issued()[0]))
    );
    assert!(
        out.stderr.contains("warn") && out.stderr.contains("serving the cached token"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains(&acr.issued()[0]),
        "no token in the warning"
    );
}

#[test]
fn entra_down_and_nothing_cached_is_a_loud_error() {
    let w = World::start(HOST);
    let (entra, acr) = (&w.entra, &w.acr);
    entra.set_mode(EntraMode::Fail(503));
    let out = w.get().run();
    let line = out.assert_loud_error();
    assert!(line.contains("client-secret"), "{line}");
    assert_eq!(acr.exchange_count(), 0);
}

#[test]
fn damaged_cache_files_never_fail_a_get() {
    let w = World::start(HOST);
    let (env, acr) = (&w.env, &w.acr);
    w.get().run().assert_answer(HOST, &acr.issued()[0]);
    let token_file = cache_files(env, "token-").pop().expect("a token file");
    let damages: [&[u8]; 5] = [
        b"{\"version\":1,\"login_server\":\"myacr.azurecr.io\",\"refresh",
        b"",
        b"\x00\xff garbage",
        br#"{"version":99,"login_server":"myacr.azurecr.io","credential":"x","refresh_token":"old","expires_on":99999999999,"created_on":1}"#,
        br#"{"version":1,"login_server":"evil.example","credential":"x","refresh_token":"old","expires_on":99999999999,"created_on":1}"#,
    ];
    for (i, damage) in damages.iter().enumerate() {
        std::fs::write(&token_file, damage).unwrap();
        let out = w.get().run();
        out.assert_answer(HOST, &acr.issued()[i + 1]);
        // Rewritten: the next get is a hit again.
        let before = acr.exchange_count();
        w.get().run().assert_answer(HOST, &acr.issued()[i + 1]);
        assert_eq!(acr.exchange_count(), before, "rewritten after damage {i}");
    }
    // Host records too.
    for host_file in cache_files(env, "host-") {
        std::fs::write(&host_file, b"{not json").unwrap();
    }
    std::fs::remove_file(&token_file).unwrap();
    let n = acr.issued().len();
    w.get().run().assert_answer(HOST, &acr.issued()[n]);
}

#[test]
fn a_directory_where_the_token_file_should_be_does_not_fail_a_get() {
    let w = World::start(HOST);
    let (env, acr) = (&w.env, &w.acr);
    w.get().run();
    let token_file = cache_files(env, "token-").pop().unwrap();
    std::fs::remove_file(&token_file).unwrap();
    std::fs::create_dir(&token_file).unwrap();
    let out = w.get().run();
    out.assert_answer(HOST, &acr.issued()[1]);
}

#[test]
fn read_only_cache_directory_still_answers() {
    let w = World::start(HOST);
    let (env, acr) = (&w.env, &w.acr);
    let dir = env.path("ro-cache");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    if std::fs::write(dir.join("probe"), b"x").is_ok() {
        // Running as root: permissions do not stop writes; use a file in the way instead.
        std::fs::remove_file(dir.join("probe")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let blocked = env.path("not-a-dir");
    std::fs::write(&blocked, b"a file where the cache directory should be").unwrap();
    for cache_dir in [&dir, &blocked] {
        let before = acr.issued().len();
        let out = w
            .get()
            .env("ACR_ENTRA_CACHE_DIR", cache_dir.display().to_string())
            .run();
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout_line(), answer_json(HOST, &acr.issued()[before]));
        // A directory that cannot be used at all is said once per call: every call mints.
        if cache_dir == &blocked {
            out.assert_warned("cache unusable, minting without it");
        } else {
            assert_eq!(out.stderr, "", "{out:?}");
        }
    }
}

/// A machine without any identity probes the instance metadata service before giving
/// up: a probe that failed is believed for a few minutes of this boot, so the `get`s of
/// one `docker pull` do not each pay for it. `ACR_ENTRA_NO_CACHE` probes every time.
#[test]
fn a_failed_imds_probe_is_remembered_briefly() {
    let env = TestEnv::new();
    let imds = http::Server::start(None, |_| http::Resp::text(404, "no metadata here"));
    let get = || {
        env.get(HOST)
            .env(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                format!("http://127.0.0.1:{}", imds.port()),
            )
            .run()
    };
    let first = get();
    assert!(
        first.assert_loud_error().contains(
            "managed-identity: instance metadata service: something answered 404 at the metadata address, but not like IMDS (a proxy or firewall?);"
        ),
        "{first:?}"
    );
    assert_eq!(imds.request_count(), 1);
    let second = get();
    let line = second.assert_loud_error();
    assert!(
        line.contains("managed-identity: instance metadata service: something answered 404 at the metadata address, but not like IMDS (a proxy or firewall?), 0s ago (believed for 5 minutes; ACR_ENTRA_NO_CACHE=1 asks every time);")
            || line.contains(", 1s ago (believed for 5 minutes;"),
        "{second:?}"
    );
    assert_eq!(imds.request_count(), 1, "not asked again");
    let marker = env.cache.join("imds-absent.json");
    assert_eq!(
        std::fs::metadata(&marker).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // doctor probes afresh, says that `get` still believes the failure, and writes
    // nothing.
    let before = std::fs::read(&marker).unwrap();
    let out = env
        .helper()
        .args(&["doctor", HOST])
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{}", imds.port()),
        )
        .run();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("\n  instance metadata service probe: no answer in ")
            && out.stdout.contains("; `get` remembers a failed probe ")
            && out.stdout.contains(
                "(something answered 404 at the metadata address, but not like IMDS (a proxy or firewall?)) and does not probe again for "
            ),
        "{out:?}"
    );
    assert_eq!(imds.request_count(), 2, "doctor asked");
    assert_eq!(std::fs::read(&marker).unwrap(), before);
    // Without the cache, every get asks.
    for expected in [3, 4] {
        let out = env
            .get(HOST)
            .env(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                format!("http://127.0.0.1:{}", imds.port()),
            )
            .env("ACR_ENTRA_NO_CACHE", "1")
            .run();
        out.assert_loud_error();
        assert_eq!(imds.request_count(), expected);
    }
    // Another endpoint is not covered by what this one said.
    let other = http::Server::start(None, |_| http::Resp::text(404, "no"));
    env.get(HOST)
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{}", other.port()),
        )
        .run()
        .assert_loud_error();
    assert_eq!(other.request_count(), 1);
    // An old failure is not believed: the probe runs again.
    let text = std::fs::read_to_string(&marker).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["endpoint"] = serde_json::json!(format!("http://127.0.0.1:{}", imds.port()));
    value["failed_on"] = serde_json::json!(value["failed_on"].as_i64().unwrap() - 301);
    std::fs::write(&marker, value.to_string()).unwrap();
    get().assert_loud_error();
    assert_eq!(imds.request_count(), 5);
}
