//! The verbs of the Docker credential-helper protocol and their policy: `get` answers a
//! stored credential, else a cached ACR refresh token, else mints one under the host's
//! lock (fresh? → lock → re-read → still stale? → mint → write); `store`, `erase` and
//! `list` keep docker's `credsStore` contract. Tokens come from `lifecycle::acr_token`, shared with the
//! subcommands that need a token.

use std::collections::BTreeMap;

use crate::cache::Cache;
use crate::config::RegistryConfig;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::lifecycle::{self, Target};
use crate::private_dir::PrivateDir;
use crate::protocol;
use crate::registry::{Cloud, HostError, RegistryHost};
use crate::store::{Store, Stored};

/// The username that tells ACR the password is an ACR refresh token.
pub const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Parse a server URL: malformed input is an error, a host we would never serve is
/// "not found" (no network, no hint that we tried).
pub fn parse_host(url: &str) -> Result<RegistryHost> {
    RegistryHost::parse(url).map_err(|e| match e {
        HostError::Empty => Error::Usage("no server URL on stdin".into()),
        HostError::ControlCharacters => {
            Error::Usage("server URL contains control characters".into())
        }
        HostError::Invalid => Error::NotFound,
    })
}

/// A registry gets Entra tokens when it is an ACR login server or listed in the config.
pub fn acr_target<'a>(
    ctx: &'a Context,
    host: &RegistryHost,
) -> Option<(Option<&'a RegistryConfig>, Cloud)> {
    if !ctx.config.gets_tokens(host) {
        return None;
    }
    let registry = ctx.config.registry(host);
    let cloud = registry
        .and_then(|r| r.cloud)
        .or_else(|| host.acr_cloud())
        .unwrap_or(Cloud::Public);
    Some((registry, cloud))
}

/// The host a `get` or `erase` asks about when no config file could change its answer:
/// not an ACR login server, so it gets tokens only if the config lists it (see
/// `Context::load_setting_aside`).
pub fn beyond_config(input: &[u8]) -> Option<RegistryHost> {
    beyond(&protocol::read_server_url(input).ok()?)
}

/// `beyond_config` for `store`'s JSON.
pub fn store_beyond_config(input: &[u8]) -> Option<RegistryHost> {
    beyond(&protocol::read_store(input).ok()?.server_url)
}

fn beyond(url: &str) -> Option<RegistryHost> {
    RegistryHost::parse(url)
        .ok()
        .filter(|h| h.acr_cloud().is_none())
}

pub fn get(ctx: &Context, input: &[u8]) -> Result<String> {
    let url = protocol::read_server_url(input)?;
    let host = parse_host(&url)?;
    let dir = ctx.private_dir();
    if let Some(stored) = dir.get().and_then(|d| Store::new(d).get(&host)) {
        crate::debug!("`{host}`: answering the credential stored by `store`");
        return Ok(protocol::write_get(&url, &stored.username, &stored.secret));
    }
    let Some((registry, cloud)) = acr_target(ctx, &host) else {
        crate::debug!("`{host}` is not an ACR login server and nothing is stored for it");
        // Still "not found" (the client goes anonymous), but docker and podman show a
        // helper's stderr, so a typo'd login server is named once.
        if let Some(meant) = host.near_acr() {
            crate::log::tell(format_args!(
                "`{host}` is not an ACR login server; did you mean `{meant}`?"
            ));
        }
        return Err(Error::NotFound);
    };
    crate::debug!("`{host}` is ACR ({} cloud)", cloud.name());
    let target = Target::new(&host, registry, cloud);
    match lifecycle::acr_token_or_anonymous(ctx, &dir, &target, crate::now())? {
        Some((token, _)) => Ok(protocol::write_get(&url, NULL_GUID, &token.0)),
        None => Err(Error::NotFound),
    }
}

pub fn store(ctx: &Context, input: &[u8]) -> Result<()> {
    let request = protocol::read_store(input)?;
    let host = RegistryHost::parse(&request.server_url).map_err(|_| {
        Error::Usage(format!(
            "ServerURL `{}` is not a registry host",
            crate::error::one_line(&request.server_url)
        ))
    })?;
    if request.username == NULL_GUID && acr_target(ctx, &host).is_some() {
        // `docker login HOST` without -u stores what `get` returned: our own minted token.
        crate::debug!("`{host}`: not pinning the helper's own refresh token");
        return Ok(());
    }
    let dir = ctx.created_dir()?;
    let store = Store::new(&dir);
    let lock = store.lock(ctx.store_lock_timeout())?;
    store.put(
        &lock,
        &host,
        &Stored {
            server_url: request.server_url,
            username: request.username,
            secret: request.secret,
        },
    )?;
    crate::debug!("`{host}`: stored in `{}`", store.path().display());
    Ok(())
}

pub fn erase(ctx: &Context, input: &[u8]) -> Result<()> {
    let url = protocol::read_server_url(input)?;
    let host = match parse_host(&url) {
        Ok(h) => h,
        Err(Error::NotFound) => return Ok(()),
        Err(e) => return Err(e),
    };
    // Nothing there, nothing to erase; a directory that cannot be trusted is an error
    // (docker logout shows it), since what it holds cannot be removed safely.
    let Some(path) = ctx.settings.cache_dir.as_deref() else {
        return Ok(());
    };
    let Some(dir) = PrivateDir::open(path)? else {
        return Ok(());
    };
    let store = Store::new(&dir);
    let lock = store.lock(ctx.store_lock_timeout())?;
    let removed = store.remove(&lock, &host)?;
    drop(lock);
    // A host the helper never minted for has no tokens here, and no lock file is created
    // for it (`docker logout` of Docker Hub must leave nothing behind).
    let cache = Cache::new(&dir);
    if acr_target(ctx, &host).is_none() && !cache.has_lock(&host) {
        crate::debug!("`{host}`: erased (stored: {removed}, never minted for)");
        return Ok(());
    }
    let lock = cache.lock(&host, ctx.lock_timeout())?;
    let tokens = lock.remove_all();
    crate::debug!("`{host}`: erased (stored: {removed}, cached tokens: {tokens})");
    Ok(())
}

pub fn list(ctx: &Context) -> String {
    let dir = ctx.private_dir();
    let mut entries: BTreeMap<String, String> =
        dir.get().map(|d| Store::new(d).list()).unwrap_or_default();
    for name in ctx.config.registries.keys() {
        let host = RegistryHost::parse(name).ok();
        let stored = host.is_some_and(|h| {
            entries
                .keys()
                .any(|k| RegistryHost::parse(k).is_ok_and(|x| x == h))
        });
        if !stored {
            entries.insert(name.clone(), NULL_GUID.to_string());
        }
    }
    protocol::write_list(&entries)
}
