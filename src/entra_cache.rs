//! The shared Entra token: one Entra access token per identity and scope, kept in the
//! private directory beside the refresh tokens, so that minting for several registries
//! with one identity asks Entra (or spawns `az`) once. Entra's token for the ACR audience
//! is the same whichever registry's exchange it is sent to; the registry decides at the
//! exchange what the identity may do there.
//!
//! The file is named by a digest of the identity (authority, cloud, tenant, credential
//! kind, who — including a pod's or CI job's subject — and scope), never a secret. Its
//! lifetime is the token's own (`exp` − `iat`) anchored at the moment it was asked for,
//! and it is used only while more than `margin` of that is left, so an exchange never
//! gets one that expires mid-request. Fetching takes the identity's own lock, inside the
//! host lock the caller holds; nothing takes a host lock while holding an identity's
//! lock, so the two cannot deadlock, and N registries minting cold at once make one
//! Entra request. A corrupt or foreign file counts as missing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::digest::{hex, sha256_parts};
use crate::error::Result;
use crate::identity::Identity;
use crate::jwt;
use crate::private_dir::PrivateDir;
use crate::secret::{EntraToken, Secret};

/// The on-disk format version; other versions are ignored and rewritten.
const FORMAT_VERSION: u32 = 1;

/// The longest an Entra access token is believed to live: a managed identity's last
/// about a day, an app's about an hour. A claim of more is a broken answer, not cached.
const MAX_LIFETIME: i64 = 26 * 3600;

/// What identifies one identity's Entra token for one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraKey {
    digest: String,
    scope: String,
}

impl EntraKey {
    /// `None` while the identity cannot say whom it is (a CI job whose OIDC token has
    /// not been fetched): such a token is asked for each time and never kept.
    pub fn new(identity: &Identity, scope: &str) -> Option<EntraKey> {
        let parts = [
            identity.authority.clone(),
            identity.cloud.name().to_string(),
            identity.tenant.clone().unwrap_or_default(),
            identity.kind.name().to_string(),
            identity.id()?,
            scope.to_string(),
        ];
        let parts: Vec<&[u8]> = parts.iter().map(String::as_bytes).collect();
        Some(EntraKey {
            digest: hex(&sha256_parts(b"acr-entra entra token v1", &parts)[..20]),
            scope: scope.to_string(),
        })
    }

    fn file_name(&self) -> String {
        format!("entra-{}.json", self.digest)
    }

    fn lock_name(&self) -> String {
        format!("entra-{}.lock", self.digest)
    }
}

#[derive(Serialize, Deserialize)]
struct EntraFile {
    version: u32,
    credential: String,
    scope: String,
    access_token: String,
    expires_on: i64,
    created_on: i64,
}

/// Where a token came from: a token from the file that the registry refuses is dropped
/// and asked for once more; a fresh one is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Shared,
    Fetched,
}

/// The shared Entra tokens in a checked private directory.
#[derive(Debug, Clone, Copy)]
pub struct EntraCache<'d> {
    dir: &'d PrivateDir,
    /// How long to wait for another process that is asking Entra for the same token.
    lock_timeout: Duration,
    /// How much life a token must have left to be handed to an exchange.
    margin: i64,
}

impl<'d> EntraCache<'d> {
    pub fn new(dir: &'d PrivateDir, lock_timeout: Duration, margin: Duration) -> Self {
        EntraCache {
            dir,
            lock_timeout,
            margin: margin.as_secs() as i64,
        }
    }

    /// `key`'s token from the file while it has more than the margin to live, else the
    /// one `fetch` gets, kept for the next mint. Another process fetching the same token
    /// is waited for; when the wait or the lock fails, this one fetches on its own (the
    /// write is atomic either way).
    pub fn token(
        &self,
        key: &EntraKey,
        credential: &str,
        fetch: impl FnOnce() -> Result<EntraToken>,
    ) -> Result<(EntraToken, Origin)> {
        if let Some(token) = self.fresh(key, crate::now()) {
            return Ok((token, Origin::Shared));
        }
        let _lock = self
            .dir
            .lock(&key.lock_name(), self.lock_timeout)
            .inspect_err(|e| crate::debug!("Entra token lock: {}", e.one_line()))
            .ok();
        if let Some(token) = self.fresh(key, crate::now()) {
            crate::debug!("another process asked Entra for this identity while we waited");
            return Ok((token, Origin::Shared));
        }
        let asked = crate::now();
        let token = fetch()?;
        self.put(key, credential, &token, asked);
        Ok((token, Origin::Fetched))
    }

