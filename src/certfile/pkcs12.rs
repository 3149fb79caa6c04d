//! PFX/PKCS#12 files (RFC 7292) as `openssl pkcs12 -export`, Windows and Azure Key Vault
//! write them: the integrity MAC checked with the password, then every certificate and
//! private key gathered from the safe contents, encrypted or not. Reading only, and only
//! password integrity and privacy mode (no public-key modes, no PBMAC1).

use der::Tag;

use crate::certfile::asn1::{self, DerError, Oid, Reader};
use crate::certfile::pbe::{self, Password, PbeError};

const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
const ENCRYPTED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.6");
const KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.1");
const SHROUDED_KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.2");
const CERT_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.3");
const SAFE_CONTENTS_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.6");
const X509_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.22.1");
const PBMAC1: Oid = Oid::new_unwrap("1.2.840.113549.1.5.14");
/// Nested safe contents deeper than this are refused (tools write none).
const MAX_NESTING: usize = 4;

/// What a PKCS#12 file holds that a certificate credential can use.
#[derive(Default)]
pub struct Contents {
    /// X.509 certificates, DER, in file order.
    pub certificates: Vec<Vec<u8>>,
    /// Private keys as PKCS#8 `PrivateKeyInfo` DER, decrypted.
    pub keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contents")
            .field("certificates", &self.certificates.len())
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .finish()
    }
}

/// Why a PKCS#12 file could not be read; the texts end up in one-line errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pkcs12Error {
    #[error("not a PKCS#12 file ({0})")]
    Malformed(&'static str),
    #[error("unsupported PKCS#12 content: {0}")]
    Unsupported(String),
    #[error(
        "the password does not open it (integrity check failed); check AZURE_CLIENT_CERTIFICATE_PASSWORD"
    )]
    WrongPassword,
    #[error("it is password-protected; set AZURE_CLIENT_CERTIFICATE_PASSWORD")]
    PasswordNeeded,
}

impl From<DerError> for Pkcs12Error {
    fn from(e: DerError) -> Self {
        Pkcs12Error::Malformed(e.0)
    }
}

impl From<PbeError> for Pkcs12Error {
    fn from(e: PbeError) -> Self {
        match e {
            PbeError::Malformed(why) => Pkcs12Error::Malformed(why),
            PbeError::Unsupported(what) => Pkcs12Error::Unsupported(what),
            PbeError::WrongPassword => Pkcs12Error::WrongPassword,
        }
    }
}

/// Does this look like a PFX at all (a DER SEQUENCE starting with version 3)?
pub fn looks_like_pkcs12(bytes: &[u8]) -> bool {
    Reader::new(bytes)
        .and_then(|mut outer| outer.sequence())
        .and_then(|mut pfx| pfx.small_uint())
        .is_ok_and(|version| version == 3)
}

/// Reads a PFX with the password the user gave, if any.
pub fn parse(bytes: &[u8], password: Option<&str>) -> Result<Contents, Pkcs12Error> {
    // Bytes after the PFX (some tools pad files) are ignored, as OpenSSL ignores them.
    let mut pfx = Reader::new(bytes)?.sequence()?;
    if pfx.small_uint()? != 3 {
        return Err(Pkcs12Error::Malformed("version is not 3"));
    }
    let mut auth_safe = pfx.sequence()?;
    if auth_safe.oid()? != DATA {
        return Err(Pkcs12Error::Unsupported(
            "public-key integrity mode (signed data)".to_string(),
        ));
    }
    let data = asn1::single_octets(auth_safe.explicit(0)?)?;
    let data = data.as_ref();
    let candidates = Password::candidates(password);
    let chosen: Vec<&Password> = match pfx.optional_sequence()? {
        Some(mac_data) => {
            let mut verified = None;
            for candidate in &candidates {
                if verify_mac(mac_data.clone(), data, candidate)? {
                    verified = Some(candidate);
                    break;
                }
            }
            vec![verified.ok_or_else(|| wrong_password(password))?]
        }
        None => candidates.iter().collect(),
    };
    let mut last = Pkcs12Error::WrongPassword;
    for candidate in chosen {
        let mut contents = Contents::default();
        match read_authenticated_safe(data, candidate, &mut contents) {
            Ok(()) => return Ok(contents),
            Err(Pkcs12Error::WrongPassword) => last = wrong_password(password),
            Err(other) => return Err(other),
        }
    }
    Err(last)
}

fn wrong_password(password: Option<&str>) -> Pkcs12Error {
    if password.is_some_and(|p| !p.is_empty()) {
        Pkcs12Error::WrongPassword
    } else {
        Pkcs12Error::PasswordNeeded
    }
}

