//! Fuzz server URL / host parsing: `RegistryHost::parse` never panics, a parsed host is
//! a clean DNS name or bracketed IPv6 literal (no userinfo, whitespace, control or
//! non-ASCII characters), its key parses back to itself, and the ACR verdict holds the
//! anchored rule: an ACR host ends in `.azurecr.{io,cn,us}` after a dot boundary.
#![no_main]

use docker_credential_acr_entra::internals::registry::RegistryHost;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(host) = RegistryHost::parse(text) else {
        return;
    };
    let key = host.key();
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:[]".contains(&b)),
        "unclean key {key:?} from {text:?}"
    );
    assert!(!key.contains('@'));
    // `http://host:443` keeps its port (443 is not http's default), so the key is read
    // back with the scheme it came with.
    let scheme = if host.wants_plain_http() {
        "http://"
    } else {
        ""
    };
    let again = RegistryHost::parse(&format!("{scheme}{key}")).expect("a key parses back");
    assert_eq!(again.key(), key);
    assert_eq!(again.acr_cloud(), host.acr_cloud());
    if host.acr_cloud().is_some() {
        let name = host.name();
        assert!(
            [".azurecr.io", ".azurecr.cn", ".azurecr.us"]
                .iter()
                .any(|s| name.ends_with(s) && name.len() > s.len()),
            "{name:?} judged ACR"
        );
        assert!(!name.starts_with('['));
    }
});
