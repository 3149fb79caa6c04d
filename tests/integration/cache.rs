//! The cache seen from outside: a second `get` is answered from the cache without any
//! request, N concurrent cold `get`s cause one exchange, `ACR_ENTRA_NO_CACHE=1` always
//! mints, and the cache directory and files are private.

use std::os::unix::fs::PermissionsExt;
use std::thread;

use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const CLIENT: &str = "ffffffff-1111-2222-3333-444444444444";
const SECRET: &str = "cache-test-secret";
const TENANT: &str = "tenant-cache-0001";

fn get(env: &TestEnv, entra: &FakeEntra, acr: &FakeAcr) -> env::Helper {
    env.get(HOST)
        .env("ACR_ENTRA_CREDENTIAL", "client-secret")
        .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
        .connect_to(&acr.connect_to())
}

#[test]
fn second_get_is_a_cache_hit_without_requests() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    let first = get(&env, &entra, &acr).run();
    first.assert_answer(HOST, acr.issued().first().map_or("<none>", |s| s.as_str()));
    let (entra_before, acr_before) = (
        entra.server.connection_count(),
        acr.server.connection_count(),
    );
    let second = get(&env, &entra, &acr).run();
    second.assert_answer(HOST, &acr.issued()[0]);
    assert_eq!(
        entra.server.connection_count(),
        entra_before,
        "no Entra call on a hit"
    );
    assert_eq!(
        acr.server.connection_count(),
        acr_before,
        "no registry call on a hit"
    );
}

#[test]
fn no_cache_mints_every_time() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    for i in 0..2 {
        let out = get(&env, &entra, &acr).env("ACR_ENTRA_NO_CACHE", "1").run();
        out.assert_answer(HOST, acr.issued().get(i).map_or("<none>", |s| s.as_str()));
    }
    assert_eq!(acr.exchange_count(), 2);
}

#[test]
fn concurrent_cold_gets_cause_one_exchange() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    let outs: Vec<Output> = thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| get(&env, &entra, &acr).run()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        acr.exchange_count(),
        1,
        "one exchange for 4 concurrent gets: {outs:?}"
    );
    for out in &outs {
        out.assert_answer(HOST, &acr.issued()[0]);
    }
}

#[test]
fn cache_directory_and_files_are_private() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    let cache = env.path("cache").join("fresh-subdir");
    let out = get(&env, &entra, &acr)
        .env("ACR_ENTRA_CACHE_DIR", cache.display().to_string())
        .run();
    out.assert_answer(HOST, acr.issued().first().map_or("<none>", |s| s.as_str()));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700, "cache dir");
    let mut files = 0;
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files += 1;
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(files >= 1, "the token was cached");
}
