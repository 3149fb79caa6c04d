//! Credentials kept by `store` (docker login to Docker Hub, ghcr.io, an ACR admin user or
//! a repository-scoped token), so the helper can be docker's one `credsStore`. One
//! versioned JSON file, 0600 in the 0700 cache directory, replaced atomically under a
//! lock. Entries keep the ServerURL exactly as docker gave it (docker looks them up by
//! that string after `list`) and are matched by normalised host.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::files::Lock;
use crate::private_dir::PrivateDir;
use crate::registry::RegistryHost;
use crate::secret::Secret;

pub const FORMAT_VERSION: u32 = 1;
const FILE_NAME: &str = "credentials.json";
const LOCK_NAME: &str = "credentials.lock";

#[derive(Clone, Serialize, Deserialize)]
struct StoredEntry {
    server_url: String,
    username: String,
    secret: String,
}

#[derive(Serialize, Deserialize, Default)]
struct StoreFile {
    version: u32,
    entries: Vec<StoredEntry>,
}

/// A stored credential.
#[derive(Debug, Clone)]
pub struct Stored {
    pub server_url: String,
    pub username: String,
    pub secret: Secret,
}

/// The store in a checked private directory: the only way to its file.
#[derive(Debug)]
pub struct Store<'d> {
    dir: &'d PrivateDir,
}

impl<'d> Store<'d> {
    pub fn new(dir: &'d PrivateDir) -> Store<'d> {
        Store { dir }
    }

    /// Where the file is, for messages.
    pub fn path(&self) -> PathBuf {
        self.dir.display_path(FILE_NAME)
    }

    pub fn lock(&self, timeout: Duration) -> Result<Lock> {
        self.dir.lock(LOCK_NAME, timeout)
    }

    /// Everything stored; a missing, corrupt or foreign-version file reads as empty.
    fn load(&self) -> StoreFile {
        let path = self.path();
        match self.dir.read(FILE_NAME) {
            Ok(Some(bytes)) => match serde_json::from_slice::<StoreFile>(&bytes) {
                Ok(f) if f.version == FORMAT_VERSION => f,
                _ => {
                    crate::warn!(
                        "stored credentials file `{}` is corrupt or of another version; treating it as empty",
                        path.display()
                    );
                    StoreFile::default()
                }
            },
            Ok(None) => StoreFile::default(),
            Err(e) => {
                crate::warn!("{}", e.one_line());
                StoreFile::default()
            }
        }
    }

    /// Everything stored, to change it under the lock: a file that cannot be read as
    /// ours is first kept as `credentials.json.corrupt-TIME`, so the write that follows
    /// never drops the entries a damaged (or newer-version) file still holds.
    fn load_for_change(&self, _lock: &Lock) -> Result<StoreFile> {
        let Ok(Some(bytes)) = self.dir.read(FILE_NAME) else {
            return Ok(self.load());
        };
        match serde_json::from_slice::<StoreFile>(&bytes) {
            Ok(f) if f.version == FORMAT_VERSION => Ok(f),
            _ => {
                let kept = format!("{FILE_NAME}.corrupt-{}", crate::now());
                self.dir.write_atomic(&kept, &bytes)?;
                crate::log::tell(format_args!(
                    "stored credentials file `{}` could not be read; kept it as `{}` and started a new one",
                    self.path().display(),
                    self.dir.display_path(&kept).display()
                ));
                Ok(StoreFile::default())
            }
        }
    }

    fn save(&self, _lock: &Lock, mut file: StoreFile) -> Result<()> {
        file.version = FORMAT_VERSION;
        self.dir
            .write_atomic(FILE_NAME, &serde_json::to_vec(&file).unwrap_or_default())
    }

    /// The credential stored for this host.
    pub fn get(&self, host: &RegistryHost) -> Option<Stored> {
        self.load()
            .entries
            .into_iter()
            .find(|e| same_host(&e.server_url, host))
            .map(|e| Stored {
                server_url: e.server_url,
                username: e.username,
                secret: Secret::new(e.secret),
            })
    }

    /// Keep a credential, replacing any for the same host.
    pub fn put(&self, lock: &Lock, host: &RegistryHost, entry: &Stored) -> Result<()> {
        let mut file = self.load_for_change(lock)?;
        file.entries.retain(|e| !same_host(&e.server_url, host));
        file.entries.push(StoredEntry {
            server_url: entry.server_url.clone(),
            username: entry.username.clone(),
            secret: entry.secret.expose().to_string(),
        });
        self.save(lock, file)
    }

    /// Forget the host; `Ok(false)` when nothing was stored.
    pub fn remove(&self, lock: &Lock, host: &RegistryHost) -> Result<bool> {
        let mut file = self.load_for_change(lock)?;
        let before = file.entries.len();
        file.entries.retain(|e| !same_host(&e.server_url, host));
        if file.entries.len() == before {
            return Ok(false);
        }
        self.save(lock, file)?;
        Ok(true)
    }

    /// ServerURL → username for `list`.
    pub fn list(&self) -> BTreeMap<String, String> {
        self.load()
            .entries
            .into_iter()
            .map(|e| (e.server_url, e.username))
            .collect()
    }
}

fn same_host(server_url: &str, host: &RegistryHost) -> bool {
    RegistryHost::parse(server_url).is_ok_and(|h| h.key() == host.key())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests plant and damage files directly
mod tests {
    use super::*;

    #[test]
    fn put_get_remove_list() {
        let dir = tempfile::tempdir().unwrap();
        let private = PrivateDir::create(&dir.path().join("s")).unwrap();
        let store = Store::new(&private);
        let host = RegistryHost::parse("https://index.docker.io/v1/").unwrap();
        assert!(store.get(&host).is_none());
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let entry = Stored {
            server_url: "https://index.docker.io/v1/".into(),
            username: "me".into(),
            secret: Secret::new("pw"),
        };
        store.put(&lock, &host, &entry).unwrap();
        let got = store
            .get(&RegistryHost::parse("index.docker.io").unwrap())
            .unwrap();
        assert_eq!(got.username, "me");
        assert_eq!(got.secret.expose(), "pw");
        assert_eq!(
            store.list().into_iter().collect::<Vec<_>>(),
            vec![("https://index.docker.io/v1/".to_string(), "me".to_string())]
        );
        assert!(
            store
                .remove(
                    &lock,
                    &RegistryHost::parse("http://index.docker.io").unwrap()
                )
                .unwrap()
        );
        assert!(!store.remove(&lock, &host).unwrap());
        assert!(store.list().is_empty());
    }

    #[test]
    fn corrupt_file_reads_as_empty_and_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let private = PrivateDir::create(&dir.path().join("s")).unwrap();
        let store = Store::new(&private);
        std::fs::write(store.path(), b"{garbage").unwrap();
        assert!(store.list().is_empty());
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let host = RegistryHost::parse("ghcr.io").unwrap();
        let entry = Stored {
            server_url: "ghcr.io".into(),
            username: "u".into(),
            secret: Secret::new("s"),
        };
        store.put(&lock, &host, &entry).unwrap();
        assert_eq!(store.list().len(), 1);
        // The damaged file was kept, byte for byte, before the new one replaced it.
        let kept: Vec<String> = private
            .names()
            .into_iter()
            .filter(|n| n.starts_with("credentials.json.corrupt-"))
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(
            std::fs::read(private.display_path(&kept[0])).unwrap(),
            b"{garbage"
        );
        let meta = std::fs::metadata(private.display_path(&kept[0])).unwrap();
        assert_eq!(crate::platform::mode(&meta) & 0o777, 0o600);
    }
}
