//! Client assertions for Entra's `jwt-bearer` client authentication, fed to
//! `azure_identity::ClientAssertionCredential`: a workload-identity token read from its
//! file on every mint (or handed over by kubelet), and a certificate credential's RS256
//! JWT signed with `ring` from the certificate and RSA key `certfile` reads (PEM or PFX) —
//! pure Rust, no OpenSSL.

use std::path::{Path, PathBuf};

use azure_core::http::ClientMethodOptions;
use azure_identity::ClientAssertion;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SecureRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

use crate::certfile;
use crate::config::{AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE};
use crate::error::{Error, Result};
use crate::secret::Secret;

fn credential_error(message: String) -> azure_core::Error {
    azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, message)
}

/// Why no assertion could be signed (ring gives no detail).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no randomness available")]
    NoRandomness,
    #[error("signing the client assertion failed")]
    Signing,
}

/// A federated token: a file re-read on each use, or a token given to us directly.
#[derive(Debug)]
pub enum FederatedToken {
    File(PathBuf),
    Inline(Secret),
}

#[async_trait::async_trait]
impl ClientAssertion for FederatedToken {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        match self {
            FederatedToken::Inline(token) => Ok(token.expose().to_string()),
            FederatedToken::File(path) => {
                let bytes = crate::files::read_user_file(path, 64 * 1024).map_err(|e| {
                    credential_error(format!(
                        "cannot read the federated token file `{}` that {AZURE_FEDERATED_TOKEN_FILE} names: {e}",
                        path.display()
                    ))
                })?;
                let text = String::from_utf8_lossy(&bytes);
                let token = text.trim();
                if token.is_empty() {
                    return Err(credential_error(format!(
                        "the federated token file `{}` that {AZURE_FEDERATED_TOKEN_FILE} names is empty",
                        path.display()
                    )));
                }
                Ok(token.to_string())
            }
        }
    }
}

/// A certificate and its RSA key, ready to sign assertions for one token endpoint.
pub struct CertificateAssertion {
    key: RsaKeyPair,
    thumbprint: String,
    /// `x5c`: the chain, leaf first, standard base64 DER; only when asked to send it.
    chain: Option<Vec<String>>,
    client_id: String,
    token_endpoint: String,
}

impl std::fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("thumbprint", &self.thumbprint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl CertificateAssertion {
    /// Load the certificate and its RSA key from a PEM or PFX/PKCS#12 file.
    pub fn load(
        path: &Path,
        password: Option<&Secret>,
        client_id: &str,
        token_endpoint: &str,
        send_chain: bool,
    ) -> Result<CertificateAssertion> {
        let bytes = crate::files::read_user_file(path, crate::files::MAX_FILE).map_err(|e| {
            Error::Config(format!(
                "cannot read the client certificate `{}` that {AZURE_CLIENT_CERTIFICATE_PATH} names: {e}",
                path.display()
            ))
        })?;
        let loaded = certfile::read(&bytes, password.map(Secret::expose)).map_err(|why| {
            Error::Config(format!("client certificate `{}`: {why}", path.display()))
        })?;
        let sha1 =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &loaded.certificate);
        let chain = send_chain.then(|| {
            std::iter::once(&loaded.certificate)
                .chain(&loaded.others)
                .map(|der| STANDARD.encode(der))
                .collect()
        });
        Ok(CertificateAssertion {
            key: loaded.key,
            thumbprint: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            chain,
            client_id: client_id.to_string(),
            token_endpoint: token_endpoint.to_string(),
        })
    }

    /// A fresh signed assertion, valid for ten minutes.
    pub fn sign(&self, now: i64) -> Result<String, SignError> {
        let rng = ring::rand::SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti).map_err(|_| SignError::NoRandomness)?;
        let mut header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": self.thumbprint,
        });
        if let Some(chain) = &self.chain {
            header["x5c"] = serde_json::json!(chain);
        }
        let claims = serde_json::json!({
            "aud": self.token_endpoint,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": crate::digest::hex(&jti),
            "nbf": now - 60,
            "iat": now,
            "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &rng,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| SignError::Signing)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

#[async_trait::async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.sign(crate::now())
            .map_err(|e| credential_error(e.to_string()))
    }
}
