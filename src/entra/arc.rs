//! Managed identity on Azure Arc-enabled servers, which `azure_identity` 1.0 does not
//! support: the local agent answers a first request with `401` and a `Basic realm` naming
//! a key file that only privileged local users can read; the second request proves
//! access by sending that file's contents. The file must live in the agent's token
//! directory and be small, so a hostile endpoint cannot make us read arbitrary files.

use std::path::Path;

use serde::Deserialize;

use crate::config::Settings;
use crate::exchange::form;
use crate::http::{Failure, Http, HttpError, HttpRequest, HttpResponse};
use crate::identity::Identity;

/// Where the Arc agent writes its challenge key files on Linux.
const ARC_KEY_DIR: &str = "/var/opt/azcmagent/tokens/";

/// Why the Arc agent gave no token.
#[derive(Debug, thiserror::Error)]
pub enum ArcError {
    #[error("IDENTITY_ENDPOINT is not set")]
    NoEndpoint,
    /// The agent could not be reached (the HTTP layer's one line).
    #[error("{0}")]
    Unreachable(String),
    /// The agent throttled the request and the wait did not fit (`Http::send_patiently`).
    #[error("{}", .0.message)]
    Throttled(HttpError),
    #[error("the Arc agent's 401 carried no Basic realm")]
    NoRealm,
    #[error("the Arc agent named key file `{0}`, which is outside {ARC_KEY_DIR}; refused")]
    KeyOutside(String),
    #[error("the Arc key file `{0}` is too large")]
    KeyTooLarge(String),
    #[error("`{path}`: {source}")]
    Key {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}`: {source} (reading it needs the himds group or root)")]
    KeyDenied {
        path: String,
        source: std::io::Error,
    },
    #[error("the Arc agent answered {status} ({message})")]
    Answered { status: u16, message: String },
    #[error("the Arc agent's answer is not JSON")]
    NotJson,
    #[error("the Arc agent's answer has no access_token")]
    NoToken,
}

#[derive(Deserialize)]
struct ArcAnswer {
    access_token: Option<String>,
}

pub fn token(
    settings: &Settings,
    http: &Http,
    identity: &Identity,
    scope: &str,
) -> Result<crate::secret::EntraToken, ArcError> {
    let endpoint = settings
        .azure
        .identity_endpoint
        .clone()
        .ok_or(ArcError::NoEndpoint)?;
    let resource = scope.trim_end_matches("/.default");
    let mut query = vec![("api-version", "2020-06-01"), ("resource", resource)];
    if let Some(id) = identity.client_id.as_deref() {
        query.push(("client_id", id));
    }
    let url = format!("{endpoint}?{}", form(&query));
    let first = http
        .send_patiently(&HttpRequest::get(&url).header("metadata", "true"))
        .map_err(unreachable)?;
    let answer = if first.status == 401 {
        let realm = first
            .header("www-authenticate")
            .and_then(|h| h.trim().strip_prefix("Basic realm="))
            .map(|r| r.trim_matches('"').to_string())
            .ok_or(ArcError::NoRealm)?;
        let key = read_key(Path::new(&realm))?;
        http.send_patiently(
            &HttpRequest::get(&url)
                .header("metadata", "true")
                .header("authorization", &format!("Basic {key}")),
        )
        .map_err(unreachable)?
    } else {
        first
    };
    parse(&answer)
}

fn unreachable(e: HttpError) -> ArcError {
    match e.failure {
        Failure::Throttled(_) => ArcError::Throttled(e),
        _ => ArcError::Unreachable(e.message),
    }
}

fn read_key(path: &Path) -> Result<String, ArcError> {
    let shown = path.display().to_string();
    if !path.starts_with(ARC_KEY_DIR)
        || path.extension().is_none_or(|e| e != "key")
        || path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(ArcError::KeyOutside(shown));
    }
    let meta = std::fs::metadata(path).map_err(|source| ArcError::Key {
        path: shown.clone(),
        source,
    })?;
    if meta.len() > 4096 {
        return Err(ArcError::KeyTooLarge(shown));
    }
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| ArcError::KeyDenied {
            path: shown,
            source,
        })
}

/// The Arc agent's token answer. Public so the parser of this outside input can be fuzzed.
pub fn parse(response: &HttpResponse) -> Result<crate::secret::EntraToken, ArcError> {
    if response.status != 200 {
        return Err(ArcError::Answered {
            status: response.status,
            message: crate::exchange::server_message(response),
        });
    }
    let answer: ArcAnswer =
        serde_json::from_slice(&response.body).map_err(|_| ArcError::NotJson)?;
    answer
        .access_token
        .filter(|t| !t.is_empty())
        .map(|t| crate::secret::EntraToken(crate::secret::Secret::new(t)))
        .ok_or(ArcError::NoToken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_outside_the_agent_directory_are_refused() {
        for p in [
            "/etc/shadow",
            "/var/opt/azcmagent/tokens/../../../etc/shadow.key",
            "/var/opt/azcmagent/tokens/x.txt",
            "relative.key",
        ] {
            assert!(
                read_key(Path::new(p)).unwrap_err().to_string().contains(p) || p.contains(".."),
                "{p}"
            );
        }
    }
}
