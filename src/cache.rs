//! The shared token cache: one versioned JSON file per (login server, cloud, tenant,
//! credential kind, identity, audience), named by a SHA-256 digest of those (never a
//! secret), plus one file per registry host remembering its challenge and the audience
//! that worked, and one small file per CI job's OIDC request remembering whom its token
//! named (never the token), so the job's next `get` finds its cache entry without asking
//! the CI again, and one file remembering that the instance metadata service did not
//! answer a probe (this boot, for `IMDS_ABSENT_TTL`), so a machine without a managed
//! identity does not wait for that probe on every failing `get`. Reads are lock-free (files are replaced atomically); writes need the
//! host's `HostLock`, the guard that `Cache::lock` hands out and that alone can write that
//! host's entries. A corrupt, foreign or unreadable file counts as empty: the cache never
//! fails a `get`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::digest::{hex, sha256_parts};
use crate::error::Result;
use crate::exchange::{Challenge, MAX_LIFETIME};
use crate::files::Lock;
use crate::identity::Identity;
use crate::private_dir::PrivateDir;
use crate::registry::{Audience, RegistryHost};
use crate::secret::{AcrRefreshToken, Secret};

/// The on-disk format version; other versions are ignored and rewritten.
pub const FORMAT_VERSION: u32 = 1;

/// The cache in a checked private directory: the only way to its files.
#[derive(Debug)]
pub struct Cache<'d> {
    dir: &'d PrivateDir,
}

/// What identifies one cached token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKey {
    digest: String,
    login_server: String,
}

impl TokenKey {
    /// The key of `identity`'s token for `host`; `None` while the identity cannot say
    /// whom it is (a CI job whose OIDC token has not been fetched yet), so no entry can
    /// answer for it.
    pub fn new(
        host: &RegistryHost,
        identity: &Identity,
        audience: Option<&Audience>,
    ) -> Option<TokenKey> {
        let parts = [
            host.key(),
            identity.cloud.name().to_string(),
            identity.tenant.clone().unwrap_or_default(),
            identity.kind.name().to_string(),
            identity.id()?,
            audience.map_or_else(|| "auto".to_string(), |a| a.name().to_string()),
            identity.authority.clone(),
        ];
        Some(TokenKey {
            digest: digest(&parts),
            login_server: host.key(),
        })
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// What identifies one CI job's OIDC request (its kind, URL, bearer token, audience and
/// client): a digest, so neither the bearer token nor anything that could recover it is
/// in the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectKey {
    digest: String,
}

impl SubjectKey {
    pub fn new(parts: &[&str]) -> SubjectKey {
        let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
        SubjectKey {
            digest: hex(&sha256_parts(b"acr-entra oidc request v1", &parts)[..20]),
        }
    }
}

/// How long a remembered subject is used: longer than any CI job lives, after which
/// its file is swept away by the next one written.
pub const SUBJECT_LIFETIME: i64 = 24 * 3600;

#[derive(Serialize, Deserialize)]
struct SubjectFile {
    version: u32,
    subject: String,
    created_on: i64,
}

/// How long a failed probe of the instance metadata service is believed: long enough
/// for a `docker pull` of many images or a build's many `get`s, short enough that a
/// machine given an identity (or a VM whose IMDS was briefly down) soon uses it.
pub const IMDS_ABSENT_TTL: i64 = 5 * 60;

const IMDS_ABSENT_NAME: &str = "imds-absent.json";

/// A failed probe: which endpoint, in which boot, when, and what it said.
#[derive(Serialize, Deserialize)]
struct ImdsAbsentFile {
    version: u32,
    endpoint: String,
    boot_id: Option<String>,
    failed_on: i64,
    why: String,
}

/// Which probe a remembered failure is about: the endpoint asked and this boot's id.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    pub endpoint: &'a str,
    pub boot_id: Option<&'a str>,
}

fn digest(parts: &[String]) -> String {
    let parts: Vec<&[u8]> = parts.iter().map(String::as_bytes).collect();
    hex(&sha256_parts(b"acr-entra cache key v1", &parts)[..20])
}

#[derive(Debug, Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    login_server: String,
    credential: String,
    refresh_token: String,
    expires_on: i64,
    created_on: i64,
    /// How much earlier than `ACR_ENTRA_MIN_TTL` before expiry to mint anew, in seconds,
    /// fixed when the entry is written (see `jitter`). Files without it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_jitter: Option<i64>,
}

