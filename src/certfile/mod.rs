//! A client certificate file as `AZURE_CLIENT_CERTIFICATE_PATH` names it, read into the
//! RSA key and the certificate that carries its public key: PEM (certificates plus a
//! PKCS#1, PKCS#8 or password-encrypted PKCS#8 key) or PFX/PKCS#12, the password coming
//! from `AZURE_CLIENT_CERTIFICATE_PASSWORD`. The certificate is chosen by its public key,
//! so a chain in any order works.
//!
//! The ASN.1 itself is read by RustCrypto's `der` (`asn1`); the PKCS#12 bag walk (`pkcs12`)
//! and the password-based decryption (`pbe`: PBES2 with PBKDF2 and AES/3DES, and the
//! PKCS#12 legacy schemes) are written here, because no crate does that job on a lean
//! tree: `p12` (on `yasna`, with DES and RC2 only) stops at the legacy schemes and cannot
//! open the PBES2/AES files OpenSSL 3 writes by default; RustCrypto's `pkcs12` parses the
//! structures but decrypts nothing itself, and its decrypting companions (`pkcs5`, `pkcs8`
//! with encryption) are pre-releases that bring dozens of pre-release crates; `openssl`
//! binds the system library, which the static build must not depend on.

mod asn1;
pub mod pbe;
pub mod pkcs12;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{KeyPair, RsaKeyPair};
use rustls_pki_types::pem::{PemObject, SectionKind};

use der::asn1::{AnyRef, Null, OctetStringRef};
use der::{Encode, Tag};

use asn1::{DerError, Oid};
use pbe::{Password, PbeError};

const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const ENCRYPTED_PEM_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_PEM_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// The signing key and the DER certificate whose thumbprint names it to Entra.
pub struct ClientCertificate {
    pub key: RsaKeyPair,
    pub certificate: Vec<u8>,
    /// The other certificates in the file (intermediates, CA), in file order.
    pub others: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("certificate_len", &self.certificate.len())
            .finish_non_exhaustive()
    }
}

/// Why a certificate file cannot be used. Each renders as a short phrase for "client
/// certificate `PATH`: …" and never quotes the file's content or the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("neither a PEM file nor a PFX/PKCS#12 file")]
    NotPemOrPfx,
    #[error("it holds no certificate")]
    NoCertificate,
    #[error("it holds no private key")]
    NoPrivateKey,
    #[error("no certificate in it matches the private key")]
    NoMatchingCertificate,
    #[error(
        "the key is encrypted in the legacy OpenSSL format; convert it to PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
    )]
    LegacyEncryptedPem,
    #[error("a PEM block in it cannot be read")]
    BadPemBlock,
    #[error("an encrypted key block in it has no end line")]
    UnterminatedKeyBlock,
    #[error("an encrypted key block in it is not base64")]
    KeyBlockNotBase64,
    #[error("only RSA private keys are supported")]
    NotRsa,
    #[error("the private key is encrypted; set AZURE_CLIENT_CERTIFICATE_PASSWORD")]
    NeedsPassword,
    #[error(
        "the password does not decrypt the private key; check AZURE_CLIENT_CERTIFICATE_PASSWORD"
    )]
    WrongPassword,
    #[error("the private key's {0} is not supported")]
    UnsupportedEncryption(String),
    #[error("the encrypted private key is malformed ({0})")]
    MalformedEncryption(String),
    #[error("the private key is not a usable RSA key ({0})")]
    BadRsaKey(String),
    #[error("the private key cannot be read")]
    UnreadableKey,
    /// The PFX structure itself (its own messages).
    #[error("{0}")]
    Pfx(String),
}