    /// Drop `key`'s file if it still holds `refused` (a registry refused it), so the
    /// next request asks Entra again.
    pub fn forget(&self, key: &EntraKey, refused: &EntraToken) {
        let Ok(_lock) = self.dir.lock(&key.lock_name(), self.lock_timeout) else {
            return;
        };
        if self
            .read(key)
            .is_some_and(|f| f.access_token == refused.0.expose())
        {
            let _ = self.dir.remove(&key.file_name());
        }
    }

    fn read(&self, key: &EntraKey) -> Option<EntraFile> {
        let bytes = self.dir.read(&key.file_name()).ok()??;
        let file: EntraFile = serde_json::from_slice(&bytes).ok()?;
        let lifetime = file.expires_on.saturating_sub(file.created_on);
        (file.version == FORMAT_VERSION
            && file.scope == key.scope
            && !file.access_token.is_empty()
            && (1..=MAX_LIFETIME).contains(&lifetime))
        .then_some(file)
    }

    fn fresh(&self, key: &EntraKey, now: i64) -> Option<EntraToken> {
        let file = self.read(key)?;
        (file.expires_on.saturating_sub(now) > self.margin && file.created_on <= now)
            .then(|| EntraToken(Secret::new(file.access_token)))
    }

    /// Keep `token`, asked for at `asked`, when its lifetime can be read and it outlives
    /// the margin; sweep away expired tokens of other identities. A failed write is
    /// logged, never an error.
    fn put(&self, key: &EntraKey, credential: &str, token: &EntraToken, asked: i64) {
        let Some(lifetime) = lifetime(token, asked) else {
            crate::debug!("the Entra token's lifetime cannot be read; not keeping it");
            return;
        };
        if lifetime <= self.margin {
            return;
        }
        self.sweep(asked);
        let file = EntraFile {
            version: FORMAT_VERSION,
            credential: credential.to_string(),
            scope: key.scope.clone(),
            access_token: token.0.expose().to_string(),
            expires_on: asked.saturating_add(lifetime),
            created_on: asked,
        };
        let bytes = serde_json::to_vec(&file).unwrap_or_default();
        if let Err(e) = self.dir.write_atomic(&key.file_name(), &bytes) {
            crate::warn!("could not write the cache: {}", e.one_line());
        }
    }

    fn sweep(&self, now: i64) {
        for name in self.dir.names() {
            if !name.starts_with("entra-") || !name.to_ascii_lowercase().ends_with(".json") {
                continue;
            }
            let expired = self
                .dir
                .read(&name)
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice::<EntraFile>(&b).ok())
                .is_none_or(|f| f.expires_on <= now);
            if expired {
                let _ = self.dir.remove(&name);
            }
        }
    }
}