/// How much earlier than `ACR_ENTRA_MIN_TTL` before expiry an entry living `lifetime`
/// seconds is minted anew: a random part (`draw`) of up to `percent` of the lifetime
/// (`ACR_ENTRA_REFRESH_JITTER`), so machines that minted together do not all come back in
/// the same minute. The minimum itself is the reader's setting; only this part is fixed
/// in the file.
pub fn jitter(lifetime: i64, draw: u32, percent: u8) -> i64 {
    let window = lifetime.max(0).saturating_mul(i64::from(percent)) / 100;
    if window > 0 {
        i64::from(draw) % (window + 1)
    } else {
        0
    }
}

/// A cached refresh token.
#[derive(Debug, Clone)]
pub struct Entry {
    pub token: AcrRefreshToken,
    pub expires_on: i64,
    pub created_on: i64,
    /// Seconds earlier than `min_ttl` before expiry that this entry is minted anew.
    pub jitter: i64,
    pub path: PathBuf,
}

impl Entry {
    /// Seconds left to live (negative once expired), without overflow.
    pub fn remaining(&self, now: i64) -> i64 {
        self.expires_on.saturating_sub(now)
    }

    /// Fresh while it has more than `min_ttl` plus its jitter to live.
    pub fn is_fresh(&self, now: i64, min_ttl: Duration) -> bool {
        self.remaining(now) > (min_ttl.as_secs() as i64).saturating_add(self.jitter)
    }

    /// Still usable at all (the fallback when a re-mint fails).
    pub fn is_valid(&self, now: i64) -> bool {
        self.remaining(now) > 60
    }
}

/// What a mint taught us about a registry host: its challenge and the audience that
/// worked, so the next mint starts with both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remembered {
    pub challenge: Option<Challenge>,
    pub audience: Option<Audience>,
}

#[derive(Serialize, Deserialize)]
struct HostFile {
    version: u32,
    login_server: String,
    challenge: Option<Challenge>,
    audience: Option<String>,
}

/// When a cached token was written, when it expires, and its refresh jitter (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub now: i64,
    pub expires_on: i64,
    pub jitter: i64,
}

/// The host's lock, held: re-reads after the wait and every write for that host go
/// through it, so nothing writes a host's entries without holding its lock.
#[derive(Debug)]
pub struct HostLock<'d> {
    cache: Cache<'d>,
    host: RegistryHost,
    lock: Lock,
}

impl<'d> Cache<'d> {
    pub fn new(dir: &'d PrivateDir) -> Cache<'d> {
        Cache { dir }
    }

    pub fn dir(&self) -> &'d PrivateDir {
        self.dir
    }

    fn token_name(key: &TokenKey) -> String {
        format!("token-{}.json", key.digest)
    }

    /// Where `key`'s token lives, for messages.
    pub fn token_path(&self, key: &TokenKey) -> PathBuf {
        self.dir.display_path(&Cache::token_name(key))
    }

    /// The permission bits of `key`'s token file, `None` when there is none.
    pub fn token_mode(&self, key: &TokenKey) -> Option<u32> {
        self.dir.entry_mode(&Cache::token_name(key))
    }

    fn host_name(host: &RegistryHost) -> String {
        format!("host-{}.json", digest(&[host.key()]))
    }

    /// The lock serialising mints for one registry host.
    fn lock_name(host: &RegistryHost) -> String {
        format!("host-{}.lock", digest(&[host.key()]))
    }

    /// Whether a mint for `host` ever took its lock here (the lock file is there): only
    /// then can there be cached tokens of it to remove.
    pub fn has_lock(&self, host: &RegistryHost) -> bool {
        self.dir.entry_mode(&Cache::lock_name(host)).is_some()
    }

