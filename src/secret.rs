//! Secret-bearing values. `Secret` wraps anything that must never reach a log, an error
//! message or `Debug` output: its `Debug` prints `REDACTED` and it has no `Display`, so
//! the only way to the value is an explicit `expose()`. `EntraToken` (what Entra ID gives
//! us) and `AcrRefreshToken` (what ACR's exchange gives back) are distinct types, so the
//! wrong one cannot be sent to the wrong place.

use std::fmt;

/// A string that must not be printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; call sites are the places that send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

/// An Entra ID access token for the ACR or ARM audience: input to the exchange.
#[derive(Clone, Debug)]
pub struct EntraToken(pub Secret);

/// An ACR refresh token: output of the exchange, the password clients send to ACR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcrRefreshToken(pub Secret);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "REDACTED");
        assert_eq!(
            format!("{:?}", EntraToken(s.clone())),
            "EntraToken(REDACTED)"
        );
        assert_eq!(
            format!("{:?}", AcrRefreshToken(s)),
            "AcrRefreshToken(REDACTED)"
        );
    }
}
