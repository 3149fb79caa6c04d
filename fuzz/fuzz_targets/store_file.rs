//! Fuzz the `store` file (`credentials.json`) as it may be found on disk: `list` and
//! `get` read it; a corrupt or foreign file reads as empty, never a panic, and a `put`
//! over it leaves a file that reads back.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use docker_credential_acr_entra::internals::private_dir::PrivateDir;
use docker_credential_acr_entra::internals::registry::RegistryHost;
use docker_credential_acr_entra::internals::secret::Secret;
use docker_credential_acr_entra::internals::store::{Store, Stored};
use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;
use scratch::scratch_dir;

fn dir() -> &'static (tempfile::TempDir, PrivateDir) {
    static DIR: OnceLock<(tempfile::TempDir, PrivateDir)> = OnceLock::new();
    DIR.get_or_init(|| {
        let scratch = scratch_dir();
        let private = PrivateDir::create(&scratch.path().join("store")).unwrap();
        (scratch, private)
    })
}

fuzz_target!(|data: &[u8]| {
    let store = Store::new(&dir().1);
    std::fs::write(store.path(), data).unwrap();
    let listed = store.list();
    for server in listed.keys() {
        if let Ok(host) = RegistryHost::parse(server) {
            let _ = store.get(&host);
        }
    }
    if data.last() == Some(&b'}') {
        let host = RegistryHost::parse("ghcr.io").unwrap();
        let lock = store.lock(Duration::from_secs(5)).unwrap();
        store
            .put(
                &lock,
                &host,
                &Stored {
                    server_url: "ghcr.io".into(),
                    username: "u".into(),
                    secret: Secret::new("s"),
                },
            )
            .unwrap();
        assert_eq!(store.get(&host).unwrap().secret.expose(), "s");
    }
});