    /// Take `host`'s lock, waiting at most `timeout`.
    pub fn lock(&self, host: &RegistryHost, timeout: Duration) -> Result<HostLock<'d>> {
        let lock = self.dir.lock(&Cache::lock_name(host), timeout)?;
        Ok(HostLock {
            cache: Cache { dir: self.dir },
            host: host.clone(),
            lock,
        })
    }

    /// The cached token for `key`, if there is a readable one of this version.
    pub fn get(&self, key: &TokenKey) -> Option<Entry> {
        let path = self.token_path(key);
        let bytes = match self.dir.read(&Cache::token_name(key)) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                crate::debug!("cache file unreadable, treating as empty: {}", e.one_line());
                return None;
            }
        };
        let file: TokenFile = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(_) => {
                crate::debug!(
                    "cache file `{}` is corrupt; treating as empty",
                    path.display()
                );
                return None;
            }
        };
        if file.version != FORMAT_VERSION
            || file.login_server != key.login_server
            || file.refresh_token.is_empty()
            || file.expires_on.saturating_sub(file.created_on) > MAX_LIFETIME
        {
            crate::debug!(
                "cache file `{}` is of another version or host; ignoring",
                path.display()
            );
            return None;
        }
        Some(Entry {
            token: AcrRefreshToken(Secret::new(file.refresh_token)),
            expires_on: file.expires_on,
            created_on: file.created_on,
            jitter: file.refresh_jitter.unwrap_or(0).clamp(0, MAX_LIFETIME),
            path,
        })
    }

    fn subject_name(key: &SubjectKey) -> String {
        format!("subject-{}.json", key.digest)
    }

    /// Whom the OIDC token of the request `key` named, when a mint in this job
    /// remembered it less than `SUBJECT_LIFETIME` ago.
    pub fn subject(&self, key: &SubjectKey, now: i64) -> Option<String> {
        let bytes = self.dir.read(&Cache::subject_name(key)).ok()??;
        let file: SubjectFile = serde_json::from_slice(&bytes).ok()?;
        let age = now.saturating_sub(file.created_on);
        (file.version == FORMAT_VERSION && (0..SUBJECT_LIFETIME).contains(&age))
            .then_some(file.subject)
            .filter(|s| !s.is_empty())
    }

    /// When `probe` failed in this boot less than `IMDS_ABSENT_TTL` ago: how long ago
    /// (seconds) and what it said. Another endpoint, another boot or an older failure
    /// is not believed.
    pub fn imds_absent(&self, probe: Probe, now: i64) -> Option<(i64, String)> {
        let bytes = self.dir.read(IMDS_ABSENT_NAME).ok()??;
        let file: ImdsAbsentFile = serde_json::from_slice(&bytes).ok()?;
        let age = now.saturating_sub(file.failed_on);
        (file.version == FORMAT_VERSION
            && file.endpoint == probe.endpoint
            && file.boot_id.as_deref() == probe.boot_id
            && (0..IMDS_ABSENT_TTL).contains(&age))
        .then_some((age, file.why))
    }

    /// What earlier mints taught us about `host` (empty when nothing readable is there).
    pub fn remembered(&self, host: &RegistryHost) -> Remembered {
        let Ok(Some(bytes)) = self.dir.read(&Cache::host_name(host)) else {
            return Remembered::default();
        };
        match serde_json::from_slice::<HostFile>(&bytes) {
            Ok(f) if f.version == FORMAT_VERSION && f.login_server == host.key() => Remembered {
                challenge: f.challenge,
                audience: f.audience.as_deref().and_then(Audience::parse),
            },
            _ => Remembered::default(),
        }
    }
}

