//! One Entra token per identity, not per registry: registries minted cold with one
//! identity, in sequence or all at once, make one Entra request (one `az` spawn for the
//! Azure CLI) and one exchange each; pods with different service accounts never share;
//! a token that would expire within the margin is not kept; a corrupt file is ignored;
//! a shared token an exchange refuses is dropped and asked for once more; and
//! `ACR_ENTRA_NO_CACHE` shares nothing.

use std::thread;

use crate::support::cli::{CliMode, FakeCli, Tool};
use crate::support::subcommands::kubelet_request;
use crate::support::*;

const HOSTS: [&str; 3] = ["myacr.azurecr.io", "other.azurecr.io", "third.azurecr.io"];

fn three_registries() -> World {
    World::start(HOSTS[0])
        .with_registry(HOSTS[1])
        .with_registry(HOSTS[2])
}

fn assert_each_minted_once_with(w: &World, outs: &[(&str, Output)], entra_token: &str) {
    for (host, out) in outs {
        let acr = w.registry(host);
        assert_eq!(acr.exchange_count(), 1, "{host}: {out:?}");
        assert_eq!(
            acr.exchanges()[0].get("access_token"),
            Some(entra_token),
            "{host}: the shared Entra token"
        );
        out.assert_answer(host, &acr.issued()[0]);
    }
}

#[test]
fn three_registries_in_sequence_make_one_entra_request() {
    let w = three_registries();
    let outs: Vec<(&str, Output)> = HOSTS.iter().map(|h| (*h, w.get_with(h).run())).collect();
    assert_eq!(w.entra.request_count(), 1, "{outs:?}");
    assert_each_minted_once_with(&w, &outs, &w.entra.issued()[0]);
    // The shared token is a private file like every cache file, and `list` never shows it.
    let files = w.env.entra_token_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&files[0]).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let list = w.helper().arg("list").run();
    assert!(!list.stdout.contains(&w.entra.issued()[0]), "{list:?}");
}