/// Reads a PEM or PFX file's bytes.
pub fn read(bytes: &[u8], password: Option<&str>) -> Result<ClientCertificate, Unusable> {
    let (certificates, keys) = if is_pem(bytes) {
        read_pem(bytes, password)?
    } else if pkcs12::looks_like_pkcs12(bytes) {
        let contents = pkcs12::parse(bytes, password).map_err(|e| Unusable::Pfx(e.to_string()))?;
        (contents.certificates, contents.keys)
    } else {
        return Err(Unusable::NotPemOrPfx);
    };
    if certificates.is_empty() {
        return Err(Unusable::NoCertificate);
    }
    let mut last_error = Unusable::NoPrivateKey;
    for key in &keys {
        match rsa_key(key) {
            Ok(key) => {
                let public = key.public_key().as_ref().to_vec();
                let Some(at) = certificates
                    .iter()
                    .position(|c| c.windows(public.len()).any(|w| w == public.as_slice()))
                else {
                    last_error = Unusable::NoMatchingCertificate;
                    continue;
                };
                let mut others = certificates;
                let certificate = others.remove(at);
                return Ok(ClientCertificate {
                    key,
                    certificate,
                    others,
                });
            }
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// A certificate's SHA-1 thumbprint in upper-case hex, as Entra and the portal show it
/// (the assertion's `x5t` is the same digest in base64url).
pub fn thumbprint_hex(certificate: &[u8]) -> String {
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, certificate);
    crate::digest::hex(sha1.as_ref()).to_ascii_uppercase()
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

type Parts = (Vec<Vec<u8>>, Vec<Vec<u8>>);

fn read_pem(bytes: &[u8], password: Option<&str>) -> Result<Parts, Unusable> {
    if bytes.windows(22).any(|w| w == b"Proc-Type: 4,ENCRYPTED") {
        return Err(Unusable::LegacyEncryptedPem);
    }
    let mut certificates = Vec::new();
    let mut keys = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        let (kind, der) = section.map_err(|_| Unusable::BadPemBlock)?;
        match kind {
            SectionKind::Certificate => certificates.push(der),
            SectionKind::PrivateKey => keys.push(der),
            SectionKind::RsaPrivateKey => keys.push(wrap_pkcs1(&der)?),
            SectionKind::EcPrivateKey => return Err(Unusable::NotRsa),
            _ => {}
        }
    }
    for encrypted in encrypted_pem_blocks(bytes)? {
        keys.push(decrypt_pkcs8(&encrypted, password)?);
    }
    Ok((certificates, keys))
}

/// The DER of each `ENCRYPTED PRIVATE KEY` block (a label the PEM reader skips).
fn encrypted_pem_blocks(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Unusable> {
    let text = String::from_utf8_lossy(bytes);
    let mut blocks = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(ENCRYPTED_PEM_BEGIN) {
        let body = &rest[start + ENCRYPTED_PEM_BEGIN.len()..];
        let end = body
            .find(ENCRYPTED_PEM_END)
            .ok_or(Unusable::UnterminatedKeyBlock)?;
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        blocks.push(
            STANDARD
                .decode(b64)
                .map_err(|_| Unusable::KeyBlockNotBase64)?,
        );
        rest = &body[end..];
    }
    Ok(blocks)
}

fn decrypt_pkcs8(encrypted: &[u8], password: Option<&str>) -> Result<Vec<u8>, Unusable> {
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Err(Unusable::NeedsPassword);
    };
    pbe::decrypt_private_key_info(encrypted, &Password::new(password)).map_err(|e| match e {
        PbeError::WrongPassword => Unusable::WrongPassword,
        PbeError::Unsupported(what) => Unusable::UnsupportedEncryption(what),
        PbeError::Malformed(why) => Unusable::MalformedEncryption(why.to_string()),
    })
}

/// A PKCS#1 `RSAPrivateKey` wrapped as PKCS#8, so every key takes one path.
fn wrap_pkcs1(pkcs1: &[u8]) -> Result<Vec<u8>, Unusable> {
    let encode = || -> der::Result<Vec<u8>> {
        let algorithm = [RSA_ENCRYPTION.to_der()?, Null.to_der()?].concat();
        let body = [
            0u8.to_der()?,
            AnyRef::new(Tag::Sequence, &algorithm)?.to_der()?,
            OctetStringRef::new(pkcs1)?.to_der()?,
        ]
        .concat();
        AnyRef::new(Tag::Sequence, &body)?.to_der()
    };
    encode().map_err(|_| Unusable::UnreadableKey)
}

/// An RSA key from PKCS#8 `PrivateKeyInfo`. ring refuses some valid encodings (attributes
/// that Windows adds, a v2 structure, BER lengths), so the PKCS#1 key inside is the
/// second try.
fn rsa_key(pkcs8: &[u8]) -> Result<RsaKeyPair, Unusable> {
    if let Ok(key) = RsaKeyPair::from_pkcs8(pkcs8) {
        return Ok(key);
    }
    let inner = || -> Result<std::borrow::Cow<'_, [u8]>, DerError> {
        let mut info = asn1::single_sequence(pkcs8)?;
        info.small_uint()?;
        let mut algorithm = info.sequence()?;
        if algorithm.oid()? != RSA_ENCRYPTION {
            return Err(DerError("not RSA"));
        }
        info.octets()
    };
    match inner() {
        Ok(pkcs1) => RsaKeyPair::from_der(&pkcs1).map_err(|e| Unusable::BadRsaKey(e.to_string())),
        Err(DerError("not RSA")) => Err(Unusable::NotRsa),
        Err(_) => Err(Unusable::UnreadableKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_wrapping_is_valid_der() {
        let wrapped = wrap_pkcs1(&[0x30, 0x00]).unwrap();
        assert_eq!(
            wrapped,
            [
                0x30, 0x16, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x04, 0x02, 0x30, 0x00
            ]
        );
        let long = wrap_pkcs1(&vec![0u8; 300]).unwrap();
        assert_eq!(&long[..4], &[0x30, 0x82, 0x01, 0x42]);
    }

    /// Fixtures made by `tests/fixtures/certs/make.sh` with openssl 3.
    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/certs/", $name)).as_slice()
        };
    }
    const PASSWORD: &str = "fixture-password";
    const CERT_DER: &[u8] = fixture!("cert.der");

    fn assert_reads(name: &str, bytes: &[u8], password: Option<&str>) {
        let read = read(bytes, password).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            read.certificate, CERT_DER,
            "{name}: the client's certificate"
        );
        // The key is the certificate's: its public key is inside the certificate.
        let public = read.key.public_key().as_ref();
        assert!(
            CERT_DER.windows(public.len()).any(|w| w == public),
            "{name}"
        );
    }

    #[test]
    fn reads_every_pfx_that_openssl_and_windows_write() {
        for (name, bytes, password) in [
            ("aes256.pfx", fixture!("aes256.pfx"), Some(PASSWORD)),
            (
                "legacy.pfx (RC2-40, 3DES)",
                fixture!("legacy.pfx"),
                Some(PASSWORD),
            ),
            ("3des.pfx", fixture!("3des.pfx"), Some(PASSWORD)),
            (
                "chain-aes128.pfx",
                fixture!("chain-aes128.pfx"),
                Some(PASSWORD),
            ),
            ("empty-password.pfx", fixture!("empty-password.pfx"), None),
            (
                "empty-password.pfx",
                fixture!("empty-password.pfx"),
                Some(""),
            ),
            ("plain.pfx", fixture!("plain.pfx"), None),
        ] {
            assert_reads(name, bytes, password);
        }
    }

    #[test]
    fn reads_plain_and_encrypted_pem_with_the_chain_in_any_order() {
        assert_reads("pkcs1.pem", fixture!("pkcs1.pem"), None);
        for (name, bytes) in [
            ("PBES2 AES-256", fixture!("encrypted-v2aes256cbc.pem")),
            ("PBES2 3DES", fixture!("encrypted-v2des3.pem")),
            ("PKCS#12 PBE 3DES", fixture!("encrypted-v1pbesha13des.pem")),
        ] {
            assert_reads(name, bytes, Some(PASSWORD));
        }
    }

    #[test]
    fn wrong_or_missing_passwords_say_which_variable_to_fix() {
        for pfx in [fixture!("aes256.pfx"), fixture!("legacy.pfx")] {
            assert_eq!(
                read(pfx, Some("not-it")).unwrap_err().to_string(),
                "the password does not open it (integrity check failed); check AZURE_CLIENT_CERTIFICATE_PASSWORD"
            );
            assert_eq!(
                read(pfx, None).unwrap_err().to_string(),
                "it is password-protected; set AZURE_CLIENT_CERTIFICATE_PASSWORD"
            );
        }
        let pem = fixture!("encrypted-v2aes256cbc.pem");
        assert_eq!(
            read(pem, Some("not-it")).unwrap_err().to_string(),
            "the password does not decrypt the private key; check AZURE_CLIENT_CERTIFICATE_PASSWORD"
        );
        assert_eq!(
            read(pem, None).unwrap_err().to_string(),
            "the private key is encrypted; set AZURE_CLIENT_CERTIFICATE_PASSWORD"
        );
        assert!(
            read(fixture!("legacy-encrypted.pem"), Some(PASSWORD))
                .unwrap_err()
                .to_string()
                .contains("openssl pkcs8 -topk8")
        );
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let pkcs1 = std::str::from_utf8(fixture!("pkcs1.pem")).unwrap();
        let (_, key) = pkcs1.split_once("-----END CERTIFICATE-----\n").unwrap();
        let ca = std::str::from_utf8(fixture!("ca.pem")).unwrap();
        let only_ca = format!("{ca}{key}").into_bytes();
        assert_eq!(
            read(&only_ca, None).unwrap_err().to_string(),
            "no certificate in it matches the private key"
        );
        assert_eq!(
            read(fixture!("cert.pem"), None).unwrap_err().to_string(),
            "it holds no private key"
        );
    }

    /// DER re-encoded the way BouncyCastle (EJBCA, Java tools) writes PKCS#12: every
    /// constructed element with an indefinite length, and strings over 64 bytes in
    /// pieces. Strings are not entered, so the MAC over the content octets stays valid.
    fn to_ber(der_bytes: &[u8]) -> Vec<u8> {
        use der::{Reader as _, Tagged};
        let mut out = Vec::new();
        let mut reader = der::SliceReader::new(der_bytes).unwrap();
        while !reader.is_finished() {
            let element: AnyRef<'_> = reader.decode().unwrap();
            let tag = element.tag();
            let identifier = tag.to_der().unwrap()[0];
            let context_0 = Tag::ContextSpecific {
                constructed: false,
                number: der::TagNumber(0),
            };
            if tag.is_constructed() {
                out.extend([identifier, 0x80]);
                out.extend(to_ber(element.value()));
                out.extend([0, 0]);
            } else if (tag == Tag::OctetString || tag == context_0) && element.value().len() > 64 {
                out.extend([identifier | 0x20, 0x80]);
                for piece in element.value().chunks(64) {
                    out.extend(OctetStringRef::new(piece).unwrap().to_der().unwrap());
                }
                out.extend([0, 0]);
            } else {
                out.extend(element.to_der().unwrap());
            }
        }
        out
    }

    #[test]
    fn reads_ber_encoded_pfx_files() {
        for (name, der_pfx) in [
            ("aes256.pfx", fixture!("aes256.pfx")),
            ("legacy.pfx", fixture!("legacy.pfx")),
            ("plain.pfx", fixture!("plain.pfx")),
        ] {
            let ber = to_ber(der_pfx);
            assert_eq!(&ber[..2], &[0x30, 0x80], "{name} is BER now");
            assert_ne!(ber.as_slice(), der_pfx);
            let password = (name != "plain.pfx").then_some(PASSWORD);
            assert_reads(name, &ber, password);
        }
    }

    #[test]
    fn bytes_after_the_pfx_are_ignored() {
        let mut padded = fixture!("aes256.pfx").to_vec();
        padded.extend_from_slice(&[0u8; 37]);
        assert_reads("aes256.pfx + padding", &padded, Some(PASSWORD));
    }

    /// Every truncation of a real PFX is an error, never a panic.
    #[test]
    fn truncated_pfx_files_are_errors() {
        let pfx = fixture!("aes256.pfx");
        for len in (0..pfx.len()).step_by(7) {
            assert!(read(&pfx[..len], Some(PASSWORD)).is_err(), "{len}");
        }
    }

    #[test]
    fn neither_pem_nor_pfx_is_named() {
        assert_eq!(
            read(b"just text", None).unwrap_err().to_string(),
            "neither a PEM file nor a PFX/PKCS#12 file"
        );
    }
}
