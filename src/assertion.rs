//! Client assertions for Entra's `jwt-bearer` client authentication, fed to
//! `azure_identity::ClientAssertionCredential`: a workload-identity token read from its
//! file on every mint (or handed over by kubelet), and a certificate credential's RS256
//! JWT signed with `ring` from a PEM certificate and RSA key — pure Rust, no OpenSSL.

use std::path::{Path, PathBuf};

use azure_core::http::ClientMethodOptions;
use azure_identity::ClientAssertion;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};
use crate::secret::Secret;

fn credential_error(message: String) -> azure_core::Error {
    azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, message)
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
                let text = std::fs::read_to_string(path).map_err(|e| {
                    credential_error(format!(
                        "cannot read the federated token file `{}`: {e}",
                        path.display()
                    ))
                })?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(credential_error(format!(
                        "the federated token file `{}` is empty",
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
    /// Load a PEM file holding the certificate and its private key (PKCS#8 or PKCS#1).
    pub fn load(
        path: &Path,
        password: Option<&Secret>,
        client_id: &str,
        token_endpoint: &str,
    ) -> Result<CertificateAssertion> {
        let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
        let bad =
            |why: &str| Error::Config(format!("client certificate `{}`: {why}", path.display()));
        if !bytes.starts_with(b"-----") && !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            return Err(bad(
                "not a PEM file; PFX/PKCS#12 is not supported yet, convert it with \
                 `openssl pkcs12 -in cert.pfx -out cert.pem -nodes`",
            ));
        }
        if bytes.windows(9).any(|w| w == b"ENCRYPTED") {
            return Err(bad(if password.is_some() {
                "encrypted private keys are not supported yet; store the key unencrypted with 0600 permissions"
            } else {
                "the private key is encrypted; decrypt it (AZURE_CLIENT_CERTIFICATE_PASSWORD is not supported for PEM yet)"
            }));
        }
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| bad("a certificate in it cannot be read"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| bad("it holds no certificate"))?;
        let key = PrivateKeyDer::from_pem_slice(&bytes)
            .map_err(|_| bad("it holds no readable private key"))?;
        let key = match &key {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err(bad("only RSA private keys are supported")),
        }
        .map_err(|e| bad(&format!("the private key is not a usable RSA key ({e})")))?;
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, leaf.as_ref());
        Ok(CertificateAssertion {
            key,
            thumbprint: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            client_id: client_id.to_string(),
            token_endpoint: token_endpoint.to_string(),
        })
    }

    /// A fresh signed assertion, valid for ten minutes.
    pub fn sign(&self, now: i64) -> Result<String, String> {
        let rng = ring::rand::SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti)
            .map_err(|_| "no randomness available".to_string())?;
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": self.thumbprint,
        });
        let claims = serde_json::json!({
            "aud": self.token_endpoint,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": crate::cache::hex(&jti),
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
            .map_err(|_| "signing the client assertion failed".to_string())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

#[async_trait::async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.sign(crate::now()).map_err(credential_error)
    }
}
