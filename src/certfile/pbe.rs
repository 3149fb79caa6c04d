//! Password-based decryption for client certificate files: PBES2 (PBKDF2 with
//! HMAC-SHA-1/256/384/512, then AES-128/192/256-CBC or 3DES-CBC), which OpenSSL 3 and
//! current Windows write, and the PKCS#12 schemes of OpenSSL 1.x and older exports
//! (RFC 7292 appendix B key derivation with SHA-1, then 3DES or RC2). Also that key
//! derivation for the PKCS#12 integrity MAC, and the PKCS#8 `EncryptedPrivateKeyInfo`
//! wrapper both file kinds use. Digests, HMAC and PBKDF2 come from `ring`; the block
//! ciphers and CBC mode from RustCrypto (`aes`, `des`, `rc2`, `cbc`).

use std::num::NonZeroU32;

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipher, BlockDecryptMut, InnerIvInit, InvalidLength, KeyInit, KeyIvInit};
use ring::digest;

use der::Tag;

use crate::certfile::asn1::{self, DerError, Oid, Reader};

/// More iterations than any tool writes (OpenSSL: 2,048; Windows: 2,000; NIST's
/// 2023 advice: 600,000): a file asking for more is refused rather than burning minutes.
const MAX_ITERATIONS: u32 = 1_000_000;

const PBES2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.13");
const PBKDF2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.12");
const HMAC_SHA1: Oid = Oid::new_unwrap("1.2.840.113549.2.7");
const HMAC_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.2.9");
const HMAC_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.2.10");
const HMAC_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.2.11");
const AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
const AES192_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.22");
const AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
const DES_EDE3_CBC: Oid = Oid::new_unwrap("1.2.840.113549.3.7");
/// `pkcs-12PbeIds`: the legacy schemes are its children (RFC 7292 appendix C).
const PKCS12_PBE: Oid = Oid::new_unwrap("1.2.840.113549.1.12.1");
const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Why a decryption did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PbeError {
    /// The structure around the ciphertext is not what the standards say.
    Malformed(&'static str),
    /// A scheme or parameter this reader does not implement, named for the message.
    Unsupported(String),
    /// The ciphertext did not decrypt: the password is wrong (or the file is corrupt).
    WrongPassword,
}

impl From<DerError> for PbeError {
    fn from(e: DerError) -> Self {
        PbeError::Malformed(e.0)
    }
}

pub type PbeResult<T> = Result<T, PbeError>;

/// A password in the two encodings the schemes use: the bytes as given (PBES2) and
/// PKCS#12's BMPString, UTF-16BE with a two-byte terminator (legacy schemes and MAC).
pub struct Password {
    utf8: Vec<u8>,
    bmp: Vec<u8>,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    pub fn new(text: &str) -> Self {
        let mut bmp: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        bmp.extend([0, 0]);
        Password {
            utf8: text.as_bytes().to_vec(),
            bmp,
        }
    }

    /// No password at all, which PKCS#12 tools encode as zero bytes rather than as an
    /// empty BMPString (its terminator alone). Both are tried for an empty password.
    pub fn absent() -> Self {
        Password {
            utf8: Vec::new(),
            bmp: Vec::new(),
        }
    }

    /// The encodings to try for a password the user gave (or did not).
    pub fn candidates(text: Option<&str>) -> Vec<Password> {
        match text {
            Some(t) if !t.is_empty() => vec![Password::new(t)],
            _ => vec![Password::new(""), Password::absent()],
        }
    }
}

/// A digest algorithm named by its OID, as PKCS#12 MACs name theirs.
pub fn digest_by_oid(oid: Oid) -> PbeResult<&'static digest::Algorithm> {
    Ok(match oid {
        SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        SHA256 => &digest::SHA256,
        SHA384 => &digest::SHA384,
        SHA512 => &digest::SHA512,
        _ => {
            return Err(PbeError::Unsupported(format!("digest {oid}")));
        }
    })
}

