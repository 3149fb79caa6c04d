//! The life of a registry's refresh token on this machine, in the order it happens:
//! fresh from the cache → take the host's lock → re-read (another process may have
//! minted while this one waited) → mint → write → and when the mint fails, a cached
//! token that is stale but still valid. The identities that may own the token are worked
//! out once, before the cache is read and without any network request, so a cache hit
//! costs a file read; only a mint that needs the instance metadata service probes it.
//! A mint under the host's lock shares the identity's Entra token with the mints of its
//! other registries (`entra_cache`); without a usable cache there is nothing to share.

use crate::cache::{Cache, Entry, HostLock, Probe, Remembered, Times, TokenKey, jitter};
use crate::config::{RegistryConfig, Settings};
use crate::context::{Context, Dir};
use crate::entra;
use crate::entra_cache::EntraCache;
use crate::error::{Error, Result};
use crate::identity::PodIdentity;
use crate::identity::{CredentialKind, Identity, ImdsAbsent, ManagedSource};
use crate::mint::{self, Minted, Start};
use crate::private_dir::PrivateDir;
use crate::registry::{Audience, Cloud, RegistryHost};
use crate::secret::AcrRefreshToken;
use crate::throttle::Wait;

/// What a token is asked for: the registry, its config entry and cloud, and a pod's own
/// identity when kubelet passed one.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub host: &'a RegistryHost,
    pub registry: Option<&'a RegistryConfig>,
    pub cloud: Cloud,
    pub pod: Option<&'a PodIdentity>,
}

impl<'a> Target<'a> {
    /// The machine's own identity for `host` (no pod).
    pub fn new(host: &'a RegistryHost, registry: Option<&'a RegistryConfig>, cloud: Cloud) -> Self {
        Target {
            host,
            registry,
            cloud,
            pod: None,
        }
    }

    fn audience(&self) -> Option<&Audience> {
        self.registry.and_then(|r| r.audience.as_ref())
    }

    /// The credential kind is picked from the environment, not forced.
    fn auto_pick(&self, settings: &Settings) -> bool {
        self.pod.is_none()
            && self.registry.and_then(|r| r.credential).is_none()
            && settings.credential.is_none()
    }
}

/// A fresh ACR refresh token for the target and its expiry (Unix seconds): from the
/// cache in `dir`, or minted. `now` is the time the request started.
pub fn acr_token(
    ctx: &Context,
    dir: &Dir,
    target: &Target,
    now: i64,
) -> Result<(AcrRefreshToken, i64)> {
    let settings = &ctx.settings;
    let host = target.host;
    let cache = dir.get().filter(|_| !settings.no_cache).map(Cache::new);
    let candidates = candidates(settings, target, cache.as_ref(), now)?;
    let keys: Vec<TokenKey> = candidates
        .iter()
        .filter_map(|id| TokenKey::new(host, id, target.audience()))
        .collect();
    if let Some(hit) = cache.as_ref().and_then(|c| fresh(c, &keys, settings, now)) {
        crate::debug!(
            "`{host}`: cache hit `{}`, expires in {}s",
            hit.path.display(),
            hit.remaining(now)
        );
        return Ok((hit.token, hit.expires_on));
    }
    let created = created_for_mint(ctx, dir, cache.is_some());
    let cache = cache.or_else(|| created.as_ref().map(Cache::new));
    let lock = match cache
        .as_ref()
        .map(|c| lock(ctx, c, host, &keys))
        .transpose()?
    {
        Some(Locked::Held(lock)) => Some(lock),
        Some(Locked::MintedMeanwhile(hit)) => return Ok((hit.token, hit.expires_on)),
        Some(Locked::Unusable) | None => None,
    };
    if let Some(hit) = lock.as_ref().and_then(|l| fresh_under(l, &keys, settings)) {
        crate::debug!("`{host}`: another process minted while we waited");
        return Ok((hit.token, hit.expires_on));
    }
    mint_and_keep(ctx, target, candidates, lock.as_ref(), now)
}

