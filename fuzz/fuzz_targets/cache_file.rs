//! Fuzz the cache files as another process (or a disk error) may have left them: the
//! bytes become a token file and a host file, then `Cache::get`, `remembered` and
//! `remove_all` read them. A corrupt file must read as empty, never panic.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use docker_credential_acr_entra::internals::cache::{Cache, TokenKey};
use docker_credential_acr_entra::internals::identity::CredentialKind;
use docker_credential_acr_entra::internals::identity::Identity;
use docker_credential_acr_entra::internals::private_dir::PrivateDir;
use docker_credential_acr_entra::internals::registry::{Cloud, RegistryHost};
use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;
use scratch::scratch_dir;

struct World {
    _dir: tempfile::TempDir,
    private: PrivateDir,
    host: RegistryHost,
    key: TokenKey,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = scratch_dir();
        let private = PrivateDir::create(&dir.path().join("cache")).unwrap();
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
        // A client-secret identity always has a key.
        let key =
            TokenKey::new(&host, &identity, None).expect("a client-secret identity has a key");
        World {
            _dir: dir,
            private,
            host,
            key,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let cache = Cache::new(&w.private);
    let token_path = cache.token_path(&w.key);
    std::fs::write(&token_path, data).unwrap();
    if let Some(entry) = cache.get(&w.key) {
        assert!(!entry.token.0.is_empty());
        let _ = entry.is_fresh(0, Duration::from_secs(1800));
        let _ = entry.is_valid(i64::MAX);
        let _ = entry.is_valid(i64::MIN);
    }
    let host_path = w.private.path().join(
        std::fs::read_dir(w.private.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("host-") && n.ends_with(".json"))
            .unwrap_or_else(|| "host-none.json".into()),
    );
    std::fs::write(&host_path, data).unwrap();
    let _ = cache.remembered(&w.host);
    if data.first() == Some(&b'{') {
        let lock = cache.lock(&w.host, Duration::from_secs(5)).unwrap();
        let _ = lock.remove_all();
    }
});
