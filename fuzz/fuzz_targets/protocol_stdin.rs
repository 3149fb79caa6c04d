//! Fuzz the Docker protocol's stdin parsers: the server URL of `get`/`erase` (then the
//! host parse `get` does next) and the JSON of `store`. Neither may panic, an error is
//! one line, and a `store` error never echoes the secret it was given.
#![no_main]

use docker_credential_acr_entra::internals::{helper, protocol};
use libfuzzer_sys::fuzz_target;

/// Every fixed text a `store` parse error can contain: a "secret" that is a substring
/// of these proves nothing when it shows up.
const FIXED: &str = "credentials on stdin are not valid JSON with ServerURL, Username and Secret \
    (line column ) ServerURL is empty ServerURL or Username contains control characters \
    credentials on stdin are too long 0123456789";

fuzz_target!(|data: &[u8]| {
    if let Ok(url) = protocol::read_server_url(data) {
        assert!(!url.is_empty());
        assert!(!url.chars().any(char::is_control));
        let _ = helper::parse_host(&url).map(|h| h.acr_cloud());
    }
    match protocol::read_store(data) {
        Ok(request) => {
            let shown = format!("{request:?}");
            if request.secret.expose().len() >= 4 {
                assert!(
                    !shown.contains(request.secret.expose())
                        || request.server_url.contains(request.secret.expose())
                        || request.username.contains(request.secret.expose())
                );
            }
            let _ = helper::parse_host(&request.server_url);
        }
        Err(e) => {
            let line = e.one_line();
            assert!(!line.contains('\n'));
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data)
                && let Some(secret) = v.get("Secret").and_then(|s| s.as_str())
                && secret.len() >= 4
                && !FIXED.contains(secret)
            {
                assert!(!line.contains(secret), "secret echoed in `{line}`");
            }
        }
    }
});