impl<'d> HostLock<'d> {
    /// The private directory the host's files are in, for the other files a mint under
    /// this lock keeps there (the shared Entra token).
    pub fn dir(&self) -> &'d PrivateDir {
        self.cache.dir
    }

    /// Whether the lock is really held (file systems without locks proceed unlocked).
    pub fn is_held(&self) -> bool {
        self.lock.is_held()
    }

    /// Read `key`'s token again, now that another process may have written it.
    pub fn get(&self, key: &TokenKey) -> Option<Entry> {
        self.cache.get(key)
    }

    pub fn remembered(&self) -> Remembered {
        self.cache.remembered(&self.host)
    }

    /// Write a token minted by `credential`.
    pub fn put(
        &self,
        key: &TokenKey,
        credential: &str,
        token: &AcrRefreshToken,
        times: Times,
    ) -> Result<()> {
        let file = TokenFile {
            version: FORMAT_VERSION,
            login_server: key.login_server.clone(),
            credential: credential.to_string(),
            refresh_token: token.0.expose().to_string(),
            expires_on: times.expires_on,
            created_on: times.now,
            refresh_jitter: Some(times.jitter),
        };
        let bytes = serde_json::to_vec(&file).unwrap_or_default();
        self.cache.dir.write_atomic(&Cache::token_name(key), &bytes)
    }

    /// Remember what this mint learnt about the host.
    pub fn remember(&self, what: &Remembered) -> Result<()> {
        let file = HostFile {
            version: FORMAT_VERSION,
            login_server: self.host.key(),
            challenge: what.challenge.clone(),
            audience: what.audience.as_ref().map(|a| a.name().to_string()),
        };
        self.cache.dir.write_atomic(
            &Cache::host_name(&self.host),
            &serde_json::to_vec(&file).unwrap_or_default(),
        )
    }

    /// `Cache::imds_absent`, read under the lock.
    pub fn imds_absent(&self, probe: Probe, now: i64) -> Option<(i64, String)> {
        self.cache.imds_absent(probe, now)
    }

    /// Remember that `probe` failed, saying `why`. Any host's lock will do: every writer
    /// records the same fact about the machine.
    pub fn remember_imds_absent(&self, probe: Probe, why: &str, now: i64) -> Result<()> {
        let file = ImdsAbsentFile {
            version: FORMAT_VERSION,
            endpoint: probe.endpoint.to_string(),
            boot_id: probe.boot_id.map(str::to_string),
            failed_on: now,
            why: why.to_string(),
        };
        self.cache.dir.write_atomic(
            IMDS_ABSENT_NAME,
            &serde_json::to_vec(&file).unwrap_or_default(),
        )
    }

    /// The probe answered: a failure remembered before no longer holds.
    pub fn forget_imds_absent(&self) {
        let _ = self.cache.dir.remove(IMDS_ABSENT_NAME);
    }

    /// Remember whom the OIDC token of the request `key` named, and sweep away the
    /// records of requests (jobs) older than `SUBJECT_LIFETIME`. Any host's lock will
    /// do: every writer of one record writes the same subject.
    pub fn remember_subject(&self, key: &SubjectKey, subject: &str, now: i64) -> Result<()> {
        let dir = self.cache.dir;
        for name in dir.names() {
            if name.starts_with("subject-") && name.to_ascii_lowercase().ends_with(".json") {
                let stale = dir
                    .read(&name)
                    .ok()
                    .flatten()
                    .and_then(|b| serde_json::from_slice::<SubjectFile>(&b).ok())
                    .is_none_or(|f| now.saturating_sub(f.created_on) >= SUBJECT_LIFETIME);
                if stale {
                    let _ = dir.remove(&name);
                }
            }
        }
        let file = SubjectFile {
            version: FORMAT_VERSION,
            subject: subject.to_string(),
            created_on: now,
        };
        dir.write_atomic(
            &Cache::subject_name(key),
            &serde_json::to_vec(&file).unwrap_or_default(),
        )
    }

    /// Remove every cached token and the record of the host (used by `erase`).
    pub fn remove_all(&self) -> usize {
        let dir = self.cache.dir;
        let mut removed = 0;
        for name in dir.names() {
            if !name.starts_with("token-") || !name.to_ascii_lowercase().ends_with(".json") {
                continue;
            }
            let belongs = dir
                .read(&name)
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v.get("login_server")?.as_str().map(str::to_string))
                .is_some_and(|s| s == self.host.key());
            if belongs && dir.remove(&name).unwrap_or(false) {
                removed += 1;
            }
        }
        let _ = dir.remove(&Cache::host_name(&self.host));
        removed
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests plant and damage files directly
mod tests {
    use super::*;
    use crate::identity::{CredentialKind, FederatedAssertion};

    fn identity(kind: CredentialKind, client: Option<&str>, tenant: Option<&str>) -> Identity {
        Identity {
            tenant: tenant.map(Into::into),
            client_id: client.map(Into::into),
            ..Identity::for_test(kind)
        }
    }

