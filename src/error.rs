//! The one error type. Every variant renders as a single lower-case line that says what
//! went wrong and, where there is one, how to fix it; `NotFound` renders as the exact text
//! docker's clients treat as "not logged in, go anonymous". Messages never contain a
//! secret: values that reach them are host names, paths, kinds and server messages that
//! have been passed through `redact_text`.

use std::path::PathBuf;

use crate::identity::{CredentialKind, Unavailable};
use crate::throttle::Throttled;

/// Who answered: the parties a mint talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// Entra ID's token endpoint, asked by this credential kind.
    Entra(CredentialKind),
    /// A CI's OIDC token service, asked by this credential kind.
    OidcService(CredentialKind),
    ManagedIdentity,
    Exchange,
    TokenEndpoint,
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Party::Entra(kind) => return write!(f, "credential `{}`: Entra ID", kind.name()),
            Party::OidcService(kind) => {
                return write!(
                    f,
                    "credential `{}`: the job's OIDC token service",
                    kind.name()
                );
            }
            Party::ManagedIdentity => {
                "credential `managed-identity`: the managed identity endpoint"
            }
            Party::Exchange => "ACR exchange",
            Party::TokenEndpoint => "ACR token endpoint",
        })
    }
}

/// The exact text docker, podman, skopeo and docker-py treat as "no credentials".
pub const NOT_FOUND_TEXT: &str = "credentials not found in native keychain";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not an ACR host and nothing stored: the client goes anonymous.
    #[error("{}", NOT_FOUND_TEXT)]
    NotFound,

    /// Bad input on stdin or on the command line.
    #[error("{0}")]
    Usage(String),

    /// The configuration (environment or config file) is wrong.
    #[error("{0}")]
    Config(String),

    /// A file could not be read or written.
    #[error("`{}`: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Entra ID did not give us a token; `aadsts` are the error codes Entra named.
    #[error("{message}")]
    Entra { message: String, aadsts: Vec<u32> },

    /// The registry's challenge, ACR's exchange or its token endpoint failed; `status` is
    /// the HTTP status when one answered, `firewall` when ACR said its network rules
    /// block this machine.
    #[error("{message}")]
    Exchange {
        message: String,
        status: Option<u16>,
        firewall: bool,
    },

    /// The credential kind the config or ACR_ENTRA_CREDENTIAL forces cannot serve.
    #[error("credential `{}` ({why}) cannot be used: {reason}", kind.name())]
    Unavailable {
        kind: CredentialKind,
        why: String,
        reason: Unavailable,
    },

    /// No credential kind can serve: each one tried, and why it was skipped. `lead` is
    /// what the environment half-sets (a service principal without its secret), said
    /// first and alone: the other kinds' reasons would bury it.
    #[error("{}", no_credential_text(skipped, lead.as_deref()))]
    NoCredential {
        skipped: Vec<(CredentialKind, Unavailable)>,
        lead: Option<String>,
    },

    /// Another process held a lock for too long.
    #[error(
        "timed out after {seconds}s waiting for the lock `{}`: another acr-entra process is probably minting or writing; try again",
        path.display()
    )]
    LockTimeout { path: PathBuf, seconds: u64 },

    /// A service answered 429 or 503 and the wait it asked for did not fit in the budget,
    /// or was not waited for because a still-valid token was at hand.
    #[error("{party} {message}: {}", crate::throttle::describe(facts))]
    Throttled {
        party: Party,
        message: String,
        facts: Throttled,
    },

    /// A network call failed before an answer arrived; `tls` when the handshake or the
    /// certificate did.
    #[error("{message}")]
    Network { message: String, tls: bool },
}

/// What an error says for `doctor`'s hints, as fields rather than words.
// Independent facts that hints match on one by one; no two of them form a state.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub status: Option<u16>,
    pub aadsts: Vec<u32>,
    pub firewall: bool,
    pub tls: bool,
    pub throttled: bool,
    /// Nothing answered: refused, unresolved, timed out (a network failure).
    pub network: bool,
    /// A credential's own run or request outlived its budget (`az` that hangs).
    pub timed_out: bool,
}

/// How a run of `az`/`azd` stopped for its timeout, and a token request that outlived
/// its deadline, say so: `Facts::timed_out` reads these.
pub const STOPPED_TEXT: &str = "did not finish within";
pub const NO_TOKEN_TEXT: &str = "no token within";

