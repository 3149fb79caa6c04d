//! Reading JWT claims without verifying signatures: the refresh token's `exp` (how long
//! to cache it) and the Entra token's `tid` (the exchange's tenant when none is
//! configured). The issuer verifies these tokens; we only need to know when they expire
//! and whom they are for. Malformed tokens give `None`, never a panic.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Longest token we try to decode.
const MAX_TOKEN: usize = 64 * 1024;

/// The payload claims of a compact JWS, or `None` when it is not one.
pub fn claims(token: &str) -> Option<Map<String, Value>> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The `exp` claim in Unix seconds.
pub fn expiry(token: &str) -> Option<i64> {
    seconds_claim(&claims(token)?, "exp")
}

/// A time claim (`exp`, `iat`, `nbf`) in Unix seconds: a number (floats saturate) or a
/// string of digits.
pub fn seconds_claim(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    match claims.get(name)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A string claim such as `tid`, `aud`, `oid`.
pub fn string_claim(token: &str, name: &str) -> Option<String> {
    match claims(token)?.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Array(items) => items.first()?.as_str().map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
pub fn make_unsigned(payload: &Value) -> String {
    format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_exp_and_tid() {
        let t = make_unsigned(&json!({"exp": 1_700_000_000, "tid": "t1", "aud": ["a", "b"]}));
        assert_eq!(expiry(&t), Some(1_700_000_000));
        assert_eq!(string_claim(&t, "tid").as_deref(), Some("t1"));
        assert_eq!(string_claim(&t, "aud").as_deref(), Some("a"));
        let t = make_unsigned(&json!({"exp": "1700000000"}));
        assert_eq!(expiry(&t), Some(1_700_000_000));
        let t = make_unsigned(&json!({"exp": 1.7e9}));
        assert_eq!(expiry(&t), Some(1_700_000_000));
    }

    #[test]
    fn malformed_tokens_are_none() {
        for t in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "a.!!!.c",
            "a.bm90IGpzb24.c",
            "a.WzEsMl0.c",
            &make_unsigned(&json!({"exp": "soon"})),
            &make_unsigned(&json!({"exp": null})),
            &make_unsigned(&json!({"tid": 5})),
        ] {
            assert_eq!(expiry(t), None, "{t}");
            assert_eq!(string_claim(t, "tid"), None, "{t}");
        }
        assert_eq!(expiry(&"a.".repeat(40_000)), None);
    }
}
