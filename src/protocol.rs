//! The Docker credential-helper wire format, byte for byte: what `get`, `store` and
//! `erase` read from stdin and what `get` and `list` write to stdout. It knows nothing
//! of Entra, ACR, the cache or the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Most a client ever sends; anything larger is not a credential request.
pub const MAX_INPUT: usize = 64 * 1024;

/// The server URL from a `get` or `erase` request, trimmed, as the client gave it.
pub fn read_server_url(input: &[u8]) -> Result<String> {
    if input.len() > MAX_INPUT {
        return Err(Error::Usage("server URL on stdin is too long".into()));
    }
    let text = std::str::from_utf8(input)
        .map_err(|_| Error::Usage("server URL on stdin is not UTF-8".into()))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Error::Usage("no server URL on stdin".into()));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::Usage(
            "server URL on stdin contains control characters".into(),
        ));
    }
    Ok(trimmed.to_string())
}

/// One credential, as `store` receives it and `get` answers it.
#[derive(Deserialize)]
struct WireCredentials {
    #[serde(rename = "ServerURL")]
    server_url: String,
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// A `store` request, its secret already wrapped.
#[derive(Debug)]
pub struct StoreRequest {
    pub server_url: String,
    pub username: String,
    pub secret: Secret,
}

pub fn read_store(input: &[u8]) -> Result<StoreRequest> {
    if input.len() > MAX_INPUT {
        return Err(Error::Usage("credentials on stdin are too long".into()));
    }
    // serde_json's message may quote part of the input, which holds a secret: keep only
    // its position.
    let wire: WireCredentials = serde_json::from_slice(input).map_err(|e| {
        Error::Usage(format!(
            "credentials on stdin are not valid JSON with ServerURL, Username and Secret \
             (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    if wire.server_url.trim().is_empty() {
        return Err(Error::Usage("ServerURL is empty".into()));
    }
    if wire.server_url.chars().any(char::is_control) || wire.username.chars().any(char::is_control)
    {
        return Err(Error::Usage(
            "ServerURL or Username contains control characters".into(),
        ));
    }
    Ok(StoreRequest {
        server_url: wire.server_url.trim().to_string(),
        username: wire.username,
        secret: Secret::new(wire.secret),
    })
}

#[derive(Serialize)]
struct GetAnswer<'a> {
    #[serde(rename = "ServerURL")]
    server_url: &'a str,
    #[serde(rename = "Username")]
    username: &'a str,
    #[serde(rename = "Secret")]
    secret: &'a str,
}

/// The `get` answer: `{"ServerURL":…,"Username":…,"Secret":…}` on one line.
pub fn write_get(server_url: &str, username: &str, secret: &Secret) -> String {
    serde_json::to_string(&GetAnswer {
        server_url,
        username,
        secret: secret.expose(),
    })
    .unwrap_or_default()
}

/// The `list` answer: `{"server":"username",…}`, `{}` when empty.
pub fn write_list(entries: &BTreeMap<String, String>) -> String {
    serde_json::to_string(entries).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_url_forms() {
        for (input, want) in [
            ("myacr.azurecr.io", "myacr.azurecr.io"),
            ("myacr.azurecr.io\n", "myacr.azurecr.io"),
            (
                "  https://myacr.azurecr.io/v2/ \r\n",
                "https://myacr.azurecr.io/v2/",
            ),
        ] {
            assert_eq!(read_server_url(input.as_bytes()).unwrap(), want);
        }
        assert!(read_server_url(b"").is_err());
        assert!(read_server_url(b" \n").is_err());
        assert!(read_server_url(b"\xff\xfe").is_err());
        assert!(read_server_url(b"a\0b").is_err());
        assert!(read_server_url(&vec![b'a'; MAX_INPUT + 1]).is_err());
    }

    #[test]
    fn get_answer_is_exact() {
        let s = Secret::new("tok\"en");
        assert_eq!(
            write_get(
                "myacr.azurecr.io",
                "00000000-0000-0000-0000-000000000000",
                &s
            ),
            r#"{"ServerURL":"myacr.azurecr.io","Username":"00000000-0000-0000-0000-000000000000","Secret":"tok\"en"}"#
        );
    }

    #[test]
    fn list_answer() {
        let mut m = BTreeMap::new();
        assert_eq!(write_list(&m), "{}");
        m.insert("ghcr.io".to_string(), "octo".to_string());
        m.insert("a.azurecr.io".to_string(), "u".to_string());
        assert_eq!(write_list(&m), r#"{"a.azurecr.io":"u","ghcr.io":"octo"}"#);
    }

    #[test]
    fn store_request_parses_and_hides_secret() {
        let r = read_store(br#"{"ServerURL":"ghcr.io","Username":"octo","Secret":"pw"}"#).unwrap();
        assert_eq!(r.server_url, "ghcr.io");
        assert_eq!(r.username, "octo");
        assert_eq!(r.secret.expose(), "pw");
        assert!(!format!("{r:?}").contains("pw"));
        let err = read_store(br#"{"ServerURL":"ghcr.io","Username":"octo","Secret":"hunter2""#)
            .unwrap_err()
            .one_line();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(read_store(b"not json").is_err());
        assert!(read_store(br#"{"ServerURL":"","Username":"u","Secret":"s"}"#).is_err());
    }
}
