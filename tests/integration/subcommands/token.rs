//! `token HOST [--json] [--scope …]`: the refresh token alone, or
//! `{"loginServer":…,"accessToken":…}`, byte for byte; the same cache as `get`; a clear
//! error (no network) for a host that is not ACR; and a scoped access token from ACR's
//! `/oauth2/token`.

use crate::support::subcommands::{FakeRegistry, RegistryMode};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";

fn token(w: &World) -> env::Helper {
    w.helper().arg("token")
}

#[test]
fn token_prints_the_refresh_token_alone() {
    let w = World::start(HOST);
    let acr = &w.acr;
    let out = token(&w).arg(HOST).run();
    let issued = acr.issued();
    assert_eq!(issued.len(), 1, "{out:?}");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("{}\n", issued[0]));
    assert_eq!(out.stderr, "");
}

#[test]
fn token_json_is_az_acr_login_expose_token_shape() {
    let w = World::start(HOST);
    let acr = &w.acr;
    let out = token(&w)
        .arg("https://MyAcr.azurecr.io/")
        .arg("--json")
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "{{\"loginServer\":\"myacr.azurecr.io\",\"accessToken\":\"{}\"}}\n",
            acr.issued()[0]
        )
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn token_shares_the_cache_with_get() {
    let w = World::start(HOST);
    let acr = &w.acr;
    let first = token(&w).arg(HOST).run();
    assert_eq!(first.code, Some(0), "{first:?}");
    let get = w.get().run();
    get.assert_answer(HOST, first.stdout.trim_end());
    let again = token(&w).arg(HOST).run();
    assert_eq!(again.stdout, first.stdout);
    assert_eq!(acr.exchange_count(), 1, "one mint for all three");
}

#[test]
fn token_for_a_non_acr_host_is_an_error_without_network() {
    let w = World::start(HOST);
    let entra = &w.entra;
    for host in ["ghcr.io", "myacr.azurecr.io.evil.example", "docker.io"] {
        // No rule that reaches a fake: nothing may be contacted.
        let out = token(&w)
            .env("ACR_ENTRA_CONNECT_TO", "x:443:127.0.0.1:1")
            .arg(host)
            .run();
        assert_eq!(
            out.subcommand_error(),
            format!(
                "`{host}` is not an ACR login server (*.azurecr.io, *.azurecr.cn, *.azurecr.us); for a custom domain, add it to the config file's `registries`"
            )
        );
    }
    assert_eq!(entra.server.connection_count(), 0);
}

#[test]
fn token_usage_errors() {
    let env = TestEnv::new();
    for (args, want) in [
        (
            &[][..],
            "usage: token HOST [--json] [--scope repository:NAME:pull[,push]]",
        ),
        (
            &[HOST, "other.azurecr.io"][..],
            "usage: token HOST [--json] [--scope repository:NAME:pull[,push]]",
        ),
        (
            &[HOST, "--jsn"][..],
            "`token`: unknown option `--jsn` (--help for usage)",
        ),
        (
            &[HOST, "--scope", "repository:app"][..],
            "scope `repository:app` is not TYPE:NAME:ACTIONS (e.g. repository:team/app:pull,push)",
        ),
    ] {
        let mut h = env.helper().arg("token");
        for a in args {
            h = h.arg(a);
        }
        let out = h.run();
        assert_eq!(out.subcommand_error(), want);
    }
}

/// `token HOST --scope SCOPE`, with the token-issuing registry standing where the fake ACR
/// would (the only connect-to rule for HOST).
fn scoped(w: &World, registry: &FakeRegistry, scope: &str) -> Output {
    token(w)
        .env("ACR_ENTRA_CONNECT_TO", registry.connect_to())
        .arg(HOST)
        .arg("--scope")
        .arg(scope)
        .run()
}

#[test]
fn token_with_scope_returns_a_scoped_access_token() {
    let w = World::start(HOST);
    let registry = FakeRegistry::start(HOST, RegistryMode::Normal);
    let out = scoped(&w, &registry, "repository:team/app:pull,push");
    assert_eq!(out.code, Some(0), "{out:?}");
    let access = registry.access_tokens();
    assert_eq!(access.len(), 1);
    assert_eq!(out.stdout, format!("{}\n", access[0]));
    let reqs = registry.requests_to("/oauth2/token");
    assert_eq!(reqs.len(), 1);
    let form = reqs[0].form();
    let refresh = &registry.refresh_tokens()[0];
    assert_eq!(
        form,
        [
            ("grant_type".to_string(), "refresh_token".to_string()),
            ("service".to_string(), HOST.to_string()),
            (
                "scope".to_string(),
                "repository:team/app:pull,push".to_string()
            ),
            ("refresh_token".to_string(), refresh.clone()),
        ]
    );
    // JSON form, two scopes, the refresh token from the cache and the remembered challenge.
    let out = token(&w)
        .env("ACR_ENTRA_CONNECT_TO", registry.connect_to())
        .arg(HOST)
        .arg("--json")
        .arg("--scope=repository:a:pull")
        .arg("--scope=repository:b:pull")
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    let access = registry.access_tokens();
    assert_eq!(
        out.stdout,
        format!(
            "{{\"loginServer\":\"{HOST}\",\"accessToken\":\"{}\"}}\n",
            access[1]
        )
    );
    let scopes: Vec<String> = registry.requests_to("/oauth2/token")[1]
        .form()
        .into_iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(scopes, ["repository:a:pull", "repository:b:pull"]);
    assert_eq!(registry.requests_to("/oauth2/exchange").len(), 1);
    assert_eq!(registry.requests_to("/v2/").len(), 1);
}

/// Registries in ABAC mode ignore a wildcard repository in a scope: the token is still
/// fetched, and a person running `token` is told so on stderr.
#[test]
fn token_with_a_wildcard_repository_scope_warns_about_abac() {
    let w = World::start(HOST);
    let registry = FakeRegistry::start(HOST, RegistryMode::Normal);
    let out = scoped(&w, &registry, "repository:*:pull");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("{}\n", registry.access_tokens()[0]));
    assert_eq!(
        out.stderr,
        "acr-entra warn: registries in ABAC mode do not honour a wildcard repository scope: name each repository\n"
    );
    let out = scoped(&w, &registry, "repository:team/app:pull");
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
}