/// `acr_token`, unless the registry's config entry allows anonymous pulls and no token can
/// be had (no credential kind, or the mint failed): then `None`, with the reason on
/// stderr, so the client pulls anonymously instead of failing. Without the flag a failure
/// stays loud.
pub fn acr_token_or_anonymous(
    ctx: &Context,
    dir: &Dir,
    target: &Target,
    now: i64,
) -> Result<Option<(AcrRefreshToken, i64)>> {
    match acr_token(ctx, dir, target, now) {
        Err(e) if target.registry.is_some_and(|r| r.anonymous) => {
            crate::log::tell(format_args!(
                "`{}` allows anonymous pulls; answering without credentials because no token could be had: {}",
                target.host,
                e.one_line()
            ));
            Ok(None)
        }
        other => other.map(Some),
    }
}

/// The directory the first mint on this machine creates for what it will write, when
/// the cache is wanted and there is none yet.
fn created_for_mint(ctx: &Context, dir: &Dir, have_cache: bool) -> Option<PrivateDir> {
    let settings = &ctx.settings;
    if have_cache || settings.no_cache || settings.cache_dir.is_none() {
        return None;
    }
    match dir {
        Dir::Missing => ctx
            .created_dir()
            .inspect_err(|e| {
                crate::warn!("cache unusable, minting without it: {}", e.one_line());
            })
            .ok(),
        Dir::Ready(_) | Dir::Unusable => None,
    }
}

/// Mint with the identity that applies (unless its own entry is fresh after all), keep
/// the result under the lock, and fall back to a still-valid cached token on failure.
fn mint_and_keep(
    ctx: &Context,
    target: &Target,
    candidates: Vec<Identity>,
    lock: Option<&HostLock>,
    now: i64,
) -> Result<(AcrRefreshToken, i64)> {
    let settings = &ctx.settings;
    let identity = for_mint(settings, target, candidates, lock)?;
    let identity = match with_assertion(settings, target, identity, lock, now) {
        Ok(identity) => identity,
        Err(failed) => {
            let (e, cached) = *failed;
            return fall_back(target.host, cached, e);
        }
    };
    let key = TokenKey::new(target.host, &identity, target.audience());
    let cached = lock.zip(key.as_ref()).and_then(|(l, key)| l.get(key));
    if let Some(hit) = cached
        .as_ref()
        .filter(|e| e.is_fresh(now, settings.min_ttl))
    {
        return Ok((hit.token.clone(), hit.expires_on));
    }
    let start = Start {
        remembered: lock.map(HostLock::remembered).unwrap_or_default(),
        wait: if cached.as_ref().is_some_and(|c| c.is_valid(now)) {
            Wait::Never
        } else {
            Wait::Patient
        },
        entra_cache: lock.map(|l| {
            EntraCache::new(
                l.dir(),
                mint::entra_lock_timeout(settings),
                mint::entra_margin(settings),
            )
        }),
    };
    let minted = mint::mint(
        settings,
        &ctx.config,
        target.host,
        target.registry,
        &identity,
        &start,
        &mut |_| {},
    );
    match minted {
        Ok(minted) => {
            if let Some((lock, key)) = lock.zip(key.as_ref()) {
                write(lock, key, identity.kind, &minted, settings.refresh_jitter);
            }
            Ok((minted.token, minted.expires_on))
        }
        Err(e) => fall_back(target.host, cached, e),
    }
}

/// The identity with its assertion in hand: a CI job's OIDC token is fetched now, under
/// the lock and before the cache is read again, because whom it names decides which
/// entry is this job's; whom it named is remembered for the job's next `get`. When the
/// CI's service fails, the entry of the subject remembered before is the fallback.
fn with_assertion(
    settings: &Settings,
    target: &Target,
    identity: Identity,
    lock: Option<&HostLock>,
    now: i64,
) -> std::result::Result<Identity, Box<(Error, Option<Entry>)>> {
    if !identity.kind.fetches_assertion() {
        return Ok(identity);
    }
    let before = TokenKey::new(target.host, &identity, target.audience())
        .and_then(|key| lock.and_then(|l| l.get(&key)));
    let wait = if before.as_ref().is_some_and(|c| c.is_valid(now)) {
        Wait::Never
    } else {
        Wait::Patient
    };
    let http = crate::http::shared(settings).waiting(wait);
    let fetched =
        entra::with_assertion(&identity, settings, &http).map_err(|e| Box::new((e, before)))?;
    if let (Some(lock), Some(key), Some(assertion)) = (
        lock,
        entra::oidc::subject_key(&fetched, settings),
        &fetched.assertion,
    ) && let Err(e) = lock.remember_subject(&key, assertion.subject(), crate::now())
    {
        crate::warn!("could not write the cache: {}", e.one_line());
    }
    Ok(fetched)
}

