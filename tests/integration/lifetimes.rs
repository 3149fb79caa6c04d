//! A refresh token's life as the issuer states it (`exp - iat`), whatever this machine's
//! clock says: registries whose clocks are 3 h 10 min behind, 2 h 40 min behind and 1 h
//! ahead still give a full-length cache entry (the second `get` is a hit), and a token
//! shorter-lived than `ACR_ENTRA_MIN_TTL` is answered every time, never cached as fresh.

use serde_json::Value;

use crate::support::hostile;
use crate::support::http::Resp;
use crate::support::subcommands::{FakeRegistry, RegistryMode};
use crate::support::world::{CLIENT, SECRET, TENANT};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";

fn get(env: &TestEnv, entra: &FakeEntra, registry: &FakeRegistry) -> env::Helper {
    env.get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "client-secret")
        .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
        .connect_to(&registry.connect_to())
}

/// The `expires_on` of the one cached token.
fn cached_expiry(env: &TestEnv) -> i64 {
    let entry = std::fs::read_dir(&env.cache)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("token-"))
        .expect("a cached token");
    let file: Value = serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
    file["expires_on"].as_i64().unwrap()
}

#[test]
fn skewed_registry_clocks_still_give_a_full_cache_entry() {
    for skew in [-(3 * 3600 + 600), -(2 * 3600 + 2400), 3600] {
        let env = TestEnv::new();
        let entra = FakeEntra::start();
        let registry = FakeRegistry::start(HOST, RegistryMode::Skewed(skew));
        let before = jwt::now();
        let first = get(&env, &entra, &registry).run();
        first.assert_answer(HOST, &registry.refresh_tokens()[0]);
        // The fake's tokens live 3 h 15 min from their `iat`.
        let expiry = cached_expiry(&env);
        assert!(
            expiry >= before + 3 * 3600 + 15 * 60 && expiry <= jwt::now() + 3 * 3600 + 15 * 60,
            "skew {skew}: cached until {expiry}, minted at {before}"
        );
        let second = get(&env, &entra, &registry).run();
        second.assert_answer(HOST, &registry.refresh_tokens()[0]);
        assert_eq!(
            registry.refresh_tokens().len(),
            1,
            "skew {skew}: the second get is a hit"
        );
        // With logging on, the skew is said.
        let env2 = TestEnv::new();
        let out = get(&env2, &entra, &registry)
            .env("ACR_ENTRA_LOG", "warn")
            .run();
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(out.stderr.contains("clock is"), "skew {skew}: {out:?}");
    }
}

#[test]
fn a_token_shorter_lived_than_min_ttl_is_answered_and_not_kept_as_fresh() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = hostile::scripted_acr(HOST, None, |_| {
        let now = jwt::now();
        let token = jwt::make(
            &serde_json::json!({"alg": "RS256"}),
            &serde_json::json!({"iat": now, "exp": now + 600, "aud": HOST, "jti": jwt::unique()}),
        );
        Resp::json(200, &serde_json::json!({"refresh_token": token}))
    });
    let get = || {
        env.get(HOST)
            .env("ACR_ENTRA_CREDENTIAL", "client-secret")
            .env("ACR_ENTRA_MIN_TTL", "30m")
            .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
            .connect_to(&format!("{HOST}:443:127.0.0.1:{}", acr.port()))
    };
    for _ in 0..2 {
        let out = get().run();
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    let exchanges = acr
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth2/exchange")
        .count();
    assert_eq!(
        exchanges, 2,
        "a 10-minute token is never fresh under a 30-minute minimum"
    );
    let out = get().env("ACR_ENTRA_LOG", "warn").run();
    assert!(
        out.stderr.contains("less than ACR_ENTRA_MIN_TTL"),
        "{out:?}"
    );
}

/// Machines that mint together do not come back together: each entry is re-minted
/// `ACR_ENTRA_MIN_TTL` before expiry plus a random share of up to a tenth of its
/// lifetime, fixed when the entry is written.
/// A fresh world's first entry: (expires_on, created_on, refresh_jitter), written by a
/// `get` with these extra variables.
fn written_entry(vars: &[(&str, &str)]) -> (i64, i64, i64) {
    let w = World::start(HOST);
    let mut get = w.get().env("ACR_ENTRA_MIN_TTL", "30m");
    for (k, v) in vars {
        get = get.env(k, v);
    }
    get.run().assert_answer(HOST, &w.issued()[0]);
    let entry = std::fs::read_dir(&w.env.cache)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("token-"))
        .unwrap();
    let file: Value = serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
    (
        file["expires_on"].as_i64().unwrap(),
        file["created_on"].as_i64().unwrap(),
        file["refresh_jitter"].as_i64().unwrap(),
    )
}

#[test]
fn refresh_points_are_spread_and_never_later_than_min_ttl() {
    let mut points = Vec::new();
    for _ in 0..6 {
        let (expires_on, created_on, jitter) = written_entry(&[]);
        // Re-minted `MIN_TTL` + jitter before expiry: never later than `MIN_TTL` before.
        let window = (expires_on - created_on) / 10;
        assert!(
            (0..=window).contains(&jitter),
            "jitter {jitter}, window {window}"
        );
        points.push(jitter);
    }
    points.sort_unstable();
    points.dedup();
    assert!(
        points.len() >= 2,
        "every entry got the same refresh point: {points:?}"
    );
}

/// `ACR_ENTRA_REFRESH_JITTER` sets the window: 0 turns the spread off, 50 allows half the
/// lifetime; a value out of range is a one-line error.
#[test]
fn refresh_jitter_setting_sizes_the_window() {
    for _ in 0..3 {
        assert_eq!(written_entry(&[("ACR_ENTRA_REFRESH_JITTER", "0")]).2, 0);
    }
    let mut wide = Vec::new();
    for _ in 0..4 {
        let (expires_on, created_on, jitter) = written_entry(&[("ACR_ENTRA_REFRESH_JITTER", "50")]);
        assert!(
            (0..=(expires_on - created_on) / 2).contains(&jitter),
            "{jitter}"
        );
        wide.push(jitter);
    }
    assert!(wide.iter().any(|j| *j > 0), "{wide:?}");
    let w = World::start(HOST);
    let out = w.get().env("ACR_ENTRA_REFRESH_JITTER", "80").run();
    assert!(
        out.assert_loud_error()
            .contains("ACR_ENTRA_REFRESH_JITTER=`80` is not a percentage from 0 to 50"),
        "{out:?}"
    );
}
