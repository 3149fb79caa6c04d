//! Fuzz the client certificate reader: any bytes, as PEM or PFX/PKCS#12, with or without
//! the fixture password, give a key and certificate or a one-line error, never a panic,
//! a hang or a message quoting the password.
#![no_main]

use docker_credential_acr_entra::internals::certfile;
use libfuzzer_sys::fuzz_target;

const PASSWORD: &str = "fixture-password";

fuzz_target!(|data: &[u8]| {
    for password in [None, Some(PASSWORD)] {
        if let Err(e) = certfile::read(data, password) {
            let e = e.to_string();
            assert!(!e.contains('\n'), "{e}");
            assert!(!e.contains(PASSWORD), "{e}");
        }
    }
});