/// Who may own the token, without probing anything or any network request: the
/// identity the environment gives (for a CI job, with whom its OIDC token named when
/// this job last minted), and when that is a VM's managed identity picked
/// automatically, also the one that would be picked without it (the cached token of
/// either is a hit).
fn candidates(
    settings: &Settings,
    target: &Target,
    cache: Option<&Cache>,
    now: i64,
) -> Result<Vec<Identity>> {
    let mut tentative = choose(settings, target, &|| Ok(()))?;
    if let Some(cache) = cache
        && let Some(key) = entra::oidc::subject_key(&tentative, settings)
    {
        tentative.remembered_subject = cache.subject(&key, now);
    }
    let mut candidates = vec![tentative];
    if target.auto_pick(settings)
        && candidates[0].managed_source == Some(ManagedSource::Imds)
        && let Ok(alt) = choose(settings, target, &|| Err(ImdsAbsent::Assumed))
    {
        candidates.push(alt);
    }
    Ok(candidates)
}

/// The identity to mint with: the first candidate, unless it depends on the instance
/// metadata service, which is then asked whether it is there.
fn for_mint(
    settings: &Settings,
    target: &Target,
    candidates: Vec<Identity>,
    lock: Option<&HostLock>,
) -> Result<Identity> {
    let identity = if candidates[0].managed_source == Some(ManagedSource::Imds) {
        choose(settings, target, &|| probe_imds(settings, lock))?
    } else {
        candidates
            .into_iter()
            .next()
            .unwrap_or_else(|| unreachable_identity(target))
    };
    crate::debug!(
        "`{}`: credential {} ({})",
        target.host,
        identity.kind.name(),
        identity.why
    );
    for skipped in &identity.skipped {
        crate::trace!("skipped {skipped}");
    }
    Ok(identity)
}

/// Probe the instance metadata service, unless a probe in this boot failed a few minutes
/// ago (`cache::IMDS_ABSENT_TTL`): a laptop without an identity would otherwise wait
/// for the probe on every `get` of a `docker pull`. Remembered only with the cache (its
/// lock in hand), so `ACR_ENTRA_NO_CACHE` probes every time.
fn probe_imds(settings: &Settings, lock: Option<&HostLock>) -> std::result::Result<(), ImdsAbsent> {
    let Some(lock) = lock else {
        return entra::probe_imds(settings);
    };
    let (endpoint, boot_id) = imds_probe_facts(settings);
    let probe = Probe {
        endpoint: &endpoint,
        boot_id: boot_id.as_deref(),
    };
    if let Some((age, why)) = lock.imds_absent(probe, crate::now()) {
        crate::debug!("instance metadata service: {why} {age}s ago; not probing again yet");
        return Err(ImdsAbsent::Remembered { age, why });
    }
    let probed = entra::probe_imds(settings);
    match &probed {
        Ok(()) => lock.forget_imds_absent(),
        Err(absent) => {
            if let Err(e) = lock.remember_imds_absent(probe, &absent.to_string(), crate::now()) {
                crate::warn!("could not write the cache: {}", e.one_line());
            }
        }
    }
    probed
}

/// What a remembered probe failure is about: the endpoint and this boot's id.
fn imds_probe_facts(settings: &Settings) -> (String, Option<String>) {
    (entra::imds_base(settings), crate::platform::boot_id())
}

