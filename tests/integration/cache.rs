//! The cache seen from outside: a second `get` is answered from the cache without any
//! request, N concurrent cold `get`s cause one exchange, `ACR_ENTRA_NO_CACHE=1` always
//! mints, and the cache directory and files are private.

use std::os::unix::fs::PermissionsExt;
use std::thread;

use crate::support::*;

const HOST: &str = "myacr.azurecr.io";

#[test]
fn second_get_is_a_cache_hit_without_requests() {
    let w = World::start(HOST);
    let first = w.get().run();
    first.assert_answer(
        HOST,
        w.acr.issued().first().map_or("<none>", |s| s.as_str()),
    );
    let (entra_before, acr_before) = (
        w.entra.server.connection_count(),
        w.acr.server.connection_count(),
    );
    let second = w.get().run();
    second.assert_answer(HOST, &w.acr.issued()[0]);
    assert_eq!(
        w.entra.server.connection_count(),
        entra_before,
        "no Entra call on a hit"
    );
    assert_eq!(
        w.acr.server.connection_count(),
        acr_before,
        "no registry call on a hit"
    );
}

#[test]
fn no_cache_mints_every_time() {
    let w = World::start(HOST);
    for i in 0..2 {
        let out = w.get().env("ACR_ENTRA_NO_CACHE", "1").run();
        out.assert_answer(HOST, w.acr.issued().get(i).map_or("<none>", |s| s.as_str()));
    }
    assert_eq!(w.acr.exchange_count(), 2);
}

#[test]
fn concurrent_cold_gets_cause_one_exchange() {
    let w = World::start(HOST);
    let outs: Vec<Output> = thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| w.get().run())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        w.acr.exchange_count(),
        1,
        "one exchange for 4 concurrent gets: {outs:?}"
    );
    for out in &outs {
        out.assert_answer(HOST, &w.acr.issued()[0]);
    }
}

#[test]
fn cache_directory_and_files_are_private() {
    let w = World::start(HOST);
    let cache = w.env.path("cache").join("fresh-subdir");
    let out = w
        .get()
        .env("ACR_ENTRA_CACHE_DIR", cache.display().to_string())
        .run();
    out.assert_answer(
        HOST,
        w.acr.issued().first().map_or("<none>", |s| s.as_str()),
    );
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
