//! The verbs of the Docker credential-helper protocol and their policy: `get` answers a
//! stored credential, else a cached ACR refresh token, else mints one under the host's
//! lock (fresh? → lock → re-read → still stale? → mint → write); `store`, `erase` and
//! `list` keep docker's `credsStore` contract. `acr_token` is shared with the
//! subcommands that need a token.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cache::{Cache, Entry, HostInfo, TokenKey};
use crate::config::{FileConfig, RegistryConfig, Settings};
use crate::entra;
use crate::error::{Error, Result};
use crate::identity::{Identity, ManagedSource, PodAssertion};
use crate::mint::{self, Hints};
use crate::private_dir::PrivateDir;
use crate::protocol;
use crate::registry::Audience;
use crate::registry::{Cloud, HostError, RegistryHost};
use crate::secret::AcrRefreshToken;
use crate::store::{Store, Stored};

/// The username that tells ACR the password is an ACR refresh token.
pub const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Settings plus the config file: what every verb needs.
#[derive(Debug)]
pub struct Context {
    pub settings: Settings,
    pub config: FileConfig,
}

/// The private directory as a verb finds it.
#[derive(Debug)]
pub enum Dir {
    /// Open and checked: the cache and the store are read and written through it.
    Ready(PrivateDir),
    /// Not there yet (or no location at all): nothing stored or cached; created when a
    /// mint or `store` has something to write.
    Missing,
    /// There but not to be trusted (a symbolic link, another user's, open to others):
    /// nothing is read from or written to it.
    Unusable,
}

impl Dir {
    pub fn get(&self) -> Option<&PrivateDir> {
        match self {
            Dir::Ready(dir) => Some(dir),
            Dir::Missing | Dir::Unusable => None,
        }
    }
}

impl Context {
    pub fn load(settings: Settings) -> Result<Context> {
        let config = match &settings.config_path {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Ok(Context { settings, config })
    }

    /// The private directory for reading: an untrusted one is ignored with a warning
    /// (anyone could have planted tokens or credentials there), and `get` then mints
    /// without the cache. `store` fails loudly on it instead (`created_dir`).
    pub fn private_dir(&self) -> Dir {
        match self.open_dir() {
            Ok(Some(dir)) => Dir::Ready(dir),
            Ok(None) => Dir::Missing,
            Err(e) => {
                crate::warn!(
                    "cache unusable, minting without it (and ignoring stored credentials): {}",
                    e.one_line()
                );
                Dir::Unusable
            }
        }
    }

    /// The private directory if it exists, or why it cannot be trusted (for `doctor`).
    pub fn open_dir(&self) -> Result<Option<PrivateDir>> {
        match self.settings.cache_dir.as_deref() {
            Some(path) => PrivateDir::open(path),
            None => Ok(None),
        }
    }

    /// The private directory for writing, created if missing; an error when there is no
    /// location or it cannot be trusted.
    pub fn created_dir(&self) -> Result<PrivateDir> {
        let path = self.settings.cache_dir.as_deref().ok_or_else(no_dir)?;
        PrivateDir::create(path)
    }

    /// How long to wait for another process's lock: longer than the slowest mint it may
    /// be doing (see `mint::worst_case`), plus a margin.
    fn lock_timeout(&self) -> Duration {
        mint::worst_case(&self.settings) + Duration::from_secs(2)
    }
}

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
    let registry = ctx.config.registry(host);
    let cloud = registry
        .and_then(|r| r.cloud)
        .or_else(|| host.acr_cloud())
        .or(registry.map(|_| Cloud::Public))?;
    Some((registry, cloud))
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
        return Err(Error::NotFound);
    };
    crate::debug!("`{host}` is ACR ({} cloud)", cloud.name());
    let (token, _) = acr_token(ctx, &dir, &host, registry, cloud, None)?;
    Ok(protocol::write_get(&url, NULL_GUID, &token.0))
}

/// A kubelet-supplied workload identity: service-account token and the pod's client id.
#[derive(Debug, Clone)]
pub struct PodIdentity {
    pub client_id: String,
    pub tenant_id: Option<String>,
    pub assertion: PodAssertion,
}