/// The token's lifetime in seconds from its own claims: `exp` − `iat` (so this machine's
/// clock does not matter), else `exp` as this machine reads it; `None` when neither is
/// usable or it claims more than `MAX_LIFETIME`.
fn lifetime(token: &EntraToken, now: i64) -> Option<i64> {
    let claims = jwt::claims(token.0.expose())?;
    let exp = jwt::seconds_claim(&claims, "exp")?;
    let life = match jwt::seconds_claim(&claims, "iat") {
        Some(iat) => exp.checked_sub(iat)?,
        None => exp.checked_sub(now)?,
    };
    (1..=MAX_LIFETIME).contains(&life).then_some(life)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests plant and damage files directly
mod tests {
    use super::*;
    use crate::identity::{CredentialKind, FederatedAssertion};

    fn token(iat: i64, exp: i64) -> EntraToken {
        EntraToken(Secret::new(jwt::make_unsigned(
            &serde_json::json!({"iat": iat, "exp": exp, "tid": "t"}),
        )))
    }

    fn identity(kind: CredentialKind, client: &str) -> Identity {
        Identity {
            client_id: Some(client.into()),
            tenant: Some("t1".into()),
            ..Identity::for_test(kind)
        }
    }

    fn pod(subject: &str) -> Identity {
        Identity {
            assertion: Some(FederatedAssertion::new(Secret::new(jwt::make_unsigned(
                &serde_json::json!({"iss": "https://k8s", "sub": subject, "aud": "api://AzureADTokenExchange"}),
            )))),
            ..identity(CredentialKind::WorkloadIdentity, "c1")
        }
    }

    #[test]
    fn keys_follow_identity_and_scope_and_hold_no_secret() {
        let acr = "https://containerregistry.azure.net/.default";
        let arm = "https://management.azure.com/.default";
        let a = identity(CredentialKind::ClientSecret, "c1");
        let keys = [
            EntraKey::new(&a, acr),
            EntraKey::new(&a, arm),
            EntraKey::new(&identity(CredentialKind::ClientSecret, "c2"), acr),
            EntraKey::new(&identity(CredentialKind::ClientCertificate, "c1"), acr),
            EntraKey::new(&pod("system:serviceaccount:a:one"), acr),
            EntraKey::new(&pod("system:serviceaccount:a:two"), acr),
        ];
        for (i, k) in keys.iter().enumerate() {
            let k = k.as_ref().unwrap();
            assert!(!k.file_name().contains("c1") && !k.file_name().contains("serviceaccount"));
            for other in &keys[i + 1..] {
                assert_ne!(k, other.as_ref().unwrap());
            }
        }
        assert_eq!(EntraKey::new(&a, acr), EntraKey::new(&a, acr));
        let unfetched = identity(CredentialKind::GitHubActions, "c1");
        assert_eq!(EntraKey::new(&unfetched, acr), None);
    }

    #[test]
    fn lifetime_is_the_tokens_own_anchored_where_it_was_asked_for() {
        // iat/exp from a clock an hour off still give the hour-long lifetime.
        assert_eq!(lifetime(&token(5_000, 8_600), 1_000), Some(3_600));
        assert_eq!(lifetime(&token(0, 0), 1_000), None);
        assert_eq!(lifetime(&token(0, MAX_LIFETIME + 1), 0), None);
        assert_eq!(lifetime(&EntraToken(Secret::new("opaque")), 0), None);
        let no_iat = EntraToken(Secret::new(jwt::make_unsigned(
            &serde_json::json!({"exp": 4_600}),
        )));
        assert_eq!(lifetime(&no_iat, 1_000), Some(3_600));
    }

    #[test]
    fn kept_used_while_fresh_then_asked_again_and_damage_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(&tmp.path().join("c")).unwrap();
        let cache = EntraCache::new(&dir, Duration::from_secs(1), Duration::from_secs(300));
        let key = EntraKey::new(
            &identity(CredentialKind::ClientSecret, "c1"),
            "https://containerregistry.azure.net/.default",
        )
        .unwrap();
        let now = crate::now();
        let first = token(now, now + 3600);
        let (got, origin) = cache
            .token(&key, "client-secret", || Ok(first.clone()))
            .unwrap();
        assert_eq!(
            (got.0.expose(), origin),
            (first.0.expose(), Origin::Fetched)
        );
        let (got, origin) = cache
            .token(&key, "client-secret", || panic!("asked Entra again"))
            .unwrap();
        assert_eq!((got.0.expose(), origin), (first.0.expose(), Origin::Shared));
        let mode =
            crate::platform::mode(&std::fs::metadata(dir.display_path(&key.file_name())).unwrap());
        assert_eq!(mode & 0o777, 0o600);

        // Refused: dropped, and the next one is fetched.
        cache.forget(&key, &first);
        let second = token(now, now + 3600);
        let (_, origin) = cache
            .token(&key, "client-secret", || Ok(second.clone()))
            .unwrap();
        assert_eq!(origin, Origin::Fetched);

        // Inside the margin: not used, and a token that would live no longer than the
        // margin is not kept.
        std::fs::remove_file(dir.display_path(&key.file_name())).unwrap();
        let short = token(now, now + 200);
        cache
            .token(&key, "client-secret", || Ok(short.clone()))
            .unwrap();
        assert!(!dir.display_path(&key.file_name()).exists());

        // A corrupt file counts as missing and is replaced.
        std::fs::write(dir.display_path(&key.file_name()), b"{not json").unwrap();
        let third = token(now, now + 3600);
        let (_, origin) = cache
            .token(&key, "client-secret", || Ok(third.clone()))
            .unwrap();
        assert_eq!(origin, Origin::Fetched);
        let (got, _) = cache
            .token(&key, "client-secret", || panic!("asked again"))
            .unwrap();
        assert_eq!(got.0.expose(), third.0.expose());
    }
}
