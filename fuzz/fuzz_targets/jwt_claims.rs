//! Fuzz JWT claim reading (refresh-token `exp`, Entra `tid`): malformed tokens give
//! `None`, never a panic, whatever the base64 or JSON inside.
#![no_main]

use docker_credential_acr_entra::internals::jwt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = jwt::claims(text);
    let _ = jwt::expiry(text);
    let _ = jwt::string_claim(text, "tid");
    let _ = jwt::string_claim(text, "aud");
});