/// The HMAC matching a digest, for the PKCS#12 MAC.
pub fn hmac_for(hash: &'static digest::Algorithm) -> ring::hmac::Algorithm {
    if hash == &digest::SHA256 {
        ring::hmac::HMAC_SHA256
    } else if hash == &digest::SHA384 {
        ring::hmac::HMAC_SHA384
    } else if hash == &digest::SHA512 {
        ring::hmac::HMAC_SHA512
    } else {
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY
    }
}

fn iterations(count: u32) -> PbeResult<NonZeroU32> {
    if count > MAX_ITERATIONS {
        return Err(PbeError::Unsupported(format!(
            "{count} key-derivation iterations (at most {MAX_ITERATIONS})"
        )));
    }
    NonZeroU32::new(count).ok_or(PbeError::Malformed("zero iterations"))
}

/// RFC 7292 appendix B.2: `len` bytes of key material for purpose `id` (1 key, 2 IV,
/// 3 MAC). Names follow the RFC: D the diversifier, I the salt and password stretched
/// to whole blocks, A the iterated hash, B the block that updates I.
pub fn pkcs12_kdf(
    hash: &'static digest::Algorithm,
    id: u8,
    password: &Password,
    salt: &[u8],
    rounds: u32,
    len: usize,
) -> PbeResult<Vec<u8>> {
    let rounds = iterations(rounds)?.get();
    let block = hash.block_len();
    let stretch = |src: &[u8]| -> Vec<u8> {
        let stretched = block * src.len().div_ceil(block);
        src.iter().cycle().take(stretched).copied().collect()
    };
    let mut input = stretch(salt);
    input.extend(stretch(&password.bmp));
    let diversifier = vec![id; block];
    let mut out = Vec::with_capacity(len + hash.output_len());
    loop {
        let mut ctx = digest::Context::new(hash);
        ctx.update(&diversifier);
        ctx.update(&input);
        let mut hashed = ctx.finish();
        for _ in 1..rounds {
            hashed = digest::digest(hash, hashed.as_ref());
        }
        out.extend_from_slice(hashed.as_ref());
        if out.len() >= len {
            out.truncate(len);
            return Ok(out);
        }
        // I_j = (I_j + B + 1) mod 2^(8v) for every v-byte block, B being A repeated.
        let filler: Vec<u8> = hashed
            .as_ref()
            .iter()
            .cycle()
            .take(block)
            .copied()
            .collect();
        for chunk in input.chunks_mut(block) {
            let mut carry = 1u16;
            for (x, y) in chunk.iter_mut().zip(&filler).rev() {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum.to_be_bytes()[1];
                carry = sum >> 8;
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Cipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
    DesEde2,
    Rc2 {
        key_len: usize,
        effective_bits: usize,
    },
}

impl Cipher {
    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128 | Cipher::DesEde2 => 16,
            Cipher::Aes192 | Cipher::DesEde3 => 24,
            Cipher::Aes256 => 32,
            Cipher::Rc2 { key_len, .. } => key_len,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Cipher::Aes128 | Cipher::Aes192 | Cipher::Aes256 => 16,
            Cipher::DesEde3 | Cipher::DesEde2 | Cipher::Rc2 { .. } => 8,
        }
    }

    /// CBC decryption with PKCS#7 padding removed. A padding error means a wrong key.
    fn decrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> PbeResult<Vec<u8>> {
        if data.is_empty() || !data.len().is_multiple_of(self.iv_len()) {
            return Err(PbeError::Malformed("ciphertext is not whole blocks"));
        }
        let mut buf = data.to_vec();
        let len = match self {
            Cipher::Aes128 => cbc_decrypt::<aes::Aes128>(key, iv, &mut buf),
            Cipher::Aes192 => cbc_decrypt::<aes::Aes192>(key, iv, &mut buf),
            Cipher::Aes256 => cbc_decrypt::<aes::Aes256>(key, iv, &mut buf),
            Cipher::DesEde3 => cbc_decrypt::<des::TdesEde3>(key, iv, &mut buf),
            Cipher::DesEde2 => cbc_decrypt::<des::TdesEde2>(key, iv, &mut buf),
            // RC2's effective key length is a parameter of its own, so no `KeyInit`.
            Cipher::Rc2 { effective_bits, .. } => unpad(
                cbc::Decryptor::inner_iv_slice_init(
                    rc2::Rc2::new_with_eff_key_len(key, effective_bits),
                    iv,
                ),
                &mut buf,
            ),
        }?;
        buf.truncate(len);
        Ok(buf)
    }
}

/// CBC with cipher `C` keyed from `key`; the plaintext length left in `buf`.
fn cbc_decrypt<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> PbeResult<usize>
where
    C: BlockDecryptMut + BlockCipher + KeyInit,
{
    unpad(cbc::Decryptor::<C>::new_from_slices(key, iv), buf)
}

fn unpad<D: BlockDecryptMut>(
    decryptor: Result<D, InvalidLength>,
    buf: &mut [u8],
) -> PbeResult<usize> {
    decryptor
        .map_err(|_| PbeError::Malformed("key or IV of the wrong length"))?
        .decrypt_padded_mut::<Pkcs7>(buf)
        .map(<[u8]>::len)
        .map_err(|_| PbeError::WrongPassword)
}

/// Decrypts `data` with the scheme an `AlgorithmIdentifier` (a reader of its SEQUENCE's
/// contents) names.
pub fn decrypt(mut alg: Reader<'_>, data: &[u8], password: &Password) -> PbeResult<Vec<u8>> {
    let oid = alg.oid()?;
    if oid == PBES2 {
        return pbes2(alg.sequence()?, data, password);
    }
    if let Some(&[scheme]) = oid.as_bytes().strip_prefix(PKCS12_PBE.as_bytes()) {
        let cipher = match scheme {
            3 => Cipher::DesEde3,
            4 => Cipher::DesEde2,
            5 => Cipher::Rc2 {
                key_len: 16,
                effective_bits: 128,
            },
            6 => Cipher::Rc2 {
                key_len: 5,
                effective_bits: 40,
            },
            _ => {
                return Err(PbeError::Unsupported(format!("encryption {oid} (RC4)")));
            }
        };
        let mut params = alg.sequence()?;
        let salt = params.expect(Tag::OctetString)?;
        let rounds = params.small_uint()?;
        let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
        let key = pkcs12_kdf(sha1, 1, password, salt, rounds, cipher.key_len())?;
        let iv = pkcs12_kdf(sha1, 2, password, salt, rounds, cipher.iv_len())?;
        return cipher.decrypt(&key, &iv, data);
    }
    Err(PbeError::Unsupported(format!("encryption {oid}")))
}

/// RFC 8018 PBES2 with PBKDF2.
fn pbes2(mut params: Reader<'_>, data: &[u8], password: &Password) -> PbeResult<Vec<u8>> {
    let mut kdf = params.sequence()?;
    let kdf_oid = kdf.oid()?;
    if kdf_oid != PBKDF2 {
        return Err(PbeError::Unsupported(format!("key derivation {kdf_oid}")));
    }
    let mut kdf = kdf.sequence()?;
    let salt = kdf.expect(Tag::OctetString)?;
    let rounds = iterations(kdf.small_uint()?)?;
    let key_len = if kdf.next_is(Tag::Integer) {
        Some(kdf.small_uint()?)
    } else {
        None
    };
    let prf = if kdf.is_empty() {
        HMAC_SHA1
    } else {
        kdf.sequence()?.oid()?
    };
    let prf = match prf {
        HMAC_SHA1 => ring::pbkdf2::PBKDF2_HMAC_SHA1,
        HMAC_SHA256 => ring::pbkdf2::PBKDF2_HMAC_SHA256,
        HMAC_SHA384 => ring::pbkdf2::PBKDF2_HMAC_SHA384,
        HMAC_SHA512 => ring::pbkdf2::PBKDF2_HMAC_SHA512,
        other => {
            return Err(PbeError::Unsupported(format!(
                "PBKDF2 pseudo-random function {other}"
            )));
        }
    };
    let mut scheme = params.sequence()?;
    let cipher_oid = scheme.oid()?;
    let cipher = match cipher_oid {
        AES128_CBC => Cipher::Aes128,
        AES192_CBC => Cipher::Aes192,
        AES256_CBC => Cipher::Aes256,
        DES_EDE3_CBC => Cipher::DesEde3,
        other => {
            return Err(PbeError::Unsupported(format!("cipher {other}")));
        }
    };
    if key_len.is_some_and(|n| usize::try_from(n).ok() != Some(cipher.key_len())) {
        return Err(PbeError::Malformed("key length does not match the cipher"));
    }
    let iv = scheme.expect(Tag::OctetString)?;
    let mut key = vec![0u8; cipher.key_len()];
    ring::pbkdf2::derive(prf, rounds, salt, &password.utf8, &mut key);
    cipher.decrypt(&key, iv, data)
}

/// PKCS#8 `EncryptedPrivateKeyInfo` (DER) → the `PrivateKeyInfo` DER inside.
pub fn decrypt_private_key_info(encrypted: &[u8], password: &Password) -> PbeResult<Vec<u8>> {
    let mut info = asn1::single_sequence(encrypted)?;
    let algorithm = info.sequence()?;
    let data = info.octets()?;
    let plain = decrypt(algorithm, &data, password)?;
    // A wrong key whose output happens to end in valid padding is caught here.
    asn1::single(&plain, Tag::Sequence).map_err(|_| PbeError::WrongPassword)?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bmp_password_has_a_terminator() {
        assert_eq!(Password::new("ab").bmp, vec![0, b'a', 0, b'b', 0, 0]);
        assert_eq!(Password::new("").bmp, vec![0, 0]);
        assert!(Password::absent().bmp.is_empty());
        assert_eq!(
            format!("{:?}", Password::new("hunter2")),
            "Password(<redacted>)"
        );
    }

    /// The key derivation against values computed by OpenSSL's `PKCS12_key_gen_uni`
    /// (the `smeg` and `queeg` vectors of BouncyCastle's PKCS#12 tests). The MAC
    /// purpose (id 3) is checked against real OpenSSL files in `certfile`'s tests.
    #[test]
    fn pkcs12_kdf_matches_known_vectors() {
        let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
        let salt = [0x0a, 0x58, 0xcf, 0x64, 0x53, 0x0d, 0x82, 0x3f];
        let key = pkcs12_kdf(sha1, 1, &Password::new("smeg"), &salt, 1, 24).unwrap();
        assert_eq!(
            crate::digest::hex(&key),
            "8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3"
        );
        let iv = pkcs12_kdf(sha1, 2, &Password::new("smeg"), &salt, 1, 8).unwrap();
        assert_eq!(crate::digest::hex(&iv), "79993dfe048d3b76");
        let queeg = Password::new("queeg");
        let salt = [0x05, 0xde, 0xc9, 0x59, 0xac, 0xff, 0x72, 0xf7];
        let key = pkcs12_kdf(sha1, 1, &queeg, &salt, 1000, 24).unwrap();
        assert_eq!(
            crate::digest::hex(&key),
            "ed2034e36328830ff09df1e1a07dd357185dac0d4f9eb3d4"
        );
        let iv = pkcs12_kdf(sha1, 2, &queeg, &salt, 1000, 8).unwrap();
        assert_eq!(crate::digest::hex(&iv), "11dedad7758d4860");
    }

    #[test]
    fn refuses_absurd_iteration_counts_and_bad_shapes() {
        let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
        assert!(matches!(
            pkcs12_kdf(sha1, 1, &Password::new("x"), b"salt", u32::MAX, 8),
            Err(PbeError::Unsupported(_))
        ));
        assert_eq!(
            pkcs12_kdf(sha1, 1, &Password::new("x"), b"salt", 0, 8),
            Err(PbeError::Malformed("zero iterations"))
        );
        let unknown = Reader::new(&[0x06, 0x01, 0x2a]).unwrap();
        assert!(decrypt(unknown, b"", &Password::new("x")).is_err());
        assert!(decrypt_private_key_info(&[0x30, 0x00], &Password::new("x")).is_err());
    }
}
