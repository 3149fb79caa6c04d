//! `token HOST [--json] [--scope SCOPE]…`: the ACR refresh token for HOST alone on
//! stdout, for `helm registry login`, `oras login`, `podman login` and `skopeo login`
//! with `--password-stdin` (user `00000000-0000-0000-0000-000000000000`), or
//! `{"loginServer":…,"accessToken":…}` as `az acr login --expose-token` prints it. With
//! `--scope repository:NAME:pull[,push]` the refresh token is traded at ACR's
//! `/oauth2/token` for an access token limited to that scope. The refresh token comes
//! from the same cache and mint as `get` (`lifecycle::acr_token`).

use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::cli::Args;
use crate::context::{Context, Dir};
use crate::error::{Error, Party, Result, one_line};
use crate::exchange::{self, Challenge, RealmPolicy};
use crate::helper;
use crate::http::{self, Http, HttpRequest};
use crate::lifecycle::{self, Target};
use crate::registry::RegistryHost;
use crate::secret::{AcrRefreshToken, Secret};

pub fn run(ctx: &Context, args: &[String]) -> Result<String> {
    let args = Args::parse("token", args, &["json"], &["scope"])?;
    let [host] = args.positional.as_slice() else {
        return Err(Error::Usage(
            "usage: token HOST [--json] [--scope repository:NAME:pull[,push]]".into(),
        ));
    };
    let scopes = args
        .values("scope")
        .into_iter()
        .map(check_scope)
        .collect::<Result<Vec<_>>>()?;
    if scopes.iter().any(|s| s.starts_with("repository:*:")) {
        crate::log::tell(format_args!(
            "registries in ABAC mode do not honour a wildcard repository scope: name each repository"
        ));
    }
    let host = acr_host(ctx, host)?;
    let (registry, cloud) = helper::acr_target(ctx, &host).ok_or_else(|| not_acr(&host))?;
    let dir = ctx.private_dir();
    let target = Target::new(&host, registry, cloud);
    let (refresh, _) = lifecycle::acr_token(ctx, &dir, &target, crate::now())?;
    let token = if scopes.is_empty() {
        refresh.0
    } else {
        let challenge = challenge(ctx, &dir, &host)?;
        access_token(&http::shared(&ctx.settings), &challenge, &refresh, &scopes)?
    };
    Ok(if args.has("json") {
        expose_token_json(&host.key(), &token)
    } else {
        token.expose().to_string()
    })
}

/// Parse HOST and insist that it gets Entra tokens: `token` for a host the helper
/// would never serve is a mistake to report, not "not found".
pub fn acr_host(ctx: &Context, text: &str) -> Result<RegistryHost> {
    let host = RegistryHost::parse(text).map_err(|_| {
        Error::Usage(format!(
            "`{}` is not a registry host name",
            one_line(text).chars().take(100).collect::<String>()
        ))
    })?;
    if helper::acr_target(ctx, &host).is_none() {
        return Err(not_acr(&host));
    }
    Ok(host)
}

fn not_acr(host: &RegistryHost) -> Error {
    Error::Usage(format!(
        "`{host}` is not an ACR login server (*.azurecr.io, *.azurecr.cn, *.azurecr.us); \
         for a custom domain, add it to the config file's `registries`"
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExposedToken<'a> {
    login_server: &'a str,
    access_token: &'a str,
}

/// `{"loginServer":"HOST","accessToken":"TOKEN"}` on one line.
pub fn expose_token_json(login_server: &str, token: &Secret) -> String {
    serde_json::to_string(&ExposedToken {
        login_server,
        access_token: token.expose(),
    })
    .unwrap_or_default()
}

/// A registry token scope: `repository:NAME:ACTIONS` (or `registry:catalog:*`), where
/// ACTIONS are comma-separated.
pub fn check_scope(scope: &str) -> Result<String> {
    let bad = || {
        Error::Usage(format!(
            "scope `{}` is not TYPE:NAME:ACTIONS (e.g. repository:team/app:pull,push)",
            one_line(scope).chars().take(100).collect::<String>()
        ))
    };
    let (rest, actions) = scope.rsplit_once(':').ok_or_else(bad)?;
    let (kind, name) = rest.split_once(':').ok_or_else(bad)?;
    let word_ok = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | ' '))
    };
    let known_actions = [
        "pull",
        "push",
        "delete",
        "metadata_read",
        "metadata_write",
        "*",
    ];
    if !matches!(kind, "repository" | "registry") || !word_ok(name) {
        return Err(bad());
    }
    if let Some(unknown) = actions.split(',').find(|a| !known_actions.contains(a)) {
        return Err(Error::Usage(format!(
            "scope `{}`: unknown action `{}` (use {})",
            one_line(scope).chars().take(100).collect::<String>(),
            one_line(unknown).chars().take(40).collect::<String>(),
            known_actions.join(", ")
        )));
    }
    Ok(scope.to_string())
}

