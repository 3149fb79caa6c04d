//! Fuzz the kubelet `CredentialProviderRequest` reader and the image-reference split:
//! no panic, and a parse error never echoes the service-account token.
#![no_main]

use docker_credential_acr_entra::internals::cli::kubelet::{image_registry, read_request};
use docker_credential_acr_entra::internals::helper::parse_host;
use libfuzzer_sys::fuzz_target;

/// Every fixed text a request error can contain: a "token" that is a substring of these
/// proves nothing when it shows up (second crash found: the token was
/// `CredentialProviderRequest`).
const FIXED: &str = "stdin is not a JSON CredentialProviderRequest (line column ) \
    unsupported apiVersion none (this provider speaks credentialprovider.kubelet.k8s.io/v1; \
    set apiVersion: credentialprovider.kubelet.k8s.io/v1 in the CredentialProviderConfig) \
    unsupported kind (expected CredentialProviderRequest) CredentialProviderRequest has no \
    image image contains control characters CredentialProviderRequest is too long";

fuzz_target!(|data: &[u8]| {
    match read_request(data) {
        Ok(request) => {
            if let Ok(registry) = image_registry(&request.image) {
                let _ = parse_host(&registry).map(|h| h.acr_cloud());
            }
        }
        Err(e) => {
            let line = e.one_line();
            assert!(!line.contains('\n'));
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data)
                && let Some(token) = v.get("serviceAccountToken").and_then(|s| s.as_str())
                && token.len() >= 16
                && !FIXED.contains(token)
                // The message may quote apiVersion or kind as given: a token that is also
                // written there is not leaked by quoting them (first crash found).
                && [v.get("apiVersion"), v.get("kind")]
                    .iter()
                    .flatten()
                    .filter_map(|x| x.as_str())
                    .all(|x| !x.contains(token))
            {
                assert!(!line.contains(token), "token echoed in `{line}`");
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = image_registry(text);
    }
});