/// The `MacData` check: HMAC over the authenticated safe with a key derived from the
/// password. `Ok(false)` means this password encoding is not the one.
fn verify_mac(
    mut mac_data: Reader<'_>,
    data: &[u8],
    password: &Password,
) -> Result<bool, Pkcs12Error> {
    let mut digest_info = mac_data.sequence()?;
    let mut algorithm = digest_info.sequence()?;
    let oid = algorithm.oid()?;
    if oid == PBMAC1 {
        return Err(Pkcs12Error::Unsupported(
            "PBMAC1 integrity (re-export with `openssl pkcs12 -export -macalg sha256`)".to_string(),
        ));
    }
    let hash = pbe::digest_by_oid(oid)?;
    let expected = digest_info.expect(Tag::OctetString)?;
    let salt = mac_data.expect(Tag::OctetString)?;
    let rounds = if mac_data.is_empty() {
        1
    } else {
        mac_data.small_uint()?
    };
    let key = pbe::pkcs12_kdf(hash, 3, password, salt, rounds, hash.output_len())?;
    let key = ring::hmac::Key::new(pbe::hmac_for(hash), &key);
    Ok(ring::hmac::verify(&key, data, expected).is_ok())
}

/// `AuthenticatedSafe`: a SEQUENCE of `ContentInfo`, each plain or password-encrypted.
fn read_authenticated_safe(
    data: &[u8],
    password: &Password,
    out: &mut Contents,
) -> Result<(), Pkcs12Error> {
    let mut infos = asn1::single_sequence(data)?;
    while !infos.is_empty() {
        let mut info = infos.sequence()?;
        let content_type = info.oid()?;
        let content = info.explicit(0)?;
        if content_type == DATA {
            read_safe_contents(&asn1::single_octets(content)?, password, out, 0)?;
        } else if content_type == ENCRYPTED_DATA {
            let plain = decrypt_encrypted_data(content, password)?;
            read_safe_contents(&plain, password, out, 0)?;
        } else {
            return Err(Pkcs12Error::Unsupported(format!(
                "content type {content_type} (public-key privacy mode?)"
            )));
        }
    }
    Ok(())
}

/// `EncryptedData` → the `SafeContents` DER inside.
fn decrypt_encrypted_data(content: &[u8], password: &Password) -> Result<Vec<u8>, Pkcs12Error> {
    let mut encrypted_data = asn1::single_sequence(content)?;
    encrypted_data.small_uint()?;
    let mut info = encrypted_data.sequence()?;
    info.oid()?;
    let algorithm = info.sequence()?;
    // `[0] IMPLICIT OCTET STRING`: primitive, or (BER) constructed from pieces.
    let ciphertext = info
        .implicit_octets(0)
        .map_err(|_| Pkcs12Error::Malformed("encrypted content missing"))?;
    let plain = pbe::decrypt(algorithm, &ciphertext, password)?;
    // Valid padding under a wrong key is possible; a wrong key never gives valid DER.
    asn1::single(&plain, Tag::Sequence).map_err(|_| Pkcs12Error::WrongPassword)?;
    Ok(plain)
}

/// `SafeContents`: a SEQUENCE of `SafeBag`s; keys and certificates are kept, other bags
/// (CRLs, secrets) skipped.
fn read_safe_contents(
    data: &[u8],
    password: &Password,
    out: &mut Contents,
    depth: usize,
) -> Result<(), Pkcs12Error> {
    if depth > MAX_NESTING {
        return Err(Pkcs12Error::Malformed("safe contents nested too deeply"));
    }
    let mut bags = asn1::single_sequence(data)?;
    while !bags.is_empty() {
        let mut bag = bags.sequence()?;
        let bag_type = bag.oid()?;
        let value = bag.explicit(0)?;
        if bag_type == KEY_BAG {
            asn1::single(value, Tag::Sequence)?;
            out.keys.push(value.to_vec());
        } else if bag_type == SHROUDED_KEY_BAG {
            out.keys
                .push(pbe::decrypt_private_key_info(value, password)?);
        } else if bag_type == CERT_BAG {
            let mut cert_bag = asn1::single_sequence(value)?;
            if cert_bag.oid()? == X509_CERTIFICATE {
                let der_cert = asn1::single_octets(cert_bag.explicit(0)?)?;
                out.certificates.push(der_cert.to_vec());
            }
        } else if bag_type == SAFE_CONTENTS_BAG {
            read_safe_contents(value, password, out, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"hello",
            &[0x30, 0x03, 0x02, 0x01, 0x03],
            &[0x30, 0x03, 0x02, 0x01, 0x02],
            &[0x30, 0x80, 0x02, 0x01, 0x03, 0x00, 0x00],
        ] {
            assert!(parse(bytes, Some("pw")).is_err(), "{bytes:?}");
        }
        assert!(!looks_like_pkcs12(b"-----BEGIN CERTIFICATE-----"));
        assert!(looks_like_pkcs12(&[0x30, 0x03, 0x02, 0x01, 0x03]));
    }

    #[test]
    fn debug_redacts_keys() {
        let contents = Contents {
            certificates: vec![vec![1]],
            keys: vec![b"secret key bytes".to_vec()],
        };
        let shown = format!("{contents:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("115"),
            "{shown}"
        );
    }
}