/// Where the token service is: remembered by a previous mint (read only from the
/// trusted directory, and held to the same realm policy as a fresh challenge), else asked
/// for.
fn challenge(ctx: &Context, dir: &Dir, host: &RegistryHost) -> Result<Challenge> {
    let policy = RealmPolicy::new(&ctx.config);
    let remembered = dir
        .get()
        .and_then(|d| Cache::new(d).remembered(host).challenge)
        .and_then(|c| policy.remembered(host, c));
    if let Some(c) = remembered {
        return Ok(c);
    }
    exchange::discover(&http::shared(&ctx.settings), host, &policy)
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
}

/// `POST /oauth2/token` with `grant_type=refresh_token`: an access token for `scopes`.
pub fn access_token(
    http: &Http,
    challenge: &Challenge,
    refresh: &AcrRefreshToken,
    scopes: &[String],
) -> Result<Secret> {
    let url = format!("{}/oauth2/token", challenge.base);
    let mut pairs = vec![
        ("grant_type", "refresh_token"),
        ("service", challenge.service.as_str()),
    ];
    pairs.extend(scopes.iter().map(|s| ("scope", s.as_str())));
    pairs.push(("refresh_token", refresh.0.expose()));
    let request = HttpRequest::post_form(&url, exchange::form(&pairs));
    let response = http
        .send_patiently(&request)
        .map_err(|e| e.into_error(Party::TokenEndpoint))?;
    let fail = |why: String| Error::exchange(format!("ACR token endpoint `{url}` {why}"));
    match response.status {
        200 => {}
        401 | 403 => {
            return Err(fail(format!(
                "answered {} ({}): the identity may lack a role that grants `{}` on the registry (AcrPull/AcrPush; in ABAC mode Container Registry Repository Reader/Writer/Contributor on that repository, Catalog Lister for the catalog)",
                response.status,
                exchange::server_message(&response),
                scopes.join(" ")
            )));
        }
        status => {
            return Err(fail(format!(
                "answered {status} ({})",
                exchange::server_message(&response)
            )));
        }
    }
    serde_json::from_slice::<TokenAnswer>(&response.body)
        .ok()
        .and_then(|a| a.access_token)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| fail("answered 200 without an access_token".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_token_json_is_exact() {
        assert_eq!(
            expose_token_json("myacr.azurecr.io", &Secret::new("a.b\"c")),
            r#"{"loginServer":"myacr.azurecr.io","accessToken":"a.b\"c"}"#
        );
    }

    #[test]
    fn scopes() {
        for ok in [
            "repository:app:pull",
            "repository:team/app:pull,push",
            "repository:a/b/c:delete,metadata_read",
            "registry:catalog:*",
        ] {
            assert_eq!(check_scope(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "pull",
            "repository:app",
            "repository::pull",
            "repository:app:",
            "repository:app:fly",
            "repository:a b:pull",
            "user:app:pull",
            "repository:app:pull,",
        ] {
            assert!(check_scope(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_scope("repository:team/app:pul")
                .unwrap_err()
                .to_string(),
            "scope `repository:team/app:pul`: unknown action `pul` (use pull, push, delete, metadata_read, metadata_write, *)"
        );
    }
}
