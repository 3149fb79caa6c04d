//! Fuzz the Entra-side token answers this crate parses itself: the Azure Arc agent's
//! JSON (`arc::parse`), and any error body as `server_message` shows it. (Entra's own
//! client-credentials, managed-identity and CLI answers are parsed inside
//! `azure_identity`; the integration tests feed it garbage and oversized answers.)
#![no_main]

use docker_credential_acr_entra::internals::entra::arc;
use docker_credential_acr_entra::internals::http::HttpResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let status = if data.first().is_some_and(|b| b & 1 == 1) {
        200
    } else {
        400
    };
    let response = HttpResponse {
        status,
        headers: vec![],
        body: data.get(1..).unwrap_or_default().to_vec(),
    };
    match arc::parse(&response) {
        Ok(token) => assert!(!token.0.is_empty()),
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
});
