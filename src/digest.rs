//! SHA-256 digests and lower-case hex, for names that must say who or what without
//! saying it: cache file names, the az/azd account digest, a pod's token digest, a lock
//! name per client config file. On `ring`, which the TLS stack already carries.

use ring::digest::{Context, SHA256};

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&SHA256, bytes).as_ref());
    out
}

/// SHA-256 of `domain` followed by each part with its length (little-endian u64)
/// before it, so no two different part lists digest alike.
pub fn sha256_parts(domain: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut context = Context::new(&SHA256);
    context.update(domain);
    for part in parts {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `host-<this>.json` is `myacr.azurecr.io`'s record, as the helper has always named it.
    const CACHE_NAME_OF_MYACR: &str = "35c7d2bc59bf6fcd6dedd4e18912f173099191d4";

    #[test]
    fn known_answers() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        // The cache key digest of one part, as every earlier cache file was named.
        assert_eq!(
            hex(&sha256_parts(b"acr-entra cache key v1", &[b"myacr.azurecr.io"])[..20]),
            CACHE_NAME_OF_MYACR
        );
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            sha256_parts(b"d", &[b"ab", b"c"]),
            sha256_parts(b"d", &[b"a", b"bc"])
        );
    }
}
