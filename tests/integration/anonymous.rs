//! Registries that allow anonymous pulls (`"anonymous": true` in the config entry): when no
//! token can be had — no credential kind at all, or a mint that fails — `get` answers the
//! not-found line (kubelet an empty `auth`) with the reason on stderr, so the client pulls
//! anonymously. A working identity still wins, and without the flag failures stay loud.

use serde_json::json;

use crate::support::env::NOT_FOUND;
use crate::support::http::dead_port;
use crate::support::subcommands::{KUBELET_EMPTY, kubelet_request};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const WARNING: &str = "acr-entra warn: `myacr.azurecr.io` allows anonymous pulls; answering without credentials because no token could be had: ";

/// The config file with HOST's entry, anonymous or not.
fn config(w: &World, anonymous: bool) -> String {
    w.env
        .config(&json!({"registries": {HOST: {"anonymous": anonymous}}}))
}

/// `get` with no identity the environment could offer (no variables, no `az`, a dead
/// metadata service).
fn get_without_identity(w: &World, anonymous: bool) -> Output {
    w.env
        .get(HOST)
        .env("ACR_ENTRA_CONFIG", config(w, anonymous))
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{}", dead_port()),
        )
        .env("ACR_ENTRA_TIMEOUT", "2")
        .connect_to(&w.acr.connect_to())
        .run()
}

/// Exit 1, stdout exactly the not-found line, stderr the one warning with its reason.
fn assert_anonymous(out: &Output, reason: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout_line(), NOT_FOUND, "{out:?}");
    let warning = out.stderr.strip_suffix('\n').unwrap_or(&out.stderr);
    assert!(
        warning.starts_with(WARNING) && !warning.contains('\n') && warning.contains(reason),
        "{out:?}"
    );
}

#[test]
fn no_identity_at_all_answers_not_found_with_the_reason() {
    let w = World::start(HOST);
    assert_anonymous(&get_without_identity(&w, true), "no Entra credential found");
    assert_eq!(w.acr.exchange_count(), 0);
}

#[test]
fn without_the_flag_no_identity_stays_a_loud_error() {
    let w = World::start(HOST);
    let out = get_without_identity(&w, false);
    assert!(
        out.assert_loud_error()
            .starts_with("no Entra credential found"),
        "{out:?}"
    );
    assert_eq!(out.stderr, "", "{out:?}");
}

#[test]
fn a_failing_identity_answers_not_found_with_the_reason() {
    let w = World::start(HOST);
    w.entra.set_mode(EntraMode::Fail(401));
    let out = w.get().env("ACR_ENTRA_CONFIG", config(&w, true)).run();
    assert_anonymous(&out, "AADSTS7000215");
    assert_eq!(w.acr.exchange_count(), 0);
}

#[test]
fn a_working_identity_still_wins() {
    let w = World::start(HOST);
    let out = w.get().env("ACR_ENTRA_CONFIG", config(&w, true)).run();
    out.assert_answer(HOST, &w.issued()[0]);
}

#[test]
fn kubelet_answers_an_empty_auth_for_an_anonymous_registry_without_identity() {
    let w = World::start(HOST);
    let out = w
        .env
        .helper()
        .arg("kubelet")
        .stdin(kubelet_request(&format!("{HOST}/team/app:1"), None, &[]))
        .env("ACR_ENTRA_CONFIG", config(&w, true))
        .env(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{}", dead_port()),
        )
        .env("ACR_ENTRA_TIMEOUT", "2")
        .connect_to(&w.acr.connect_to())
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout_line(), KUBELET_EMPTY);
    assert!(out.stderr.starts_with(WARNING), "{out:?}");
}
