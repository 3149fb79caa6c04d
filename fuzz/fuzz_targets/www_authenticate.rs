//! Fuzz the `Www-Authenticate` parser: `parse_bearer` never panics, and when it finds a
//! realm that parses as a host, the host follows the same rules as any server URL.
#![no_main]

use docker_credential_acr_entra::internals::exchange::parse_bearer;
use docker_credential_acr_entra::internals::registry::RegistryHost;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((realm, service)) = parse_bearer(text) {
        assert!(service.as_deref() != Some(""));
        if let Ok(h) = RegistryHost::parse(&realm) {
            assert!(!h.key().contains('@'));
        }
    }
});
