//! Fuzz the ACR exchange's answer: status (first two bytes) and body go through
//! `exchange::read_answer` and `server_message`. No panic, error lines stay one line and
//! short, and a JWT in an error body never reaches the message.
#![no_main]

use docker_credential_acr_entra::internals::error::Error;
use docker_credential_acr_entra::internals::exchange::{
    ExchangeError, read_answer, server_message,
};
use docker_credential_acr_entra::internals::http::HttpResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let response = HttpResponse {
        status,
        headers: vec![],
        body: data[2..].to_vec(),
    };
    let message = server_message(&response);
    assert!(!message.contains('\n'));
    assert!(message.chars().count() <= 301);
    match read_answer("https://myacr.azurecr.io/oauth2/exchange", &response) {
        Ok(token) => assert!(status == 200 && !token.0.is_empty()),
        Err(ExchangeError::Unauthorized(r)) => {
            assert!(status == 401 && !r.to_string().contains('\n'))
        }
        Err(ExchangeError::Other(e)) => {
            let line = Error::from(ExchangeError::Other(e)).one_line();
            assert!(!line.contains('\n'));
        }
    }
});