/// A failed probe that `get` remembers and still believes (`probe_imds`): how long ago
/// and what it said. For `doctor`, which probes afresh and reads this without writing.
pub fn remembered_imds_absence(settings: &Settings, dir: &PrivateDir) -> Option<(i64, String)> {
    let (endpoint, boot_id) = imds_probe_facts(settings);
    Cache::new(dir).imds_absent(
        Probe {
            endpoint: &endpoint,
            boot_id: boot_id.as_deref(),
        },
        crate::now(),
    )
}

/// `candidates` always holds at least one identity; this is never called.
fn unreachable_identity(target: &Target) -> Identity {
    Identity::new(CredentialKind::ClientSecret, target.cloud, String::new())
}

fn choose(
    settings: &Settings,
    target: &Target,
    probe: &dyn Fn() -> std::result::Result<(), ImdsAbsent>,
) -> Result<Identity> {
    match target.pod {
        Some(pod) => entra::pod_identity(settings, target.registry, target.cloud, pod),
        None => entra::choose(
            settings,
            target.registry,
            target.cloud,
            probe,
            &|p: &str| entra::on_path(settings, p),
        ),
    }
}

/// The first fresh cached token among `keys`.
fn fresh(cache: &Cache, keys: &[TokenKey], settings: &Settings, now: i64) -> Option<Entry> {
    keys.iter()
        .find_map(|key| cache.get(key).filter(|e| e.is_fresh(now, settings.min_ttl)))
}

/// The same, read under the lock: the clock has moved on while waiting.
fn fresh_under(lock: &HostLock, keys: &[TokenKey], settings: &Settings) -> Option<Entry> {
    let now = crate::now();
    keys.iter()
        .find_map(|key| lock.get(key).filter(|e| e.is_fresh(now, settings.min_ttl)))
}

enum Locked<'d> {
    Held(HostLock<'d>),
    /// The wait timed out, but the holder had written a fresh token by then.
    MintedMeanwhile(Entry),
    /// The lock file cannot be used: mint without the cache.
    Unusable,
}

/// Take the host's lock. A timeout is an error unless a fresh token appeared meanwhile;
/// any other failure means minting without the cache.
fn lock<'d>(
    ctx: &Context,
    cache: &Cache<'d>,
    host: &RegistryHost,
    keys: &[TokenKey],
) -> Result<Locked<'d>> {
    match cache.lock(host, ctx.lock_timeout()) {
        Ok(lock) => Ok(Locked::Held(lock)),
        Err(e @ Error::LockTimeout { .. }) => match fresh(cache, keys, &ctx.settings, crate::now())
        {
            Some(hit) => Ok(Locked::MintedMeanwhile(hit)),
            None => Err(e),
        },
        Err(e) => {
            crate::warn!("cache unusable, minting without it: {}", e.one_line());
            Ok(Locked::Unusable)
        }
    }
}

/// Keep the minted token and what the mint learnt; a failed write is logged, never an
/// error (the cache is an optimisation).
fn write(lock: &HostLock, key: &TokenKey, kind: CredentialKind, minted: &Minted, percent: u8) {
    let now = crate::now();
    let lifetime = minted.expires_on.saturating_sub(now);
    let times = Times {
        now,
        expires_on: minted.expires_on,
        jitter: jitter(lifetime, crate::random_u32(), percent),
    };
    let written = lock
        .put(key, kind.name(), &minted.token, times)
        .and_then(|()| {
            lock.remember(&Remembered {
                challenge: Some(minted.challenge.clone()),
                audience: Some(minted.audience.clone()),
            })
        });
    if let Err(e) = written {
        crate::warn!("could not write the cache: {}", e.one_line());
    }
}

/// A failed mint: the cached token if it is still valid (with a warning), else the error.
fn fall_back(
    host: &RegistryHost,
    cached: Option<Entry>,
    error: Error,
) -> Result<(AcrRefreshToken, i64)> {
    let now = crate::now();
    match cached.filter(|c| c.is_valid(now)) {
        Some(stale) => {
            crate::warn!(
                "re-minting for `{host}` failed, serving the cached token that expires in {}s: {}",
                stale.remaining(now),
                error.one_line()
            );
            Ok((stale.token, stale.expires_on))
        }
        None => Err(error),
    }
}
