//! `store`, `erase` and `list` as docker calls them when the helper is
//! `credsStore` — exact stdout, stored credentials for any host, a stored ACR user that
//! wins over minting, a stored minted token that is not pinned, prefixed erases, and
//! `list` showing stored hosts plus configured ACR registries.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::support::*;

const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";

fn store(env: &TestEnv, server: &str, user: &str, secret: &str) -> Output {
    let body = json!({"ServerURL": server, "Username": user, "Secret": secret}).to_string();
    env.helper().arg("store").stdin(body).run()
}

fn assert_silent_success(out: &Output) {
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
}

fn list(env: &TestEnv, stdin: &str) -> Value {
    let out = env.helper().arg("list").stdin(stdin).run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    serde_json::from_str(out.stdout_line()).unwrap_or_else(|e| panic!("list is JSON: {e}: {out:?}"))
}

#[test]
fn list_is_an_empty_object_when_nothing_is_stored() {
    let env = TestEnv::new();
    for stdin in ["unused\n", ""] {
        let out = env.helper().arg("list").stdin(stdin).run();
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout_line(), "{}");
        assert_eq!(out.stderr, "");
    }
}

#[test]
fn store_get_list_erase_for_a_non_acr_host() {
    let env = TestEnv::new();
    assert_silent_success(&store(&env, "ghcr.io", "octocat", "ghp_secretvalue"));
    let out = env.get("ghcr.io\n").run();
    out.assert_answer_as("ghcr.io", "octocat", "ghp_secretvalue");
    assert_eq!(list(&env, "unused\n"), json!({"ghcr.io": "octocat"}));
    // docker logout with credsStore: REG, REG, http://REG, https://REG.
    for input in ["ghcr.io", "ghcr.io", "http://ghcr.io", "https://ghcr.io"] {
        let out = env.helper().arg("erase").stdin(format!("{input}\n")).run();
        assert_silent_success(&out);
    }
    env.get("ghcr.io\n").run().assert_not_found();
    assert_eq!(list(&env, ""), json!({}));
}

#[test]
fn stored_credentials_file_is_private() {
    let env = TestEnv::new();
    assert_silent_success(&store(&env, "registry.example.com:5000", "u", "p"));
    let mut found = false;
    for dir in [
        env.cache.clone(),
        env.path("xdg-data"),
        env.path("xdg-config"),
    ] {
        for entry in walk(&dir) {
            let text = std::fs::read_to_string(&entry).unwrap_or_default();
            if text.contains("registry.example.com:5000") {
                found = true;
                let mode = std::fs::metadata(&entry).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", entry.display());
            }
        }
    }
    assert!(found, "stored credentials live beside the cache");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn stored_acr_user_wins_over_minting() {
    let w = World::start("myacr.azurecr.io");
    let (env, entra, acr) = (&w.env, &w.entra, &w.acr);
    assert_silent_success(&store(env, "myacr.azurecr.io", "myacr", "admin-password"));
    let out = w.get_with("https://myacr.azurecr.io").run();
    out.assert_answer_as("https://myacr.azurecr.io", "myacr", "admin-password");
    assert_eq!(entra.server.connection_count(), 0);
    assert_eq!(acr.server.connection_count(), 0);
}

#[test]
fn storing_a_minted_token_does_not_pin_it() {
    let w = World::start("myacr.azurecr.io");
    let (env, acr) = (&w.env, &w.acr);
    let get = || w.get().env("ACR_ENTRA_NO_CACHE", "1").run();
    let first = get();
    first.assert_answer(
        "myacr.azurecr.io",
        acr.issued().first().map_or("<none>", |s| s.as_str()),
    );
    // `docker login HOST` without -u stores what get returned.
    assert_silent_success(&store(env, "myacr.azurecr.io", NULL_GUID, &acr.issued()[0]));
    let second = get();
    assert_eq!(acr.issued().len(), 2, "still minted: {second:?}");
    second.assert_answer("myacr.azurecr.io", &acr.issued()[1]);
}

#[test]
fn erasing_nothing_is_success() {
    let env = TestEnv::new();
    for input in [
        "never-stored.example",
        "https://myacr.azurecr.io/",
        "http://localhost:5000",
    ] {
        assert_silent_success(&env.helper().arg("erase").stdin(input).run());
    }
}

#[test]
fn list_shows_configured_acr_registries_with_the_null_guid() {
    let env = TestEnv::new();
    let config = env.write(
        "config.json",
        json!({"registries": {"contoso.azurecr.io": {"credential": "azure-cli"}}}).to_string(),
    );
    assert_silent_success(&store(&env, "ghcr.io", "octocat", "p"));
    let out = env
        .helper()
        .arg("list")
        .stdin("unused")
        .env("ACR_ENTRA_CONFIG", config.display().to_string())
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    let value: Value = serde_json::from_str(out.stdout_line()).unwrap();
    assert_eq!(
        value,
        json!({"ghcr.io": "octocat", "contoso.azurecr.io": NULL_GUID})
    );
}

#[test]
fn store_with_malformed_json_is_one_line_error() {
    let env = TestEnv::new();
    let out = env.helper().arg("store").stdin("{\"ServerURL\": ").run();
    out.assert_loud_error();
    assert_eq!(out.stderr, "");
}

/// A host the helper does not serve gets no lock file of its own: `docker logout` and
/// `get` of Docker Hub leave at most the store's own lock behind. An ACR host's lock is
/// created by the mint that needs it.
#[test]
fn hosts_not_served_leave_no_lock_file() {
    let w = World::start("myacr.azurecr.io");
    let env = &w.env;
    let host_locks = || {
        let mut names: Vec<String> = std::fs::read_dir(&env.cache)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("host-") && n.ends_with(".lock"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    std::fs::create_dir_all(&env.cache).unwrap();
    std::fs::set_permissions(&env.cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    for input in ["docker.io", "https://index.docker.io/v1/", "ghcr.io"] {
        env.get(input).run().assert_not_found();
        assert_silent_success(&env.helper().arg("erase").stdin(input).run());
    }
    assert_eq!(host_locks(), Vec::<String>::new());
    w.get()
        .run()
        .assert_answer("myacr.azurecr.io", &w.issued()[0]);
    assert_eq!(host_locks().len(), 1);
    // Erasing the ACR host takes that same lock; nothing new appears.
    assert_silent_success(&w.helper().arg("erase").stdin("myacr.azurecr.io").run());
    assert_eq!(host_locks().len(), 1);
}