    #[test]
    fn keys_differ_by_every_part_and_hold_no_secret() {
        let h = RegistryHost::parse("myacr.azurecr.io").unwrap();
        let h2 = RegistryHost::parse("other.azurecr.io").unwrap();
        let a = identity(CredentialKind::ClientSecret, Some("c1"), Some("t1"));
        let ci = |subject: Option<&str>| {
            Identity {
            assertion: subject.map(|s| {
                FederatedAssertion::new(Secret::new(crate::jwt::make_unsigned(
                    &serde_json::json!({"iss": "https://ci.example", "sub": s, "aud": "api://AzureADTokenExchange"}),
                )))
            }),
            ..identity(CredentialKind::GitHubActions, Some("c1"), Some("t1"))
        }
        };
        // Whom a CI job's OIDC token names is part of the key; before it is known
        // there is no key at all.
        assert_eq!(TokenKey::new(&h, &ci(None), None), None);
        let remembered = Identity {
            remembered_subject: ci(Some("repo:o/a:ref:refs/heads/main"))
                .assertion
                .map(|a| a.subject().to_string()),
            ..ci(None)
        };
        assert_eq!(
            TokenKey::new(&h, &remembered, None),
            TokenKey::new(&h, &ci(Some("repo:o/a:ref:refs/heads/main")), None),
            "a remembered subject finds the entry its token made"
        );
        let keys = [
            TokenKey::new(&h, &a, None),
            TokenKey::new(&h2, &a, None),
            TokenKey::new(
                &h,
                &identity(CredentialKind::ClientSecret, Some("c2"), Some("t1")),
                None,
            ),
            TokenKey::new(
                &h,
                &identity(CredentialKind::ClientSecret, Some("c1"), Some("t2")),
                None,
            ),
            TokenKey::new(
                &h,
                &identity(CredentialKind::WorkloadIdentity, Some("c1"), Some("t1")),
                None,
            ),
            TokenKey::new(&h, &a, Some(&Audience::Arm)),
            TokenKey::new(&h, &ci(Some("repo:o/a:ref:refs/heads/main")), None),
            TokenKey::new(&h, &ci(Some("repo:o/a:pull_request")), None),
            TokenKey::new(&h, &ci(Some("repo:o/b:ref:refs/heads/main")), None),
        ]
        .map(Option::unwrap);
        for (i, x) in keys.iter().enumerate() {
            assert_eq!(x.digest().len(), 40);
            assert!(x.digest().bytes().all(|b| b.is_ascii_hexdigit()));
            for y in &keys[i + 1..] {
                assert_ne!(x.digest(), y.digest());
            }
        }
        assert_eq!(TokenKey::new(&h, &a, None), TokenKey::new(&h, &a, None));
    }

    #[test]
    fn jitter_spreads_over_a_tenth_of_the_lifetime() {
        let lifetime = 3 * 3600 + 900;
        let spread: std::collections::BTreeSet<i64> = [0, 1, 7, 500, 1169, 1170, 99_999, u32::MAX]
            .into_iter()
            .map(|draw| jitter(lifetime, draw, 10))
            .collect();
        assert!(spread.len() >= 6, "{spread:?}");
        assert!(
            spread.iter().all(|j| (0..=lifetime / 10).contains(j)),
            "{spread:?}"
        );
        assert_eq!(jitter(5, u32::MAX, 10), 0);
        assert_eq!(jitter(i64::MIN, u32::MAX, 10), 0);
        assert_eq!(jitter(i64::MAX, u32::MAX, 50), i64::from(u32::MAX));
    }

    #[test]
    fn jitter_follows_the_setting_and_zero_turns_it_off() {
        let lifetime = 10_000;
        for draw in [0, 1, 4_999, 5_000, u32::MAX] {
            assert_eq!(jitter(lifetime, draw, 0), 0);
            assert!(jitter(lifetime, draw, 50) <= 5_000);
        }
        assert_eq!(jitter(lifetime, 5_000, 50), 5_000);
        assert_eq!(jitter(lifetime, 2_000, 10), 2_000 % 1_001);
    }

