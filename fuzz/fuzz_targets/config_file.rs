//! Fuzz the config file parser: `FileConfig::parse` gives a config or one clear error,
//! never a panic, and lookups by host work on whatever it accepted.
#![no_main]

use std::path::Path;

use docker_credential_acr_entra::internals::config::FileConfig;
use docker_credential_acr_entra::internals::registry::RegistryHost;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match FileConfig::parse(Path::new("/fuzz/config.json"), text) {
        Ok(config) => {
            for name in config.registries.keys() {
                if let Ok(host) = RegistryHost::parse(name) {
                    let _ = config.registry(&host);
                }
            }
        }
        Err(e) => assert!(!e.one_line().contains('\n')),
    }
});
