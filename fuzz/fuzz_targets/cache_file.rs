//! Fuzz the cache files as another process (or a disk error) may have left them: the
//! bytes become a token file and a host file, then `Cache::get`, `host_info` and
//! `remove_host` read them. A corrupt file must read as empty, never panic.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use docker_credential_acr_entra::cache::{Cache, TokenKey};
use docker_credential_acr_entra::config::CredentialKind;
use docker_credential_acr_entra::entra::Identity;
use docker_credential_acr_entra::registry::{Cloud, RegistryHost};
use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;
use scratch::scratch_dir;

struct World {
    _dir: tempfile::TempDir,
    cache: Cache,
    host: RegistryHost,
    key: TokenKey,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = scratch_dir();
        let cache = Cache::open(&dir.path().join("cache")).unwrap();
        let host = RegistryHost::parse("myacr.azurecr.io").unwrap();
        let identity = Identity {
            tenant: Some("t".into()),
            client_id: Some("c".into()),
            ..Identity::new(
                CredentialKind::ClientSecret,
                Cloud::Public,
                "https://login.microsoftonline.com".into(),
            )
        };
        let key = TokenKey::new(&host, &identity, None);
        World {
            _dir: dir,
            cache,
            host,
            key,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let token_path = w.cache.token_path(&w.key);
    std::fs::write(&token_path, data).unwrap();
    if let Some(entry) = w.cache.get(&w.key) {
        assert!(!entry.token.0.is_empty());
        let _ = entry.is_fresh(0, Duration::from_secs(1800));
        let _ = entry.is_valid(i64::MAX);
        let _ = entry.is_valid(i64::MIN);
    }
    let host_path = w.cache.dir().join(
        std::fs::read_dir(w.cache.dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("host-") && n.ends_with(".json"))
            .unwrap_or_else(|| "host-none.json".into()),
    );
    std::fs::write(&host_path, data).unwrap();
    let _ = w.cache.host_info(&w.host);
    if data.first() == Some(&b'{') {
        let lock = w.cache.lock(&w.host, Duration::from_secs(5)).unwrap();
        let _ = w.cache.remove_host(&lock, &w.host);
    }
});