#[test]
fn three_registries_at_once_make_one_entra_request() {
    let w = three_registries();
    // Eight processes per registry, all cold at the same moment.
    let outs: Vec<(&str, Output)> = thread::scope(|s| {
        let handles: Vec<_> = (0..24)
            .map(|i| {
                let (host, w) = (HOSTS[i % 3], &w);
                s.spawn(move || (host, w.get_with(host).run()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(w.entra.request_count(), 1, "{:?}", &outs[..3]);
    assert_each_minted_once_with(&w, &outs, &w.entra.issued()[0]);
}

#[test]
fn the_azure_cli_is_spawned_once_for_three_registries() {
    let env = TestEnv::new();
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let acrs: Vec<FakeAcr> = HOSTS.iter().map(|h| FakeAcr::start(h)).collect();
    for acr in &acrs {
        let out = env
            .get(&acr.host())
            .env("ACR_ENTRA_CREDENTIAL", "azure-cli")
            .connect_to(&acrs[0].connect_to())
            .connect_to(&acrs[1].connect_to())
            .connect_to(&acrs[2].connect_to())
            .run();
        out.assert_answer(&acr.host(), &acr.issued()[0]);
        assert_eq!(
            acr.exchanges()[0].get("access_token"),
            Some(az.acr_token.as_str())
        );
    }
    assert_eq!(az.invocations().len(), 1, "{:?}", az.invocations());
    assert_eq!(az.scopes(), [ACR_SCOPE]);
}

#[test]
fn pods_with_different_service_accounts_never_share() {
    let w = World::start(HOSTS[0]).with_registry(HOSTS[1]);
    let client = "pod-client-shared";
    let sa = |name: &str| {
        jwt::make(
            &serde_json::json!({"alg": "RS256"}),
            &serde_json::json!({"iss": "https://oidc.example/cluster", "sub": format!("system:serviceaccount:ns:{name}"), "aud": "api://AzureADTokenExchange"}),
        )
    };
    let (a, b) = (sa("a"), sa("b"));
    let pull = |host: &str, token: &str| {
        let request = kubelet_request(
            &format!("{host}/app:1"),
            Some(token),
            &[
                ("kubernetes.azure.com/acr-client-id", client),
                ("kubernetes.azure.com/acr-tenant-id", "pod-tenant-0001"),
            ],
        );
        let out = w.helper().arg("kubelet").stdin(request).run();
        assert_eq!(out.code, Some(0), "{out:?}");
        out
    };
    pull(HOSTS[0], &a);
    pull(HOSTS[1], &b);
    let reqs = w.entra.token_requests();
    assert_eq!(
        reqs.len(),
        2,
        "one service account's token is never another's"
    );
    assert_eq!(reqs[0].get("client_assertion"), Some(a.as_str()));
    assert_eq!(reqs[1].get("client_assertion"), Some(b.as_str()));
    assert_eq!(
        w.registry(HOSTS[1]).exchanges()[0].get("access_token"),
        Some(w.entra.issued()[1].as_str()),
        "the second registry got b's own token"
    );
    // a's second registry: a's shared token, no Entra request.
    pull(HOSTS[1], &a);
    assert_eq!(w.entra.request_count(), 2);
    assert_eq!(
        w.registry(HOSTS[1]).exchanges()[1].get("access_token"),
        Some(w.entra.issued()[0].as_str())
    );
}

#[test]
fn a_token_that_expires_within_the_margin_is_neither_kept_nor_used() {
    let w = three_registries();
    // Four minutes: less than the margin an exchange needs.
    w.entra.set_lifetime(240);
    for host in HOSTS {
        let out = w.get_with(host).run();
        out.assert_answer(host, &w.registry(host).issued()[0]);
    }
    assert_eq!(w.entra.request_count(), 3);
    assert_eq!(w.env.entra_token_files(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_corrupt_shared_token_file_is_ignored_and_replaced() {
    let w = three_registries();
    w.get_with(HOSTS[0])
        .run()
        .assert_answer(HOSTS[0], &w.acr.issued()[0]);
    let files = w.env.entra_token_files();
    assert_eq!(files.len(), 1);
    for damage in [&b"{\"version\":1,"[..], b"", b"\x00\xff garbage"] {
        std::fs::write(&files[0], damage).unwrap();
        let host = if damage.is_empty() {
            HOSTS[2]
        } else {
            HOSTS[1]
        };
        let out = w.get_with(host).env("ACR_ENTRA_MIN_TTL", "4h").run();
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    assert_eq!(
        w.entra.request_count(),
        4,
        "each damaged file meant asking Entra"
    );
    let last = w.entra.issued().last().unwrap().clone();
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains(&last), "rewritten with the new token");
}

#[test]
fn a_refused_shared_token_is_dropped_and_asked_for_once_more() {
    let w = three_registries();
    w.get_with(HOSTS[0])
        .run()
        .assert_answer(HOSTS[0], &w.acr.issued()[0]);
    let shared = w.entra.issued()[0].clone();
    let two = w.registry(HOSTS[1]);
    two.refuse_token(&shared);
    let out = w.get_with(HOSTS[1]).run();
    out.assert_answer(HOSTS[1], &two.issued()[0]);
    assert_eq!(w.entra.request_count(), 2, "{out:?}");
    let sent: Vec<Option<String>> = two
        .exchanges()
        .iter()
        .map(|e| e.get("access_token").map(str::to_string))
        .collect();
    assert_eq!(sent, [Some(shared), Some(w.entra.issued()[1].clone())]);
    // The new token is the shared one now.
    w.get_with(HOSTS[2])
        .run()
        .assert_answer(HOSTS[2], &w.registry(HOSTS[2]).issued()[0]);
    assert_eq!(w.entra.request_count(), 2);
}

#[test]
fn no_cache_shares_nothing() {
    let w = three_registries();
    for host in HOSTS {
        let out = w.get_with(host).env("ACR_ENTRA_NO_CACHE", "1").run();
        out.assert_answer(host, &w.registry(host).issued()[0]);
    }
    assert_eq!(w.entra.request_count(), 3);
    assert!(!w.env.cache.join("entra").exists());
    assert_eq!(w.env.entra_token_files(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn the_shared_token_is_in_no_log() {
    let w = three_registries();
    for host in HOSTS {
        let out = w.get_with(host).env("ACR_ENTRA_LOG", "trace").run();
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(!out.stderr.contains(&w.entra.issued()[0]), "{out:?}");
    }
    let out = w
        .get_with(HOSTS[2])
        .env("ACR_ENTRA_LOG", "trace")
        .env("ACR_ENTRA_MIN_TTL", "4h")
        .run();
    assert!(out.stderr.contains("shared Entra token"), "{out:?}");
}
