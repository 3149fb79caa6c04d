//! Unsigned-looking JWTs for the fakes (`base64url(header).base64url(payload).sig`) and
//! a decoder for what the helper sends. Nothing here verifies signatures except the
//! explicit RS256 check used by the client-certificate test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A process-wide counter so every token minted by a fake is distinct.
pub fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("not base64url `{text}`: {e}"))
}

pub fn make(header: &Value, payload: &Value) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(payload.to_string().as_bytes()),
        b64url(format!("fake-signature-{}", unique()).as_bytes())
    )
}

/// The header and payload of a JWT.
pub fn decode(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: `{token}`");
    let header = serde_json::from_slice(&b64url_decode(parts[0])).expect("JWT header JSON");
    let payload = serde_json::from_slice(&b64url_decode(parts[1])).expect("JWT payload JSON");
    (header, payload)
}

/// The header and payload of a JWT, or `None` when it is not one.
pub fn try_decode(token: &str) -> Option<(Value, Value)> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, _] = parts.as_slice() else {
        return None;
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    };
    Some((decode(header)?, decode(payload)?))
}

/// The `aud` Entra puts in a token for an OAuth scope.
pub fn audience_for_scope(scope: &str) -> String {
    let base = scope.trim_end_matches("/.default");
    if base.starts_with("https://management.") {
        // Entra keeps ARM's trailing slash in `aud`.
        format!("{}/", base.trim_end_matches('/'))
    } else {
        base.to_string()
    }
}

/// An Entra-like access token.
pub fn entra_access_token(aud: &str, tid: &str, oid: &str, appid: &str) -> String {
    entra_access_token_living(aud, tid, oid, appid, 3599)
}

/// The same, living `seconds`.
pub fn entra_access_token_living(
    aud: &str,
    tid: &str,
    oid: &str,
    appid: &str,
    seconds: i64,
) -> String {
    let now = now();
    make(
        &json!({"typ": "JWT", "alg": "RS256", "kid": "fake-entra-key"}),
        &json!({
            "aud": aud,
            "iss": format!("https://sts.windows.net/{tid}/"),
            "iat": now,
            "nbf": now,
            "exp": now + seconds,
            "appid": appid,
            "oid": oid,
            "sub": oid,
            "tid": tid,
            "uti": format!("uti-{}", unique()),
            "ver": "1.0",
        }),
    )
}

/// An ACR-like refresh token: about 3 hours of life.
pub fn acr_refresh_token(host: &str, tenant: &str, appid: &str) -> String {
    let now = now();
    make(
        &json!({"alg": "RS256", "typ": "JWT", "kid": "FAKE:ACR:KEY"}),
        &json!({
            "jti": format!("jti-{}", unique()),
            "sub": appid,
            "nbf": now - 5,
            "exp": now + 3 * 3600 + 15 * 60,
            "iat": now,
            "iss": "Azure Container Registry",
            "aud": host,
            "version": "1.0",
            "rid": "0123456789abcdef0123456789abcdef",
            "grant_type": "refresh_token",
            "appid": appid,
            "tenant": tenant,
            "permissions": {"actions": ["read"], "notActions": null},
            "roles": [],
        }),
    )
}