    #[test]
    fn a_failed_imds_probe_is_believed_for_one_boot_and_a_few_minutes() {
        let dir = tempfile::tempdir().unwrap();
        let private = PrivateDir::create(&dir.path().join("c")).unwrap();
        let cache = Cache::new(&private);
        let h = RegistryHost::parse("myacr.azurecr.io").unwrap();
        let lock = cache.lock(&h, Duration::from_secs(1)).unwrap();
        let probe = Probe {
            endpoint: "http://169.254.169.254",
            boot_id: Some("boot-1"),
        };
        assert_eq!(cache.imds_absent(probe, 1000), None);
        lock.remember_imds_absent(probe, "no answer", 1000).unwrap();
        assert_eq!(
            cache.imds_absent(probe, 1000 + IMDS_ABSENT_TTL - 1),
            Some((IMDS_ABSENT_TTL - 1, "no answer".to_string()))
        );
        assert_eq!(cache.imds_absent(probe, 1000 + IMDS_ABSENT_TTL), None);
        assert_eq!(cache.imds_absent(probe, 999), None, "from the future");
        let rebooted = Probe {
            boot_id: Some("boot-2"),
            ..probe
        };
        assert_eq!(cache.imds_absent(rebooted, 1001), None);
        let elsewhere = Probe {
            endpoint: "http://127.0.0.1:1",
            ..probe
        };
        assert_eq!(cache.imds_absent(elsewhere, 1001), None);
        lock.forget_imds_absent();
        assert_eq!(cache.imds_absent(probe, 1001), None);
        assert_eq!(private.entry_mode(IMDS_ABSENT_NAME), None);
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let private = PrivateDir::create(&dir.path().join("c")).unwrap();
        let cache = Cache::new(&private);
        let h = RegistryHost::parse("myacr.azurecr.io").unwrap();
        let key = TokenKey::new(&h, &identity(CredentialKind::AzureCli, None, None), None).unwrap();
        assert!(cache.get(&key).is_none());
        let lock = cache.lock(&h, Duration::from_secs(1)).unwrap();
        let tok = AcrRefreshToken(Secret::new("rt"));
        let times = Times {
            now: 1000,
            expires_on: 5000,
            jitter: 200,
        };
        lock.put(&key, "azure-cli", &tok, times).unwrap();
        let e = cache.get(&key).unwrap();
        assert_eq!(e.token, tok);
        assert!(e.is_fresh(1000, Duration::from_secs(1800)));
        assert!(e.is_fresh(2999, Duration::from_secs(1800)));
        assert!(
            !e.is_fresh(3000, Duration::from_secs(1800)),
            "1800 s + 200 s jitter"
        );
        assert!(!e.is_fresh(4000, Duration::from_secs(1800)));
        assert!(e.is_valid(4000));
        // The minimum is the reader's; only the jitter is fixed in the file.
        assert!(e.is_fresh(3200, Duration::from_secs(60)));
        assert!(
            !e.is_fresh(4741, Duration::from_secs(60)),
            "60 s + 200 s jitter"
        );
        for junk in [&b"{"[..], b"", b"null", br#"{"version":2,"login_server":"myacr.azurecr.io","credential":"x","refresh_token":"r","expires_on":9,"created_on":1}"#] {
            std::fs::write(cache.token_path(&key), junk).unwrap();
            assert!(cache.get(&key).is_none());
        }
        lock.put(&key, "azure-cli", &tok, times).unwrap();
        let learnt = Remembered {
            challenge: Some(Challenge::assumed(&h, "https")),
            audience: Some(Audience::Arm),
        };
        lock.remember(&learnt).unwrap();
        assert_eq!(cache.remembered(&h), learnt);
        assert_eq!(lock.remove_all(), 1);
        assert_eq!(cache.remembered(&h), Remembered::default());
        assert!(cache.get(&key).is_none());
    }

    #[test]
    fn subjects_are_remembered_for_a_day_and_old_ones_swept() {
        let dir = tempfile::tempdir().unwrap();
        let private = PrivateDir::create(&dir.path().join("c")).unwrap();
        let cache = Cache::new(&private);
        let h = RegistryHost::parse("myacr.azurecr.io").unwrap();
        let lock = cache.lock(&h, Duration::from_secs(1)).unwrap();
        let job_a = SubjectKey::new(&["github-actions", "https://ci/a", "bearer-a"]);
        let job_b = SubjectKey::new(&["github-actions", "https://ci/a", "bearer-b"]);
        assert_ne!(job_a, job_b);
        assert_eq!(cache.subject(&job_a, 1000), None);
        lock.remember_subject(&job_a, "iss=x sub=a", 1000).unwrap();
        assert_eq!(cache.subject(&job_a, 1000).as_deref(), Some("iss=x sub=a"));
        assert_eq!(cache.subject(&job_b, 1000), None);
        let later = 1000 + SUBJECT_LIFETIME;
        assert_eq!(cache.subject(&job_a, later), None, "past its lifetime");
        lock.remember_subject(&job_b, "iss=x sub=b", later).unwrap();
        let names = private.names();
        assert!(
            !names.iter().any(|n| n.contains(&job_a.digest)),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n.contains(&job_b.digest)), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("bearer")), "{names:?}");
        std::fs::write(private.display_path(&Cache::subject_name(&job_b)), b"{").unwrap();
        assert_eq!(
            cache.subject(&job_b, later),
            None,
            "a corrupt record is none"
        );
    }
}