/// A fresh ACR refresh token for `host` and its expiry: from the cache in `dir`, or
/// minted.
pub fn acr_token(
    ctx: &Context,
    dir: &Dir,
    host: &RegistryHost,
    registry: Option<&RegistryConfig>,
    cloud: Cloud,
    pod: Option<&PodIdentity>,
) -> Result<(AcrRefreshToken, i64)> {
    let settings = &ctx.settings;
    let on_path = |p: &str| entra::on_path(settings, p);
    let choose = |probe: &dyn Fn() -> std::result::Result<(), String>| -> Result<Identity> {
        match pod {
            Some(pod) => pod_identity(settings, registry, cloud, pod),
            None => entra::choose(settings, registry, cloud, probe, &on_path),
        }
    };
    let audience = registry.and_then(|r| r.audience.clone());
    // Candidates without probing IMDS, so a cache hit touches no network.
    let tentative = choose(&|| Ok(()))?;
    let mut candidates = vec![tentative];
    let auto = pod.is_none()
        && registry.and_then(|r| r.credential).is_none()
        && settings.credential.is_none();
    if auto
        && candidates[0].managed_source == Some(ManagedSource::Imds)
        && let Ok(alt) = choose(&|| Err("assumed absent".into()))
    {
        candidates.push(alt);
    }
    let now = crate::now();
    let fresh = |cache: &Cache, ids: &[Identity]| {
        ids.iter().find_map(|id| {
            cache
                .get(&TokenKey::new(host, id, audience.as_ref()))
                .filter(|e| e.is_fresh(crate::now(), settings.min_ttl))
        })
    };
    let cache = dir.get().filter(|_| !settings.no_cache).map(Cache::new);
    if let Some(cache) = &cache
        && let Some(hit) = fresh(cache, &candidates)
    {
        crate::debug!(
            "`{host}`: cache hit `{}`, expires in {}s",
            hit.path.display(),
            hit.remaining(now)
        );
        return Ok((hit.token, hit.expires_on));
    }
    // The first mint on this machine creates the directory for what it will write.
    let created;
    let cache = match (cache, dir) {
        (Some(cache), _) => Some(cache),
        (None, Dir::Missing) if !settings.no_cache && settings.cache_dir.is_some() => {
            match ctx.created_dir() {
                Ok(d) => {
                    created = d;
                    Some(Cache::new(&created))
                }
                Err(e) => {
                    crate::warn!("cache unusable, minting without it: {}", e.one_line());
                    None
                }
            }
        }
        (None, _) => None,
    };
    let lock = match &cache {
        None => None,
        Some(cache) => match cache.lock(host, ctx.lock_timeout()) {
            Ok(lock) => Some(lock),
            Err(e @ Error::LockTimeout(_)) => {
                // The holder may have written its token as we gave up: look once more.
                if let Some(hit) = fresh(cache, &candidates) {
                    return Ok((hit.token, hit.expires_on));
                }
                return Err(e);
            }
            Err(e) => {
                crate::warn!("cache unusable, minting without it: {}", e.one_line());
                None
            }
        },
    };
    if let (Some(cache), Some(_)) = (&cache, &lock)
        && let Some(hit) = fresh(cache, &candidates)
    {
        crate::debug!("`{host}`: another process minted while we waited");
        return Ok((hit.token, hit.expires_on));
    }
    let identity = choose(&|| entra::probe_imds(settings))?;
    crate::debug!(
        "`{host}`: credential {} ({})",
        identity.kind.name(),
        identity.why
    );
    for skipped in &identity.skipped {
        crate::trace!("skipped {skipped}");
    }
    let key = TokenKey::new(host, &identity, audience.as_ref());
    let cached: Option<Entry> = match (&cache, &lock) {
        (Some(cache), Some(_)) => cache.get(&key),
        _ => None,
    };
    if let Some(hit) = cached
        .as_ref()
        .filter(|e| e.is_fresh(now, settings.min_ttl))
    {
        return Ok((hit.token.clone(), hit.expires_on));
    }
    let info = match (&cache, &lock) {
        (Some(cache), Some(_)) => cache.host_info(host),
        _ => HostInfo::default(),
    };
    let hints = Hints {
        challenge: info.challenge.clone(),
        audience: info.audience.as_deref().and_then(Audience::parse),
    };
    let minted = match mint::mint(
        settings,
        &ctx.config,
        host,
        registry,
        &identity,
        &hints,
        &mut |_| {},
    ) {
        Ok(m) => m,
        Err(e) => {
            if let Some(stale) = cached.filter(|c| c.is_valid(crate::now())) {
                crate::warn!(
                    "re-minting for `{host}` failed, serving the cached token that expires in {}s: {}",
                    stale.remaining(crate::now()),
                    e.one_line()
                );
                return Ok((stale.token, stale.expires_on));
            }
            return Err(e);
        }
    };
    if let (Some(cache), Some(lock)) = (&cache, &lock) {
        let written = cache
            .put(
                lock,
                &key,
                identity.kind.name(),
                &minted.token,
                minted.expires_on,
                crate::now(),
            )
            .and_then(|()| {
                cache.put_host_info(
                    lock,
                    host,
                    &HostInfo {
                        challenge: Some(minted.challenge.clone()),
                        audience: Some(minted.audience.name().to_string()),
                    },
                )
            });
        if let Err(e) = written {
            crate::warn!("could not write the cache: {}", e.one_line());
        }
    }
    Ok((minted.token, minted.expires_on))
}

fn pod_identity(
    settings: &Settings,
    registry: Option<&RegistryConfig>,
    cloud: Cloud,
    pod: &PodIdentity,
) -> Result<Identity> {
    let authority = entra::authority(settings, cloud)?;
    Ok(Identity {
        why: "kubelet passed a service-account token for this pod".into(),
        tenant: pod
            .tenant_id
            .clone()
            .or_else(|| registry.and_then(|r| r.tenant_id.clone()))
            .or_else(|| settings.azure.tenant_id.clone()),
        client_id: Some(pod.client_id.clone()),
        inline_assertion: Some(pod.assertion.clone()),
        ..Identity::new(
            crate::identity::CredentialKind::WorkloadIdentity,
            cloud,
            authority,
        )
    })
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
    let lock = store.lock(ctx.lock_timeout())?;
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
    let lock = store.lock(ctx.lock_timeout())?;
    let removed = store.remove(&lock, &host)?;
    drop(lock);
    let cache = Cache::new(&dir);
    let lock = cache.lock(&host, ctx.lock_timeout())?;
    let tokens = cache.remove_host(&lock, &host)?;
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

fn no_dir() -> Error {
    Error::Config(
        "no directory for stored credentials: set ACR_ENTRA_CACHE_DIR, XDG_CACHE_HOME or HOME"
            .into(),
    )
}