impl Error {
    pub fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::File {
            path: path.into(),
            source,
        }
    }

    /// Entra's refusal: the codes `AADSTS<digits>` it names are kept as fields.
    pub fn entra(message: String) -> Self {
        let aadsts = aadsts_codes(&message);
        Self::Entra { message, aadsts }
    }

    /// A challenge or exchange failure without an HTTP status.
    pub fn exchange(message: String) -> Self {
        Self::Exchange {
            message,
            status: None,
            firewall: false,
        }
    }

    pub fn network(message: String, tls: bool) -> Self {
        Self::Network { message, tls }
    }

    /// The fields `doctor` matches its hints on.
    pub fn facts(&self) -> Facts {
        match self {
            Error::Entra { aadsts, message } => Facts {
                aadsts: aadsts.clone(),
                timed_out: message.contains(STOPPED_TEXT) || message.contains(NO_TOKEN_TEXT),
                ..Facts::default()
            },
            Error::Exchange {
                status, firewall, ..
            } => Facts {
                status: *status,
                firewall: *firewall,
                ..Facts::default()
            },
            Error::Throttled { facts, .. } => Facts {
                status: Some(facts.status),
                throttled: true,
                ..Facts::default()
            },
            Error::Network { tls, .. } => Facts {
                tls: *tls,
                network: true,
                ..Facts::default()
            },
            _ => Facts::default(),
        }
    }

    /// The error as the one line the protocol prints: newlines and control characters
    /// from server messages are folded so the answer stays one line.
    pub fn one_line(&self) -> String {
        one_line(&self.to_string())
    }
}

/// `text` as one printable line for a report: control characters (terminal escape
/// sequences, CR, LF) and invisible direction marks are shown as escapes instead of
/// acting on the terminal. For values from files and servers that `doctor` prints.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let invisible = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
        if c.is_control() || invisible {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `kind: reason; kind: reason` for the kinds a pick skipped.
fn no_credential_text(skipped: &[(CredentialKind, Unavailable)], lead: Option<&str>) -> String {
    match lead {
        Some(lead) => format!("{lead}; no other Entra credential found (`doctor HOST` lists each)"),
        None => format!(
            "no Entra credential found ({}); set ACR_ENTRA_CREDENTIAL and the variables it needs, or log in with `az login`",
            skipped_text(skipped)
        ),
    }
}

pub fn skipped_text(skipped: &[(CredentialKind, Unavailable)]) -> String {
    skipped
        .iter()
        .map(|(kind, why)| format!("{}: {why}", kind.name()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The Entra error codes (`AADSTS7000215` → 7000215) named in `text`, in order.
pub fn aadsts_codes(text: &str) -> Vec<u32> {
    let upper = text.to_ascii_uppercase();
    let mut codes = Vec::new();
    for (at, _) in upper.match_indices("AADSTS") {
        let digits: String = upper[at + 6..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(code) = digits.parse::<u32>()
            && !codes.contains(&code)
        {
            codes.push(code);
        }
    }
    codes
}

/// The longest error line, in bytes: room for a refusal, whom it names and what to do,
/// short of a server's whole error page.
const LINE_CAP: usize = 800;

/// Fold a message onto one line and cap its length.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(LINE_CAP));
    let mut last_space = false;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if last_space || out.is_empty() {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        out.push(c);
        if out.len() >= LINE_CAP {
            out.push('…');
            break;
        }
    }
    out.trim_end().to_string()
}

/// Remove anything that looks like a token from text that came from a server or a tool:
/// runs of JWT-ish characters longer than 40 with two dots become `REDACTED`.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let looks_like_token = word.len() > 40 && word.matches('.').count() >= 2
            || word.starts_with("eyJ") && word.len() > 20;
        if looks_like_token {
            out.push_str("REDACTED");
        } else {
            out.push_str(word);
        }
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_codes_are_whole_numbers() {
        assert_eq!(
            aadsts_codes("AADSTS700211: no match; aadsts70021 again, AADSTS700211"),
            vec![700_211, 70021]
        );
        assert!(aadsts_codes("no code here, AADSTS alone").is_empty());
    }

    #[test]
    fn not_found_text_is_exact() {
        assert_eq!(
            Error::NotFound.one_line(),
            "credentials not found in native keychain"
        );
    }

    #[test]
    fn one_line_folds_newlines_and_controls() {
        assert_eq!(one_line("a\nb\r\n\tc  d\0"), "a b c d");
        assert!(one_line(&"x".repeat(5000)).len() < LINE_CAP + 10);
    }

    #[test]
    fn redacts_token_shaped_words() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl";
        assert_eq!(
            redact_text(&format!("bad token {jwt} here")),
            "bad token REDACTED here"
        );
        assert_eq!(redact_text("plain words stay"), "plain words stay");
    }
}
